// What observability costs a call: tools/call throughput through Bastion (Streamable HTTP, 16
// calls in flight, the bench echo server over stdio, durable audit) with metrics on, tracing on,
// and each audit sink on, as ratios to everything off, all measured in the same run. Every
// variant's gateway runs in this process and is measured in interleaved rounds (the order rotates
// each round); the table gives each variant's median. The receivers are node:http servers in
// this process (no collector, Loki or S3 service can be installed here) except s3, which is
// s3rver from npm, and syslog, which is a real rsyslogd when it is installed.
//
//   npm run build && nice node dist/bench/observe.bench.js
//   OBSERVE_BENCH_CALLS=1000 OBSERVE_BENCH_ROUNDS=3 (the defaults)
//   OBSERVE_BENCH_ONLY=otlp,loki    only the variants whose label has one of these (and all off)
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
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

const CALLS = Number(process.env['OBSERVE_BENCH_CALLS'] ?? 1000);
const ROUNDS = Number(process.env['OBSERVE_BENCH_ROUNDS'] ?? 3);
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
  rates: number[];
}

async function start(variant: Variant, root: string): Promise<void> {
  const base = join(root, variant.label.replace(/[^a-z0-9]+/g, '-'));
  mkdirSync(join(base, 'state'), { recursive: true });
  const yaml = configYaml(stdioServer('echo', echoServerJs, ['stdio']), variant.extra, variant.listeners);
  writeFileSync(join(base, 'bastion.yaml'), yaml);
  variant.bastion = await createBastion({ loaded: loadConfigText(yaml, join(base, 'bastion.yaml'), base), logger: silentLogger(), version: '0.0.0-bench' });
  variant.url = await variant.bastion.gateway.startHttp();
}

/** CALLS tools/call requests, IN_FLIGHT at a time, on one session; every answer is checked. */
async function measure(variant: Variant): Promise<void> {
  const client = await httpClient(variant.url ?? '');
  try {
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < CALLS) {
          const index = next;
          next += 1;
          const result = (await client.callTool({ name: 'echo.echo', arguments: { message: `m${index}` } })) as { content?: Array<{ text?: string }> };
          if (result.content?.[0]?.text !== `Echo: m${index}`) throw new Error(`${variant.label}: wrong answer ${JSON.stringify(result)}`);
        }
      }),
    );
    variant.rates.push((CALLS / (performance.now() - started)) * 1000);
  } finally {
    await client.close();
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
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
  { label: 'all off', extra: '', rates: [] },
  { label: 'metrics on', extra: '', listeners: 'listeners:\n  http:\n    host: 127.0.0.1\n    port: 0\n  admin: { port: 0, metrics: { public: true } }', rates: [] },
  { label: 'tracing on', extra: `observability:\n  tracing: { enabled: true, endpoint: '${traces.url}/v1/traces', guardSpans: true }\n`, rates: [] },
  { label: 'webhook sink', extra: sink(`{ name: hook, type: webhook, url: '${webhook.url}/', secret: { fromEnv: OBSERVE_BENCH_KEY } }`), rates: [] },
  { label: 'otlp sink', extra: sink(`{ name: otel, type: otlp, url: '${otlp.url}/v1/logs' }`), rates: [] },
  { label: 'loki sink', extra: sink(`{ name: loki, type: loki, url: '${loki.url}/loki/api/v1/push' }`), rates: [] },
  { label: 's3 sink (s3rver)', extra: sink(`{ name: archive, type: s3, bucket: bench, endpoint: '${s3Endpoint}', forcePathStyle: true, objectLock: { mode: GOVERNANCE, retainDays: 1 } }`), rates: [] },
];
if (rsyslog !== undefined) variants.push({ label: 'syslog sink (rsyslogd)', extra: sink(`{ name: siem, type: syslog, host: 127.0.0.1, port: ${rsyslog.port} }`), rates: [] });
const only = (process.env['OBSERVE_BENCH_ONLY'] ?? '').split(',').filter((word) => word !== '');
if (only.length > 0) variants.splice(0, variants.length, ...variants.filter((variant, index) => index === 0 || only.some((word) => variant.label.includes(word))));
try {
  for (const variant of variants) await start(variant, root);
  // A warm-up call burst per variant, not counted.
  for (const variant of variants) {
    await measure(variant);
    variant.rates.length = 0;
  }
  for (let round = 0; round < ROUNDS; round += 1) {
    for (let index = 0; index < variants.length; index += 1) await measure(variants[(index + round) % variants.length] as Variant);
  }
  const off = median(variants[0]?.rates ?? []);
  process.stdout.write(`tools/call over Streamable HTTP, ${IN_FLIGHT} in flight, ${CALLS} calls x ${ROUNDS} rounds per variant (median)\n`);
  for (const variant of variants) process.stdout.write(`  ${variant.label.padEnd(24)} ${median(variant.rates).toFixed(0).padStart(6)} calls/s   ratio to all off ${(median(variant.rates) / off).toFixed(2)}\n`);
  if (rsyslog === undefined) process.stdout.write('  (rsyslogd not installed: syslog not measured)\n');
} finally {
  for (const variant of variants) await variant.bastion?.close();
  await rsyslog?.stop();
  for (const receiver of receivers) receiver.server.close();
  s3Server.close();
  removeTree(root);
}
