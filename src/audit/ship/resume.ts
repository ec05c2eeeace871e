import { open, readFile } from 'node:fs/promises';
import { listSegments, type SegmentFile } from '../layout.js';
import type { AuditRecord } from '../schema.js';
import { initialPosition, type ShipPosition } from './source.js';

/**
 * Checks, before a sink resumes from its saved cursor, that the log still holds the chain the
 * cursor points into. A seq alone cannot say so: after a tamper restart the writer starts a new
 * chain at seq 0 under the same log id, and a cursor at seq N would skip the new chain's first N
 * records. The cursor therefore keeps the hash of the last record it shipped (`head`) and of the
 * first record of its segment (`segmentHead`); when the record at nextSeq - 1 is missing or has
 * another hash, the log is a new chain and the sink ships it from its start.
 */

export interface Resumed {
  position: ShipPosition;
  /** The cursor pointed into a chain the log no longer holds. */
  newChain: boolean;
}

/** Seal lines are a few hundred bytes: the line ending at the cursor is within this much. */
const TAIL_WINDOW_BYTES = 64 * 1024;

export async function resumePosition(dir: string, position: ShipPosition): Promise<Resumed> {
  // A cursor at the start has nothing to lose; one written before heads were kept cannot be checked.
  if (position.nextSeq === 0 || position.head === undefined) return { position, newChain: false };
  const segments = listSegments(dir);
  const hinted = segments.find((segment) => segment.name === position.segment);
  if (hinted !== undefined && position.segmentHead !== undefined && (await firstRecordHash(hinted.path)) !== position.segmentHead) return restart(position);
  const target = position.nextSeq - 1;
  let found: AuditRecord | undefined;
  if (hinted !== undefined && position.offset > 0) found = await lineEndingAt(hinted.path, position.offset);
  if (found?.seq !== target) {
    const holding = holdingSegment(segments, target);
    // Retention deleted the segment: the read that follows counts what the sink lost.
    if (holding === undefined) return { position, newChain: false };
    found = await recordInSegment(holding.path, target);
  }
  if (found === undefined || found.hash !== position.head) return restart(position);
  return { position, newChain: false };
}

function restart(position: ShipPosition): Resumed {
  return { position: initialPosition(position.logId), newChain: true };
}

function holdingSegment(segments: readonly SegmentFile[], seq: number): SegmentFile | undefined {
  let holding: SegmentFile | undefined;
  for (const segment of segments) if (segment.firstSeq <= seq) holding = segment;
  return holding;
}

async function firstRecordHash(path: string): Promise<string | undefined> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(TAIL_WINDOW_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const end = buffer.subarray(0, bytesRead).indexOf(0x0a);
    return end < 0 ? undefined : parseLine(buffer.toString('utf8', 0, end))?.hash;
  } finally {
    await handle.close();
  }
}

/** The complete line whose newline is the byte before `offset`. */
async function lineEndingAt(path: string, offset: number): Promise<AuditRecord | undefined> {
  const handle = await open(path, 'r');
  try {
    const start = Math.max(0, offset - TAIL_WINDOW_BYTES);
    const buffer = Buffer.alloc(offset - start);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, start);
    // A file shorter than the cursor offset is not the file the cursor was written for.
    if (bytesRead !== buffer.length || buffer[buffer.length - 1] !== 0x0a) return undefined;
    const previous = buffer.lastIndexOf(0x0a, buffer.length - 2);
    if (previous < 0 && start > 0) return undefined;
    return parseLine(buffer.toString('utf8', previous + 1, buffer.length - 1));
  } finally {
    await handle.close();
  }
}

async function recordInSegment(path: string, seq: number): Promise<AuditRecord | undefined> {
  const text = await readFile(path, 'utf8');
  for (const line of text.split('\n')) {
    const record = parseLine(line);
    if (record?.seq === seq) return record;
  }
  return undefined;
}

function parseLine(line: string): AuditRecord | undefined {
  try {
    const parsed = JSON.parse(line) as AuditRecord;
    return typeof parsed.seq === 'number' && typeof parsed.hash === 'string' ? parsed : undefined;
  } catch {
    return undefined;
  }
}
