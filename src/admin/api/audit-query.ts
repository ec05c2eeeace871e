// Audit queries for the admin API: records from the files on disk (newest first, with a seq
// cursor for paging), and one record with its chain position checked: its hash recomputed from
// its line and its link to the record before it.
import { chainMembers, recordHashOfLine } from '../../audit/canonical.js';
import { matches, readRecords, type RecordFilter } from '../../audit/reader.js';
import type { AuditRecord } from '../../audit/index.js';

export interface AuditQuery extends RecordFilter {
  method?: string;
  /** Only records with a seq below this (the cursor of the next page). */
  before?: number;
  limit: number;
}

export interface AuditPage {
  records: AuditRecord[];
  /** Pass as `before` for the next (older) page; absent on the last page. */
  next?: number;
}

export function queryAudit(dir: string, query: AuditQuery): AuditPage {
  const window: AuditRecord[] = [];
  let more = false;
  for (const { record } of readRecords(dir)) {
    if (query.before !== undefined && record.seq >= query.before) continue;
    if (query.method !== undefined && record.method !== query.method) continue;
    if (!matches(record, query)) continue;
    window.push(record);
    if (window.length > query.limit) {
      window.shift();
      more = true;
    }
  }
  const records = window.reverse();
  const oldest = records[records.length - 1];
  return more && oldest !== undefined ? { records, next: oldest.seq } : { records };
}

export interface RecordVerification {
  /** The hash recomputed from the stored line equals the hash it carries. */
  hashValid: boolean;
  /** Its `prev` is the hash of the record before it (the first record of a chain links to zeros). */
  linked: boolean;
  previousSeq?: number;
  problem?: string;
}

/** One record by seq, with its verification; undefined when no record has that seq. */
export function recordWithVerification(dir: string, seq: number): { record: AuditRecord; verification: RecordVerification; segment: string; line: number } | undefined {
  let previous: AuditRecord | undefined;
  for (const { record, raw, where } of readRecords(dir)) {
    if (record.seq !== seq) {
      previous = record;
      continue;
    }
    const line = Buffer.from(raw, 'utf8');
    const members = chainMembers(line);
    if (typeof members === 'string') return { record, verification: { hashValid: false, linked: false, problem: members }, segment: where.segment.path, line: where.line };
    const hashValid = recordHashOfLine(line, members.hashAt) === members.hash;
    const linked = previous === undefined ? seq === 0 && /^0{64}$/.test(members.prev) : previous.hash === members.prev && previous.seq === seq - 1;
    const verification: RecordVerification = { hashValid, linked, ...(previous === undefined ? {} : { previousSeq: previous.seq }) };
    if (!hashValid) verification.problem = 'the stored hash does not match the record: it was changed after it was written';
    else if (!linked) verification.problem = previous === undefined ? 'the record before it is not on disk (retention removed it?): mcp-auditctl verify checks the chain from its checkpoint' : 'the record does not link to the one before it';
    return { record, verification, segment: where.segment.path, line: where.line };
  }
  return undefined;
}
