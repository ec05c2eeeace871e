// Sessions at scale: many concurrent Streamable HTTP sessions from several agents against the
// three reference servers (everything, filesystem, memory, as in the demo config), with the
// servers pooled per agent (isolation: agent, the default) and, as the baseline in the same run,
// one process set per session (isolation: session).
//
//   npm run build && node dist/bench/sessions.bench.js
//   BENCH_SESSIONS=1000 node dist/bench/sessions.bench.js        more pooled sessions
//   BENCH_BASELINE_SESSIONS=12 ...                                more baseline sessions (each spawns 3 servers)
//   BENCH_SANDBOX=bwrap ...                                       each server in bubblewrap, as the demo (default: none;
//                                                                 on the development VM bwrap's prlimit NPROC step fails with EPERM)
//   BENCH_CPU_PROF=DIR ...                                        the gateways run with --cpu-prof, profiles in DIR
//
// Reported per variant: RSS of the whole process tree (the gateway and every descendant, summed
// from /proc), processes in that tree, session-ready latency (initialize, initialized, and the
// first tools/list answered) at p50 and p99, both for the sessions opened 20 at a time (queueing
// on two cores included) and for 50 more opened one at a time while all of them stay open, and
// CPU time per session-ready: the gateway's own
// (user + system, from /proc/PID/stat, across the whole opening phase divided by the sessions)
// and the tree's (the upstreams' share included). Wall time is noise on a shared machine; CPU
// time is what a session costs. Added RSS per session is the slope between the warm tree (one
// session per agent already open) and the tree with every session open; 1,000 sessions are
// projected from that slope, and their CPU from the CPU per session.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeTree } from '../test/helpers/tmp.js';

const here = dirname(fileURLToPath(import.meta.url));
const bastionJs = process.env['BENCH_BASTION'] ?? join(resolve(here, '..', '..'), 'dist', 'src', 'cli', 'bastion.js');
const require = createRequire(import.meta.url);
const AGENTS = 10;
const SESSIONS = positiveInt(process.env['BENCH_SESSIONS'], 200);
const BASELINE_SESSIONS = positiveInt(process.env['BENCH_BASELINE_SESSIONS'], 8);
const OPEN_CONCURRENCY = positiveInt(process.env['BENCH_OPEN_CONCURRENCY'], 20);
const PROBE_SESSIONS = 50;
const SANDBOX = process.env['BENCH_SANDBOX'] ?? 'none';
const CPU_PROF = process.env['BENCH_CPU_PROF'];
const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux (getconf CLK_TCK)

function positiveInt(value: string | undefined, fallback: number): number {
  const parsed = Number(value);
  return Number.isInteger(parsed) && parsed > 0 ? parsed : fallback;
}

function serverScript(name: string): string {
  return join(require.resolve(`@modelcontextprotocol/server-${name}/package.json`).replace(/package\.json$/, ''), 'dist', 'index.js');
}

const tokens = Array.from({ length: AGENTS }, (_, index) => `bench-session-token-${index}`);

function configYaml(isolation: 'agent' | 'session', dataDir: string): string {
  const server = (name: string, args: string[]): string => `  ${name}:
    transport: stdio
    command: ${JSON.stringify(process.execPath)}
    args: ${JSON.stringify([serverScript(name), ...args])}
    trust: unsigned
    isolation: ${isolation}
    env: { MEMORY_FILE_PATH: ${JSON.stringify(join(dataDir, `${name}.jsonl`))} }
`;
  return `version: 1
stateDir: state
listeners:
  http: { host: 127.0.0.1, port: 0, maxSessions: 5000, maxSessionsPerAgent: 5000, maxConnections: 5000, maxConnectionsPerAddress: 5000 }
auth:
  apiTokens:
${tokens.map((token, index) => `    - { agent: agent${index}, sha256: ${createHash('sha256').update(token).digest('hex')} }`).join('\n')}
policy: { enforce: false }
sandbox: { backend: ${SANDBOX} }
audit: { mode: async }
upstream: { startTimeoutMs: 120000 }
servers:
${server('everything', ['stdio'])}${server('filesystem', [dataDir])}${server('memory', [])}`;
}

/** The gateway's pid and every descendant's, from /proc. */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // The process ended while we looked.
    }
  }
  const tree: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/** CPU time (user + system) a process has used so far, in ms; 0 when it is gone. */
function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat (utime, stime); the slice starts at field 3.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** CPU time of the gateway and of its whole tree, in ms. Children that ended are not counted: a warm pool has none. */
function cpuOf(root: number): { gateway: number; tree: number } {
  return { gateway: cpuMs(root), tree: processTree(root).reduce((sum, pid) => sum + cpuMs(pid), 0) };
}

