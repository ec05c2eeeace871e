import { closeSync, copyFileSync, existsSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { sha256Hex } from './canonical.js';
import type { ParsedCheckpoint } from './checkpoint.js';
import { CHECKPOINTS_DIR, METADATA_FILE, PUBLIC_KEY_FILE, QUARANTINE_DIR, SEGMENTS_DIR, listSegments } from './layout.js';
import type { ScanProblem } from './scan.js';
import type { Position } from './seal.js';
import type { JsonValue } from './schema.js';

/** What the writer does at open with the end of the log: unsealed records, checkpoint indices, old formats. */

export const ARCHIVE_DIR = 'archive';

export interface TailCut {
  segment: string;
  offset: number;
  bytes: number;
  sha256: string;
  /** Complete records among the bytes removed (0: only a torn partial line). */
  records: number;
  /** Where the removed bytes were kept, when they held complete records. */
  evidence?: string;
}

/**
 * Cuts off the end of the last segment from the first record no seal covers (or from a torn
 * partial line). In durable mode none of it was acknowledged: a batch is acknowledged only after
 * the synced write that holds its seal returns. Complete records are kept, byte for byte, under
 * quarantine/ as evidence. Unsealed records anywhere but the last segment cannot come from a
 * crash (a seal precedes every rotation): that is reported as a problem instead.
 */
export function cutUnsealedTail(dir: string, firstUnsealed: Position | undefined, torn: ScanProblem | undefined, nextSeq: number, now: Date): TailCut | { problem: ScanProblem } {
  const last = listSegments(dir).pop();
  if (firstUnsealed !== undefined && (last === undefined || firstUnsealed.segment.path !== last.path)) {
    return { problem: { segment: firstUnsealed.segment.path, line: firstUnsealed.line, offset: firstUnsealed.offset, seq: firstUnsealed.seq, message: 'records after the last batch seal reach beyond the last segment; no crash leaves that (a seal precedes every rotation): records were added without the MAC key', tornTail: false } };
  }
  const segment = firstUnsealed?.segment.path ?? torn?.segment ?? last?.path ?? '';
  const offset = firstUnsealed?.offset ?? torn?.offset ?? 0;
  const records = firstUnsealed === undefined ? 0 : nextSeq - firstUnsealed.seq;
  const fd = openSync(segment, 'r+');
  let removed: Buffer;
  try {
    removed = Buffer.alloc(fstatSync(fd).size - offset);
    readSync(fd, removed, 0, removed.length, offset);
    let evidence: string | undefined;
    if (records > 0) {
      const target = join(dir, QUARANTINE_DIR, stamp(now));
      mkdirSync(target, { recursive: true, mode: 0o700 });
      evidence = join(target, `unsealed-${basename(segment)}`);
      writeFileSync(evidence, removed, { mode: 0o600 });
      fsyncPath(evidence);
    }
    if (offset === 0) {
      // Nothing of the segment remains: remove it, so the log continues from the segment before.
      unlinkSync(segment);
      fsyncPath(join(dir, SEGMENTS_DIR));
    } else {
      ftruncateSync(fd, offset);
      fsyncSync(fd);
    }
    return { segment, offset, bytes: removed.length, sha256: sha256Hex(removed), records, evidence };
  } finally {
    closeSync(fd);
  }
}

/**
 * Checkpoint indices must run 1, 2, 3, ... in order of size (a gap is a deleted checkpoint), and
 * the checkpoints the sealed tail announces must be the next ones in turn (the writer signs those
 * again: see AuditLog.resignAnnounced).
 */
export function checkCheckpointIndices(dir: string, checkpoints: readonly ParsedCheckpoint[], announced: ReadonlyArray<{ index: number; size: number }>, lastIndex: number): ScanProblem | undefined {
  const where = (message: string, seq = 0): ScanProblem => ({ segment: join(dir, CHECKPOINTS_DIR), line: 0, offset: 0, seq, message, tornTail: false });
  const sorted = [...checkpoints].sort((a, b) => a.size - b.size);
  for (let position = 0; position < sorted.length; position += 1) {
    const checkpoint = sorted[position] as ParsedCheckpoint;
    if (checkpoint.index !== position + 1) return where(checkpointIndexMessage(checkpoint, position + 1), checkpoint.size);
  }
  let expected = lastIndex + 1;
  for (const item of announced) {
    if (item.index !== expected) return where(`a sealed record at seq ${item.size - 1} announces checkpoint ${item.index}, but checkpoint ${expected} was expected next: checkpoints were deleted or records rearranged`, item.size - 1);
    expected += 1;
  }
  return undefined;
}

export function checkpointIndexMessage(checkpoint: ParsedCheckpoint, expected: number): string {
  if (checkpoint.index === undefined) return `checkpoint of size ${checkpoint.size} has no index line: it is not from a bastion.audit/2 writer`;
  return `checkpoint of size ${checkpoint.size} has index ${checkpoint.index} where ${expected} was expected: ${checkpoint.index > expected ? `checkpoint ${expected} is missing (deleted)` : 'checkpoints are duplicated or out of order'}`;
}

/** Moves every segment and checkpoint, unchanged, to <dir>/<under>/<time>/; returns what moved where. */
export function moveAside(dir: string, under: string, now: Date): { dir: string; files: JsonValue[] } {
  const target = join(dir, under, stamp(now));
  mkdirSync(target, { recursive: true, mode: 0o700 });
  const moved: JsonValue[] = [];
  for (const sub of [SEGMENTS_DIR, CHECKPOINTS_DIR]) {
    const from = join(dir, sub);
    const to = join(target, sub);
    const files = existsSync(from) ? readdirSync(from).filter((name) => statSync(join(from, name)).isFile()) : [];
    mkdirSync(to, { recursive: true, mode: 0o700 });
    for (const name of files) {
      moved.push({ file: `${sub}/${name}`, sha256: sha256Hex(readFileSync(join(from, name))) });
      renameSync(join(from, name), join(to, name));
    }
  }
  return { dir: target, files: moved };
}

/**
 * Moves a bastion.audit/1 log aside as a complete log directory (with its log.json and public
 * key), so that `mcp-auditctl verify --log <archive>` still checks it.
 */
export function archiveLegacyLog(dir: string, now: Date): JsonValue {
  const moved = moveAside(dir, ARCHIVE_DIR, now);
  for (const name of [METADATA_FILE, PUBLIC_KEY_FILE]) if (existsSync(join(dir, name))) copyFileSync(join(dir, name), join(moved.dir, name));
  return moved;
}

function stamp(now: Date): string {
  return now.toISOString().replace(/[:.]/g, '-');
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
