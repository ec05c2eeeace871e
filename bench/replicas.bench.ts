// Replicas: N=1 vs N=2 Bastion replicas behind a real HAProxy (the shipped
// deploy/haproxy/haproxy.cfg) with a real Redis (cluster state and the shared rate limits),
// serving stateless 2026-07-28 tools/call requests (no session, no affinity: round robin).
// Both variants run side by side in the same run, taking turns round by round, with the same HAProxy config:
// at N=1 both server lines of the config name the one replica, so the proxy's work is the same.
//
//   npm run build && node dist/bench/replicas.bench.js
//   BENCH_REPLICA_CALLS=4000 ...        calls per variant (default 2000)
//   BENCH_REPLICA_WARMUP=2000 ...       warm-up calls per replica before measuring (default 1000)
//   BENCH_REPLICA_CONCURRENCY=32 ...    requests in flight (default 16)
//
// Reported per variant: throughput (calls/s over the wall time of the run), latency p50/p99 as
// the client sees it through HAProxy, and the replicas' CPU time per call (user + system of every
// replica process and its upstreams, from /proc). Then N=2 over N=1 as ratios. On a machine with
// two cores the client, HAProxy, Redis, the replicas and their upstreams all share them: the
// throughput ratio shows what a second replica adds when CPU is the limit, not what it adds on
// machines of their own.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { removeTree } from '../test/helpers/tmp.js';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startBalancer, startReplica, stopReplica, type Balancer, type Replica } from '../test/helpers/replicas.js';
import { auditRecords } from '../test/helpers/audit.js';
import { startRedis, type RunningRedis } from '../test/limits/redis-helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const echoServerJs = join(here, 'fixtures', 'gateway-echo-server.js');
const CALLS = positiveInt(process.env['BENCH_REPLICA_CALLS'], 2000);
const WARMUP = positiveInt(process.env['BENCH_REPLICA_WARMUP'], 1000);
const CONCURRENCY = positiveInt(process.env['BENCH_REPLICA_CONCURRENCY'], 16);
const TOKEN = 'bench-replica-token-0123456789';
const SEAL_KEY = randomBytes(32).toString('hex');
const CLOCK_TICKS_PER_SECOND = 100;

function positiveInt(value: string | undefined, fallback: number): number {
  const parsed = Number(value);
  return Number.isInteger(parsed) && parsed > 0 ? parsed : fallback;
}

function replicaConfig(id: string, redisUrl: string, prefix: string, port: number, balancerPort: number): string {
  return [
    'version: 1',
    `stateDir: state-${id}`,
    'listeners:',
    `  http: { host: 127.0.0.1, port: ${port}, allowedHosts: ["127.0.0.1:${balancerPort}", "127.0.0.1:${port}"] }`,
    'auth:',
    '  apiTokens:',
    `    - { agent: bench, sha256: ${createHash('sha256').update(TOKEN).digest('hex')} }`,
    'policy: { enforce: false }',
    'sandbox: { backend: none }',
    'audit: { mode: async }',
    'cluster:',
    `  replicaId: ${id}`,
    `  keyPrefix: ${JSON.stringify(`${prefix}cluster:`)}`,
    `  sealKey: ${SEAL_KEY}`,
    'quotas:',
    `  store: { kind: redis, url: ${JSON.stringify(redisUrl)}, keyPrefix: ${JSON.stringify(`${prefix}limits:`)} }`,
    // A limit no run reaches: every call still costs the shared store its Redis round trip, as in production.
    '  rates:',
    '    - { name: per-agent, scope: agent, points: 10000000, durationMs: 60000 }',
    'servers:',
    '  echo:',
    '    transport: stdio',
    `    command: ${JSON.stringify(process.execPath)}`,
    `    args: ${JSON.stringify([echoServerJs, 'stdio'])}`,
    '    trust: unsigned',
  ].join('\n');
}

const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'replica-bench', version: '1.0.0' },
};

