// What observability costs a call: tools/call throughput through Bastion (Streamable HTTP, 16
// calls in flight, the bench echo server over stdio, durable audit) with metrics on, tracing on,
// and each audit sink on, as ratios to everything off, all measured in the same run. Every
// variant's gateway runs in this process and is measured in interleaved rounds (the order rotates
// each round), so a change in the machine's load falls on every variant alike. Per round it
// takes calls/s and the CPU time this process spent per call (user + system, from the round's
// first call until the variant's sinks have shipped everything: shipping is part of the cost).
// Ratios are taken within a round (variant / all off of the same round) and the table gives
// their median over the rounds, with the spread. The receivers are node:http servers in this
// process (no collector, Loki or S3 service can be installed here; their CPU is in the figure)
// except s3, which is s3rver from npm, and syslog, which is a real rsyslogd when installed.
// On a shared machine calls/s follows the load; CPU per call moves much less.
//
//   npm run build && nice -n 10 node dist/bench/observe.bench.js
//   OBSERVE_BENCH_CALLS=500 OBSERVE_BENCH_ROUNDS=7 (the defaults; run.ts passes --expose-gc)
//   OBSERVE_BENCH_ONLY=otlp,loki    only the variants whose label has one of these (and all off)
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { createBastion, type Bastion } from '../src/app/index.js';
import { loadConfigText } from '../src/config/index.js';
import { silentLogger } from '../src/observability/index.js';
import { configYaml, httpClient, stdioServer } from '../test/helpers/gateway.js';
import { Rsyslog } from '../test/audit/ship/rsyslog.js';
import { removeTree } from '../test/helpers/tmp.js';
import { runWorkers } from './fixtures/workers.js';

const CALLS = Number(process.env['OBSERVE_BENCH_CALLS'] ?? 500);
const ROUNDS = Number(process.env['OBSERVE_BENCH_ROUNDS'] ?? 7);
const IN_FLIGHT = 16;
const here = dirname(fileURLToPath(import.meta.url));
const echoServerJs = join(here, 'fixtures', 'gateway-echo-server.js');
const require = createRequire(import.meta.url);
type Handler = (request: IncomingMessage, response: ServerResponse) => void;
const S3rver = require('s3rver') as new (options: { directory: string; silent: boolean }) => { callback(): Handler };

