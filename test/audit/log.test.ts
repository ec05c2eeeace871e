import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, closeSync, constants as fsConstants, fstatSync, readFileSync, readdirSync, writeFileSync, unlinkSync, existsSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { AuditLog, AuditTamperError, AuditUnavailableError, verifyLog } from '../../src/audit/index.js';
import { listCheckpoints, listSegments } from '../../src/audit/layout.js';
import { buildLine } from '../../src/audit/canonical.js';
import { parseCheckpoint } from '../../src/audit/checkpoint.js';
import { readRecords } from '../../src/audit/reader.js';
import type { AuditRecord } from '../../src/audit/schema.js';
import { appendMany, auditOptions, tempDir, verifyBoth } from './helpers.js';

function lineOfOffset(data: Buffer, offset: number): number {
  let line = 1;
  for (let index = 0; index < offset; index += 1) if (data[index] === 0x0a) line += 1;
  return line;
}

function linesOf(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n').slice(0, -1);
}

describe('a log of thousands of records', () => {
  const temp = tempDir();
  let logDir = '';
  let lastCheckpointSize = 0;

  before(async () => {
    const options = auditOptions(temp.dir, { checkpoint: { everyRecords: 700 }, rotation: { maxBytes: 300_000 } });
    logDir = options.dir;
    const log = await AuditLog.open(options);
    const acked = await appendMany(log, 3000, 32);
    assert.equal(new Set(acked).size, 3000);
    await log.close();
    lastCheckpointSize = Math.max(...listCheckpoints(logDir).map((item) => item.checkpoint.size));
  });
  after(() => temp.cleanup());

  test('verifies clean across segments, with every checkpoint matched', async () => {
    const report = await verifyBoth(logDir);
    assert.equal(report.status, 'clean', report.problem?.message);
    assert.equal(report.scan.records, report.scan.nextSeq);
    assert.ok(report.scan.nextSeq >= 3001);
    assert.ok(listSegments(logDir).length >= 3, 'rotation by size produced several segments');
    assert.equal(report.scan.checkpointsMatched, report.checkpoints);
    assert.ok(report.checkpoints >= 4);
  });

  test('the chain continues across segments: each segment starts with the next seq and links to the previous hash', () => {
    const segments = listSegments(logDir);
    for (let index = 1; index < segments.length; index += 1) {
      const previous = linesOf((segments[index - 1] as { path: string }).path);
      const first = JSON.parse(linesOf((segments[index] as { path: string }).path)[0] as string) as AuditRecord;
      const last = JSON.parse(previous[previous.length - 1] as string) as AuditRecord;
      assert.equal(first.seq, last.seq + 1);
      assert.equal(first.prev, last.hash);
      assert.equal(first.event, 'audit.segment_start');
    }
  });

  test('flipping any byte is detected and located at the line that holds it (150 sampled positions)', async () => {
    const segments = listSegments(logDir);
    let seed = 12345;
    const random = (limit: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % limit;
    };
    for (let trial = 0; trial < 150; trial += 1) {
      const segment = segments[random(segments.length)] as { path: string };
      const original = readFileSync(segment.path);
      const position = random(original.length);
      const damaged = Buffer.from(original);
      damaged[position] = (damaged[position] as number) ^ (1 + random(255));
      writeFileSync(segment.path, damaged);
      try {
        const report = trial % 6 === 0 ? await verifyBoth(logDir) : verifyLog(logDir);
        assert.equal(report.status, 'tampered', `flip at ${segment.path}:${position} went unnoticed`);
        assert.equal(report.problem?.segment, segment.path, `flip at byte ${position}`);
        assert.equal(report.problem?.line, lineOfOffset(original, position), `flip at byte ${position}: ${report.problem?.message}`);
      } finally {
        writeFileSync(segment.path, original);
      }
    }
    assert.equal(verifyLog(logDir).status, 'clean');
  });

  const mutate = async (change: (lines: string[]) => string[], check: (report: ReturnType<typeof verifyLog>, segmentPath: string) => void): Promise<void> => {
    const segment = listSegments(logDir)[1] as { path: string };
    const original = readFileSync(segment.path);
    const lines = linesOf(segment.path);
    writeFileSync(segment.path, `${change(lines).join('\n')}\n`);
    try {
      check(await verifyBoth(logDir), segment.path);
    } finally {
      writeFileSync(segment.path, original);
    }
  };

  test('deleting a record is detected at the line where the gap is', async () => {
    await mutate(
      (lines) => lines.filter((_, index) => index !== 40),
      (report, path) => {
        assert.equal(report.status, 'tampered');
        assert.equal(report.problem?.segment, path);
        assert.equal(report.problem?.line, 41);
        assert.match(report.problem?.message ?? '', /deleted, inserted or reordered/);
      },
    );
  });

  test('inserting a forged record (even a validly self-hashed one) is detected', async () => {
    await mutate(
      (lines) => {
        const before = JSON.parse(lines[9] as string) as AuditRecord;
        const forged = buildLine({ kind: 'request', method: 'tools/call', agent_id: 'intruder', decision: 'allow', ts: before.ts }, before.seq + 1, before.hash).line;
        return [...lines.slice(0, 10), forged, ...lines.slice(10)];
      },
      (report, path) => {
        assert.equal(report.status, 'tampered');
        assert.equal(report.problem?.segment, path);
        assert.equal(report.problem?.line, 12);
      },
    );
  });

  test('reordering two records is detected', async () => {
    await mutate(
      (lines) => {
        const copy = [...lines];
        [copy[20], copy[21]] = [copy[21] as string, copy[20] as string];
        return copy;
      },
      (report, path) => {
        assert.equal(report.status, 'tampered');
        assert.equal(report.problem?.segment, path);
        assert.equal(report.problem?.line, 21);
      },
    );
  });

  test('rewriting a record and re-chaining everything after it is caught by the signed checkpoint', async () => {
    const segments = listSegments(logDir);
    const originals = segments.map((segment) => readFileSync(segment.path));
    try {
      let head: string | undefined;
      for (const segment of segments) {
        const rewritten = linesOf(segment.path).map((text) => {
          const record = JSON.parse(text) as AuditRecord;
          if (record.seq === 5) record.agent_id = 'someone-else';
          if (head === undefined && record.seq !== 5) {
            return text;
          }
          const { hash: _hash, seq, prev: _prev, schema: _schema, ...fields } = record;
          const built = buildLine(fields, seq, head ?? record.prev);
          head = built.hash;
          return built.line;
        });
        writeFileSync(segment.path, `${rewritten.join('\n')}\n`);
      }
      const report = await verifyBoth(logDir);
      assert.equal(report.status, 'tampered');
      const firstCovering = Math.min(...listCheckpoints(logDir).map((item) => item.checkpoint.size).filter((size) => size > 5));
      assert.match(report.problem?.message ?? '', new RegExp(`checkpoint of size ${firstCovering} `));
    } finally {
      segments.forEach((segment, index) => writeFileSync(segment.path, originals[index] as Buffer));
    }
  });

  test('truncating the log past a checkpoint is detected; truncating after it only loses unsigned records', async () => {
    const segments = listSegments(logDir);
    const last = segments[segments.length - 1] as { path: string; firstSeq: number };
    const original = readFileSync(last.path);
    const lines = linesOf(last.path);
    try {
      const keep = lastCheckpointSize - last.firstSeq - 5;
      writeFileSync(last.path, `${lines.slice(0, keep).join('\n')}\n`);
      const report = await verifyBoth(logDir);
      assert.equal(report.status, 'tampered');
      assert.match(report.problem?.message ?? '', /records were removed from the end/);
    } finally {
      writeFileSync(last.path, original);
    }
    const removed = readFileSync(last.path);
    try {
      unlinkSync(last.path);
      const report = verifyLog(logDir);
      assert.equal(report.status, 'tampered', 'deleting the newest segment goes past the last checkpoint');
    } finally {
      writeFileSync(last.path, removed);
    }
  });

  test('deleting a segment in the middle is detected', async () => {
    const segment = listSegments(logDir)[1] as { path: string };
    const original = readFileSync(segment.path);
    try {
      unlinkSync(segment.path);
      const report = await verifyBoth(logDir);
      assert.equal(report.status, 'tampered');
      assert.match(report.problem?.message ?? '', /segment is missing/);
    } finally {
      writeFileSync(segment.path, original);
    }
  });

  test('a checkpoint signed by another key is rejected', () => {
    const checkpoint = listCheckpoints(logDir)[0] as { path: string };
    const original = readFileSync(checkpoint.path, 'utf8');
    try {
      writeFileSync(checkpoint.path, original.replace(/\n— (\S+) (\S+)\n$/, (_, name: string, sig: string) => `\n— ${name} ${Buffer.from(sig, 'base64').fill(7, 4).toString('base64')}\n`));
      const report = verifyLog(logDir);
      assert.equal(report.status, 'tampered');
      assert.match(report.problem?.message ?? '', /does not verify/);
    } finally {
      writeFileSync(checkpoint.path, original);
    }
  });
});