function treeRss(root: number): { rssMb: number; processes: number } {
  let kb = 0;
  const tree = processTree(root);
  for (const pid of tree) {
    try {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      kb += Number(match?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return { rssMb: kb / 1024, processes: tree.length };
}

interface Gateway {
  child: ChildProcess;
  url: string;
  dir: string;
  log(): string;
}

async function startGateway(isolation: 'agent' | 'session'): Promise<Gateway> {
  const dir = mkdtempSync(join(tmpdir(), `bastion-bench-sessions-${isolation}-`));
  mkdirSync(join(dir, 'data'));
  writeFileSync(join(dir, 'bastion.yaml'), configYaml(isolation, join(dir, 'data')));
  const profile = CPU_PROF === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', resolve(CPU_PROF), '--cpu-prof-name', `sessions-${isolation}-${Date.now()}.cpuprofile`];
  const child = spawn(process.execPath, [...profile, bastionJs, 'serve', '--config', join(dir, 'bastion.yaml')], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const url = await new Promise<string>((done, fail) => {
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      const found = /"url":"(http:[^"]+)"/.exec(stderr)?.[1];
      if (found !== undefined) done(found);
    });
    child.once('exit', (code) => fail(new Error(`the gateway exited (${String(code)}): ${stderr.slice(-2000)}`)));
  });
  child.stderr?.removeAllListeners('data');
  // The last lines of the gateway's log, to show when a run fails.
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-8000);
  });
  return { child, url, dir, log: () => stderr };
}

