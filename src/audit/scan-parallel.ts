import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { MerkleFrontier } from './merkle.js';
import type { ParsedCheckpoint } from './checkpoint.js';
import { listSegments, type SegmentFile } from './layout.js';
import { LogUnreadableError, compareCheckpoint, hasIntactRecordAfter, sameFrontier, scanLog, segmentStartFrontier, startingCursor, type Cursor, type ScanProblem, type ScanResult } from './scan.js';
import { checkChunkSafely, claimRange, type ChunkRequest, type ChunkResult } from './scan-chunk.js';
import { ZERO_HASH } from './schema.js';

/**
 * scanLog spread over threads: this thread and worker threads check record hashes, in-range links
 * and leaf hashes for byte ranges of whole lines, and hash each range's leaves into aligned Merkle
 * subtrees; this thread checks what joins the ranges (first seq and prev of each range, segment
 * starts), appends the subtrees to the frontier and compares checkpoints, in order, so the first
 * problem reported is the same one scanLog reports (a test holds them equal).
 */

export interface ParallelScanOptions {
  checkpoints: readonly ParsedCheckpoint[];
  fromLastCheckpoint?: boolean;
  /** Threads that check records, this one included (1: no worker threads). */
  workers: number;
  /** Bytes per work unit; smaller in tests to exercise range joins. */
  chunkBytes?: number;
}

// Small enough that the threads finish close together, large enough that per-range costs vanish.
const DEFAULT_CHUNK_BYTES = 1024 * 1024;

export async function scanLogParallel(dir: string, options: ParallelScanOptions): Promise<ScanResult> {
  const segments = listSegments(dir);
  const checkpointsBySize = new Map<number, ParsedCheckpoint>();
  for (const checkpoint of options.checkpoints) checkpointsBySize.set(checkpoint.size, checkpoint);
  const lastCheckpointSize = Math.max(0, ...options.checkpoints.map((item) => item.size));
  if (segments.length === 0) return scanLog(dir, options);
  let startIndex = 0;
  if (options.fromLastCheckpoint && lastCheckpointSize > 0) {
    for (let index = 0; index < segments.length; index += 1) if ((segments[index] as SegmentFile).firstSeq <= lastCheckpointSize - 1) startIndex = index;
  }
  const walked = segments.slice(startIndex);
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  // Workers take tens of milliseconds to start: start them before the planning below, and none
  // for a log of one range.
  const scheduler = new ChunkScheduler(Math.max(0, Math.min(options.workers - 1, Math.ceil(walkedBytes(walked) / chunkBytes) - 1)));
  try {
    const first = segments[startIndex] as SegmentFile;
    const firstStart = startingCursor(readHead(first.path), first);
    // Unusual starts (an unreadable first record) keep the one-thread path and its special cases.
    if (typeof firstStart === 'string') return scanLog(dir, options);
    const plan = planChunks(walked, chunkBytes);
    const checkpointSizes = [...checkpointsBySize.keys()];
    scheduler.start(plan.map((chunk) => ({ id: chunk.id, path: chunk.segment.path, start: chunk.start, end: chunk.end, checkpointSizes })));
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
      const chunkResult = await scheduler.result(index);
      if (chunkResult.error !== undefined) throw new LogUnreadableError(`cannot read segment ${segment.path}: ${chunkResult.error}`);
      const problemAt = (line: number, offset: number, seq: number, message: string): ScanProblem => ({ segment: segment.path, line, offset, seq, message, tornTail: false });
      const joinProblem = joinChecks(chunkResult, cursor, startsSegment, segment);
      if (joinProblem !== undefined) return finish(result, cursor, await classify(problemAt(lineBase + 1, chunk.start, cursor.expectSeq, joinProblem), isLast, lastCheckpointSize));
      const mismatch = appendChunk(chunkResult, cursor, checkpointsBySize, result);
      if (mismatch !== undefined) return finish(result, cursor, problemAt(lineBase + mismatch.index + 1, lineOffset(chunk, mismatch.index), cursor.expectSeq - 1, mismatch.message));
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
    await scheduler.close();
  }
}

/**
 * Adds a joined range's verified records to the cursor: its subtrees into the frontier, comparing
 * each checkpoint whose size the frontier reaches (the range's subtrees are cut at those sizes).
 * Returns the first mismatch and the index, within the range, of the record that ends it.
 */
