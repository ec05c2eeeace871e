// Per-record cost of the durable audit path, each figure against a baseline measured in the same
// run, in interleaved rounds (medians printed):
//   build:  requestRecord (redaction, capture, keyed digests) + the chained line + its Merkle leaf,
//           against one JSON.stringify of the same fields and one SHA-256 of its bytes;
//   append: AuditLog durable appends from concurrent writers (one synced batch in flight), against
//           the same bytes written by the same group commit as plain appendFile + fdatasync.
//
//   node dist/bench/audit-record.bench.js
//   AUDIT_RECORD_N=20000 AUDIT_RECORD_WRITERS=16 AUDIT_RECORD_ROUNDS=3 node dist/bench/audit-record.bench.js
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { AuditLog, resolveAuditConfig } from '../src/audit/index.js';
import { encodeLine, sha256Hex } from '../src/audit/canonical.js';
import { listSegments } from '../src/audit/layout.js';
import { leafHashHex } from '../src/audit/merkle.js';
import { requestRecord, type CaptureOptions } from '../src/audit/record.js';
import { deriveLogKeys, keyedDigest } from '../src/audit/seal.js';
import { CallContext, success, type Outcome } from '../src/pipeline/index.js';
import { removeTree } from '../test/helpers/tmp.js';
import { runWorkers } from './fixtures/workers.js';

function positiveInt(text: string | undefined, fallback: number): number {
  const value = Number(text);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}

const RECORDS = positiveInt(process.env['AUDIT_RECORD_N'], 20_000);
const WRITERS = positiveInt(process.env['AUDIT_RECORD_WRITERS'], 16);
const ROUNDS = positiveInt(process.env['AUDIT_RECORD_ROUNDS'], 3);
const capture: CaptureOptions = { arguments: 'truncated', outputs: 'none', maxChars: 2048 };
const keys = deriveLogKeys(randomBytes(32), 'bench0000000000');
const digestText = (text: string): string => keyedDigest(keys.digest, text);

/** A call like the gateway bench's echo call: small arguments, one text item back. */
function call(index: number): { ctx: CallContext; outcome: Outcome } {
  const ctx = new CallContext({
    requestId: index,
    method: 'tools/call',
    params: { name: 'echo.echo', arguments: { text: `hello ${index}`, path: `/srv/data/report-${index % 97}.csv`, options: { depth: 3, follow: false } } },
    session: { sessionId: 'b1f4c1d2-0000-4000-8000-000000000001', transport: 'stdio', protocolVersion: '2025-06-18' },
    identity: { agentId: `agent-${index % 8}`, tokenFingerprint: 'fp:9f86d081884c', method: 'stdio' },
    requestBytes: 160,
    limits: { timeoutMs: 30_000, maxOutputBytes: 1 << 20, maxRequestBytes: 1 << 20 },
    signal: new AbortController().signal,
  });
  ctx.target = { server: 'echo', name: 'echo' };
  return { ctx, outcome: success({ content: [{ type: 'text', text: `hello ${index}` }] }) };
}

const calls = Array.from({ length: 512 }, (_, index) => call(index));

function cpuMicros(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return used.user + used.system;
}

/** us of CPU per record to build records and their lines (what the audit guard and append do on this thread). */
function buildRound(): { audit: number; baseline: number } {
  let prev = '0'.repeat(64);
  let sink = 0;
  let started = process.cpuUsage();
  for (let index = 0; index < RECORDS; index += 1) {
    const { ctx, outcome } = calls[index % calls.length] as { ctx: CallContext; outcome: Outcome };
    const fields = requestRecord(ctx, outcome, capture, digestText);
    const line = encodeLine(fields, '2026-12-04T18:00:00.000Z', index, prev);
    prev = line.hash;
    sink += leafHashHex(line.bytes.subarray(0, line.bytes.length - 1)).length;
  }
  const audit = cpuMicros(started) / RECORDS;
  started = process.cpuUsage();
  for (let index = 0; index < RECORDS; index += 1) {
    const { ctx, outcome } = calls[index % calls.length] as { ctx: CallContext; outcome: Outcome };
    const bytes = Buffer.from(`${JSON.stringify({ id: ctx.requestId, method: ctx.method, params: ctx.params, result: outcome.ok ? outcome.result : null, agent: ctx.identity?.agentId })}\n`);
    sink += sha256Hex(bytes).length;
  }
  const baseline = cpuMicros(started) / RECORDS;
  if (sink === 0) throw new Error('unreachable');
  return { audit, baseline };
}