async function stopGateway(gateway: Gateway): Promise<void> {
  const exited = new Promise((done) => gateway.child.once('exit', done));
  gateway.child.kill('SIGTERM');
  await exited;
  removeTree(gateway.dir);
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

interface Answer {
  status: number;
  sessionId: string | undefined;
  body: Record<string, unknown> | undefined;
}

function post(url: string, token: string, message: unknown, sessionId?: string): Promise<Answer> {
  const body = JSON.stringify(message);
  return new Promise((done, fail) => {
    const req = httpRequest(url, {
      method: 'POST',
      agent,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${token}`,
        'content-length': Buffer.byteLength(body),
        ...(sessionId === undefined ? {} : { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' }),
      },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        // JSON, or an SSE stream whose last data line is the answer.
        const json = text.startsWith('{') ? text : text.split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)).pop();
        const header = res.headers['mcp-session-id'];
        done({ status: res.statusCode ?? 0, sessionId: typeof header === 'string' ? header : undefined, body: json === undefined || json === '' ? undefined : (JSON.parse(json) as Record<string, unknown>) });
      });
    });
    req.on('error', fail);
    req.end(body);
  });
}

/** Opens one session and lists its tools; resolves with the session-ready time in ms. */
async function openSession(url: string, token: string): Promise<number> {
  const started = performance.now();
  const init = await post(url, token, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } });
  if (init.sessionId === undefined || init.body?.['result'] === undefined) throw new Error(`initialize failed: ${init.status} ${JSON.stringify(init.body)}`);
  await post(url, token, { jsonrpc: '2.0', method: 'notifications/initialized' }, init.sessionId);
  const list = await post(url, token, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, init.sessionId);
  const tools = (list.body?.['result'] as { tools?: unknown[] } | undefined)?.tools;
  if (!Array.isArray(tools) || tools.length < 3) throw new Error(`tools/list answered ${JSON.stringify(list.body).slice(0, 300)}`);
  return performance.now() - started;
}

async function openMany(url: string, count: number, concurrency: number, offset = 0): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      const index = next++;
      latencies.push(await openSession(url, tokens[(index + offset) % AGENTS] as string));
    }
  }));
  return latencies;
}

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? Number.NaN;
}

interface Row {
  variant: string;
  sessions: number;
  warm: { rssMb: number; processes: number };
  loaded: { rssMb: number; processes: number };
  p50: number;
  p99: number;
  /** CPU ms per session-ready: the gateway process's, and the whole tree's. */
  cpuGateway: number;
  cpuTree: number;
  /** Session-ready of sessions opened one at a time with all the others still open (latency, not queueing). */
  probe: { p50: number; p99: number };
}

async function measure(isolation: 'agent' | 'session', sessions: number, concurrency: number): Promise<Row> {
  const gateway = await startGateway(isolation);
  const pid = gateway.child.pid as number;
  try {
    // Warm: one session per agent, so every pool has its processes (the baseline has them too: 10 sessions' worth).
    // One at a time: a loaded machine booting thirty servers at once would time their starts out.
    await openMany(gateway.url, isolation === 'agent' ? AGENTS : 1, 1);
    const warm = treeRss(pid);
    const cpuBefore = cpuOf(pid);
    const latencies = await openMany(gateway.url, sessions, concurrency, 1);
    const cpuAfter = cpuOf(pid);
    const loaded = treeRss(pid);
    // With every session still open, a few more one at a time: what one client waits when nobody queues before it.
    const probe = await openMany(gateway.url, isolation === 'agent' ? PROBE_SESSIONS : 2, 1, 3);
    return {
      variant: `isolation: ${isolation}`, sessions, warm, loaded, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99),
      cpuGateway: (cpuAfter.gateway - cpuBefore.gateway) / sessions, cpuTree: (cpuAfter.tree - cpuBefore.tree) / sessions,
      probe: { p50: percentile(probe, 0.5), p99: percentile(probe, 0.99) },
    };
  } catch (error) {
    process.stderr.write(`gateway log (last lines):\n${gateway.log()}\n`);
    throw error;
  } finally {
    await stopGateway(gateway);
  }
}

const rows: Row[] = [];
rows.push(await measure('agent', SESSIONS, OPEN_CONCURRENCY));
rows.push(await measure('session', BASELINE_SESSIONS, 2));
agent.destroy();

process.stdout.write(`${SESSIONS} pooled sessions from ${AGENTS} agents (concurrency ${OPEN_CONCURRENCY}); baseline ${BASELINE_SESSIONS} sessions (concurrency 2); sandbox ${SANDBOX}\n`);
process.stdout.write(`ready p50/p99: sessions opened ${OPEN_CONCURRENCY} at a time (queueing included); one-by-one: ${PROBE_SESSIONS} sessions opened one at a time after them, all still open\n`);
process.stdout.write('variant              sessions  warm RSS MB  loaded RSS MB  MB/session  procs warm->loaded  ready p50 ms  ready p99 ms  one-by-one p50/p99 ms  CPU ms/session gw  CPU ms/session tree  projected 1000 sessions: RSS, CPU s\n');
for (const row of rows) {
  const slope = (row.loaded.rssMb - row.warm.rssMb) / row.sessions;
  const projected = row.warm.rssMb + slope * 1000;
  process.stdout.write(
    `${row.variant.padEnd(20)} ${String(row.sessions).padStart(8)}  ${row.warm.rssMb.toFixed(0).padStart(11)}  ${row.loaded.rssMb.toFixed(0).padStart(13)}  ${slope.toFixed(2).padStart(10)}  ${`${row.warm.processes}->${row.loaded.processes}`.padStart(18)}  ${row.p50.toFixed(1).padStart(12)}  ${row.p99.toFixed(1).padStart(12)}  ${`${row.probe.p50.toFixed(1)}/${row.probe.p99.toFixed(1)}`.padStart(21)}  ${row.cpuGateway.toFixed(2).padStart(17)}  ${row.cpuTree.toFixed(2).padStart(19)}  ${(projected / 1024).toFixed(1).padStart(10)} GB, ${(row.cpuTree).toFixed(1).padStart(6)} s\n`,
  );
}
const [pooled, baseline] = rows as [Row, Row];
const pooledSlope = (pooled.loaded.rssMb - pooled.warm.rssMb) / pooled.sessions;
const baselineSlope = (baseline.loaded.rssMb - baseline.warm.rssMb) / baseline.sessions;
process.stdout.write(`added RSS per session: pooled ${pooledSlope.toFixed(2)} MB vs per-session ${baselineSlope.toFixed(1)} MB${pooledSlope > 0.05 ? ` (ratio ${(baselineSlope / pooledSlope).toFixed(0)}x)` : ' (pooled: within the noise of RSS sampling)'}\n`);
process.stdout.write(`CPU per session-ready (tree): pooled ${pooled.cpuTree.toFixed(2)} ms vs per-session ${baseline.cpuTree.toFixed(1)} ms (ratio ${(baseline.cpuTree / Math.max(pooled.cpuTree, 0.01)).toFixed(0)}x); gateway only: ${pooled.cpuGateway.toFixed(2)} ms vs ${baseline.cpuGateway.toFixed(1)} ms; session-ready p50 ratio ${(baseline.p50 / pooled.p50).toFixed(0)}x, one by one ${(baseline.probe.p50 / pooled.probe.p50).toFixed(0)}x\n`);
