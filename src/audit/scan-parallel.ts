import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { MerkleFrontier } from './merkle.js';
import type { ParsedCheckpoint } from './checkpoint.js';
import { listSegments, type SegmentFile } from './layout.js';
import { LogUnreadableError, compareCheckpoint, hasIntactRecordAfter, sameFrontier, scanLog, segmentStartFrontier, startingCursor, type Cursor, type ScanProblem, type ScanResult } from './scan.js';
import type { ChunkRequest, ChunkResult } from './scan-worker.js';
import { ZERO_HASH } from './schema.js';

/**
 * scanLog spread over worker threads: workers check record hashes, in-range links and leaf
 * hashes for byte ranges of whole lines; this thread checks what joins the ranges (first seq and
 * prev of each range, segment starts), builds the Merkle frontier and compares checkpoints, in
 * order, so the first problem reported is the same one scanLog reports (a test holds them equal).
 */

export interface ParallelScanOptions {
  checkpoints: readonly ParsedCheckpoint[];
  fromLastCheckpoint?: boolean;
  workers: number;
  /** Bytes per work unit; smaller in tests to exercise range joins. */
  chunkBytes?: number;
}

const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;

export async function scanLogParallel(dir: string, options: ParallelScanOptions): Promise<ScanResult> {
  const segments = listSegments(dir);
  const checkpointsBySize = new Map<number, ParsedCheckpoint>();
  for (const checkpoint of options.checkpoints) checkpointsBySize.set(checkpoint.size, checkpoint);
  const lastCheckpointSize = Math.max(0, ...options.checkpoints.map((item) => item.size));
  if (segments.length === 0 || options.workers < 2) return scanLog(dir, options);
  let startIndex = 0;
  if (options.fromLastCheckpoint && lastCheckpointSize > 0) {
    for (let index = 0; index < segments.length; index += 1) if ((segments[index] as SegmentFile).firstSeq <= lastCheckpointSize - 1) startIndex = index;
  }
  const first = segments[startIndex] as SegmentFile;
  const firstStart = startingCursor(readHead(first.path), first);
  // Unusual starts (an unreadable first record) keep the one-thread path and its special cases.
  if (typeof firstStart === 'string') return scanLog(dir, options);
  const plan = planChunks(segments.slice(startIndex), options.chunkBytes ?? DEFAULT_CHUNK_BYTES);
  const pool = new WorkerPool(Math.min(options.workers, plan.length));
  try {
    const checkpointSizes = [...checkpointsBySize.keys()];
    const pending = plan.map((chunk) => pool.run({ id: chunk.id, path: chunk.segment.path, start: chunk.start, end: chunk.end, checkpointSizes }));
    const result: ScanResult = { segments, firstSeq: firstStart.expectSeq, nextSeq: 0, head: ZERO_HASH, frontier: new MerkleFrontier(), records: 0, checkpointsMatched: 0, checkpointsSkipped: options.checkpoints.filter((item) => item.size < firstStart.expectSeq).length, lastSegmentValidBytes: 0, startedAfterRetention: startIndex === 0 && firstStart.expectSeq > 0, retainedFrom: new Set() };
    const cursor: Cursor = firstStart;
    const atStart = checkpointsBySize.get(cursor.expectSeq);
    if (atStart !== undefined && cursor.expectSeq > 0) {
      const mismatch = compareCheckpoint(atStart, cursor);
      if (mismatch) return finish(result, cursor, { segment: first.path, line: 1, offset: 0, seq: cursor.expectSeq, message: mismatch, tornTail: false });
      result.checkpointsMatched += 1;
    }
    let lineBase = 0;
    let previousSegment: SegmentFile | undefined;
    for (let index = 0; index < plan.length; index += 1) {
      const chunk = plan[index] as PlannedChunk;
      const segment = chunk.segment;
      const isLast = segment === segments[segments.length - 1];
      const startsSegment = segment !== previousSegment;
      if (startsSegment) {
        lineBase = 0;
        if (previousSegment !== undefined && segment.firstSeq !== cursor.expectSeq) {
          return finish(result, cursor, { segment: segment.path, line: 1, offset: 0, seq: cursor.expectSeq, message: `segment starts at seq ${segment.firstSeq} but seq ${cursor.expectSeq} was expected: a segment is missing or was added`, tornTail: false });
        }
        previousSegment = segment;
      }
      const chunkResult = await (pending[index] as Promise<ChunkResult>);
      if (chunkResult.error !== undefined) throw new LogUnreadableError(`cannot read segment ${segment.path}: ${chunkResult.error}`);
      const problemAt = (line: number, offset: number, seq: number, message: string): ScanProblem => ({ segment: segment.path, line, offset, seq, message, tornTail: false });
      const joinProblem = joinChecks(chunkResult, cursor, startsSegment, segment);
      if (joinProblem !== undefined) return finish(result, cursor, await classify(problemAt(lineBase + 1, chunk.start, cursor.expectSeq, joinProblem), isLast, lastCheckpointSize));
      const leaves = Buffer.from(chunkResult.leaves);
      const heads = new Map(chunkResult.heads);
      for (let leafIndex = 0; leafIndex < chunkResult.count; leafIndex += 1) {
        cursor.frontier.append(leaves.toString('hex', leafIndex * 32, leafIndex * 32 + 32));
        cursor.expectSeq += 1;
        result.records += 1;
        const checkpoint = checkpointsBySize.get(cursor.expectSeq);
        if (checkpoint === undefined) continue;
        cursor.head = heads.get(cursor.expectSeq - 1) ?? '';
        const mismatch = compareCheckpoint(checkpoint, cursor);
        if (mismatch) return finish(result, cursor, problemAt(lineBase + leafIndex + 1, lineOffset(chunk, leafIndex), cursor.expectSeq - 1, mismatch));
        result.checkpointsMatched += 1;
      }
      if (chunkResult.count > 0) cursor.head = chunkResult.lastHash;
      for (const seq of chunkResult.retainedFrom) result.retainedFrom.add(seq);
      if (isLast) result.lastSegmentValidBytes = chunkResult.endOffset;
      if (chunkResult.problem) {
        const { index: badIndex, offset, message, seq } = chunkResult.problem;
        return finish(result, cursor, await classify(problemAt(lineBase + badIndex + 1, offset, seq ?? cursor.expectSeq, message), isLast, lastCheckpointSize));
      }
      lineBase += chunkResult.count;
    }
    finish(result, cursor, undefined);
    if (lastCheckpointSize > result.nextSeq) {
      const last = segments[segments.length - 1] as SegmentFile;
      result.problem = { segment: last.path, line: 0, offset: result.lastSegmentValidBytes, seq: result.nextSeq, message: `the log ends at seq ${result.nextSeq - 1} but a signed checkpoint covers ${lastCheckpointSize} records: records were removed from the end`, tornTail: false };
    }
    return result;
  } finally {
    await pool.close();
  }
}

