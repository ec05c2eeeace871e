// Retention of an audit log's segments (audit.retention): the oldest sealed segments go once they
// are older or larger than allowed, and only when a signed checkpoint covers all of them. The log
// (log.ts) runs this after each checkpoint and records what was deleted, with each file's digest.
import { readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncDirectory } from '../storage/index.js';
import type { LogProtection } from './append-only.js';
import { sha256Hex } from './canonical.js';
import type { AuditConfig } from './config.js';
import { SEGMENTS_DIR, listSegments } from './layout.js';
import type { JsonValue } from './schema.js';

export interface RetentionInput {
  dir: string;
  retention: AuditConfig['retention'];
  /** Records the newest checkpoint covers: a segment whose successor starts later is kept. */
  checkpointedSize: number;
  /** The segment being written: never deleted. */
  activePath: string;
  nowMs: number;
  attributes: LogProtection;
  /** The log's next seq, for retained_from_seq when no segment is left (never: the active one stays). */
  nextSeq: number;
}

/** Deletes what retention allows; returns the retention record's info, or undefined when nothing went. */
export function deleteExpiredSegments(input: RetentionInput): { [key: string]: JsonValue } | undefined {
  const { maxAgeDays, maxTotalBytes } = input.retention;
  if (maxAgeDays === undefined && maxTotalBytes === undefined) return undefined;
  const segments = listSegments(input.dir);
  const sizes = segments.map((segment) => statSync(segment.path).size);
  let total = sizes.reduce((sum, size) => sum + size, 0);
  const deleted: Array<{ segment: string; sha256: string; bytes: number; immutable_lifted?: boolean }> = [];
  for (let index = 0; index < segments.length - 1; index += 1) {
    const segment = segments[index] as (typeof segments)[number];
    const next = segments[index + 1] as (typeof segments)[number];
    if (next.firstSeq > input.checkpointedSize || segment.path === input.activePath) break;
    const ageDays = (input.nowMs - statSync(segment.path).mtimeMs) / 86_400_000;
    const overAge = maxAgeDays !== undefined && ageDays > maxAgeDays;
    const overSize = maxTotalBytes !== undefined && total > maxTotalBytes;
    if (!overAge && !overSize) break;
    const bytes = sizes[index] as number;
    const sha256 = sha256Hex(readFileSync(segment.path));
    try {
      // The only place a sealed segment loses its immutable attribute while the gateway runs; the record says so.
      input.attributes.retire(segment.path);
      unlinkSync(segment.path);
    } catch (error) {
      process.emitWarning(`audit retention could not delete ${segment.path}: ${(error as Error).message}; it is kept and retried at the next checkpoint`, { code: 'BASTION_AUDIT_RETENTION' });
      break;
    }
    deleted.push({ segment: segment.name, sha256, bytes, ...(input.attributes.enabled ? { immutable_lifted: true } : {}) });
    total -= bytes;
  }
  if (deleted.length === 0) return undefined;
  fsyncDirectory(join(input.dir, SEGMENTS_DIR));
  const retainedFrom = listSegments(input.dir)[0]?.firstSeq ?? input.nextSeq;
  return { deleted, retained_from_seq: retainedFrom, max_age_days: maxAgeDays ?? null, max_total_bytes: maxTotalBytes ?? null };
}
