import { readFileSync } from 'node:fs';
import { chainMembers, recordHashOfLine } from './canonical.js';
import { leafHashHex, MerkleFrontier } from './merkle.js';
import type { ParsedCheckpoint } from './checkpoint.js';
import { listSegments, type SegmentFile } from './layout.js';
import { AuditEvent, ZERO_HASH } from './schema.js';

/**
 * Walks a log's segments once, checking every record's own hash, its sequence number and its link
 * to the record before, and comparing the Merkle root and chain head with every checkpoint whose
 * tree size falls in the walked range. Recovery on open and `mcp-auditctl verify` share it.
 */

export interface ScanProblem {
  segment: string;
  /** 1-based line within the segment file. */
  line: number;
  /** Byte offset of that line within the segment file. */
  offset: number;
  /** The sequence number expected at this position. */
  seq: number;
  message: string;
  /** True when this looks like a crash's torn tail rather than an edit (see classify). */
  tornTail: boolean;
}

export interface ScanOptions {
  /** Checkpoints already signature-checked, any order. */
  checkpoints: readonly ParsedCheckpoint[];
  /** Start at the segment holding the last checkpoint's last record instead of the first segment. */
  fromLastCheckpoint?: boolean;
  /** Called with each verified record line (no newline), its seq, segment and byte offset in the segment. */
  onRecord?: (line: Buffer, seq: number, segment: SegmentFile, offset: number) => void;
  /** Stop once this many records (seq 0..stopAt-1) are walked: the frontier and head are then at stopAt. */
  stopAt?: number;
  /** Collect every leaf hash (for inclusion proofs). */
  collectLeaves?: boolean;
}

export interface ScanResult {
  segments: SegmentFile[];
  /** First seq walked. */
  firstSeq: number;
  /** Seq the next record would get. */
  nextSeq: number;
  head: string;
  frontier: MerkleFrontier;
  records: number;
  checkpointsMatched: number;
  /** Checkpoints older than the first record walked (not comparable in this run). */
  checkpointsSkipped: number;
  problem?: ScanProblem;
  /** Bytes of the last segment that hold verified records. */
  lastSegmentValidBytes: number;
  /** Timestamp of the last segment's first record. */
  lastSegmentStartedAt?: string;
  leaves?: Buffer[];
  /** Set when the first walked segment does not start at seq 0 (older segments removed by retention). */
  startedAfterRetention: boolean;
  /** `info.retained_from_seq` of every audit.retention record walked: which starting points retention explains. */
  retainedFrom: Set<number>;
}

export class LogUnreadableError extends Error {
  override name = 'LogUnreadableError';
}

export interface Cursor {
  expectSeq: number;
  head: string;
  frontier: MerkleFrontier;
}