describe('checkpoints', () => {
  test('are C2SP signed notes: origin, size, base64 root, chain-head extension, and an Ed25519 signature with the signed-note key id', async () => {
    const temp = tempDir();
    try {
      const options = auditOptions(temp.dir, { checkpoint: { everyRecords: 10, mirrorDir: join(temp.dir, 'mirror') } });
      const log = await AuditLog.open(options);
      await appendMany(log, 25, 4);
      await log.close();
      const stored = [...readRecords(options.dir)].map((item) => item.record);
      const head = (stored[stored.length - 1] as AuditRecord).hash;
      const files = listCheckpoints(options.dir);
      const newest = files[files.length - 1] as { name: string; checkpoint: ReturnType<typeof parseCheckpoint> };
      const text = readFileSync(join(options.dir, 'checkpoints', newest.name), 'utf8');
      const lines = text.split('\n');
      assert.equal(lines[0], JSON.parse(readFileSync(join(options.dir, 'log.json'), 'utf8')).origin);
      assert.equal(lines[1], String(stored.length), 'the last checkpoint, written at close, covers every record');
      assert.equal(Buffer.from(lines[2] as string, 'base64').length, 32);
      assert.equal(lines[3], `chain-head ${head}`);
      assert.match(lines[4] as string, /^timestamp \d{4}-/);
      assert.equal(lines[5], `index ${files.length}`, 'checkpoints are numbered from 1');
      assert.match(lines[7] as string, /^— bastion-audit [A-Za-z0-9+/]+=*$/);
      assert.equal(Buffer.from((lines[7] as string).split(' ')[2] as string, 'base64').length, 68);
      assert.deepEqual(readdirSync(join(temp.dir, 'mirror')).sort(), files.map((item) => item.name).sort(), 'every checkpoint is mirrored to the second location');
    } finally {
      temp.cleanup();
    }
  });

  test('the signing key is created with mode 0600, and a key others can read is refused', async () => {
    const temp = tempDir();
    try {
      const options = auditOptions(temp.dir);
      const log = await AuditLog.open(options);
      await log.close();
      assert.equal(statSync(options.checkpoint.keyFile).mode & 0o777, 0o600);
      const { chmodSync } = await import('node:fs');
      chmodSync(options.checkpoint.keyFile, 0o644);
      await assert.rejects(AuditLog.open(options), /others can read it/);
    } finally {
      temp.cleanup();
    }
  });
});

