// The audit log on its writer thread (audit.writer: thread, and adaptive, the gateway's default,
// while calls overlap) must write what the inline writer writes, in the order it was handed,
// durably, and fail closed when its thread goes away; adaptive moves it between the threads
// without a gap in the chain.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { ErrorCode, compose, failure, success, type Outcome } from '../../src/pipeline/index.js';
import { AuditLog, AuditTamperError, AuditUnavailableError, ThreadedAuditLog, createAuditGuard, openAuditWriter, verifyLog, type AuditRecord } from '../../src/audit/index.js';
import { listSegments } from '../../src/audit/layout.js';
import { readRecords } from '../../src/audit/reader.js';
import { buildRequestRecord, callRecordInput, type CaptureOptions } from '../../src/audit/record.js';
import { auditOptions, callContext as context, tempDir } from './helpers.js';

const capture: CaptureOptions = { arguments: 'truncated', outputs: 'truncated', maxChars: 64 };

function requests(dir: string): AuditRecord[] {
  return [...readRecords(dir)].map((item) => item.record).filter((record) => record.kind === 'request');
}

/** What a record says about the call, without what the log adds (seq, ts, chain hashes). */
function callPart(record: object): Record<string, unknown> {
  const { seq: _seq, ts: _ts, prev: _prev, hash: _hash, schema: _schema, ...rest } = record as Record<string, unknown>;
  return JSON.parse(JSON.stringify(rest)) as Record<string, unknown>;
}

