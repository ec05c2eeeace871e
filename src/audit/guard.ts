import { ErrorCode, failure, isSharedResult, type CallContext, type Guard, type Next, type Outcome } from '../pipeline/index.js';
import type { AuditFields } from './schema.js';
import type { AppendResult } from './log.js';
import { buildRequestRecord, callRecordInput, type CallRecordInput, type CaptureOptions } from './record.js';
import { isNotCloneable, type CallAppended } from './thread/threaded-log.js';

/** What the guard needs from a log: AuditLog and ThreadedAuditLog satisfy it. */
export interface AuditSink {
  append(fields: AuditFields): Promise<AppendResult>;
  /** Keyed digest for args_digest, output_digest and prompt_digest (AuditLog: HMAC under the log's digest key); without it, plain SHA-256. */
  digestText?(canonicalJson: string): string;
  /**
   * Builds the call's record where the log runs (ThreadedAuditLog: its writer thread) and appends
   * it. `alone`: no other call was in flight through this guard (where the log may run, placement.ts).
   */
  appendCall?(call: CallRecordInput, capture: CaptureOptions, wantFields?: boolean, alone?: boolean): Promise<CallAppended>;
}

/**
 * The outermost guard: it runs the whole chain, then commits exactly one record for the request,
 * whatever happened inside. In durable mode the outcome is released only once the record is on
 * disk; if the record cannot be written the client gets an error instead (fail closed).
 */
export function createAuditGuard(log: AuditSink, capture: CaptureOptions): Guard {
  const digestText = log.digestText?.bind(log);
  /** Calls between this guard's entry and their commit. */
  let inFlight = 0;
  return {
    name: 'audit',
    async handle(ctx: CallContext, next: Next): Promise<Outcome> {
      inFlight += 1;
      try {
        let outcome: Outcome;
        let thrown: unknown;
        let threw = false;
        try {
          outcome = await next(ctx);
        } catch (error) {
          threw = true;
          thrown = error;
          ctx.audit.decision ??= 'error';
          ctx.audit.reason ??= `internal error: ${error instanceof Error ? error.message : String(error)}`;
          outcome = failure(ErrorCode.InternalError, 'internal error');
        }
        try {
          await commit(log, callRecordInput(ctx, outcome), capture, digestText, inFlight === 1);
        } catch (error) {
          return failure(ErrorCode.InternalError, 'the audit log could not record this call, so its result is withheld', { reason: 'audit_unavailable', detail: error instanceof Error ? error.message : String(error) });
        }
        if (threw) throw thrown;
        return outcome;
      } finally {
        inFlight -= 1;
      }
    },
  };
}

/** The record goes to the writer thread to be built there when the log has one, else it is built here. */
async function commit(log: AuditSink, call: CallRecordInput, capture: CaptureOptions, digestText: ((text: string) => string) | undefined, alone: boolean): Promise<void> {
  if (log.appendCall !== undefined && !isSharedResult(call.outcome.ok ? call.outcome.result : undefined)) {
    try {
      await log.appendCall(call, capture, false, alone);
      return;
    } catch (error) {
      if (!isNotCloneable(error)) throw error;
    }
  }
  await log.append(buildRequestRecord(call, capture, digestText));
}
