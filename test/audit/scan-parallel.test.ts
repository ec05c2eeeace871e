import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { AuditLog } from '../../src/audit/index.js';
import { buildLine } from '../../src/audit/canonical.js';
import { listCheckpoints, listSegments, type SegmentFile } from '../../src/audit/layout.js';
import { planChunks } from '../../src/audit/scan-parallel.js';
import { MarkedLines, RETENTION_MARKER } from '../../src/audit/scan.js';
import fc from 'fast-check';
import type { AuditRecord } from '../../src/audit/schema.js';
import { appendMany, auditOptions, tempDir, verifyBoth } from './helpers.js';

/**
 * The parallel verifier joins ranges checked on different threads and rebuilds the Merkle tree
 * from the ranges' aligned subtrees. These tests put ranges, checkpoints and damage where the
 * joins are: every report must equal the one-thread verifier's (verifyBoth asserts it).
 */

const SMALL = 2048;
const RUNS = [
  { workers: 1, chunkBytes: SMALL },
  { workers: 2, chunkBytes: SMALL },
  { workers: 3, chunkBytes: 5000 },
  { workers: 2, chunkBytes: 1024 * 1024 },
];

function linesOf(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n').slice(0, -1);
}

/** Line indexes (0-based) within the segment of the first line of each range after the first. */
function rangeStarts(segment: SegmentFile, chunkBytes: number): number[] {
  const data = readFileSync(segment.path);
  return planChunks([segment], chunkBytes)
    .slice(1)
    .map((chunk) => data.subarray(0, chunk.start).filter((byte) => byte === 0x0a).length);
}

/** Rewrites the record with `seq` and re-chains every record after it, as an attacker without the key would. */
function rewriteFrom(dir: string, seq: number): void {
  let head: string | undefined;
  for (const segment of listSegments(dir)) {
    const rewritten = linesOf(segment.path).map((text) => {
      const record = JSON.parse(text) as AuditRecord;
      if (record.seq === seq) record.agent_id = 'someone-else';
      if (head === undefined && record.seq !== seq) return text;
      const { hash: _hash, seq: recordSeq, prev: _prev, schema: _schema, ...fields } = record;
      const built = buildLine(fields, recordSeq, head ?? record.prev);
      head = built.hash;
      return built.line;
    });
    writeFileSync(segment.path, `${rewritten.join('\n')}\n`);
  }
}

test('MarkedLines finds exactly the lines that include the retention marker, with one search per buffer', () => {
  const marker = RETENTION_MARKER.toString();
  const piece = fc.constantFrom(marker, marker.slice(0, 12), marker.slice(5), '{"a":1}', 'x', '"event":"', `${marker}${marker}`);
  fc.assert(
    fc.property(fc.array(fc.array(piece, { maxLength: 5 }), { maxLength: 12 }), (lines) => {
      const texts = lines.map((parts) => parts.join(''));
      const data = Buffer.from(texts.map((text) => `${text}\n`).join(''));
      const marked = new MarkedLines(data);
      let start = 0;
      for (const text of texts) {
        const end = start + Buffer.byteLength(text);
        assert.equal(marked.has(start, end), data.subarray(start, end).includes(RETENTION_MARKER), `line ${JSON.stringify(text)}`);
        start = end + 1;
      }
    }),
    { numRuns: 300 },
  );
});

