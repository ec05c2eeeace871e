// Audit queries for the admin API: records from the files on disk (newest first, with a seq
// cursor for paging), and one record with three checks the console's badge shows apart: its
// hash link (hash recomputed from its line, linked to the record before it), the batch seal
// that closes it (an HMAC only the gateway's key makes), and the nearest signed checkpoint that
// covers it (signature and an RFC 6962 inclusion proof of its line).
import { chainMembers, recordHashOfLine } from '../../audit/canonical.js';
import { matches, readRecords, type RecordFilter } from '../../audit/reader.js';
import { listCheckpoints } from '../../audit/layout.js';
import { proveInclusion, verifyInclusionProof } from '../../audit/proof.js';
import { sealOf } from '../../audit/seal.js';
import type { NoteVerifier } from '../../audit/keys.js';
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

/** verified, failed (tampering or a key mismatch), pending (not written yet: the batch is open, no checkpoint yet) or unavailable (cannot be checked here). */
export type CheckStatus = 'verified' | 'failed' | 'pending' | 'unavailable';

export interface SealCheck {
  status: CheckStatus;
  /** The seq of the audit.seal record that closes the record's batch. */
  sealSeq?: number;
  problem?: string;
}

export interface CheckpointCheck {
  status: CheckStatus;
  /** The nearest checkpoint covering the record: its tree size and index. */
  treeSize?: number;
  index?: number;
  timestamp?: string;
  problem?: string;
}

/** What only the running gateway can check: the seal MAC, and the checkpoint key. */
export interface LogKeyAccess {
  sealVerifies(line: Buffer, seq: number): boolean;
  checkpointVerifier: NoteVerifier;
}

export interface VerifiedRecord {
  record: AuditRecord;
  verification: RecordVerification;
  seal: SealCheck;
  checkpoint: CheckpointCheck;
  segment: string;
  line: number;
}

/** One record by seq, with its hash link, seal and checkpoint checked; undefined when no record has that seq. */
export function recordWithVerification(dir: string, seq: number, keys?: LogKeyAccess): VerifiedRecord | undefined {
  const found = recordWithLink(dir, seq, keys);
  if (found === undefined) return undefined;
  return { ...found, checkpoint: keys === undefined ? { status: 'unavailable', problem: 'no checkpoint key here' } : checkpointCheck(dir, seq, keys.checkpointVerifier) };
}

/** The first seal at or after `seq` closes its batch; the records between are read on the way. */
function sealCheck(records: Iterator<{ record: AuditRecord; raw: string }>, first: { record: AuditRecord; raw: string }, keys: LogKeyAccess | undefined): SealCheck {
  if (keys === undefined) return { status: 'unavailable', problem: 'no seal key here' };
  let current: { record: AuditRecord; raw: string } | undefined = first;
  while (current !== undefined) {
    const line = Buffer.from(current.raw, 'utf8');
    if (sealOf(line) !== undefined) {
      const sealSeq = current.record.seq;
      return keys.sealVerifies(line, sealSeq) ? { status: 'verified', sealSeq } : { status: 'failed', sealSeq, problem: `the seal at seq ${sealSeq} does not verify under this log's MAC key: the batch was forged or changed` };
    }
    const next = records.next();
    current = next.done === true ? undefined : next.value;
  }
  return { status: 'pending', problem: 'no seal after it yet: its batch is still being written' };
}

function checkpointCheck(dir: string, seq: number, verifier: NoteVerifier): CheckpointCheck {
  const nearest = listCheckpoints(dir).find((file) => file.checkpoint.size > seq);
  if (nearest === undefined) return { status: 'pending', problem: 'no signed checkpoint covers it yet (audit.checkpoint.everyRecords / everySeconds)' };
  const facts = { treeSize: nearest.checkpoint.size, timestamp: nearest.checkpoint.timestamp, ...(nearest.checkpoint.index === undefined ? {} : { index: nearest.checkpoint.index }) };
  try {
    verifyInclusionProof(proveInclusion(dir, seq, verifier, nearest.path), verifier);
    return { status: 'verified', ...facts };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // Retention removed the first records: the proof needs every leaf, which is not tampering.
    return { status: /removed by retention/.test(message) ? 'unavailable' : 'failed', ...facts, problem: message };
  }
}

function recordWithLink(dir: string, seq: number, keys: LogKeyAccess | undefined): Omit<VerifiedRecord, 'checkpoint'> | undefined {
  const records = readRecords(dir);
  try {
    return findLinked(records, seq, keys);
  } finally {
    records.return(undefined); // closes the segment being read
  }
}

function findLinked(records: Generator<{ record: AuditRecord; raw: string; where: { segment: { path: string }; line: number } }>, seq: number, keys: LogKeyAccess | undefined): Omit<VerifiedRecord, 'checkpoint'> | undefined {
  let previous: AuditRecord | undefined;
  for (let next = records.next(); next.done !== true; next = records.next()) {
    const { record, raw, where } = next.value;
    if (record.seq !== seq) {
      previous = record;
      continue;
    }
    const line = Buffer.from(raw, 'utf8');
    const members = chainMembers(line);
    const seal = sealCheck(records, next.value, keys);
    if (typeof members === 'string') return { record, verification: { hashValid: false, linked: false, problem: members }, seal, segment: where.segment.path, line: where.line };
    const hashValid = recordHashOfLine(line, members.hashAt) === members.hash;
    const linked = previous === undefined ? seq === 0 && /^0{64}$/.test(members.prev) : previous.hash === members.prev && previous.seq === seq - 1;
    const verification: RecordVerification = { hashValid, linked, ...(previous === undefined ? {} : { previousSeq: previous.seq }) };
    if (!hashValid) verification.problem = 'the stored hash does not match the record: it was changed after it was written';
    else if (!linked) verification.problem = previous === undefined ? 'the record before it is not on disk (retention removed it?): mcp-auditctl verify checks the chain from its checkpoint' : 'the record does not link to the one before it';
    return { record, verification, seal, segment: where.segment.path, line: where.line };
  }
  return undefined;
}