describe('opening a damaged log', () => {
  test('a torn tail (a partial last record) is truncated and recorded with its size and digest', async () => {
    const temp = tempDir();
    try {
      const options = auditOptions(temp.dir, { checkpoint: { everyRecords: 50 } });
      let log = await AuditLog.open(options);
      await appendMany(log, 120, 8);
      await log.close();
      const last = listSegments(options.dir).pop() as { path: string };
      const torn = '{"agent_id":"a","decision":"allow","hash":"12ab';
      appendFileSync(last.path, torn);
      const before = await verifyBoth(options.dir);
      assert.equal(before.status, 'tampered');
      assert.equal(before.problem !== undefined && 'tornTail' in before.problem && before.problem.tornTail, true, 'verify calls it a torn tail');
      log = await AuditLog.open(options);
      assert.equal(log.recovery.truncatedBytes, Buffer.byteLength(torn));
      await log.close();
      const recovery = [...readRecords(options.dir)].map((item) => item.record).find((record) => record.event === 'audit.recovery');
      assert.ok(recovery, 'a recovery record was written');
      assert.equal(recovery.info?.['bytes_removed'], Buffer.byteLength(torn));
      assert.match(String(recovery.info?.['removed_sha256']), /^[0-9a-f]{64}$/);
      assert.equal(verifyLog(options.dir).status, 'clean');
    } finally {
      temp.cleanup();
    }
  });

  test('an edit before the last checkpoint is tampering: open() refuses, naming the place', async () => {
    const temp = tempDir();
    try {
      const options = auditOptions(temp.dir, { checkpoint: { everyRecords: 50 } });
      let log = await AuditLog.open(options);
      await appendMany(log, 120, 8);
      await log.close();
      const segment = listSegments(options.dir)[0] as { path: string };
      const text = readFileSync(segment.path, 'utf8');
      writeFileSync(segment.path, text.replace('"agent_id":"agent-1"', '"agent_id":"agent-9"'));
      await assert.rejects(AuditLog.open(options), (error: unknown) => error instanceof AuditTamperError && /seg-000000000000\.jsonl line \d+/.test(error.message));
      assert.equal(existsSync(join(options.dir, 'writer.lock')), false, 'a refused open releases the writer lock');
      log = await AuditLog.open({ ...options, startNewSegmentAfterTamper: true });
      assert.equal(log.recovery.tamperRestart, true);
      await log.event('gateway.start');
      await log.close();
      const records = [...readRecords(options.dir)].map((item) => item.record);
      const restart = records.find((record) => record.event === 'audit.tamper_restart');
      assert.ok(restart, 'the decision to start a new chain is recorded');
      assert.match(JSON.stringify(restart.info), /record hash does not match/);
      const quarantined = readdirSync(join(options.dir, 'quarantine'));
      assert.equal(quarantined.length, 1, 'the damaged files are kept as evidence');
      assert.equal(verifyLog(options.dir).status, 'clean');
    } finally {
      temp.cleanup();
    }
  });

  test('checkpoints signed by another key (a replaced or forged key) stop open() with a hint', async () => {
    const temp = tempDir();
    try {
      const options = auditOptions(temp.dir, { checkpoint: { everyRecords: 20 } });
      let log = await AuditLog.open(options);
      await appendMany(log, 50, 4);
      await log.close();
      unlinkSync(options.checkpoint.keyFile);
      await assert.rejects(AuditLog.open(options), (error: unknown) => error instanceof AuditTamperError && /no signature by key .*restore the previous key/.test(error.message));
      log = await AuditLog.open({ ...options, startNewSegmentAfterTamper: true });
      await log.close();
      assert.equal(verifyLog(options.dir).status, 'clean');
      const quarantined = readdirSync(join(options.dir, 'quarantine'));
      assert.equal(quarantined.length, 1);
      assert.ok(readdirSync(join(options.dir, 'quarantine', quarantined[0] as string, 'checkpoints')).length >= 2, 'old checkpoints are kept as evidence');
    } finally {
      temp.cleanup();
    }
  });

  test('a second writer on the same directory is refused', async () => {
    const temp = tempDir();
    try {
      const options = auditOptions(temp.dir);
      const log = await AuditLog.open(options);
      await assert.rejects(AuditLog.open(options), /already open by process/);
      await log.close();
    } finally {
      temp.cleanup();
    }
  });
});

