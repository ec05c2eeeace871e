import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseCheckpoint, type ParsedCheckpoint } from './checkpoint.js';

/**
 * On-disk layout of a log directory (also the layout of an exported bundle):
 *
 *   log.json                     { schema, logId, origin, keyName, created }
 *   audit-key.pub                the checkpoint public key (SPKI PEM)
 *   segments/seg-<first seq>.jsonl
 *   checkpoints/cp-<tree size>.txt
 *   quarantine/<time>/           segments moved aside after a tamper restart (evidence)
 */

export const SEGMENTS_DIR = 'segments';
export const CHECKPOINTS_DIR = 'checkpoints';
export const QUARANTINE_DIR = 'quarantine';
export const METADATA_FILE = 'log.json';
export const PUBLIC_KEY_FILE = 'audit-key.pub';
export const MANIFEST_FILE = 'manifest.json';

const SEGMENT_PATTERN = /^seg-(\d{12})\.jsonl$/;
const CHECKPOINT_PATTERN = /^cp-(\d{12})\.txt$/;

export interface LogMetadata {
  schema: string;
  logId: string;
  origin: string;
  keyName: string;
  created: string;
}

export interface SegmentFile {
  name: string;
  path: string;
  firstSeq: number;
}

export function segmentName(firstSeq: number): string {
  return `seg-${String(firstSeq).padStart(12, '0')}.jsonl`;
}

export function checkpointName(size: number): string {
  return `cp-${String(size).padStart(12, '0')}.txt`;
}

export function listSegments(dir: string): SegmentFile[] {
  const segmentsDir = join(dir, SEGMENTS_DIR);
  if (!existsSync(segmentsDir)) return [];
  const found: SegmentFile[] = [];
  for (const name of readdirSync(segmentsDir)) {
    const match = SEGMENT_PATTERN.exec(name);
    if (match) found.push({ name, path: join(segmentsDir, name), firstSeq: Number(match[1]) });
  }
  return found.sort((a, b) => a.firstSeq - b.firstSeq);
}

export interface CheckpointFile {
  name: string;
  path: string;
  checkpoint: ParsedCheckpoint;
}

/** The checkpoint note files directly in `dir` (a log's checkpoints/ or a mirror directory), by name, unparsed. */
export function checkpointFilePaths(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => CHECKPOINT_PATTERN.test(name))
    .sort()
    .map((name) => join(dir, name));
}

/** Every checkpoint file, oldest first. A file that does not parse throws with its path. */
export function listCheckpoints(dir: string): CheckpointFile[] {
  const checkpointsDir = join(dir, CHECKPOINTS_DIR);
  if (!existsSync(checkpointsDir)) return [];
  const found: CheckpointFile[] = [];
  for (const name of readdirSync(checkpointsDir).sort()) {
    if (!CHECKPOINT_PATTERN.test(name)) continue;
    const path = join(checkpointsDir, name);
    found.push({ name, path, checkpoint: parseCheckpoint(readFileSync(path, 'utf8'), path) });
  }
  return found.sort((a, b) => a.checkpoint.size - b.checkpoint.size);
}

export function readMetadata(dir: string): LogMetadata {
  const path = join(dir, METADATA_FILE);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as Error).message}. Is ${dir} an audit log directory?`, { cause: error });
  }
  const value = parsed as Partial<LogMetadata>;
  if (typeof value.logId !== 'string' || typeof value.origin !== 'string' || typeof value.keyName !== 'string') throw new Error(`${path} lacks logId, origin or keyName`);
  return value as LogMetadata;
}