async function runWriters(append: (index: number) => Promise<unknown>): Promise<{ rate: number; cpu: number }> {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await runWorkers(WRITERS, RECORDS, append);
  return { rate: (RECORDS / (performance.now() - started)) * 1000, cpu: cpuMicros(cpuBefore) / RECORDS };
}

async function auditAppend(root: string): Promise<{ rate: number; cpu: number; lines: Buffer[]; batches: number }> {
  const log = await AuditLog.open(resolveAuditConfig({ checkpoint: { everyRecords: 1_000_000, everySeconds: 3600 }, rotation: { maxBytes: 1 << 30 } }, root));
  const before = log.stats;
  const result = await runWriters((index) => {
    const { ctx, outcome } = calls[index % calls.length] as { ctx: CallContext; outcome: Outcome };
    return log.append(requestRecord(ctx, outcome, capture, (text) => log.digestText(text)));
  });
  const batches = log.stats.batches - before.batches;
  await log.close();
  const lines: Buffer[] = [];
  for (const segment of listSegments(join(root, 'audit'))) {
    const data = readFileSync(segment.path);
    for (let start = 0, end = data.indexOf(0x0a); end >= 0; start = end + 1, end = data.indexOf(0x0a, start)) lines.push(data.subarray(start, end + 1));
  }
  return { ...result, lines, batches };
}

/** The same bytes, the same group commit (one batch in flight, the rest queue), written with appendFile + fdatasync. */
async function baselineAppend(path: string, lines: Buffer[]): Promise<{ rate: number; cpu: number }> {
  const handle = await open(path, 'a');
  let pending: Array<{ data: Buffer; done: () => void }> = [];
  let flushing = false;
  const flush = async (): Promise<void> => {
    flushing = true;
    while (pending.length > 0) {
      const batch = pending;
      pending = [];
      await handle.appendFile(Buffer.concat(batch.map((item) => item.data)));
      await handle.datasync();
      for (const item of batch) item.done();
    }
    flushing = false;
  };
  const result = await runWriters(
    (index) =>
      new Promise<void>((resolve) => {
        pending.push({ data: lines[index % lines.length] as Buffer, done: resolve });
        if (!flushing) setImmediate(() => void flush());
        flushing = true;
      }),
  );
  await handle.close();
  return result;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

const build = { audit: [] as number[], baseline: [] as number[] };
const append = { rate: [] as number[], cpu: [] as number[], baseRate: [] as number[], baseCpu: [] as number[], perBatch: [] as number[] };
for (let round = 0; round < ROUNDS; round += 1) {
  const built = buildRound();
  build.audit.push(built.audit);
  build.baseline.push(built.baseline);
  const root = mkdtempSync(join(tmpdir(), 'bastion-audit-record-'));
  try {
    const audited = await auditAppend(root);
    const plain = await baselineAppend(join(root, 'baseline.jsonl'), audited.lines.filter((line) => line.includes('"kind":"request"')));
    append.rate.push(audited.rate);
    append.cpu.push(audited.cpu);
    append.baseRate.push(plain.rate);
    append.baseCpu.push(plain.cpu);
    append.perBatch.push(RECORDS / audited.batches);
  } finally {
    removeTree(root);
  }
}
const fmt = (value: number, digits = 1): string => value.toFixed(digits).padStart(10);
writeSync(1, `records: ${RECORDS} per round, writers: ${WRITERS}, rounds: ${ROUNDS} (medians)\n`);
writeSync(1, `${'measure'.padEnd(40)} ${'audit'.padStart(10)} ${'baseline'.padStart(10)} ${'ratio'.padStart(10)}\n`);
writeSync(1, `${'build: CPU us/record'.padEnd(40)} ${fmt(median(build.audit), 2)} ${fmt(median(build.baseline), 2)} ${fmt(median(build.audit) / median(build.baseline), 2)}\n`);
writeSync(1, `${'durable append: records/s'.padEnd(40)} ${fmt(median(append.rate), 0)} ${fmt(median(append.baseRate), 0)} ${fmt(median(append.rate) / median(append.baseRate), 3)}\n`);
writeSync(1, `${'durable append: process CPU us/record'.padEnd(40)} ${fmt(median(append.cpu))} ${fmt(median(append.baseCpu))} ${fmt(median(append.cpu) / median(append.baseCpu), 2)}\n`);
writeSync(1, `durable append: ${median(append.perBatch).toFixed(1)} records per synced batch (seals included in the batch count, not in the records)\n`);
writeSync(1, 'baselines: build = JSON.stringify of the call and its result + one SHA-256; append = the audit run\'s request lines, same writers, one batch in flight, appendFile + fdatasync\n');