export function scanLog(dir: string, options: ScanOptions): ScanResult {
  const segments = listSegments(dir);
  const checkpointsBySize = new Map<number, ParsedCheckpoint>();
  for (const checkpoint of options.checkpoints) checkpointsBySize.set(checkpoint.size, checkpoint);
  const lastCheckpointSize = Math.max(0, ...options.checkpoints.map((item) => item.size));
  const result: ScanResult = {
    segments,
    firstSeq: 0,
    nextSeq: 0,
    head: ZERO_HASH,
    frontier: new MerkleFrontier(),
    records: 0,
    checkpointsMatched: 0,
    checkpointsSkipped: 0,
    lastSegmentValidBytes: 0,
    startedAfterRetention: false,
    retainedFrom: new Set(),
  };
  if (options.collectLeaves) result.leaves = [];
  if (segments.length === 0) {
    if (lastCheckpointSize > 0) result.problem = { segment: '(none)', line: 0, offset: 0, seq: 0, message: `the log holds no segments but a checkpoint covers ${lastCheckpointSize} records: the log was deleted or truncated`, tornTail: false };
    return result;
  }
  let startIndex = 0;
  if (options.fromLastCheckpoint && lastCheckpointSize > 0) {
    for (let index = 0; index < segments.length; index += 1) if ((segments[index] as SegmentFile).firstSeq <= lastCheckpointSize - 1) startIndex = index;
  }
  let cursor: Cursor | undefined;
  for (let index = startIndex; index < segments.length; index += 1) {
    const segment = segments[index] as SegmentFile;
    const isLast = index === segments.length - 1;
    let data: Buffer;
    try {
      data = readFileSync(segment.path);
    } catch (error) {
      throw new LogUnreadableError(`cannot read segment ${segment.path}: ${(error as Error).message}`);
    }
    if (cursor === undefined) {
      let start = startingCursor(data, segment);
      if (typeof start === 'string' && isLast && segment.firstSeq === 0 && lastCheckpointSize === 0 && !hasIntactRecordAfter(data, 0)) {
        // The very first segment was cut during its first write: a crash before anything was acknowledged.
        result.problem = { segment: segment.path, line: 1, offset: 0, seq: 0, message: start, tornTail: true };
        start = { expectSeq: 0, head: ZERO_HASH, frontier: new MerkleFrontier() };
        cursor = start;
        break;
      }
      if (typeof start === 'string') {
        result.problem = { segment: segment.path, line: 1, offset: 0, seq: segment.firstSeq, message: start, tornTail: false };
        return result;
      }
      cursor = start;
      result.firstSeq = start.expectSeq;
      result.startedAfterRetention = index === 0 && start.expectSeq > 0;
      result.checkpointsSkipped = options.checkpoints.filter((item) => item.size < start.expectSeq).length;
      const atStart = checkpointsBySize.get(start.expectSeq);
      if (atStart !== undefined && start.expectSeq > 0) {
        const mismatch = compareCheckpoint(atStart, cursor);
        if (mismatch) {
          result.problem = { segment: segment.path, line: 1, offset: 0, seq: start.expectSeq, message: mismatch, tornTail: false };
          return result;
        }
        result.checkpointsMatched += 1;
      }
    } else if (segment.firstSeq !== cursor.expectSeq) {
      result.problem = { segment: segment.path, line: 1, offset: 0, seq: cursor.expectSeq, message: `segment starts at seq ${segment.firstSeq} but seq ${cursor.expectSeq} was expected: a segment is missing or was added`, tornTail: false };
      break;
    }
    const problem = walkSegment(data, segment, cursor, checkpointsBySize, result, options, isLast);
    if (isLast) result.lastSegmentStartedAt = firstRecordTimestamp(data);
    if (problem) {
      problem.tornTail = isLast && problem.seq >= lastCheckpointSize && !hasIntactRecordAfter(data, problem.offset);
      result.problem = problem;
      break;
    }
    if (cursor.expectSeq === options.stopAt) break;
  }
  if (cursor !== undefined) {
    result.nextSeq = cursor.expectSeq;
    result.head = cursor.head;
    result.frontier = cursor.frontier;
  }
  if (!result.problem && lastCheckpointSize > result.nextSeq) {
    const last = segments[segments.length - 1] as SegmentFile;
    result.problem = { segment: last.path, line: 0, offset: result.lastSegmentValidBytes, seq: result.nextSeq, message: `the log ends at seq ${result.nextSeq - 1} but a signed checkpoint covers ${lastCheckpointSize} records: records were removed from the end`, tornTail: false };
  }
  return result;
}

export function startingCursor(data: Buffer, segment: SegmentFile): Cursor | string {
  const end = data.indexOf(0x0a);
  if (end < 0) return `segment ${segment.name} has no complete first record`;
  let record: { seq?: unknown; prev?: unknown; event?: unknown; info?: { frontier?: unknown } };
  try {
    record = JSON.parse(data.toString('utf8', 0, end)) as typeof record;
  } catch {
    return `first record of ${segment.name} is not valid JSON`;
  }
  if (record.event !== AuditEvent.SegmentStart) return `first record of ${segment.name} is not an ${AuditEvent.SegmentStart} record`;
  if (record.seq !== segment.firstSeq) return `first record of ${segment.name} has seq ${String(record.seq)}, the file name says ${segment.firstSeq}`;
  if (typeof record.prev !== 'string') return `first record of ${segment.name} has no prev`;
  let frontier: MerkleFrontier;
  try {
    frontier = MerkleFrontier.fromJSON(record.info?.frontier);
  } catch (error) {
    return `first record of ${segment.name}: ${(error as Error).message}`;
  }
  if (frontier.size !== segment.firstSeq) return `first record of ${segment.name} carries a Merkle frontier of ${frontier.size} leaves, expected ${segment.firstSeq}`;
  if (segment.firstSeq === 0 && record.prev !== ZERO_HASH) return `first record of the log has a non-zero prev`;
  return { expectSeq: segment.firstSeq, head: record.prev, frontier };
}