describe('parallel verification where ranges join', () => {
  const temp = tempDir();
  let dir = '';
  let originals: Array<{ path: string; data: Buffer }> = [];

  before(async () => {
    // Odd checkpoint spacing and small segments: checkpoints fall anywhere inside ranges.
    const options = auditOptions(temp.dir, { checkpoint: { everyRecords: 13 }, rotation: { maxBytes: 40_000 } });
    dir = options.dir;
    const log = await AuditLog.open(options);
    await appendMany(log, 500, 8);
    await log.close();
    originals = listSegments(dir).map((segment) => ({ path: segment.path, data: readFileSync(segment.path) }));
    assert.ok(originals.length >= 3);
  });
  after(() => temp.cleanup());

  const restore = (): void => {
    for (const original of originals) writeFileSync(original.path, original.data);
  };

  const damaged = async (change: () => void, expect: RegExp, runs = RUNS): Promise<void> => {
    change();
    try {
      const report = await verifyBoth(dir, {}, runs);
      assert.equal(report.status, 'tampered');
      assert.match(report.problem?.message ?? '', expect);
    } finally {
      restore();
    }
  };

  test('a clean log verifies the same with every range size, thread count and start', async () => {
    const report = await verifyBoth(dir, {}, [...RUNS, { workers: 2, chunkBytes: 300 }, { workers: 4, chunkBytes: 777 }]);
    assert.equal(report.status, 'clean', report.problem?.message);
    assert.equal(report.scan.checkpointsMatched, report.checkpoints);
    assert.ok(report.checkpoints > 30);
    const fromCheckpoint = await verifyBoth(dir, { fromCheckpoint: true }, RUNS);
    assert.equal(fromCheckpoint.status, 'clean', fromCheckpoint.problem?.message);
  });

  test('damage to the last line of a range or the first line of the next is located the same way', async () => {
    const segment = listSegments(dir)[1] as SegmentFile;
    const starts = rangeStarts(segment, SMALL).slice(0, 4);
    assert.ok(starts.length >= 4, 'the segment spans several ranges');
    for (const first of starts) {
      for (const index of [first - 1, first]) {
        await damaged(() => {
          const lines = linesOf(segment.path);
          lines[index] = (lines[index] as string).replace('"kind":"', '"kind":"X');
          writeFileSync(segment.path, `${lines.join('\n')}\n`);
        }, /record hash does not match/);
      }
      await damaged(() => writeFileSync(segment.path, `${linesOf(segment.path).filter((_, index) => index !== first).join('\n')}\n`), /deleted, inserted or reordered/);
      await damaged(() => {
        const lines = linesOf(segment.path);
        [lines[first - 1], lines[first]] = [lines[first] as string, lines[first - 1] as string];
        writeFileSync(segment.path, `${lines.join('\n')}\n`);
      }, /deleted, inserted or reordered/);
      await damaged(() => {
        const lines = linesOf(segment.path);
        writeFileSync(segment.path, `${[...lines.slice(0, first), lines[first] as string, ...lines.slice(first)].join('\n')}\n`);
      }, /deleted, inserted or reordered/);
    }
  });

  test('a record rewritten and re-chained at a range boundary is caught by the next checkpoint, at the same line', async () => {
    const segment = listSegments(dir)[1] as SegmentFile;
    for (const first of rangeStarts(segment, SMALL).slice(0, 3)) {
      for (const index of [first - 1, first]) await damaged(() => rewriteFrom(dir, segment.firstSeq + index), /checkpoint of size \d+ .*records up to the checkpoint were changed/);
    }
  });

  test('a checkpoint whose last record ends a range, and one whose next record starts a range', async () => {
    const segment = listSegments(dir)[1] as SegmentFile;
    const size = (listCheckpoints(dir).map((item) => item.checkpoint.size).find((item) => item > segment.firstSeq + 5) as number);
    const data = readFileSync(segment.path);
    let newline = -1;
    for (let line = segment.firstSeq; line < size; line += 1) newline = data.indexOf(0x0a, newline + 1);
    // A range ends after the first newline at or past chunkBytes: here, right after record size-1.
    const runs = [{ workers: 2, chunkBytes: newline }, { workers: 3, chunkBytes: newline }];
    const clean = await verifyBoth(dir, {}, runs);
    assert.equal(clean.status, 'clean', clean.problem?.message);
    await damaged(() => rewriteFrom(dir, size - 1), new RegExp(`checkpoint of size ${size} `), runs);
    await damaged(() => rewriteFrom(dir, size), /checkpoint of size \d+ /, runs);
  });

  test('a torn tail in a range of its own, or inside the last range, is reported the same way', async () => {
    const last = listSegments(dir).pop() as SegmentFile;
    const size = readFileSync(last.path).length;
    for (const chunkBytes of [size - 1, SMALL, 1024 * 1024]) {
      appendFileSync(last.path, '{"agent_id":"a","decision":"allow","hash":"12ab');
      try {
        const report = await verifyBoth(dir, {}, [{ workers: 2, chunkBytes }]);
        assert.equal(report.status, 'tampered');
        assert.equal(report.problem !== undefined && 'tornTail' in report.problem && report.problem.tornTail, true);
      } finally {
        restore();
      }
    }
  });
});