/** The checks walkSegment makes on a line that depend on the line before it or on the segment. */
function joinChecks(chunk: ChunkResult, cursor: Cursor, startsSegment: boolean, segment: SegmentFile): string | undefined {
  // Nothing verified in the range: either it is empty or its first line already failed in the worker.
  if (chunk.count === 0) return undefined;
  if (chunk.firstSeq !== cursor.expectSeq) return `record has seq ${chunk.firstSeq} where ${cursor.expectSeq} was expected: a record was deleted, inserted or reordered`;
  if (chunk.firstPrev !== cursor.head) return `record's prev does not match the hash of record ${cursor.expectSeq - 1}: a record was deleted, inserted, reordered or replaced`;
  if (startsSegment && cursor.expectSeq !== segment.firstSeq) return 'segment does not start where its name says';
  if (startsSegment && cursor.frontier.size > 0) {
    const end = readHead(segment.path);
    const newline = end.indexOf(0x0a);
    if (!sameFrontier(segmentStartFrontier(end.subarray(0, newline < 0 ? end.length : newline)), cursor.frontier)) return 'segment-start record carries a Merkle frontier that does not match the records before it';
  }
  return undefined;
}

function finish(result: ScanResult, cursor: Cursor, problem: ScanProblem | undefined): ScanResult {
  result.nextSeq = cursor.expectSeq;
  result.head = cursor.head;
  result.frontier = cursor.frontier;
  if (problem) result.problem = problem;
  return result;
}

