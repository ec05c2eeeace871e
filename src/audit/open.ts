import { AuditLog, type AuditLogOptions } from './log.js';
import type { AuditWriter } from './log-types.js';
import { ThreadedAuditLog } from './thread/threaded-log.js';

/** Opens the gateway's audit log on the writer thread (audit.writer: thread, the default) or inline. */
export function openAuditWriter(options: AuditLogOptions): Promise<AuditWriter> {
  return options.writer === 'inline' || options.now !== undefined ? AuditLog.open(options) : ThreadedAuditLog.open(options);
}
