import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { chainMembers } from './canonical.js';
import type { ParsedCheckpoint } from './checkpoint.js';
import type { SegmentFile } from './layout.js';
import { sealOf } from './seal.js';
import { checkpointIndexMessage } from './tail.js';

/**
 * The checks `verify` makes beyond the chain, which need no secret: checkpoint indices run 1..K;
 * the last record a checkpoint covers is the seal naming it; no seal after the newest checkpoint
 * names a later one (which would mean that checkpoint was deleted); and which records no signed
 * checkpoint covers yet (the unsigned tail).
 */

export interface TailFinding {
  /** A problem: verification fails. */
  problem?: { seq: number; message: string };
  /** Records after the newest signed checkpoint, if any. */
  unsignedTail?: { fromSeq: number; records: number };
}

/** Checkpoint indices of a bastion.audit/2 log: 1, 2, 3, ... in order of size. */
export function checkIndices(local: readonly ParsedCheckpoint[], external: ParsedCheckpoint | undefined): string | undefined {
  const sorted = [...local].sort((a, b) => a.size - b.size);
  for (let position = 0; position < sorted.length; position += 1) {
    const checkpoint = sorted[position] as ParsedCheckpoint;
    if (checkpoint.index !== position + 1) return checkpointIndexMessage(checkpoint, position + 1);
  }
  if (external?.index !== undefined) {
    const same = sorted[external.index - 1];
    if (same === undefined) return `the given checkpoint has index ${external.index} (size ${external.size}), but the log holds only ${sorted.length} checkpoint(s): newer checkpoints were deleted`;
    if (same.size !== external.size) return `the given checkpoint ${external.index} has size ${external.size}, the log's checkpoint ${external.index} has size ${same.size}: the log was rewritten`;
  }
  return undefined;
}

export function checkTail(segments: readonly SegmentFile[], nextSeq: number, checkpoints: readonly ParsedCheckpoint[], sealed: boolean): TailFinding {
  if (nextSeq === 0) return {};
  if (checkpoints.length === 0) return { problem: { seq: 0, message: `the log holds ${nextSeq} records but no signed checkpoint: none of it can be verified (the checkpoints were deleted, or the log was rewritten)` } };
  const newest = checkpoints.reduce((best, item) => (item.size > best.size ? item : best));
  const finding: TailFinding = nextSeq > newest.size ? { unsignedTail: { fromSeq: newest.size, records: nextSeq - newest.size } } : {};
  if (!sealed) return finding;
  for (const { seq, line } of tailLines(segments, newest.size - 1)) {
    const seal = sealOf(line);
    if (seq === newest.size - 1 && newest.index !== undefined && seal?.checkpoint !== newest.index) return { ...finding, problem: { seq, message: `the last record under checkpoint ${newest.index} (size ${newest.size}) is not the seal that names it` } };
    if (seq >= newest.size && seal?.checkpoint !== undefined) return { ...finding, problem: { seq, message: `record ${seq} seals checkpoint ${seal.checkpoint} (size ${seq + 1}), which is missing: it was deleted${seal.checkpoint === (newest.index ?? 0) + 1 ? ' (or the writer crashed before writing it; it signs it again when it next opens the log)' : ''}` } };
  }
  return finding;
}

/** The records with seq >= fromSeq at the end of the log, read backwards from the end. */
function* tailLines(segments: readonly SegmentFile[], fromSeq: number): Generator<{ seq: number; line: Buffer }> {
  let first = segments.length - 1;
  while (first > 0 && (segments[first] as SegmentFile).firstSeq > fromSeq) first -= 1;
  for (let index = first; index < segments.length; index += 1) yield* linesFrom((segments[index] as SegmentFile).path, fromSeq);
}

function linesFrom(path: string, fromSeq: number): Array<{ seq: number; line: Buffer }> {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    // The tail is normally small: read backwards, doubling, until the first line read is at or before fromSeq.
    for (let span = 256 * 1024; ; span *= 2) {
      const start = Math.max(0, size - span);
      const data = Buffer.alloc(size - start);
      readSync(fd, data, 0, data.length, start);
      let offset = 0;
      if (start > 0) {
        const firstBreak = data.indexOf(0x0a);
        if (firstBreak < 0) continue;
        offset = firstBreak + 1;
      }
      const found: Array<{ seq: number; line: Buffer }> = [];
      let reachedStart = start === 0;
      for (let end = data.indexOf(0x0a, offset); end >= 0; end = data.indexOf(0x0a, offset)) {
        const line = data.subarray(offset, end);
        const members = chainMembers(line);
        if (typeof members !== 'string') {
          if (found.length === 0 && members.seq <= fromSeq) reachedStart = true;
          if (members.seq >= fromSeq) found.push({ seq: members.seq, line });
        }
        offset = end + 1;
      }
      if (reachedStart) return found;
    }
  } finally {
    closeSync(fd);
  }
}