/** A receiver that reads each request and answers 2xx, as a collector that keeps up would. */
async function sinkReceiver(status: number): Promise<{ url: string; server: Server }> {
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => response.writeHead(status).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

interface Variant {
  label: string;
  extra: string;
  listeners?: string;
  bastion?: Bastion;
  url?: string;
  /** Per round: calls/s, and CPU microseconds of this process per call. */
  rates: number[];
  cpuPerCall: number[];
}

async function start(variant: Variant, root: string): Promise<void> {
  const base = join(root, variant.label.replace(/[^a-z0-9]+/g, '-'));
  mkdirSync(join(base, 'state'), { recursive: true });
  const yaml = configYaml(stdioServer('echo', echoServerJs, ['stdio']), variant.extra, variant.listeners);
  writeFileSync(join(base, 'bastion.yaml'), yaml);
  variant.bastion = await createBastion({ loaded: loadConfigText(yaml, join(base, 'bastion.yaml'), base), logger: silentLogger(), version: '0.0.0-bench' });
  variant.url = await variant.bastion.gateway.startHttp();
}

/** Until the variant's sinks hold nothing unshipped (so the next round does not pay for this one's shipping). */
async function drained(variant: Variant): Promise<void> {
  const deadline = Date.now() + 60_000;
  while ((variant.bastion?.shipping?.stats() ?? []).some((sink) => sink.lagRecords > 0)) {
    if (Date.now() > deadline) throw new Error(`${variant.label}: the sinks did not catch up within 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** CALLS tools/call requests, IN_FLIGHT at a time, on one session; every answer is checked. */
async function measure(variant: Variant): Promise<void> {
  const client = await httpClient(variant.url ?? '');
  try {
    // A collection before the round (with --expose-gc), so a round does not pay for the garbage of the one before.
    (globalThis as { gc?: () => void }).gc?.();
    const cpu = process.cpuUsage();
    const started = performance.now();
    await runWorkers(IN_FLIGHT, CALLS, async (index) => {
      const result = (await client.callTool({ name: 'echo.echo', arguments: { message: `m${index}` } })) as { content?: Array<{ text?: string }> };
      if (result.content?.[0]?.text !== `Echo: m${index}`) throw new Error(`${variant.label}: wrong answer ${JSON.stringify(result)}`);
    });
    variant.rates.push((CALLS / (performance.now() - started)) * 1000);
    await drained(variant);
    const used = process.cpuUsage(cpu);
    variant.cpuPerCall.push((used.user + used.system) / CALLS);
  } finally {
    await client.close();
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** Per round, the variant's figure over all off's of the same round. */
function pairedRatios(values: readonly number[], baseline: readonly number[]): number[] {
  return values.map((value, round) => value / (baseline[round] ?? Number.NaN));
}

function spread(values: readonly number[]): string {
  return `${Math.min(...values).toFixed(2)}-${Math.max(...values).toFixed(2)}`;
}

const root = mkdtempSync(join(tmpdir(), 'bastion-observe-bench-'));
const receivers = await Promise.all([sinkReceiver(200), sinkReceiver(204), sinkReceiver(204), sinkReceiver(200)]);
const [traces, webhook, loki, otlp] = receivers as [Awaited<ReturnType<typeof sinkReceiver>>, Awaited<ReturnType<typeof sinkReceiver>>, Awaited<ReturnType<typeof sinkReceiver>>, Awaited<ReturnType<typeof sinkReceiver>>];
const s3Server = createServer(new S3rver({ directory: join(root, 's3'), silent: true }).callback());
await new Promise<void>((resolve) => s3Server.listen(0, '127.0.0.1', resolve));
const s3Endpoint = `http://127.0.0.1:${(s3Server.address() as AddressInfo).port}`;
process.env['AWS_ACCESS_KEY_ID'] = 'S3RVER';
process.env['AWS_SECRET_ACCESS_KEY'] = 'S3RVER';
const s3 = new S3Client({ region: 'us-east-1', endpoint: s3Endpoint, forcePathStyle: true });
await s3.send(new CreateBucketCommand({ Bucket: 'bench' }));
s3.destroy();
process.env['OBSERVE_BENCH_KEY'] = 'bench-key-0123456789abcdef0123456789';
let rsyslog: Rsyslog | undefined;
if (spawnSync('rsyslogd', ['-v']).status === 0) {
  rsyslog = new Rsyslog(join(root, 'rsyslog'));
  mkdirSync(join(root, 'rsyslog'), { recursive: true });
  await rsyslog.start();
}
const sink = (yaml: string): string => `audit:\n  sinks:\n    - ${yaml}\n`;
const variants: Variant[] = [
  { label: 'all off', extra: '', rates: [], cpuPerCall: [] },
  { label: 'metrics on', extra: '', listeners: 'listeners:\n  http:\n    host: 127.0.0.1\n    port: 0\n  admin: { port: 0, metrics: { public: true } }', rates: [], cpuPerCall: [] },
  { label: 'tracing on', extra: `observability:\n  tracing: { enabled: true, endpoint: '${traces.url}/v1/traces', guardSpans: true }\n`, rates: [], cpuPerCall: [] },
  { label: 'webhook sink', extra: sink(`{ name: hook, type: webhook, url: '${webhook.url}/', secret: { fromEnv: OBSERVE_BENCH_KEY } }`), rates: [], cpuPerCall: [] },
  { label: 'otlp sink', extra: sink(`{ name: otel, type: otlp, url: '${otlp.url}/v1/logs' }`), rates: [], cpuPerCall: [] },
  { label: 'loki sink', extra: sink(`{ name: loki, type: loki, url: '${loki.url}/loki/api/v1/push' }`), rates: [], cpuPerCall: [] },
  { label: 's3 sink (s3rver)', extra: sink(`{ name: archive, type: s3, bucket: bench, endpoint: '${s3Endpoint}', forcePathStyle: true, objectLock: { mode: GOVERNANCE, retainDays: 1 } }`), rates: [], cpuPerCall: [] },
];
if (rsyslog !== undefined) variants.push({ label: 'syslog sink (rsyslogd)', extra: sink(`{ name: siem, type: syslog, host: 127.0.0.1, port: ${rsyslog.port} }`), rates: [], cpuPerCall: [] });
const only = (process.env['OBSERVE_BENCH_ONLY'] ?? '').split(',').filter((word) => word !== '');
if (only.length > 0) variants.splice(0, variants.length, ...variants.filter((variant, index) => index === 0 || only.some((word) => variant.label.includes(word))));
try {
  for (const variant of variants) await start(variant, root);
  // A warm-up call burst per variant, not counted.
  for (const variant of variants) {
    await measure(variant);
    variant.rates.length = 0;
    variant.cpuPerCall.length = 0;
  }
  for (let round = 0; round < ROUNDS; round += 1) {
    for (let index = 0; index < variants.length; index += 1) await measure(variants[(index + round) % variants.length] as Variant);
  }
  const baseline = variants[0] as Variant;
  process.stdout.write(`tools/call over Streamable HTTP, ${IN_FLIGHT} in flight, ${CALLS} calls x ${ROUNDS} interleaved rounds per variant; medians, ratios paired per round (min-max over rounds)\n`);
  process.stdout.write(`  ${'variant'.padEnd(24)} ${'calls/s'.padStart(7)}  ${'ratio'.padStart(5)} ${'(spread)'.padEnd(11)}  ${'CPU us/call'.padStart(11)}  ${'ratio'.padStart(5)} (spread)\n`);
  for (const variant of variants) {
    const rate = pairedRatios(variant.rates, baseline.rates);
    const cpu = pairedRatios(variant.cpuPerCall, baseline.cpuPerCall);
    process.stdout.write(`  ${variant.label.padEnd(24)} ${median(variant.rates).toFixed(0).padStart(7)}  ${median(rate).toFixed(2).padStart(5)} ${`(${spread(rate)})`.padEnd(11)}  ${median(variant.cpuPerCall).toFixed(0).padStart(11)}  ${median(cpu).toFixed(2).padStart(5)} (${spread(cpu)})\n`);
  }
  process.stdout.write(`  load average at the end: ${loadavg().map((value) => value.toFixed(1)).join(' ')} on ${availableParallelism()} CPUs\n`);
  if (rsyslog === undefined) process.stdout.write('  (rsyslogd not installed: syslog not measured)\n');
} finally {
  for (const variant of variants) await variant.bastion?.close();
  await rsyslog?.stop();
  for (const receiver of receivers) receiver.server.close();
  s3Server.close();
  removeTree(root);
}
