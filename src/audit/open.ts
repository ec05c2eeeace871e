import { AuditLog, type AuditLogOptions } from './log.js';
import type { AuditWriter } from './log-types.js';
import { ThreadedAuditLog } from './thread/threaded-log.js';

/** Opens the gateway's audit log per audit.writer: adaptive (the default) or thread on the writer thread, or inline. */
export function openAuditWriter(options: AuditLogOptions): Promise<AuditWriter> {
  if (options.writer === 'inline' || options.now !== undefined) return AuditLog.open(options);
  return ThreadedAuditLog.open(options, { adaptive: options.writer !== 'thread' });
}