describe('modes, rotation and retention', () => {
  test('async mode with onFull=deny rejects appends once the queue is full, and never loses an accepted record', async () => {
    const temp = tempDir();
    try {
      const options = auditOptions(temp.dir, { mode: 'async', queue: { maxRecords: 5, onFull: 'deny' } });
      const log = await AuditLog.open(options);
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => log.append({ kind: 'request', method: 'tools/list' })));
      const rejected = results.filter((item) => item.status === 'rejected');
      assert.ok(rejected.length > 0);
      assert.ok(rejected.every((item) => item.status === 'rejected' && item.reason instanceof AuditUnavailableError && /queue is full/.test(String(item.reason.message))));
      const accepted = results.filter((item) => item.status === 'fulfilled').length;
      await log.close();
      const requests = [...readRecords(options.dir)].filter((item) => item.record.kind === 'request').length;
      assert.equal(requests, accepted);
    } finally {
      temp.cleanup();
    }
  });

  test('async mode with onFull=drop counts dropped records and writes the count when space frees', async () => {
    const temp = tempDir();
    try {
      const options = auditOptions(temp.dir, { mode: 'async', queue: { maxRecords: 5, onFull: 'drop' } });
      const log = await AuditLog.open(options);
      const results = await Promise.all(Array.from({ length: 20 }, () => log.append({ kind: 'request', method: 'tools/list' })));
      const dropped = results.filter((item) => item.dropped === true).length;
      assert.ok(dropped > 0);
      await log.flush();
      await log.close();
      const records = [...readRecords(options.dir)].map((item) => item.record);
      const counted = records.filter((record) => record.event === 'audit.dropped').reduce((sum, record) => sum + Number(record.info?.['count']), 0);
      assert.equal(counted, dropped, 'every dropped record is accounted for in the log');
      assert.equal(records.filter((record) => record.kind === 'request').length, 20 - dropped);
    } finally {
      temp.cleanup();
    }
  });

  test('rotation by age starts a new segment; retention deletes only checkpointed segments and records it', async () => {
    const temp = tempDir();
    try {
      let now = Date.parse('2026-01-01T00:00:00Z');
      const options = { ...auditOptions(temp.dir, { checkpoint: { everyRecords: 10 }, rotation: { maxAgeSeconds: 3600 }, retention: { maxAgeDays: 2 } }), now: () => new Date(now) };
      const log = await AuditLog.open(options);
      for (let day = 0; day < 4; day += 1) {
        for (let index = 0; index < 12; index += 1) await log.append({ kind: 'request', method: 'tools/call', tool: `t${day}` });
        now += 86_400_000;
        // Segment mtimes drive retention: make each closed segment as old as its records.
        for (const segment of listSegments(options.dir)) {
          const { utimesSync } = await import('node:fs');
          const firstTs = Date.parse((JSON.parse(linesOf(segment.path)[0] as string) as AuditRecord).ts);
          utimesSync(segment.path, new Date(firstTs), new Date(firstTs));
        }
      }
      await log.checkpoint();
      await log.close();
      const records = [...readRecords(options.dir)].map((item) => item.record);
      const retention = records.filter((record) => record.event === 'audit.retention');
      assert.ok(retention.length > 0, 'a retention record lists what was deleted');
      assert.ok(listSegments(options.dir)[0]?.firstSeq !== 0, 'the oldest segment is gone');
      const report = await verifyBoth(options.dir);
      assert.equal(report.status, 'clean', report.problem?.message);
      assert.equal(report.scan.startedAfterRetention, true);
      // Deleting one more old segment by hand is not retention: no record accounts for it.
      unlinkSync((listSegments(options.dir)[0] as { path: string }).path);
      const doctored = await verifyBoth(options.dir);
      assert.equal(doctored.status, 'tampered');
      assert.match(doctored.problem?.message ?? '', /no audit\.retention record accounts/);
    } finally {
      temp.cleanup();
    }
  });

  test('a record with a field outside the schema is refused before it is written', async () => {
    const temp = tempDir();
    try {
      const log = await AuditLog.open(auditOptions(temp.dir));
      await assert.rejects(log.append({ kind: 'request', nested: { a: 1 } } as never), /unknown field 'nested'/);
      await assert.rejects(log.append({ kind: 'request', agent_id: { a: 1 } } as never), /field 'agent_id' must be string/);
      await log.close();
    } finally {
      temp.cleanup();
    }
  });
});


