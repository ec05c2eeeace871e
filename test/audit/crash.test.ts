import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AuditLog, verifyLog } from '../../src/audit/index.js';
import { readRecords } from '../../src/audit/reader.js';
import { listCheckpoints, listSegments } from '../../src/audit/layout.js';
import { appendFileSync, readFileSync, truncateSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { chainMembers } from '../../src/audit/canonical.js';
import { sealOf } from '../../src/audit/seal.js';
import { liftAttributes } from '../helpers/tmp.js';
import { auditOptions, tempDir } from './helpers.js';

const writer = fileURLToPath(new URL('./fixtures/crash-writer.js', import.meta.url));
// 50 in CI; AUDIT_CRASH_KILLS=1000 for the long run outside it.
const TRIALS = Number(process.env['AUDIT_CRASH_KILLS'] ?? 50);
// Every trial checks the records it acknowledged; every acknowledged record and the whole log are
// checked after each of the first 50 trials, then every 50th (a long run would otherwise re-read a
// growing log a thousand times) and after the last.
const FULL_CHECK_EVERY = 50;

/** Stored records with seq >= fromSeq (reads only the segments that can hold them). */
function storedFrom(dir: string, fromSeq: number): Map<number, string> {
  const segments = listSegments(dir);
  let first = segments.length - 1;
  while (first > 0 && (segments[first] as { firstSeq: number }).firstSeq > fromSeq) first -= 1;
  const stored = new Map<number, string>();
  for (const segment of segments.slice(Math.max(0, first))) {
    for (const text of readFileSync(segment.path, 'utf8').split('\n')) {
      if (text === '') continue;
      const record = JSON.parse(text) as { seq: number; hash: string };
      if (record.seq >= fromSeq) stored.set(record.seq, record.hash);
    }
  }
  return stored;
}

/** Runs the writer until it has acknowledged `target` records (plus a random extra delay), then kill -9. */
function runAndKill(stateDir: string, target: number, extraMs: number): Promise<Map<number, string>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked = new Map<number, string>();
    let buffered = '';
    let stderr = '';
    let killScheduled = false;
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const [seq, hash] = line.split(' ');
        if (hash !== undefined) acked.set(Number(seq), hash);
      }
      if (!killScheduled && acked.size >= target) {
        killScheduled = true;
        setTimeout(() => child.kill('SIGKILL'), extraMs);
      }
    });
    child.on('exit', (_code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`writer exited without being killed: ${stderr}`));
      else resolve(acked);
    });
  });
}

/**
 * A kill -9 cannot tear a write() in half, but power loss can lose part of an unsynced batch. Emulate
 * that on the bytes after the last durable point: the end of the seal that closes the batch holding
 * the last acknowledged (or checkpointed) record, since a batch is acknowledged only once the write
 * holding its seal has returned. Cut them at a random point, or, if there are none, leave half a record.
 */
function tearUnacknowledgedTail(dir: string, lastAcked: number, seed: number): void {
  const last = listSegments(dir).pop();
  if (last === undefined) return;
  // Records the writer synced but had not yet reported may already be under a checkpoint: those are durable too.
  const lastSynced = Math.max(lastAcked, ...listCheckpoints(dir).map((item) => item.checkpoint.size - 1));
  const data = readFileSync(last.path);
  let durableEnd = -1;
  let reached = false;
  for (let offset = 0, end = data.indexOf(0x0a); end >= 0; offset = end + 1, end = data.indexOf(0x0a, offset)) {
    const line = data.subarray(offset, end);
    const members = chainMembers(line);
    if (typeof members === 'string') break;
    reached ||= members.seq === lastSynced;
    if (reached && sealOf(line) !== undefined) {
      durableEnd = end + 1;
      break;
    }
  }
  // Lost unsynced bytes are the filesystem's doing, which the append-only attribute does not govern.
  liftAttributes(last.path);
  if (durableEnd >= 0 && data.length - durableEnd > 2) truncateSync(last.path, durableEnd + 1 + (seed % (data.length - durableEnd - 1)));
  else appendFileSync(last.path, '{"agent_id":"torn","decision":"allow","hash":"00');
}

test(`kill -9 during heavy durable writing loses no acknowledged record (${TRIALS} crash trials) and recovery leaves a verifiable log`, async () => {
  const temp = tempDir();
  try {
    // The writer runs with the default (auto); reopening here must lift and set the attributes as a restarted gateway does.
    const options = auditOptions(temp.dir, { appendOnly: 'auto', checkpoint: { everyRecords: 150 }, rotation: { maxBytes: 40_000 } });
    const allAcked = new Map<number, string>();
    let newestAcked = -1;
    let seed = 7;
    let recoveries = 0;
    let unsealedCut = 0;
    const openMillis: number[] = [];
    for (let trial = 0; trial < TRIALS; trial += 1) {
      seed = (seed * 48271) % 2147483647;
      const acked = await runAndKill(temp.dir, 20 + (seed % 120), seed % 30);
      for (const [seq, hash] of acked) {
        allAcked.set(seq, hash);
        // A running maximum: spreading 100,000+ keys into Math.max overflows the stack on long runs.
        if (seq > newestAcked) newestAcked = seq;
      }
      if (trial % 2 === 1) tearUnacknowledgedTail(options.dir, newestAcked, seed);
      const started = performance.now();
      const log = await AuditLog.open(options);
      openMillis.push(performance.now() - started);
      if (log.recovery.truncatedBytes > 0) recoveries += 1;
      unsealedCut += log.recovery.unsealedRecords ?? 0;
      assert.equal(log.recovery.tamperRestart, false);
      await log.close();
      const full = trial < FULL_CHECK_EVERY || trial % FULL_CHECK_EVERY === FULL_CHECK_EVERY - 1 || trial === TRIALS - 1;
      const stored = new Map<number, string>();
      if (full) for (const { record } of readRecords(options.dir)) stored.set(record.seq, record.hash);
      const checked = full ? allAcked : acked;
      const found = full ? stored : storedFrom(options.dir, Math.min(...acked.keys()));
      for (const [seq, hash] of checked) assert.equal(found.get(seq), hash, `trial ${trial}: acknowledged record ${seq} is missing or different after recovery`);
      const report = verifyLog(options.dir, { fromCheckpoint: !full });
      assert.equal(report.status, 'clean', `trial ${trial}: ${report.problem?.message ?? ''}`);
      assert.equal(report.unsignedTail, undefined, `trial ${trial}: the writer signed everything it kept`);
    }
    assert.ok(allAcked.size > TRIALS * 20);
    // Recoveries depend on where the kill lands; the counts are informative, not asserted.
    const sorted = [...openMillis].sort((a, b) => a - b);
    const at = (fraction: number): string => (sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] as number).toFixed(1);
    process.stdout.write(`# ${TRIALS} kills, ${allAcked.size} acknowledged records, 0 lost; ${recoveries} tails cut (${unsealedCut} unacknowledged unsealed records among them); reopen ms median ${at(0.5)}, p99 ${at(0.99)}, max ${at(1)}\n`);
  } finally {
    temp.cleanup();
  }
});