async function classify(problem: ScanProblem, isLast: boolean, lastCheckpointSize: number): Promise<ScanProblem> {
  if (!isLast || problem.seq < lastCheckpointSize) return problem;
  const size = statSync(problem.segment).size;
  const tail = readRange(problem.segment, problem.offset, size);
  return { ...problem, tornTail: !hasIntactRecordAfter(tail, 0) };
}

interface PlannedChunk {
  id: number;
  segment: SegmentFile;
  start: number;
  end: number;
}

/** Splits segments into ranges of whole lines of about chunkBytes each. */
function planChunks(segments: readonly SegmentFile[], chunkBytes: number): PlannedChunk[] {
  const chunks: PlannedChunk[] = [];
  for (const segment of segments) {
    const size = statSync(segment.path).size;
    let start = 0;
    while (start < size) {
      let end = Math.min(size, start + chunkBytes);
      if (end < size) {
        const newline = findNewline(segment.path, end, size);
        end = newline < 0 ? size : newline + 1;
      }
      chunks.push({ id: chunks.length, segment, start, end });
      start = end;
    }
    if (size === 0) chunks.push({ id: chunks.length, segment, start: 0, end: 0 });
  }
  return chunks;
}

function findNewline(path: string, from: number, size: number): number {
  const window = Buffer.alloc(64 * 1024);
  const fd = openSync(path, 'r');
  try {
    for (let position = from; position < size; position += window.length) {
      const read = readSync(fd, window, 0, Math.min(window.length, size - position), position);
      const found = window.subarray(0, read).indexOf(0x0a);
      if (found >= 0) return position + found;
    }
    return -1;
  } finally {
    closeSync(fd);
  }
}

function readRange(path: string, start: number, end: number): Buffer {
  const data = Buffer.alloc(Math.max(0, end - start));
  const fd = openSync(path, 'r');
  try {
    let read = 0;
    while (read < data.length) {
      const got = readSync(fd, data, read, data.length - read, start + read);
      if (got === 0) break;
      read += got;
    }
    return data.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

/** The first line of a segment (segment-start records are small), or the whole file if longer. */
function readHead(path: string): Buffer {
  const size = statSync(path).size;
  const head = readRange(path, 0, Math.min(size, 256 * 1024));
  return head.indexOf(0x0a) >= 0 ? head : readRange(path, 0, size);
}

/** Rare path (a checkpoint mismatch inside a range): find the line's offset again. */
function lineOffset(chunk: PlannedChunk, index: number): number {
  const data = readRange(chunk.segment.path, chunk.start, chunk.end);
  let offset = 0;
  for (let skipped = 0; skipped < index; skipped += 1) offset = data.indexOf(0x0a, offset) + 1;
  return chunk.start + offset;
}

class WorkerPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: Array<{ request: ChunkRequest; resolve: (result: ChunkResult) => void; reject: (error: Error) => void }> = [];
  private readonly waiting = new Map<number, { resolve: (result: ChunkResult) => void; reject: (error: Error) => void }>();

  constructor(size: number) {
    for (let index = 0; index < Math.max(1, size); index += 1) {
      const worker = new Worker(new URL('./scan-worker.js', import.meta.url));
      worker.on('message', (result: ChunkResult) => {
        this.waiting.get(result.id)?.resolve(result);
        this.waiting.delete(result.id);
        this.idle.push(worker);
        this.drain();
      });
      worker.on('error', (error) => {
        for (const entry of this.waiting.values()) entry.reject(error);
        this.waiting.clear();
      });
      this.workers.push(worker);
      this.idle.push(worker);
    }
  }

  run(request: ChunkRequest): Promise<ChunkResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.drain();
    });
  }

  private drain(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop() as Worker;
      const job = this.queue.shift() as (typeof this.queue)[number];
      this.waiting.set(job.request.id, { resolve: job.resolve, reject: job.reject });
      worker.postMessage(job.request);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }
}
