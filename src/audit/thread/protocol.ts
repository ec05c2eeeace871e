// The messages between the gateway's main thread (ThreadedAuditLog) and the audit writer thread
// (worker.ts). Everything here is structured-cloneable; requests go over in per-turn batches and
// answers come back the same way, with the log's state (size, head, stats) as of the answer.
import type { KeyObject } from 'node:crypto';
import type { AppendOnlyStatus } from '../append-only.js';
import type { NoteVerifier } from '../keys.js';
import type { LogMetadata } from '../layout.js';
import type { AppendResult, LogHandoff, RecoveryReport, WriterStats } from '../log-types.js';
import type { CallRecordInput, CaptureOptions } from '../record.js';
import type { AuditFields } from '../schema.js';

export type WriterRequest =
  | { op: 'append'; id: number; fields: AuditFields }
  /** Build the record of a finished call there (buildRequestRecord), then append it. */
  | { op: 'call'; id: number; call: CallRecordInput; capture: CaptureOptions; wantFields: boolean }
  | { op: 'flush' | 'checkpoint' | 'close'; id: number }
  /** Stop writing once everything is on disk and hand the log's state back (the main thread takes over). */
  | { op: 'release'; id: number }
  /** Take the log over from the main thread. */
  | { op: 'adopt'; id: number; handoff: LogHandoff };

/** An error as it crosses the thread boundary; `problem` rebuilds an AuditTamperError. */
export interface WireError {
  name: string;
  message: string;
  problem?: unknown;
}

export interface WriterAnswer {
  id: number;
  result?: AppendResult;
  /** The record built for a `call` request, when it asked for it (the console's live feed). */
  fields?: AuditFields;
  /** The answer to `release`. */
  handoff?: LogHandoff;
  error?: WireError;
}

export interface LogState {
  size: number;
  head: string;
  stats: WriterStats;
  failed?: WireError;
}

export interface LogOpened extends LogState {
  dir: string;
  metadata: LogMetadata;
  appendOnly: AppendOnlyStatus;
  recovery: RecoveryReport;
  keys: { seal: KeyObject; digest: KeyObject };
  verifier: NoteVerifier;
}

export type WriterMessage =
  | { type: 'opened'; log: LogOpened }
  | { type: 'open-failed'; error: WireError }
  /** `commits`: synced batches and checkpoints since the last message (wake-ups for onCommit). */
  | { type: 'answers'; answers: WriterAnswer[]; commits: number; state: LogState };

export function toWire(error: unknown): WireError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const problem = (error as { problem?: unknown }).problem;
  return { name: error.name, message: error.message, ...(problem === undefined ? {} : { problem }) };
}