describe('the audit log on its writer thread', () => {
  test('a call record built there is the record the inline writer builds, keyed digests included', async () => {
    const temp = tempDir();
    try {
      const options = auditOptions(temp.dir);
      const log = await ThreadedAuditLog.open(options);
      const ctx = context(7, { path: '/data/report.txt', token: 'ghp_abcdefghijklmnopqrstuvwxyz0123456789', long: 'x'.repeat(200) });
      ctx.audit.upstreamDurationMs = 12.3456;
      ctx.audit.approval = { id: 'appr-1', verdict: 'approved', via: 'console', waitedMs: 40, by: 'bob' };
      const outcome = success({ content: [{ type: 'text', text: `secret AKIAIOSFODNN7EXAMPLE ${'y'.repeat(100)}` }] });
      const call = callRecordInput(ctx, outcome);
      const appended = await log.appendCall(call, capture, true);
      const inline = buildRequestRecord(call, capture, (text) => log.digestText(text));
      const threadedDigest = log.digestText('{"a":1}');
      await log.close();
      const [written] = requests(options.dir);
      assert.ok(written !== undefined);
      assert.equal(written.seq, appended.result.seq);
      assert.deepEqual(callPart(written), callPart(inline));
      assert.deepEqual(callPart(appended.fields ?? {}), callPart(inline));
      assert.match(String(written.args_digest), /^hmac-sha256:/);
      assert.ok(!JSON.stringify(written).includes('ghp_abcdefghijklmnopqrstuvwxyz0123456789'), 'the token was redacted on the writer thread');
      assert.ok(!JSON.stringify(written).includes('AKIAIOSFODNN7EXAMPLE'), 'the key in the output was redacted on the writer thread');
      // The same key on the same directory, opened inline: its digest of the same text agrees.
      const again = await AuditLog.open(options);
      assert.equal(again.digestText('{"a":1}'), threadedDigest);
      await again.close();
    } finally {
      temp.cleanup();
    }
  });

  test('records land in the order they were handed over, the chain verifies, and the seals verify on this thread', async () => {
    const temp = tempDir();
    try {
      const options = auditOptions(temp.dir, { checkpoint: { everyRecords: 50 } });
      const log = await ThreadedAuditLog.open(options);
      const handed: Array<Promise<{ seq: number }>> = [];
      for (let i = 0; i < 300; i += 1) {
        if (i % 10 === 0) handed.push(log.event('test.marker', { i }));
        else handed.push(log.appendCall(callRecordInput(context(i, { i }), success({ ok: i })), capture).then((appended) => appended.result));
      }
      const seqs = (await Promise.all(handed)).map((result) => result.seq);
      for (let i = 1; i < seqs.length; i += 1) assert.ok((seqs[i] as number) > (seqs[i - 1] as number), `record ${i} came after record ${i - 1}`);
      assert.equal(log.size > (seqs[seqs.length - 1] as number), true);
      await log.close();
      const order = [...readRecords(options.dir)].map((item) => item.record).filter((record) => record.kind === 'request' || record.event === 'test.marker').map((record) => (record.kind === 'request' ? record.request_id : (record.info as { i: number }).i));
      assert.deepEqual(order, Array.from({ length: 300 }, (_, i) => i));
      assert.equal(verifyLog(options.dir).status, 'clean');
      const reopened = await ThreadedAuditLog.open(options);
      let seals = 0;
      for (const { record, raw } of readRecords(options.dir)) {
        if (record.event !== 'audit.seal') continue;
        seals += 1;
        assert.equal(reopened.sealVerifies(Buffer.from(raw), record.seq), true);
        assert.equal(reopened.sealVerifies(Buffer.from(raw.replace(/"mac":"./, '"mac":"#')), record.seq), false);
      }
      assert.ok(seals > 0);
      await reopened.close();
    } finally {
      temp.cleanup();
    }
  });

  test('durable: when an append resolves its record is already in the segment file', async () => {
    const temp = tempDir();
    try {
      const options = auditOptions(temp.dir);
      const log = await ThreadedAuditLog.open(options);
      const { result } = await log.appendCall(callRecordInput(context(41, { path: '/a' }), success({})), capture);
      const segment = listSegments(options.dir).at(-1);
      assert.ok(segment !== undefined);
      assert.ok(readFileSync(segment.path, 'utf8').includes(`"seq":${result.seq},`), 'the record is in the file before close');
      await log.close();
    } finally {
      temp.cleanup();
    }
  });

  test('the writer thread ending fails every waiting and later append closed, and readiness sees it', async () => {
    const temp = tempDir();
    try {
      const log = await ThreadedAuditLog.open(auditOptions(temp.dir));
      await log.event('test.before');
      const waiting = log.event('test.lost');
      // What an out-of-memory or a crash of the thread looks like from here.
      await (log as unknown as { worker: Worker }).worker.terminate();
      await assert.rejects(waiting, AuditUnavailableError);
      await assert.rejects(log.event('test.after'), AuditUnavailableError);
      assert.match(String(log.failedWith?.message), /writer thread ended/);
      const guard = compose([createAuditGuard(log, capture)], async () => success({ content: [] }));
      const outcome = (await guard(context(1, {}))) as Outcome;
      assert.equal(outcome.ok, false);
      assert.equal(outcome.ok ? undefined : outcome.error.code, ErrorCode.InternalError);
      assert.equal(outcome.ok ? undefined : (outcome.error.data as { reason?: string }).reason, 'audit_unavailable');
      await log.close();
    } finally {
      temp.cleanup();
    }
  });

  test('a call whose outcome cannot be cloned is still recorded: the guard builds the record on its own thread', async () => {
    const temp = tempDir();
    try {
      const options = auditOptions(temp.dir);
      const log = await ThreadedAuditLog.open(options);
      const guard = compose([createAuditGuard(log, capture)], async () => success({ content: [{ type: 'text', text: 'ok' }], callback: () => 'not data' }));
      const outcome = (await guard(context(5, { path: '/x' }))) as Outcome;
      assert.equal(outcome.ok, true);
      const denied = compose([createAuditGuard(log, capture)], async (ctx) => {
        ctx.audit.decision = 'deny';
        ctx.audit.deniedBy = 'policy';
        return failure(ErrorCode.Forbidden, 'denied');
      });
      await denied(context(6, { path: '/etc/shadow' }));
      await log.close();
      const written = requests(options.dir);
      assert.deepEqual(written.map((record) => record.request_id), [5, 6]);
      assert.equal(written[1]?.decision, 'deny');
      assert.equal(written[1]?.denied_by, 'policy');
    } finally {
      temp.cleanup();
    }
  });

  test('opening fails as the inline writer fails: a held writer lock, a tampered history (as AuditTamperError)', async () => {
    const temp = tempDir();
    try {
      const options = auditOptions(temp.dir, { checkpoint: { everyRecords: 2 } });
      const first = await openAuditWriter(options);
      assert.ok(first instanceof ThreadedAuditLog);
      await assert.rejects(ThreadedAuditLog.open(options), /already open by process \d+ \(this process\); one writer per log/);
      for (let i = 0; i < 6; i += 1) await first.event('test.fill', { agent: `agent-${i}` });
      await first.close();
      const [segment] = listSegments(options.dir);
      assert.ok(segment !== undefined);
      writeFileSync(segment.path, readFileSync(segment.path, 'utf8').replace('"agent":"agent-1"', '"agent":"agent-9"'));
      await assert.rejects(ThreadedAuditLog.open(options), (error: unknown) => error instanceof AuditTamperError && /seg-000000000000\.jsonl line \d+/.test(error.message));
    } finally {
      temp.cleanup();
    }
  });

  test('commits wake onCommit listeners; audit.writer: inline opens the log on this thread', async () => {
    const temp = tempDir();
    try {
      const log = await ThreadedAuditLog.open(auditOptions(temp.dir));
      let wakes = 0;
      const unsubscribe = log.onCommit(() => {
        wakes += 1;
      });
      await log.event('test.one');
      await log.flush();
      assert.ok(wakes >= 1);
      unsubscribe();
      assert.equal(log.stats.records >= 1, true);
      await log.close();
      const inline = await openAuditWriter(auditOptions(temp.dir, { writer: 'inline' }));
      assert.ok(inline instanceof AuditLog);
      await inline.close();
    } finally {
      temp.cleanup();
    }
  });
});

describe('audit.writer: adaptive (the default): the log moves to the main thread while calls come one at a time', () => {
  const requestIds = (dir: string): unknown[] => requests(dir).map((record) => record.request_id);

  test('one-at-a-time calls through the guard move the log to the main thread, overlapping ones move it back; order, chain and seals hold across the moves', async () => {
    const temp = tempDir();
    try {
      const options = auditOptions(temp.dir, { checkpoint: { everyRecords: 50 } });
      const log = await ThreadedAuditLog.open(options, { adaptive: true });
      let slow = false;
      const guard = compose([createAuditGuard(log, capture)], async () => {
        if (slow) await new Promise((resolve) => setTimeout(resolve, 5));
        return success({ content: [{ type: 'text', text: 'ok' }] });
      });
      let id = 0;
      const oneAtATime = async (count: number): Promise<void> => {
        for (let i = 0; i < count; i += 1) assert.equal(((await guard(context(id++, { i }))) as Outcome).ok, true);
      };
      assert.equal(log.writingOn, 'thread');
      await oneAtATime(100);
      assert.equal(log.writingOn, 'main', 'a hundred calls one at a time: the main thread writes');
      slow = true;
      const overlapping = await Promise.all(Array.from({ length: 8 }, () => guard(context(id++, {}))));
      assert.ok(overlapping.every((outcome) => (outcome as Outcome).ok));
      assert.equal(log.writingOn, 'thread', 'overlapping calls: the writer thread writes');
      slow = false;
      await oneAtATime(100);
      assert.equal(log.writingOn, 'main');
      const size = log.size;
      await log.close();
      assert.deepEqual(requestIds(options.dir), Array.from({ length: id }, (_, i) => i), 'every call recorded once, in the order committed');
      assert.equal(verifyLog(options.dir).status, 'clean');
      const reopened = await ThreadedAuditLog.open(options);
      assert.equal(reopened.recovery.truncatedBytes, 0, 'nothing unsealed or torn was left by a move');
      assert.equal(reopened.recovery.unsealedRecords, undefined);
      assert.ok(reopened.size >= size);
      let seals = 0;
      for (const { record, raw } of readRecords(options.dir)) {
        if (record.event !== 'audit.seal') continue;
        seals += 1;
        assert.equal(reopened.sealVerifies(Buffer.from(raw), record.seq), true, `seal ${record.seq} verifies`);
      }
      assert.ok(seals > 200, 'one seal per synced batch, on both threads');
      await reopened.close();
    } finally {
      temp.cleanup();
    }
  });

  test('records handed over during a move wait for it and land in their order; on the main thread an append resolves durably', async () => {
    const temp = tempDir();
    try {
      const options = auditOptions(temp.dir);
      const log = await ThreadedAuditLog.open(options, { adaptive: true });
      for (let i = 0; i < 63; i += 1) await log.appendCall(callRecordInput(context(i, {}), success({})), capture, false, true);
      assert.equal(log.writingOn, 'thread');
      // The 64th lone call starts the move; everything handed over right after it waits for the move.
      const handed: Array<Promise<{ seq: number }>> = [log.appendCall(callRecordInput(context(63, {}), success({})), capture, false, true).then((appended) => appended.result)];
      for (let i = 64; i < 80; i += 1) {
        handed.push(i % 4 === 0 ? log.event('test.marker', { i }) : log.appendCall(callRecordInput(context(i, {}), success({})), capture).then((appended) => appended.result));
      }
      const seqs = (await Promise.all(handed)).map((result) => result.seq);
      for (let i = 1; i < seqs.length; i += 1) assert.ok((seqs[i] as number) > (seqs[i - 1] as number), `record ${i} came after record ${i - 1}`);
      assert.equal(log.writingOn, 'main');
      const { result } = await log.appendCall(callRecordInput(context(80, { path: '/b' }), success({})), capture, false, true);
      const segment = listSegments(options.dir).at(-1);
      assert.ok(segment !== undefined);
      assert.ok(readFileSync(segment.path, 'utf8').includes(`"seq":${result.seq},`), 'written by the main thread, in the file when the append resolved');
      await log.checkpoint();
      assert.equal(log.size, result.seq + 3, 'the checkpoint\'s seal follows the record and its batch seal');
      await log.close();
      const order = [...readRecords(options.dir)].map((item) => item.record).filter((record) => record.kind === 'request' || record.event === 'test.marker').map((record) => (record.kind === 'request' ? record.request_id : (record.info as { i: number }).i));
      assert.deepEqual(order, Array.from({ length: 81 }, (_, i) => i));
      assert.equal(verifyLog(options.dir).status, 'clean');
    } finally {
      temp.cleanup();
    }
  });

  test('close() during a move waits for it: the records held by the move are refused as closed, the rest are on disk and the log verifies', async () => {
    const temp = tempDir();
    try {
      const options = auditOptions(temp.dir);
      const log = await ThreadedAuditLog.open(options, { adaptive: true });
      for (let i = 0; i < 63; i += 1) await log.appendCall(callRecordInput(context(i, {}), success({})), capture, false, true);
      const moving = log.appendCall(callRecordInput(context(63, {}), success({})), capture, false, true);
      const closed = log.close();
      await assert.rejects(moving, /closed/);
      await closed;
      assert.deepEqual(requests(options.dir).map((record) => record.request_id), Array.from({ length: 63 }, (_, i) => i));
      assert.equal(verifyLog(options.dir).status, 'clean');
      const reopened = await AuditLog.open(options);
      assert.equal(reopened.recovery.truncatedBytes, 0, 'the writer lock was released and nothing was left unsealed');
      await reopened.close();
    } finally {
      temp.cleanup();
    }
  });

  test('audit.writer: thread never moves; the writer thread gone while the main thread writes still fails the log closed', async () => {
    const temp = tempDir();
    try {
      const pinned = await openAuditWriter(auditOptions(temp.dir, { writer: 'thread' }));
      assert.ok(pinned instanceof ThreadedAuditLog);
      for (let i = 0; i < 80; i += 1) await pinned.appendCall(callRecordInput(context(i, {}), success({})), capture, false, true);
      assert.equal(pinned.writingOn, 'thread');
      await pinned.close();
      const log = await openAuditWriter(auditOptions(temp.dir));
      assert.ok(log instanceof ThreadedAuditLog, 'adaptive is the default');
      for (let i = 0; i < 70; i += 1) await log.appendCall(callRecordInput(context(100 + i, {}), success({})), capture, false, true);
      assert.equal(log.writingOn, 'main');
      await (log as unknown as { worker: Worker }).worker.terminate();
      await assert.rejects(log.appendCall(callRecordInput(context(200, {}), success({})), capture, false, true), AuditUnavailableError);
      assert.match(String(log.failedWith?.message), /writer thread ended/);
      await log.close();
      // What the main thread wrote before is intact, and the lock was released at close.
      assert.equal(verifyLog(auditOptions(temp.dir).dir).status, 'clean');
      const again = await AuditLog.open(auditOptions(temp.dir));
      assert.equal(again.recovery.truncatedBytes, 0);
      await again.close();
    } finally {
      temp.cleanup();
    }
  });
});
