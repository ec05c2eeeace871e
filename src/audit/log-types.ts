import type { AppendOnlyStatus } from './append-only.js';
import type { CheckpointBody } from './checkpoint.js';
import type { NoteVerifier } from './keys.js';
import type { LogMetadata } from './layout.js';
import type { ScanProblem } from './scan.js';
import type { AuditFields, JsonValue } from './schema.js';

/**
 * The single writer of one audit log, as the gateway uses it: AuditLog (on the calling thread)
 * and ThreadedAuditLog (the same log run on a worker thread, src/audit/thread) both are one.
 */
export interface AuditWriter {
  readonly dir: string;
  readonly metadata: LogMetadata;
  /** Records appended so far (the next record's seq). */
  readonly size: number;
  readonly chainHead: string;
  readonly appendOnly: AppendOnlyStatus;
  readonly stats: WriterStats;
  /** Which thread writes the log and how often it moved (audit.writer: adaptive; inline: always the main thread). */
  readonly placement: { onMainThread: boolean; moves: number };
  /** Why the log stopped accepting records, once it has. */
  readonly failedWith: Error | undefined;
  readonly recovery: RecoveryReport;
  readonly checkpointVerifier: NoteVerifier;
  /** Appends one record. Resolves (durable mode) once it is on disk. */
  append(fields: AuditFields): Promise<AppendResult>;
  event(type: string, info?: { [key: string]: JsonValue }): Promise<AppendResult>;
  /** Keyed digest (HMAC under the log's digest key) for args_digest, output_digest and prompt_digest. */
  digestText(canonicalJson: string): string;
  sealVerifies(line: Buffer, seq: number): boolean;
  /** A wake-up after every synced batch and every checkpoint written; returns the unsubscribe function. */
  onCommit(listener: () => void): () => void;
  checkpoint(): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The state of an open log as one writer hands it to another in the same process (the writer
 * thread and the main thread, src/audit/thread): everything written and synced, every record
 * sealed, nothing written for the move itself. Structured-cloneable; the keys are loaded again
 * from their files by the writer taking over.
 */
export interface LogHandoff {
  metadata: LogMetadata;
  recovery: RecoveryReport;
  appendOnly: AppendOnlyStatus;
  nextSeq: number;
  head: string;
  frontier: { size: number; hashes: string[] };
  segmentPath: string;
  segmentBytes: number;
  segmentStartedMs: number;
  lastCheckpointSize: number;
  checkpointIndex: number;
  sinceCheckpoint: number;
  dropped: number;
  droppedSince?: string;
  stats: WriterStats;
}

export interface AppendResult {
  seq: number;
  hash: string;
  /** True when async mode dropped the record because the queue was full (its count is logged later). */
  dropped?: boolean;
}

/** open() found a chain break before the last checkpointed record. */
export class AuditTamperError extends Error {
  override name = 'AuditTamperError';
  constructor(readonly problem: ScanProblem) {
    super(`audit log tampering detected in ${problem.segment} line ${problem.line} (byte ${problem.offset}, seq ${problem.seq}): ${problem.message}. Bastion will not write to a log whose history was changed. Inspect it with 'mcp-auditctl verify', keep a copy as evidence, then restart with audit.startNewSegmentAfterTamper: true to start a new chain (the damaged files are moved to quarantine/).`);
  }
}

/** The log cannot take more records right now (async mode, queue full, onFull: deny) or at all. */
export class AuditUnavailableError extends Error {
  override name = 'AuditUnavailableError';
}

export interface RecordEntry {
  type: 'record';
  /** The line and its newline. */
  data: Buffer;
  seq: number;
  hash: string;
  resolve?: (result: AppendResult) => void;
  reject?: (error: Error) => void;
}
export type QueueEntry = RecordEntry | { type: 'rotate'; path: string } | { type: 'checkpoint'; body: CheckpointBody };

/** Counters for metrics and benchmarks. */
export interface WriterStats {
  /** Synced write rounds (write + fdatasync). */
  batches: number;
  records: number;
  /** Wall time spent waiting for synced writes, in milliseconds. */
  syncMillis: number;
  largestBatch: number;
  dropped: number;
}

export interface RecoveryReport {
  truncatedBytes: number;
  tamperRestart: boolean;
  /** Complete records after the last seal that were cut off the chain (kept in quarantine/). */
  unsealedRecords?: number;
  /** Sizes of checkpoints the sealed records announced but that were missing, signed again. */
  resignedCheckpoints?: number[];
  /** A bastion.audit/1 log was moved to archive/ and a new chain started. */
  formatUpgrade?: boolean;
}

export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
