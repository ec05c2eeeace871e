import type { AppendResult, AuditWriter, JsonValue } from '../audit/index.js';
import type { Logger } from '../observability/index.js';

/** Records an audit event from a callback that cannot wait for the write. */
export type RecordEvent = (type: string, info: { [key: string]: JsonValue }) => void;

/**
 * A failed write (log failed, closed, or its async queue full) is logged with its cause instead
 * of becoming an unhandled rejection; calls still meet the failure through the audit guard.
 */
export function eventRecorder(audit: AuditWriter, logger: Logger, committed?: (type: string, info: { [key: string]: JsonValue }, result: AppendResult) => void): RecordEvent {
  return (type, info) => {
    audit.event(type, info).then(
      (result) => committed?.(type, info, result),
      (error: unknown) => logger.error({ err: error, event: type }, 'could not record event in the audit log'),
    );
  };
}
