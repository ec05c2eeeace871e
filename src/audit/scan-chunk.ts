import { closeSync, openSync, readSync } from 'node:fs';
import { chainMembersAt, recordHashInPlace, recordHashOfLine } from './canonical.js';
import { AlignedSubtreeBuilder, leafDigestInPlace, type AlignedSubtree } from './merkle.js';
import { MarkedLines, noteRetention } from './scan.js';

/**
 * Checks one byte range of a segment (whole lines) the way walkSegment does, except for what needs
 * the records before the range (the first line's seq and prev, Merkle frontier, checkpoints),
 * which scanLogParallel checks from the returned summary. Runs in the worker threads and on the
 * thread that called scanLogParallel.
 */

export interface ChunkRequest {
  id: number;
  path: string;
  start: number;
  end: number;
  /** Checkpoint tree sizes: the worker reports the hash of record size-1 when it sees it. */
  checkpointSizes: number[];
}

export interface ChunkProblem {
  /** 0-based index of the bad line within the chunk. */
  index: number;
  offset: number;
  message: string;
  /** Expected seq, when the worker knows it (not for the chunk's first line). */
  seq?: number;
}

export interface ChunkResult {
  id: number;
  /** Verified lines (all before the problem, if any). */
  count: number;
  firstSeq: number;
  firstPrev: string;
  lastHash: string;
  /**
   * The verified lines' leaves as aligned Merkle subtrees (their seqs are their leaf indexes), cut
   * at every checkpoint size, so the main thread can compute the root at each checkpoint.
   */
  subtrees: AlignedSubtree[];
  endOffset: number;
  retainedFrom: number[];
  /** [seq, hash] of records that end a checkpoint (seq + 1 is a checkpoint size). */
  heads: Array<[number, string]>;
  problem?: ChunkProblem;
  error?: string;
}

// Reused across ranges: a fresh buffer per range costs a page fault per 4 KiB on first touch.
// checkChunk is synchronous and keeps nothing that points into it.
let readBuffer = Buffer.allocUnsafe(0);

/** Reads [start, end) into the shared buffer with `spare` zero bytes in front. */
function readRange(path: string, start: number, end: number, spare: number): Buffer {
  if (readBuffer.length < spare + end - start) readBuffer = Buffer.allocUnsafe(spare + end - start);
  const data = readBuffer.fill(0, 0, spare);
  const fd = openSync(path, 'r');
  try {
    let read = 0;
    while (read < end - start) {
      const got = readSync(fd, data, spare + read, end - start - read, start + read);
      if (got === 0) break;
      read += got;
    }
    return data.subarray(0, spare + read);
  } finally {
    closeSync(fd);
  }
}

export function emptyChunkResult(request: ChunkRequest): ChunkResult {
  return { id: request.id, count: 0, firstSeq: -1, firstPrev: '', lastHash: '', subtrees: [], endOffset: request.start, retainedFrom: [], heads: [] };
}

export function checkChunk(request: ChunkRequest): ChunkResult {
  // The spare byte lets the first line's leaf prefix be written in place like every other line's.
  const data = readRange(request.path, request.start, request.end, 1);
  const marked = new MarkedLines(data);
  const retained = new Set<number>();
  const result = emptyChunkResult(request);
  const checkpointSizes = new Set(request.checkpointSizes);
  let tree: AlignedSubtreeBuilder | undefined;
  let offset = 1;
  let expectSeq = -1;
  let head = '';
  const fail = (message: string, seq?: number): void => {
    result.problem = { index: result.count, offset: request.start + offset - 1, message, ...(seq === undefined ? {} : { seq }) };
  };
  while (offset < data.length) {
    const end = data.indexOf(0x0a, offset);
    const known = expectSeq < 0 ? undefined : expectSeq;
    if (end < 0) {
      fail('incomplete record at the end of the segment (no newline)', known);
      break;
    }
    const members = chainMembersAt(data, offset, end);
    if (typeof members === 'string') {
      fail(`record is malformed: ${members}`, known);
      break;
    }
    const retention = marked.has(offset, end);
    const line = retention ? data.subarray(offset, end) : undefined;
    const leaf = leafDigestInPlace(data, offset, end);
    // A marked line is parsed below, so it keeps its bytes; every other line is hashed in place.
    const recordHash = line !== undefined ? recordHashOfLine(line, members.hashAt) : recordHashInPlace(data, offset, end, members.hashAt);
    if (recordHash !== members.hash) {
      fail('record hash does not match its content: the record was altered', known);
      break;
    }
    if (result.count === 0) {
      result.firstSeq = members.seq;
      result.firstPrev = members.prev;
      tree = new AlignedSubtreeBuilder(members.seq);
    } else {
      if (members.seq !== expectSeq) {
        fail(`record has seq ${members.seq} where ${expectSeq} was expected: a record was deleted, inserted or reordered`, expectSeq);
        break;
      }
      if (members.prev !== head) {
        fail(`record's prev does not match the hash of record ${expectSeq - 1}: a record was deleted, inserted, reordered or replaced`, expectSeq);
        break;
      }
    }
    (tree as AlignedSubtreeBuilder).add(leaf);
    if (line !== undefined) noteRetention(line, retained);
    if (checkpointSizes.has(members.seq + 1)) {
      result.heads.push([members.seq, members.hash]);
      (tree as AlignedSubtreeBuilder).cut();
    }
    head = members.hash;
    expectSeq = members.seq + 1;
    result.count += 1;
    offset = end + 1;
  }
  result.lastHash = head;
  result.endOffset = request.start + offset - 1;
  result.retainedFrom = [...retained];
  result.subtrees = tree?.subtrees() ?? [];
  return result;
}

/** Claims the next unchecked range for this thread, if any is left. `claimed` is one Int32 on a SharedArrayBuffer. */
export function claimRange(claimed: Int32Array, count: number): number | undefined {
  const index = Atomics.add(claimed, 0, 1);
  return index < count ? index : undefined;
}

/** checkChunk, with a failure (an unreadable file) reported in the result instead of thrown. */
export function checkChunkSafely(request: ChunkRequest): ChunkResult {
  try {
    return checkChunk(request);
  } catch (error) {
    return { ...emptyChunkResult(request), error: error instanceof Error ? error.message : String(error) };
  }
}
