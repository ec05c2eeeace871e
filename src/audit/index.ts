/**
 * Tamper-evident audit log: record schema, chained group-commit writer, signed checkpoints,
 * crash recovery, verification and the audit guard. See docs/audit.md.
 */
export { AuditLog, AuditTamperError, AuditUnavailableError, writerLockHolder } from './log.js';
export type { AppendResult, AuditLogOptions, AuditWriter, RecoveryReport, WriterStats } from './log.js';
export { openAuditWriter } from './open.js';
export { ThreadedAuditLog } from './thread/threaded-log.js';
export { createAuditGuard } from './guard.js';
export type { AuditSink } from './guard.js';
export { plainDigest, requestRecord } from './record.js';
export type { CaptureOptions } from './record.js';
export { auditConfigSchema, defaultAuditConfig, resolveAuditConfig } from './config.js';
export type { AuditConfig, CaptureLevel, DeepPartial } from './config.js';
export { AUDIT_SCHEMA, AuditEvent } from './schema.js';
export type { AuditFields, AuditRecord, Decision, JsonValue } from './schema.js';
export { createRedactor } from './redact.js';
export { defaultVerifyThreads, verifyLog, verifyLogParallel, VerifyExit } from './verify.js';
export type { VerifyOptions, VerifyReport } from './verify.js';
export { loadOrCreateSigningKey, loadVerifier, vkeyOf } from './keys.js';
