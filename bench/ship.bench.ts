// Audit shipping: how fast each sink type drains a log (records/s), and what a running sink costs
// the writer: durable appends from 64 concurrent callers with sinks on, as a ratio to sinks off,
// in the same run. Syslog goes to a real rsyslogd when it is installed; s3 to s3rver from npm (a
// filesystem-backed S3 API) in this process; the webhook, OTLP logs and Loki receivers are
// node:http servers in this process (they check nothing, so the figure is the sender's).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { AuditLog, resolveAuditConfig } from '../src/audit/index.js';
import { startShipping, type SinkConfig } from '../src/audit/ship/index.js';
import { Rsyslog } from '../test/audit/ship/rsyslog.js';
import { removeTree } from '../test/helpers/tmp.js';
import { runWorkers } from './fixtures/workers.js';

const RECORDS = Number(process.env['SHIP_BENCH_RECORDS'] ?? 20_000);
const WRITERS = 64;
const quiet = { warn: () => undefined, info: () => undefined };

async function appendAll(log: AuditLog): Promise<number> {
  const started = performance.now();
  await runWorkers(WRITERS, RECORDS, (index) =>
    log.append({ kind: 'request', method: 'tools/call', agent_id: `agent-${index % 8}`, server: 'files', tool: 'read_file', decision: 'allow', input: { path: `/srv/data/report-${index}.csv` } }),
  );
  return (RECORDS / (performance.now() - started)) * 1000;
}

async function caughtUp(stats: () => Array<{ lagRecords: number }>): Promise<void> {
  while (stats().some((sink) => sink.lagRecords > 0)) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** Appends with the sinks running (ratio to none), then measures how fast they drain a full log. */
async function run(label: string, sinks: SinkConfig[]): Promise<{ appendsPerSecond: number; drainPerSecond?: number }> {
  const state = mkdtempSync(join(tmpdir(), 'bastion-ship-bench-'));
  try {
    const config = resolveAuditConfig({ sinks }, state);
    const log = await AuditLog.open(config);
    const live = sinks.length === 0 ? undefined : startShipping({ sinks, audit: log, cursorDir: join(state, 'live-cursors'), logger: quiet, pollMs: 50 });
    const appendsPerSecond = await appendAll(log);
    if (live !== undefined) await caughtUp(live.stats);
    await live?.stop();
    let drainPerSecond: number | undefined;
    if (sinks.length > 0) {
      const started = performance.now();
      const drain = startShipping({ sinks, audit: log, cursorDir: join(state, 'drain-cursors'), logger: quiet, pollMs: 50 });
      await caughtUp(drain.stats);
      drainPerSecond = (log.size / (performance.now() - started)) * 1000;
      await drain.stop();
    }
    await log.close();
    process.stdout.write(`${label.padEnd(28)} appends ${appendsPerSecond.toFixed(0).padStart(7)}/s${drainPerSecond === undefined ? '' : `   drain ${drainPerSecond.toFixed(0).padStart(7)} records/s`}\n`);
    return { appendsPerSecond, drainPerSecond };
  } finally {
    removeTree(state);
  }
}

const receiver = createServer((request, response) => {
  request.resume();
  request.on('end', () => response.writeHead(204).end());
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`;
process.env['SHIP_BENCH_KEY'] = 'bench-key-0123456789abcdef0123456789';
const webhook: SinkConfig = { name: 'hook', type: 'webhook', format: 'bastion', url: hookUrl, secret: { fromEnv: 'SHIP_BENCH_KEY' }, timeoutSeconds: 10, batchRecords: 500, retryInitialMs: 100, retryMaxMs: 1000 };

const otlpUrl = `${hookUrl}v1/logs`;
const lokiUrl = `${hookUrl}loki/api/v1/push`;
const common = { format: 'bastion', batchRecords: 500, retryInitialMs: 100, retryMaxMs: 1000, timeoutSeconds: 10 } as const;
const otlp: SinkConfig = { ...common, name: 'otel', type: 'otlp', url: otlpUrl, headers: {} };
const loki: SinkConfig = { ...common, name: 'loki', type: 'loki', url: lokiUrl };
const S3rver = createRequire(import.meta.url)('s3rver') as new (options: { directory: string; silent: boolean }) => { callback(): (request: unknown, response: unknown) => void };
const s3Dir = mkdtempSync(join(tmpdir(), 'bastion-ship-bench-s3-'));
const s3Server = createServer(new S3rver({ directory: s3Dir, silent: true }).callback());
await new Promise<void>((resolve) => s3Server.listen(0, '127.0.0.1', resolve));
const s3Endpoint = `http://127.0.0.1:${(s3Server.address() as AddressInfo).port}`;
process.env['AWS_ACCESS_KEY_ID'] = 'S3RVER';
process.env['AWS_SECRET_ACCESS_KEY'] = 'S3RVER';
const s3Client = new S3Client({ region: 'us-east-1', endpoint: s3Endpoint, forcePathStyle: true });
await s3Client.send(new CreateBucketCommand({ Bucket: 'bench' }));
s3Client.destroy();
const s3: SinkConfig = { ...common, name: 'archive', type: 's3', bucket: 'bench', prefix: '', region: 'us-east-1', endpoint: s3Endpoint, forcePathStyle: true, objectLock: { mode: 'GOVERNANCE', retainDays: 1 } };

let rsyslog: Rsyslog | undefined;
let rsyslogDir: string | undefined;
if (spawnSync('rsyslogd', ['-v']).status === 0) {
  rsyslogDir = mkdtempSync(join(tmpdir(), 'bastion-ship-bench-rsyslog-'));
  mkdirSync(rsyslogDir, { recursive: true });
  rsyslog = new Rsyslog(rsyslogDir);
  await rsyslog.start();
}
try {
  process.stdout.write(`${RECORDS} durable appends from ${WRITERS} callers per run\n`);
  // A warm-up run first; the baseline is the mean of a run before and one after the sinks.
  await run('no sink (warm-up)', []);
  const before = await run('no sink', []);
  const hook = await run('webhook (bastion format)', [webhook]);
  const ocsf = await run('webhook (ocsf format)', [{ ...webhook, format: 'ocsf' }]);
  const otlpResult = await run('otlp logs (protobuf)', [otlp]);
  const lokiResult = await run('loki push (json)', [loki]);
  const s3Result = await run('s3 objects (s3rver)', [s3]);
  const syslog = rsyslog === undefined ? undefined : await run('syslog TCP to rsyslogd', [{ name: 'siem', type: 'syslog', format: 'bastion', host: '127.0.0.1', port: rsyslog.port, facility: 10, appName: 'bastion', confirmEveryRecords: 5000, batchRecords: 500, retryInitialMs: 100, retryMaxMs: 1000 }]);
  const after = await run('no sink (again)', []);
  const off = { appendsPerSecond: (before.appendsPerSecond + after.appendsPerSecond) / 2 };
  process.stdout.write('\nappend throughput with the sink running, as a ratio to no sink:\n');
  for (const [label, result] of [['webhook', hook], ['webhook ocsf', ocsf], ['otlp', otlpResult], ['loki', lokiResult], ['s3', s3Result], ['syslog', syslog]] as const) if (result !== undefined) process.stdout.write(`  ${label.padEnd(14)} ${(result.appendsPerSecond / off.appendsPerSecond).toFixed(2)}\n`);
  if (syslog === undefined) process.stdout.write('  (rsyslogd not installed: syslog not measured)\n');
} finally {
  await rsyslog?.stop();
  if (rsyslogDir !== undefined) removeTree(rsyslogDir);
  receiver.close();
  s3Server.close();
  removeTree(s3Dir);
}
