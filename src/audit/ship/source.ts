import { existsSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CHECKPOINTS_DIR, checkpointName, listSegments } from '../layout.js';
import { AuditEvent, type AuditRecord } from '../schema.js';

/**
 * Reads the committed log for a sink: the segment files on disk, never the writer's memory. A
 * record counts as committed once the batch seal after it is on disk (a batch and its seal are
 * one synced write, and the writer cuts records no seal covers at its next open), so a read stops
 * at the last seal it finds and leaves what follows for a later read.
 */

export interface ShipRecord {
  kind: 'record';
  seq: number;
  /** The record line exactly as stored, without the newline. */
  line: string;
  record: AuditRecord;
}

export interface ShipCheckpoint {
  kind: 'checkpoint';
  index: number;
  size: number;
  /** The signed note, as in checkpoints/cp-<size>.txt. */
  note: string;
}

export type ShipItem = ShipRecord | ShipCheckpoint;

/** Where a sink is in the log; also the content of its cursor file. */
export interface ShipPosition {
  logId: string;
  /** The seq of the next record to ship. */
  nextSeq: number;
  /** Segment file name and byte offset of that record, a hint: the seq decides. */
  segment: string;
  offset: number;
  /** Hash of the record at nextSeq - 1, so a resume can tell a new chain from this one (resume.ts). */
  head?: string;
  /** Hash of the first record of `segment`: the segment's identity. */
  segmentHead?: string;
  /** The newest checkpoint index shipped. */
  checkpointIndex: number;
  /** A checkpoint whose closing seal was shipped but whose file was not yet on disk. */
  pendingCheckpoint?: { index: number; size: number };
}

export interface ReadResult {
  items: ShipItem[];
  next: ShipPosition;
  /** The read stopped at a checkpoint whose file is not (yet) there. */
  waitingForCheckpoint: boolean;
  /** Records retention removed before they were shipped (the first segment starts after nextSeq). */
  skippedByRetention: number;
}

const CHUNK_BYTES = 1 << 20;

export function initialPosition(logId: string): ShipPosition {
  return { logId, nextSeq: 0, segment: '', offset: 0, checkpointIndex: 0 };
}

/** Up to about maxRecords committed records (and the checkpoints they close) from `from` on. */
export async function readCommitted(dir: string, from: ShipPosition, maxRecords: number): Promise<ReadResult> {
  const next: ShipPosition = { ...from };
  const items: ShipItem[] = [];
  let skippedByRetention = 0;
  if (next.pendingCheckpoint !== undefined) {
    const note = await readCheckpoint(dir, next.pendingCheckpoint.size);
    if (note === undefined) return { items, next, waitingForCheckpoint: true, skippedByRetention };
    items.push({ kind: 'checkpoint', ...next.pendingCheckpoint, note });
    next.checkpointIndex = next.pendingCheckpoint.index;
    delete next.pendingCheckpoint;
  }
  const segments = listSegments(dir);
  let index = segments.findIndex((segment) => segment.name === next.segment);
  if (index < 0) {
    // No hint (first run) or the hinted segment is gone: the segment holding nextSeq, read from its start.
    index = segments.length - 1;
    while (index > 0 && (segments[index] as { firstSeq: number }).firstSeq > next.nextSeq) index -= 1;
    const first = segments[Math.max(index, 0)];
    if (first === undefined) return { items, next, waitingForCheckpoint: false, skippedByRetention };
    if (first.firstSeq > next.nextSeq) {
      skippedByRetention = first.firstSeq - next.nextSeq;
      next.nextSeq = first.firstSeq;
    }
    next.segment = first.name;
    next.offset = 0;
    delete next.segmentHead;
    index = Math.max(index, 0);
  }
  let records = 0;
  while (index < segments.length) {
    const segment = segments[index] as (typeof segments)[number];
    const outcome = await readSegment(segment.path, next, maxRecords - records, dir);
    items.push(...outcome.items);
    records += outcome.records;
    if (outcome.waitingForCheckpoint) return { items, next, waitingForCheckpoint: true, skippedByRetention };
    // Only a segment that ended on a seal is finished: a rotation always follows a seal.
    if (records >= maxRecords || !outcome.endedOnSeal || index + 1 >= segments.length) break;
    index += 1;
    next.segment = (segments[index] as (typeof segments)[number]).name;
    next.offset = 0;
    delete next.segmentHead;
  }
  return { items, next, waitingForCheckpoint: false, skippedByRetention };
}

interface SegmentRead {
  items: ShipItem[];
  records: number;
  endedOnSeal: boolean;
  waitingForCheckpoint: boolean;
}

/** Reads one segment from next.offset, advancing `next` to the end of the last seal read. */
async function readSegment(path: string, next: ShipPosition, maxRecords: number, dir: string): Promise<SegmentRead> {
  const handle = await open(path, 'r');
  const shipped: ShipItem[] = [];
  let uncommitted: ShipRecord[] = [];
  let records = 0;
  // A saved offset always follows a seal; offset 0 is a segment's start.
  let endedOnSeal = next.offset > 0;
  try {
    let position = next.offset;
    let carry = Buffer.alloc(0);
    let lineStart = position;
    const chunk = Buffer.alloc(CHUNK_BYTES);
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      const data = carry.length === 0 ? chunk.subarray(0, bytesRead) : Buffer.concat([carry, chunk.subarray(0, bytesRead)]);
      let start = 0;
      let end = data.indexOf(0x0a, start);
      while (end >= 0) {
        const line = data.toString('utf8', start, end);
        const lineAt = lineStart;
        lineStart += end - start + 1;
        start = end + 1;
        end = data.indexOf(0x0a, start);
        const record = JSON.parse(line) as AuditRecord;
        if (lineAt === 0) next.segmentHead = record.hash;
        endedOnSeal = record.event === AuditEvent.Seal;
        if (record.seq < next.nextSeq) continue;
        endedOnSeal = false;
        uncommitted.push({ kind: 'record', seq: record.seq, line, record });
        if (record.event !== AuditEvent.Seal) continue;
        // A seal commits everything read before it.
        shipped.push(...uncommitted);
        records += uncommitted.length;
        uncommitted = [];
        endedOnSeal = true;
        next.nextSeq = record.seq + 1;
        next.offset = lineStart;
        next.head = record.hash;
        const closes = record.info?.['checkpoint'];
        if (typeof closes === 'number') {
          const note = await readCheckpoint(dir, record.seq + 1);
          if (note === undefined) {
            next.pendingCheckpoint = { index: closes, size: record.seq + 1 };
            return { items: shipped, records, endedOnSeal: false, waitingForCheckpoint: true };
          }
          shipped.push({ kind: 'checkpoint', index: closes, size: record.seq + 1, note });
          next.checkpointIndex = closes;
        }
        if (records >= maxRecords) return { items: shipped, records, endedOnSeal: false, waitingForCheckpoint: false };
      }
      carry = Buffer.from(data.subarray(start));
    }
    // A torn partial line or unsealed records stay for a later read (or are cut by the writer at its next open).
    if (carry.length > 0 || uncommitted.length > 0) endedOnSeal = false;
  } finally {
    await handle.close();
  }
  return { items: shipped, records, endedOnSeal, waitingForCheckpoint: false };
}

async function readCheckpoint(dir: string, size: number): Promise<string | undefined> {
  const path = join(dir, CHECKPOINTS_DIR, checkpointName(size));
  if (!existsSync(path)) return undefined;
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}