/** One stateless tools/call through the balancer; resolves with its latency in ms. */
function call(url: string, index: number): Promise<number> {
  const body = JSON.stringify({ jsonrpc: '2.0', id: index, method: 'tools/call', params: { name: 'echo.echo', arguments: { message: `m${index}` }, _meta: ENVELOPE } });
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      method: 'POST',
      agent,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${TOKEN}`,
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': 'tools/call',
        'mcp-name': 'echo.echo',
        'content-length': Buffer.byteLength(body),
      },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        if (res.statusCode !== 200 || !text.includes(`"text":"Echo: m${index}"`)) reject(new Error(`call ${index}: HTTP ${String(res.statusCode)} ${text.slice(0, 300)}`));
        else resolve(performance.now() - started);
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function drive(url: string, count: number, offset: number): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, count) }, async () => {
    while (next < count) {
      const index = offset + next++;
      latencies.push(await call(url, index));
    }
  }));
  return latencies;
}

/** CPU ms (user + system) of `roots` and all their descendants, from /proc. */
function treeCpuMs(roots: number[]): number {
  const children = new Map<number, number[]>();
  const ticks = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
      ticks.set(Number(entry), Number(fields[11]) + Number(fields[12]));
    } catch {
      // gone meanwhile
    }
  }
  let total = 0;
  const queue = [...roots];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    total += ticks.get(pid) ?? 0;
    queue.push(...(children.get(pid) ?? []));
  }
  return (total * 1000) / CLOCK_TICKS_PER_SECOND;
}

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? Number.NaN;
}

interface Setup {
  replicas: Replica[];
  balancer: Balancer;
  dir: string;
}

/** N replicas and their own HAProxy, warmed up. At N=1 both server lines name the one replica. */
async function startSetup(redis: RunningRedis, count: 1 | 2): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), `bastion-bench-replicas-${count}-`));
  const prefix = `bench:${randomBytes(4).toString('hex')}:`;
  const balancerPort = await freePort();
  const replicas: Replica[] = [];
  for (const id of ['a', 'b'].slice(0, count)) {
    const path = join(dir, `bastion-${id}.yaml`);
    writeFileSync(path, replicaConfig(id, redis.url, prefix, await freePort(), balancerPort));
    replicas.push(await startReplica(id, path));
  }
  const [first, second] = replicas as [Replica, Replica | undefined];
  const balancer = await startBalancer(dir, balancerPort, { a: first.address, b: (second ?? first).address }, '/mcp');
  await balancer.waitFor(['bastion-a', 'bastion-b']);
  // Warm-up, the same number of calls per replica: every pooled echo process started, the JIT warm.
  await drive(balancer.url, WARMUP * count, 0);
  return { replicas, balancer, dir };
}

async function stopSetup(setup: Setup | undefined): Promise<void> {
  if (setup === undefined) return;
  await setup.balancer.stop();
  for (const replica of setup.replicas) await stopReplica(replica);
  removeTree(setup.dir);
}

interface Totals {
  latencies: number[];
  wallMs: number;
  cpuMs: number;
  /** The replicas' CPU while no call is made (timers, Redis, GC), ms per second. */
  idleCpuPerSecond: number;
}

async function idleCpu(setup: Setup, totals: Totals): Promise<void> {
  const pids = setup.replicas.map((replica) => replica.child.pid as number);
  const before = treeCpuMs(pids);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  totals.idleCpuPerSecond = (treeCpuMs(pids) - before) / 3;
}

/** One round on a setup: CALLS / ROUNDS calls, their wall time and the replicas' CPU time. */
async function round(setup: Setup, calls: number, offset: number, totals: Totals): Promise<void> {
  const pids = setup.replicas.map((replica) => replica.child.pid as number);
  const cpuBefore = treeCpuMs(pids);
  const started = performance.now();
  totals.latencies.push(...(await drive(setup.balancer.url, calls, offset)));
  totals.wallMs += performance.now() - started;
  totals.cpuMs += treeCpuMs(pids) - cpuBefore;
}

/** tools/call records each replica of a setup wrote (async audit: read after a pause). */
function served(setup: Setup): number[] {
  return setup.replicas.map((replica) => auditRecords(join(setup.dir, `state-${replica.id}`, 'audit')).filter((record) => record.kind === 'request' && record.method === 'tools/call').length);
}

// Both setups run side by side and take turns, round by round, so that the load other work puts
// on a shared machine falls on both alike instead of on whichever variant ran while it peaked.
const ROUNDS = 4;
const redis = await startRedis();
let one: Setup | undefined;
let two: Setup | undefined;
const totals: [Totals, Totals] = [{ latencies: [], wallMs: 0, cpuMs: 0, idleCpuPerSecond: 0 }, { latencies: [], wallMs: 0, cpuMs: 0, idleCpuPerSecond: 0 }];
let spread: [number[], number[]] = [[], []];
try {
  one = await startSetup(redis, 1);
  two = await startSetup(redis, 2);
  await idleCpu(one, totals[0]);
  await idleCpu(two, totals[1]);
  const perRound = Math.ceil(CALLS / ROUNDS);
  for (let index = 0; index < ROUNDS; index += 1) {
    const offset = 2 * WARMUP + index * perRound;
    await round(one, perRound, offset, totals[0]);
    await round(two, perRound, offset, totals[1]);
  }
  await new Promise((resolve) => setTimeout(resolve, 1500));
  spread = [served(one), served(two)];
} catch (error) {
  for (const replica of [...(one?.replicas ?? []), ...(two?.replicas ?? [])]) process.stderr.write(`replica ${replica.id} (last lines):\n${replica.output.slice(-20).join('\n')}\n`);
  throw error;
} finally {
  agent.destroy();
  await stopSetup(one);
  await stopSetup(two);
  await redis.kill();
}

interface Row {
  replicas: number;
  throughput: number;
  p50: number;
  p99: number;
  cpuPerCall: number;
  idleCpuPerSecond: number;
  /** Calls each replica served (from its audit log). */
  spread: number[];
}

const rows: Row[] = totals.map((total, index) => ({
  replicas: index + 1,
  throughput: total.latencies.length / (total.wallMs / 1000),
  p50: percentile(total.latencies, 0.5),
  p99: percentile(total.latencies, 0.99),
  cpuPerCall: total.cpuMs / total.latencies.length,
  idleCpuPerSecond: total.idleCpuPerSecond,
  spread: spread[index] ?? [],
}));

process.stdout.write(`stateless 2026-07-28 tools/call through HAProxy (deploy/haproxy/haproxy.cfg) with Redis; ${CALLS} calls per variant in ${ROUNDS} alternating rounds after ${WARMUP} warm-up calls per replica, ${CONCURRENCY} in flight\n`);
process.stdout.write('replicas  calls/s  p50 ms  p99 ms  replica CPU ms/call  replica CPU idle ms/s  calls served per replica (audit log, warm-up included)\n');
for (const row of rows) {
  process.stdout.write(`${String(row.replicas).padStart(8)}  ${row.throughput.toFixed(0).padStart(7)}  ${row.p50.toFixed(1).padStart(6)}  ${row.p99.toFixed(1).padStart(6)}  ${row.cpuPerCall.toFixed(2).padStart(19)}  ${row.idleCpuPerSecond.toFixed(1).padStart(21)}  ${row.spread.join(' / ')}\n`);
}
const [single, pair] = rows as [Row, Row];
process.stdout.write(`N=2 vs N=1: throughput ${(pair.throughput / single.throughput).toFixed(2)}x, p50 ${(pair.p50 / single.p50).toFixed(2)}x, p99 ${(pair.p99 / single.p99).toFixed(2)}x, replica CPU per call ${(pair.cpuPerCall / single.cpuPerCall).toFixed(2)}x\n`);
