import { ErrorCode, failure, type CallContext, type Guard, type Next, type Outcome } from '../pipeline/index.js';
import type { AuditFields } from './schema.js';
import type { AppendResult } from './log.js';
import { requestRecord, type CaptureOptions } from './record.js';

/** What the guard needs from a log: AuditLog satisfies it. */
export interface AuditSink {
  append(fields: AuditFields): Promise<AppendResult>;
  /** Keyed digest for args_digest, output_digest and prompt_digest (AuditLog: HMAC under the log's digest key); without it, plain SHA-256. */
  digestText?(canonicalJson: string): string;
}

/**
 * The outermost guard: it runs the whole chain, then commits exactly one record for the request,
 * whatever happened inside. In durable mode the outcome is released only once the record is on
 * disk; if the record cannot be written the client gets an error instead (fail closed).
 */
export function createAuditGuard(log: AuditSink, capture: CaptureOptions): Guard {
  const digestText = log.digestText?.bind(log);
  return {
    name: 'audit',
    async handle(ctx: CallContext, next: Next): Promise<Outcome> {
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
        await log.append(requestRecord(ctx, outcome, capture, digestText));
      } catch (error) {
        return failure(ErrorCode.InternalError, 'the audit log could not record this call, so its result is withheld', { reason: 'audit_unavailable', detail: error instanceof Error ? error.message : String(error) });
      }
      if (threw) throw thrown;
      return outcome;
    },
  };
}
