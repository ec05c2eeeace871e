import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { chainMembers, recordHashOfLine } from './canonical.js';
import { leafHashHex } from './merkle.js';
import { RETENTION_MARKER, noteRetention } from './scan.js';

/**
 * Verification worker: checks one byte range of a segment (whole lines) the way walkSegment does,
 * except for what needs the records before the range (the first line's seq and prev, Merkle
 * frontier, checkpoints), which the main thread checks from the returned summary.
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
  /** count x 32 bytes of leaf hashes. */
  leaves: ArrayBuffer;
  endOffset: number;
  retainedFrom: number[];
  /** [seq, hash] of records that end a checkpoint (seq + 1 is a checkpoint size). */
  heads: Array<[number, string]>;
  problem?: ChunkProblem;
  error?: string;
}

function readRange(path: string, start: number, end: number): Buffer {
  const data = Buffer.alloc(end - start);
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

export function checkChunk(request: ChunkRequest): ChunkResult {
  const data = readRange(request.path, request.start, request.end);
  const leaves = Buffer.alloc(Math.max(32, Math.ceil(data.length / 64) * 32));
  let leafBuffer = leaves;
  const retained = new Set<number>();
  const result: ChunkResult = { id: request.id, count: 0, firstSeq: -1, firstPrev: '', lastHash: '', leaves: new ArrayBuffer(0), endOffset: request.start, retainedFrom: [], heads: [] };
  const checkpointSizes = new Set(request.checkpointSizes);
  let offset = 0;
  let expectSeq = -1;
  let head = '';
  const fail = (message: string, seq?: number): void => {
    result.problem = { index: result.count, offset: request.start + offset, message, ...(seq === undefined ? {} : { seq }) };
  };
  while (offset < data.length) {
    const end = data.indexOf(0x0a, offset);
    if (end < 0) {
      fail('incomplete record at the end of the segment (no newline)', expectSeq < 0 ? undefined : expectSeq);
      break;
    }
    const line = data.subarray(offset, end);
    const members = chainMembers(line);
    const known = expectSeq < 0 ? undefined : expectSeq;
    if (typeof members === 'string') {
      fail(`record is malformed: ${members}`, known);
      break;
    }
    if (recordHashOfLine(line, members.hashAt) !== members.hash) {
      fail('record hash does not match its content: the record was altered', known);
      break;
    }
    if (result.count === 0) {
      result.firstSeq = members.seq;
      result.firstPrev = members.prev;
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
    if ((result.count + 1) * 32 > leafBuffer.length) {
      const grown = Buffer.alloc(leafBuffer.length * 2);
      leafBuffer.copy(grown);
      leafBuffer = grown;
    }
    leafBuffer.write(leafHashHex(line), result.count * 32, 'hex');
    if (line.includes(RETENTION_MARKER)) noteRetention(line, retained);
    if (checkpointSizes.has(members.seq + 1)) result.heads.push([members.seq, members.hash]);
    head = members.hash;
    expectSeq = members.seq + 1;
    result.count += 1;
    offset = end + 1;
  }
  result.lastHash = head;
  result.endOffset = request.start + offset;
  result.retainedFrom = [...retained];
  const packed = new ArrayBuffer(result.count * 32);
  leafBuffer.copy(Buffer.from(packed), 0, 0, result.count * 32);
  result.leaves = packed;
  return result;
}

parentPort?.on('message', (request: ChunkRequest) => {
  try {
    const result = checkChunk(request);
    parentPort?.postMessage(result, [result.leaves]);
  } catch (error) {
    parentPort?.postMessage({ id: request.id, count: 0, firstSeq: -1, firstPrev: '', lastHash: '', leaves: new ArrayBuffer(0), endOffset: request.start, retainedFrom: [], heads: [], error: error instanceof Error ? error.message : String(error) } satisfies ChunkResult);
  }
});
