// What the admin API reads from and acts on in the running gateway, gathered by the composition
// root (src/app/bastion.ts) so the API depends on interfaces, not on how the gateway is built.
import type { JsonValue } from '../../audit/index.js';
import type { ApprovalQueue } from '../../approval/index.js';
import type { QuarantineDecision, QuarantineRecord } from '../../integrity/index.js';
import type { PolicyStore } from '../../policy/index.js';
import type { LogKeyAccess } from './audit-query.js';
import type { AuditFeed } from './feed.js';
import type { HealthTracker } from './health.js';

export interface SessionSummary {
  sessionId: string;
  agent: string;
  /** stdio, http (Streamable HTTP) or sse (the 2024-11-05 transport). */
  transport: string;
  /** session (stateful) or stateless (a 2026-07-28 context the gateway keeps per agent). */
  kind: string;
  protocolVersion: string | undefined;
  client: Record<string, unknown>;
  calls: number;
  inFlight: number;
  lastSeen: string;
}

export interface ServerSummary {
  name: string;
  transport: string;
  /** admitted at boot, or refused with why. */
  admission: { ok: true; trust: string } | { ok: false; reason: string };
  minCertificationLevel: number;
}

export interface WithheldOutput {
  id: string;
  ts: string;
  server: string | null;
  subject: string;
  reason: string;
  findings: { ruleId: string; severity: string; title: string }[];
}

export interface QuarantineAccess {
  list(): QuarantineRecord[];
  get(id: string): QuarantineRecord | undefined;
  /** The same rules as `bastion quarantine approve|reject` (src/integrity/quarantine-decision.ts). */
  decide(id: string, status: 'approved' | 'rejected'): QuarantineDecision;
}

export interface AdminSources {
  /** The audit log's directory, for queries. */
  auditDir: string;
  /** The log's seal and checkpoint keys, for a record's badge (the running AuditLog). */
  auditKeys?: LogKeyAccess;
  feed: AuditFeed;
  health: HealthTracker;
  quarantines: QuarantineAccess;
  /** Undefined when the policy is not enforced (no approvals, no explain). */
  policy: PolicyStore | undefined;
  approvals: ApprovalQueue | undefined;
  servers(): ServerSummary[];
  sessions(): SessionSummary[];
  /** Configured quota rules, the counters as the limit store holds them, and what is in flight now. */
  quotas(): Promise<{ [key: string]: JsonValue }>;
  /** Outputs the output inspection withheld, newest first. */
  withheld(limit: number): WithheldOutput[];
  /** Writes an audit event for an operator's action (or refused attempt). */
  recordAction(info: { [key: string]: JsonValue }): void;
}