test('an append resolves only once its line is durable (its O_DSYNC write, or an fdatasync begun after it, has returned), with exactly one synced batch in flight', async (t) => {
  const temp = tempDir();
  const probe = await open(join(temp.dir, 'probe'), 'w');
  type Patched = { fd: number };
  const fileHandle = Object.getPrototypeOf(probe) as { datasync: (this: Patched) => Promise<void>; write: (this: Patched, ...args: unknown[]) => Promise<unknown> };
  await probe.close();
  const originalDatasync = fileHandle.datasync;
  const originalWrite = fileHandle.write;
  const isDsync = (fd: number): boolean => {
    const flags = /^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    return flags !== null && (Number.parseInt(flags[1] as string, 8) & fsConstants.O_DSYNC) !== 0;
  };
  // What the file held when a sync began is durable once that sync returns; an O_DSYNC write is durable when it returns.
  let durableBytes = 0;
  let inFlight = 0;
  let mostInFlight = 0;
  let dsyncWrites = 0;
  let plainWrites = 0;
  let datasyncs = 0;
  const track = async <T>(io: () => Promise<T>): Promise<T> => {
    inFlight += 1;
    mostInFlight = Math.max(mostInFlight, inFlight);
    try {
      return await io();
    } finally {
      inFlight -= 1;
    }
  };
  fileHandle.datasync = async function datasync(this: Patched): Promise<void> {
    const sizeAtStart = fstatSync(this.fd).size;
    datasyncs += 1;
    await track(() => originalDatasync.call(this));
    durableBytes = Math.max(durableBytes, sizeAtStart);
  };
  fileHandle.write = async function write(this: Patched, ...args: unknown[]): Promise<unknown> {
    const result = await track(() => originalWrite.apply(this, args));
    if (process.platform === 'linux' && isDsync(this.fd)) {
      dsyncWrites += 1;
      durableBytes = Math.max(durableBytes, fstatSync(this.fd).size);
    } else plainWrites += 1;
    return result;
  };
  try {
    const options = auditOptions(temp.dir, { checkpoint: { everyRecords: 100_000 }, rotation: { maxBytes: 64 * 1024 * 1024 } });
    const log = await AuditLog.open(options);
    const segment = (listSegments(options.dir)[0] as { path: string }).path;
    const batchesBefore = log.stats.batches;
    const checked: Array<Promise<void>> = [];
    // Bursts from several turns, so that records arrive while an earlier batch is being synced.
    for (let burst = 0; burst < 30; burst += 1) {
      for (let index = 0; index < 12; index += 1) {
        checked.push(log.append({ kind: 'request', method: 'tools/call', tool: `burst ${burst}` }).then((result) => {
          const text = readFileSync(segment, 'latin1');
          const at = text.indexOf(`"seq":${result.seq},`);
          assert.ok(at !== -1, `record ${result.seq} is in the segment`);
          const lineEnd = text.indexOf('\n', at) + 1;
          assert.ok(lineEnd <= durableBytes, `record ${result.seq} (ends at byte ${lineEnd}) was acknowledged before it was durable (durable up to ${durableBytes})`);
        }));
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(checked);
    const batches = log.stats.batches - batchesBefore;
    await log.close();
    t.diagnostic(`${batches} batches: ${dsyncWrites} O_DSYNC writes, ${plainWrites} plain writes, ${datasyncs} fdatasyncs, at most ${mostInFlight} at once`);
    assert.equal(mostInFlight, 1, 'one synced write at a time');
    // Records that arrived during a sync joined one later batch instead of each turn's own.
    assert.ok(batches > 1 && batches < 30, `${batches} batches for 30 bursts`);
    if (process.platform === 'linux') {
      assert.ok(dsyncWrites >= batches, 'every batch is written with O_DSYNC');
      assert.equal(plainWrites + datasyncs, 0, 'no write needs a separate fdatasync');
    }
    assert.equal(verifyLog(options.dir).status, 'clean');
  } finally {
    fileHandle.datasync = originalDatasync;
    fileHandle.write = originalWrite;
    temp.cleanup();
  }
});

test('a failed synced write fails the log: only records before the failed batch are acknowledged, every later append is refused', async () => {
  const temp = tempDir();
  const probe = await open(join(temp.dir, 'probe'), 'w');
  const fileHandle = Object.getPrototypeOf(probe) as { write: (this: unknown, ...args: unknown[]) => Promise<unknown> };
  await probe.close();
  const originalWrite = fileHandle.write;
  try {
    const options = auditOptions(temp.dir, { checkpoint: { everyRecords: 100_000 } });
    const log = await AuditLog.open(options);
    let writes = 0;
    fileHandle.write = async function write(this: unknown, ...args: unknown[]): Promise<unknown> {
      writes += 1;
      // The second batch's write fails, as a disk error reported by an O_DSYNC write does.
      if (writes === 2) throw new Error('EIO: injected write failure');
      return originalWrite.apply(this, args);
    };
    const outcomes: Array<Promise<{ seq: number } | { failed: string }>> = [];
    for (let burst = 0; burst < 10; burst += 1) {
      for (let index = 0; index < 8; index += 1) {
        outcomes.push(log.append({ kind: 'request', method: 'tools/call', tool: `burst ${burst}` }).then((result) => ({ seq: result.seq }), (error: Error) => ({ failed: error.message })));
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    const settled = await Promise.all(outcomes);
    const acknowledged = settled.filter((item): item is { seq: number } => 'seq' in item).map((item) => item.seq);
    const refused = settled.filter((item) => 'failed' in item);
    assert.ok(acknowledged.length > 0, 'the first batch is acknowledged');
    assert.ok(refused.length > 0, 'the records of the failed batch and after it are refused');
    // Acknowledged records form a prefix of the log: nothing after a refused one was acknowledged.
    const firstRefused = settled.findIndex((item) => 'failed' in item);
    assert.ok(settled.slice(firstRefused).every((item) => 'failed' in item), 'no record after a refused one was acknowledged');
    assert.deepEqual(acknowledged, [...acknowledged].sort((a, b) => a - b));
    await assert.rejects(log.append({ kind: 'request', method: 'tools/call' }), AuditUnavailableError);
    assert.match(String(log.failedWith?.message), /injected write failure/);
    await log.close();
  } finally {
    fileHandle.write = originalWrite;
    temp.cleanup();
  }
});

test('a burst of appends in one turn starts its synced write at the 32nd record, and the rest form the next batch', async () => {
  const temp = tempDir();
  try {
    const options = auditOptions(temp.dir);
    const log = await AuditLog.open(options);
    const before = log.stats;
    const acknowledged: number[] = [];
    // 100 appends without yielding: the first 32 are written while the other 68 are still being built.
    const appends = Array.from({ length: 100 }, (_, index) => log.append({ kind: 'request', method: 'tools/call', request_id: index }).then(({ seq }) => acknowledged.push(seq)));
    await Promise.all(appends);
    const after = log.stats;
    assert.equal(after.batches - before.batches, 2);
    // Each batch ends with its seal.
    assert.equal(after.records - before.records, 102);
    assert.equal(after.largestBatch, 69);
    assert.deepEqual(acknowledged, [...acknowledged].sort((a, b) => a - b), 'acknowledged in append order');
    // A burst below the threshold still goes as one batch at the end of its turn.
    await Promise.all(Array.from({ length: 20 }, (_, index) => log.append({ kind: 'request', method: 'tools/call', request_id: index })));
    assert.equal(log.stats.batches - after.batches, 1);
    await log.close();
    assert.equal((await verifyBoth(options.dir)).status, 'clean');
  } finally {
    temp.cleanup();
  }
});

test('blocking writes (the writer thread runs its log so): records are durable when acknowledged, and a failed write fails the log closed', async () => {
  const temp = tempDir();
  try {
    const options = auditOptions(temp.dir, { checkpoint: { everyRecords: 100_000 } });
    const log = await AuditLog.open({ ...options, blockingWrites: true });
    const first = await log.append({ kind: 'request', method: 'tools/call', tool: 'before' });
    const segment = listSegments(options.dir).at(-1);
    assert.ok(segment !== undefined && readFileSync(segment.path, 'utf8').includes(`"seq":${first.seq},`));
    // The segment's descriptor goes away under the writer, as a failing disk makes its writes fail.
    const handle = (log as unknown as { writer: { handle: { fd: number } } }).writer.handle;
    closeSync(handle.fd);
    await assert.rejects(log.append({ kind: 'request', method: 'tools/call', tool: 'lost' }), /EBADF|bad file descriptor/i);
    await assert.rejects(log.append({ kind: 'request', method: 'tools/call', tool: 'after' }), AuditUnavailableError);
    assert.ok(log.failedWith !== undefined);
    await log.close().catch(() => undefined);
  } finally {
    temp.cleanup();
  }
});