function appendChunk(chunk: ChunkResult, cursor: Cursor, checkpoints: Map<number, ParsedCheckpoint>, result: ScanResult): { index: number; message: string } | undefined {
  const firstSeq = cursor.expectSeq;
  const heads = new Map(chunk.heads);
  for (const subtree of chunk.subtrees) {
    cursor.frontier.appendSubtree(subtree.hash, subtree.height);
    const checkpoint = checkpoints.get(cursor.frontier.size);
    if (checkpoint === undefined) continue;
    advance(cursor, result, cursor.frontier.size - cursor.expectSeq);
    cursor.head = heads.get(cursor.expectSeq - 1) ?? '';
    const mismatch = compareCheckpoint(checkpoint, cursor);
    if (mismatch) return { index: cursor.expectSeq - 1 - firstSeq, message: mismatch };
    result.checkpointsMatched += 1;
  }
  advance(cursor, result, firstSeq + chunk.count - cursor.expectSeq);
  if (cursor.frontier.size !== cursor.expectSeq) throw new Error(`internal error: the range's subtrees cover ${cursor.frontier.size - firstSeq} leaves, its records ${chunk.count}`);
  if (chunk.count > 0) cursor.head = chunk.lastHash;
  return undefined;
}

function advance(cursor: Cursor, result: ScanResult, records: number): void {
  cursor.expectSeq += records;
  result.records += records;
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

export interface PlannedChunk {
  id: number;
  segment: SegmentFile;
  start: number;
  end: number;
}

function walkedBytes(segments: readonly SegmentFile[]): number {
  let bytes = 0;
  for (const segment of segments) bytes += statSync(segment.path, { throwIfNoEntry: false })?.size ?? 0;
  return bytes;
}

/** Splits segments into ranges of whole lines of about chunkBytes each. */
export function planChunks(segments: readonly SegmentFile[], chunkBytes: number): PlannedChunk[] {
  const chunks: PlannedChunk[] = [];
  // Records are short: a small window finds the next newline in one read nearly always.
  const window = Buffer.allocUnsafe(8 * 1024);
  for (const segment of segments) {
    const fd = openSync(segment.path, 'r');
    try {
      const size = fstatSync(fd).size;
      let start = 0;
      while (start < size) {
        let end = Math.min(size, start + chunkBytes);
        if (end < size) {
          const newline = findNewline(fd, window, end, size);
          end = newline < 0 ? size : newline + 1;
        }
        chunks.push({ id: chunks.length, segment, start, end });
        start = end;
      }
      if (size === 0) chunks.push({ id: chunks.length, segment, start: 0, end: 0 });
    } finally {
      closeSync(fd);
    }
  }
  return chunks;
}

function findNewline(fd: number, window: Buffer, from: number, size: number): number {
  for (let position = from; position < size; position += window.length) {
    const read = readSync(fd, window, 0, Math.min(window.length, size - position), position);
    if (read === 0) return -1;
    const found = window.subarray(0, read).indexOf(0x0a);
    if (found >= 0) return position + found;
  }
  return -1;
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

/**
 * Runs the ranges on worker threads and on this thread, each thread claiming the next unclaimed
 * range from a shared counter, so no thread waits for another to hand it work and all finish within
 * about one range of each other. This thread claims ranges while the one it needs next is still
 * being checked elsewhere; on a 2-core host, one worker plus this thread keeps both cores busy
 * without a third thread competing for them.
 */
class ChunkScheduler {
  private readonly workers: Worker[] = [];
  private requests: readonly ChunkRequest[] = [];
  private results: Array<ChunkResult | undefined> = [];
  private readonly waiters = new Map<number, () => void>();
  private readonly claimed = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
  private failure: Error | undefined;
  private closing = false;

  /** Starts the workers; they wait for start(). */
  constructor(workerCount: number) {
    for (let index = 0; index < workerCount; index += 1) this.startWorker();
  }

  start(requests: readonly ChunkRequest[]): void {
    this.requests = requests;
    this.results = new Array<ChunkResult | undefined>(requests.length);
    for (const worker of this.workers) worker.postMessage(requests);
  }

  /** The result of range `index`, checking unclaimed ranges here until it is in. */
  async result(index: number): Promise<ChunkResult> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      const done = this.results[index];
      if (done !== undefined) return done;
      const claim = claimRange(this.claimed, this.requests.length);
      if (claim === undefined) await new Promise<void>((resolve) => this.waiters.set(index, resolve));
      else {
        this.settle(checkChunkSafely(this.requests[claim] as ChunkRequest));
        // Let the workers' results in, so a problem they found ends the scan early.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    // Stops the workers claiming more; terminate() below interrupts the range they are on.
    Atomics.store(this.claimed, 0, this.requests.length);
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }

  private startWorker(): void {
    const worker = new Worker(new URL('./scan-worker.js', import.meta.url), { workerData: this.claimed });
    worker.on('message', (result: ChunkResult) => this.settle(result));
    worker.on('error', (error) => this.fail(error));
    // A worker ends on its own (code 0) once no range is left to claim.
    worker.on('exit', (code) => {
      if (code !== 0 && !this.closing) this.fail(new Error(`a verification worker exited with code ${code}`));
    });
    this.workers.push(worker);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const wake of this.waiters.values()) wake();
    this.waiters.clear();
  }

  private settle(result: ChunkResult): void {
    this.results[result.id] = result;
    this.waiters.get(result.id)?.();
    this.waiters.delete(result.id);
  }
}
