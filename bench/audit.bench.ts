// Audit log throughput: durable group-commit appends from 64 concurrent writers, and full
// verification, each against a baseline measured in the same run.
import { closeSync, mkdtempSync, openSync, readFileSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, defaultVerifyThreads, resolveAuditConfig, verifyLog, verifyLogParallel, type AuditFields } from '../src/audit/index.js';
import { listSegments } from '../src/audit/layout.js';
import { removeTree } from '../test/helpers/tmp.js';
import { runWorkers } from './fixtures/workers.js';

const WRITERS = 64;
const RECORDS = Number(process.env['AUDIT_BENCH_RECORDS'] ?? 60_000);

function fieldsFor(index: number): AuditFields {
  return {
    kind: 'request',
    request_id: index,
    method: 'tools/call',
    agent_id: `agent-${index % 8}`,
    token_fingerprint: 'fp:9f86d081884c',
    session_id: 'b1f4c1d2-0000-4000-8000-000000000001',
    protocol_version: '2025-06-18',
    server: 'files',
    tool: 'read_file',
    tools_invoked: ['files.read_file'],
    decision: 'allow',
    exec_duration_ms: 3.25,
    args_digest: 'sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae',
    output_digest: 'sha256:fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9',
    output_summary: 'content: 1 item (1 text)',
    input: { path: `/srv/data/report-${index}.csv` },
  };
}

async function runWriters(append: (fields: AuditFields) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await runWorkers(WRITERS, RECORDS, (index) => append(fieldsFor(index)));
  return (RECORDS / (performance.now() - started)) * 1000;
}

/** Baseline: the same group-commit shape (one write per batch) with plain JSON, no hashing, no fsync. */
async function baselineAppend(path: string): Promise<number> {
  const handle = await open(path, 'a');
  let pending: Array<{ line: string; done: () => void }> = [];
  let flushing = false;
  const flush = async (): Promise<void> => {
    flushing = true;
    while (pending.length > 0) {
      const batch = pending;
      pending = [];
      await handle.write(batch.map((item) => item.line).join(''));
      for (const item of batch) item.done();
    }
    flushing = false;
  };
  const rate = await runWriters(
    (fields) =>
      new Promise<void>((resolve) => {
        pending.push({ line: `${JSON.stringify(fields)}\n`, done: resolve });
        if (!flushing) void flush();
      }),
  );
  await handle.close();
  return rate;
}

function baselineRead(dir: string): { records: number; seconds: number } {
  const started = performance.now();
  let records = 0;
  for (const segment of listSegments(dir)) {
    const data = readFileSync(segment.path);
    let offset = 0;
    for (let end = data.indexOf(0x0a, offset); end >= 0; end = data.indexOf(0x0a, offset)) {
      records += 1;
      offset = end + 1;
    }
  }
  return { records, seconds: (performance.now() - started) / 1000 };
}

function row(name: string, rate: number, baseline: number, target: number): string {
  return `${name.padEnd(34)} ${Math.round(rate).toLocaleString('en-US').padStart(12)} ${Math.round(baseline).toLocaleString('en-US').padStart(12)} ${(rate / baseline).toFixed(3).padStart(7)} ${Math.round(target).toLocaleString('en-US').padStart(9)} ${rate >= target ? 'met' : 'MISSED'}`;
}

const root = mkdtempSync(join(tmpdir(), 'bastion-audit-bench-'));
try {
  const baselinePath = join(root, 'baseline.jsonl');
  closeSync(openSync(baselinePath, 'w'));
  const baselineRate = await baselineAppend(baselinePath);
  const log = await AuditLog.open(resolveAuditConfig({ checkpoint: { everyRecords: 10_000 } }, root));
  const cpuBefore = process.cpuUsage();
  const loopBefore = performance.eventLoopUtilization();
  const durableRate = await runWriters((fields) => log.append(fields));
  const cpu = process.cpuUsage(cpuBefore);
  const loop = performance.eventLoopUtilization(loopBefore);
  const writer = log.stats;
  await log.close();
  const dir = join(root, 'audit');
  const read = baselineRead(dir);
  const started = performance.now();
  const report = verifyLog(dir);
  const verifySeconds = (performance.now() - started) / 1000;
  if (report.status !== 'clean') throw new Error(`benchmark log did not verify: ${report.problem?.message ?? ''}`);
  const verifyRate = report.scan.records / verifySeconds;
  // What `mcp-auditctl verify` does by default.
  const threads = defaultVerifyThreads();
  const parallelStarted = performance.now();
  const parallelReport = await verifyLogParallel(dir, { workers: threads });
  const parallelRate = parallelReport.scan.records / ((performance.now() - parallelStarted) / 1000);
  if (parallelReport.status !== 'clean') throw new Error('benchmark log did not verify in parallel');
  // The runs above are each the first of their code path in this process, as for `mcp-auditctl
  // verify`; these repeat the default path with this thread's code compiled (each run still starts
  // its worker afresh), the steady state a long log's verification reaches after its first ranges.
  const warmRates: number[] = [];
  for (let run = 0; run < 3; run += 1) {
    const warmStarted = performance.now();
    const warmReport = await verifyLogParallel(dir, { workers: threads });
    warmRates.push(warmReport.scan.records / ((performance.now() - warmStarted) / 1000));
    if (warmReport.status !== 'clean') throw new Error('benchmark log did not verify in parallel');
  }
  const warmRate = [...warmRates].sort((a, b) => a - b)[1] as number;
  const readRate = read.records / read.seconds;
  writeSync(1, `records: ${RECORDS}, writers: ${WRITERS}, verified records: ${report.scan.records}\n`);
  writeSync(1, `${'measure'.padEnd(34)} ${'records/s'.padStart(12)} ${'baseline/s'.padStart(12)} ${'ratio'.padStart(7)} ${'target'.padStart(9)}\n`);
  writeSync(1, `${row('durable append (64 writers)', durableRate, baselineRate, 40_000)}\n`);
  writeSync(1, `${row('verify, 1 thread, first run', verifyRate, readRate, 300_000)}\n`);
  writeSync(1, `${row(`verify, ${threads} threads, first run`, parallelRate, readRate, 300_000)}\n`);
  writeSync(1, `${row(`verify, ${threads} threads, warm (median/3)`, warmRate, readRate, 300_000)}\n`);
  const appendSeconds = RECORDS / durableRate;
  writeSync(1, `durable append: ${writer.batches} batches, mean ${(writer.records / writer.batches).toFixed(1)} records/batch (largest ${writer.largestBatch}), mean synced write ${(writer.syncMillis / writer.batches).toFixed(3)} ms from submit to completion seen (${((writer.syncMillis / 1000 / appendSeconds) * 100).toFixed(0)}% of wall time), process CPU ${((cpu.user + cpu.system) / RECORDS).toFixed(1)} us/record\n`);
  // A write's completion is only seen once the event loop is free, so with a busy loop the synced-write figure includes that wait.
  writeSync(1, `bound: event loop busy ${(loop.utilization * 100).toFixed(0)}% of the time, ${((loop.active * 1000) / RECORDS).toFixed(1)} us/record (building records, acknowledging writers); one synced write in flight at a time\n`);
  writeSync(1, 'baselines: append = same records as plain JSON, batched writes, no hashing, no fsync; verify = reading and splitting the same files without checking\n');
  writeSync(1, `verify: "1 thread" is verifyLog, "${threads} threads" what \`mcp-auditctl verify\` runs (this thread plus workers); "first run" is the first of its code path in this process, as for the CLI; "warm" repeats it with this thread's code compiled, each run starting its worker afresh\n`);
} finally {
  removeTree(root);
}