function walkSegment(data: Buffer, segment: SegmentFile, cursor: Cursor, checkpoints: Map<number, ParsedCheckpoint>, result: ScanResult, options: ScanOptions, isLast: boolean): ScanProblem | undefined {
  let offset = 0;
  let lineNumber = 0;
  const fail = (message: string): ScanProblem => ({ segment: segment.path, line: lineNumber, offset, seq: cursor.expectSeq, message, tornTail: false });
  const retention = new MarkedLines(data);
  while (offset < data.length) {
    lineNumber += 1;
    const end = data.indexOf(0x0a, offset);
    if (end < 0) return fail('incomplete record at the end of the segment (no newline)');
    const line = data.subarray(offset, end);
    const members = chainMembers(line);
    if (typeof members === 'string') return fail(`record is malformed: ${members}`);
    if (recordHashOfLine(line, members.hashAt) !== members.hash) return fail(`record hash does not match its content: the record was altered`);
    if (members.seq !== cursor.expectSeq) return fail(`record has seq ${members.seq} where ${cursor.expectSeq} was expected: a record was deleted, inserted or reordered`);
    if (members.prev !== cursor.head) return fail(`record's prev does not match the hash of record ${cursor.expectSeq - 1}: a record was deleted, inserted, reordered or replaced`);
    if (lineNumber === 1 && cursor.expectSeq !== segment.firstSeq) return fail('segment does not start where its name says');
    if (lineNumber === 1 && cursor.frontier.size > 0) {
      const carried = segmentStartFrontier(line);
      if (!sameFrontier(carried, cursor.frontier)) return fail('segment-start record carries a Merkle frontier that does not match the records before it');
    }
    const leaf = leafHashHex(line);
    cursor.frontier.append(leaf);
    result.leaves?.push(Buffer.from(leaf, 'hex'));
    cursor.head = members.hash;
    if (retention.has(offset, end)) noteRetention(line, result.retainedFrom);
    options.onRecord?.(line, members.seq, segment, offset);
    cursor.expectSeq += 1;
    result.records += 1;
    offset = end + 1;
    if (isLast) result.lastSegmentValidBytes = offset;
    const checkpoint = checkpoints.get(cursor.expectSeq);
    if (checkpoint !== undefined) {
      const mismatch = compareCheckpoint(checkpoint, cursor);
      if (mismatch) {
        offset = end + 1 - line.length - 1;
        return { ...fail(mismatch), seq: cursor.expectSeq - 1 };
      }
      result.checkpointsMatched += 1;
    }
    if (cursor.expectSeq === options.stopAt) return undefined;
  }
  return undefined;
}

export function segmentStartFrontier(line: Buffer): unknown {
  try {
    return (JSON.parse(line.toString('utf8')) as { info?: { frontier?: unknown } }).info?.frontier;
  } catch {
    return undefined;
  }
}

export const RETENTION_MARKER = Buffer.from(`"event":"${AuditEvent.Retention}"`);

/**
 * Which lines of a buffer hold the retention marker, found with one search over the buffer instead
 * of one per line. The marker holds no newline, so a match lies inside one line, and has() answers
 * exactly what `line.includes(RETENTION_MARKER)` would. Lines must be asked about in order.
 */
export class MarkedLines {
  private readonly positions: number[] = [];
  private next = 0;

  constructor(data: Buffer) {
    for (let at = data.indexOf(RETENTION_MARKER); at >= 0; at = data.indexOf(RETENTION_MARKER, at + 1)) this.positions.push(at);
  }

  /** Whether the line at data[start, end) holds the marker. */
  has(start: number, end: number): boolean {
    while (this.next < this.positions.length && (this.positions[this.next] as number) < start) this.next += 1;
    return this.next < this.positions.length && (this.positions[this.next] as number) < end;
  }
}

export function noteRetention(line: Buffer, retainedFrom: Set<number>): void {
  try {
    const record = JSON.parse(line.toString('utf8')) as { event?: unknown; info?: { retained_from_seq?: unknown } };
    if (record.event === AuditEvent.Retention && typeof record.info?.retained_from_seq === 'number') retainedFrom.add(record.info.retained_from_seq);
  } catch {
    // the line's hash already verified; a line that is not JSON cannot be a retention record
  }
}

export function sameFrontier(carried: unknown, frontier: MerkleFrontier): boolean {
  try {
    const parsed = MerkleFrontier.fromJSON(carried);
    return parsed.size === frontier.size && parsed.root().equals(frontier.root());
  } catch {
    return false;
  }
}

export function compareCheckpoint(checkpoint: ParsedCheckpoint, cursor: Cursor): string | undefined {
  if (checkpoint.head !== cursor.head) return `checkpoint of size ${checkpoint.size} names chain head ${checkpoint.head.slice(0, 16)}… but record ${checkpoint.size - 1} has hash ${cursor.head.slice(0, 16)}…: records up to the checkpoint were changed`;
  if (!checkpoint.root.equals(cursor.frontier.root())) return `checkpoint of size ${checkpoint.size} has a Merkle root that the records do not reproduce: records up to the checkpoint were changed`;
  return undefined;
}

/** A crash only ever damages the end of the last segment: an intact record after the damage means an edit. */
export function hasIntactRecordAfter(data: Buffer, offset: number): boolean {
  let start = data.indexOf(0x0a, offset);
  while (start >= 0 && start + 1 < data.length) {
    const end = data.indexOf(0x0a, start + 1);
    if (end < 0) return false;
    const line = data.subarray(start + 1, end);
    const members = chainMembers(line);
    if (typeof members !== 'string' && recordHashOfLine(line, members.hashAt) === members.hash) return true;
    start = end;
  }
  return false;
}

function firstRecordTimestamp(data: Buffer): string | undefined {
  const end = data.indexOf(0x0a);
  if (end < 0) return undefined;
  try {
    const ts = (JSON.parse(data.toString('utf8', 0, end)) as { ts?: unknown }).ts;
    return typeof ts === 'string' ? ts : undefined;
  } catch {
    return undefined;
  }
}
