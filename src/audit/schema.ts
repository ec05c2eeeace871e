/**
 * The audit record schema, version 1. docs/audit.md documents every field.
 *
 * The layout has one structural rule that the fast verifier relies on: in the canonical
 * (RFC 8785, keys sorted) form, every top-level member sorting before `hash` and every member
 * sorting after `prev` holds a scalar or an array of strings. Nested objects may only live in
 * `info`, `input` and `output`, which sort between the two. So the first `"hash":"` in a line and
 * the last `"prev":"` and `"seq":` are always the top-level members.
 */

export const AUDIT_SCHEMA = 'bastion.audit/2';
/** Logs written before batch seals, checkpoint indices and keyed argument digests (docs/audit.md). */
export const LEGACY_AUDIT_SCHEMA = 'bastion.audit/1';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export type Decision = 'allow' | 'deny' | 'error';

/** Event types the log itself writes; the gateway may use any other dotted name. */
export const AuditEvent = {
  SegmentStart: 'audit.segment_start',
  Recovery: 'audit.recovery',
  Dropped: 'audit.dropped',
  TamperRestart: 'audit.tamper_restart',
  Retention: 'audit.retention',
  /** Ends every group-commit batch: an HMAC over the chain head (seal.ts). */
  Seal: 'audit.seal',
  /** Records no seal covered were cut off the chain at open and kept as evidence. */
  UnsealedTail: 'audit.unsealed_tail',
  /** A log of an older format was archived and a new chain started. */
  FormatUpgrade: 'audit.format_upgrade',
  /** A sink's receiver took a delivery but rejected records of it for good (OTLP partial success). */
  ShipRejected: 'audit.ship_rejected',
  GatewayStart: 'gateway.start',
  GatewayStop: 'gateway.stop',
  ConfigLoad: 'config.load',
  KeyChange: 'key.change',
  PolicyChange: 'policy.change',
  /** A config reload: status refused (with the problems) or applied (with what changed and what waits for a restart). */
  ConfigReload: 'config.reload',
  /** A server started, drained or stopped by a config reload. */
  ServerReload: 'server.reload',
  Quarantine: 'quarantine',
  Alert: 'alert',
  // Upstream side (written by the gateway; docs/audit.md lists their info members).
  UpstreamStart: 'upstream.start',
  UpstreamRestart: 'upstream.restart',
  UpstreamDown: 'upstream.down',
  UpstreamExit: 'upstream.exit',
  UpstreamKilled: 'upstream.killed',
  UpstreamProtocolViolation: 'upstream.protocol_violation',
  UpstreamStrayResponse: 'upstream.stray_response',
  UpstreamNotificationsDropped: 'upstream.notifications_dropped',
  ServerRequest: 'server_request',
} as const;

/** What a caller hands to `append`: everything except the chain members and the schema tag. */
export interface AuditFields {
  kind: 'request' | 'event';
  /** Event type, for kind 'event'. */
  event?: string;
  ts?: string;
  request_id?: string | number;
  method?: string;
  agent_id?: string;
  auth_method?: string;
  subject?: string;
  token_fingerprint?: string;
  session_id?: string;
  transport?: string;
  protocol_version?: string;
  task_id?: string;
  /** The OpenTelemetry trace id of the request (32 hex), when observability.tracing is on. */
  trace_id?: string;
  server?: string;
  tool?: string;
  tools_invoked?: string[];
  decision?: Decision;
  reason?: string;
  denied_by?: string;
  error_code?: number;
  timed_out?: boolean;
  exec_duration_ms?: number;
  upstream_duration_ms?: number;
  request_bytes?: number;
  output_bytes?: number;
  args_digest?: string;
  output_digest?: string;
  prompt_digest?: string;
  output_summary?: string;
  redactions?: number;
  /** Human approval of the call (src/approval): the verdict, its id, who decided, through what, after how long. */
  approval?: string;
  approval_id?: string;
  approval_by?: string;
  approval_via?: string;
  approval_wait_ms?: number;
  /** The tool's name as the agent called it, when curation renamed it (`tool` is the upstream's own name). */
  tool_called_as?: string;
  /** The replica that wrote the record (cluster.replicaId), when Bastion runs as several replicas. */
  replica?: string;
  input?: JsonValue;
  output?: JsonValue;
  info?: { [key: string]: JsonValue };
}

/** A record as stored: the fields plus schema tag and chain members. */
export interface AuditRecord extends AuditFields {
  schema: typeof AUDIT_SCHEMA | typeof LEGACY_AUDIT_SCHEMA;
  ts: string;
  seq: number;
  prev: string;
  hash: string;
}

type FieldKind = 'string' | 'id' | 'number' | 'boolean' | 'strings' | 'json' | 'object';

const fieldKinds: Record<keyof AuditFields, FieldKind> = {
  kind: 'string',
  event: 'string',
  ts: 'string',
  request_id: 'id',
  method: 'string',
  agent_id: 'string',
  auth_method: 'string',
  subject: 'string',
  token_fingerprint: 'string',
  session_id: 'string',
  transport: 'string',
  protocol_version: 'string',
  task_id: 'string',
  trace_id: 'string',
  server: 'string',
  tool: 'string',
  tools_invoked: 'strings',
  decision: 'string',
  reason: 'string',
  denied_by: 'string',
  error_code: 'number',
  timed_out: 'boolean',
  exec_duration_ms: 'number',
  upstream_duration_ms: 'number',
  request_bytes: 'number',
  output_bytes: 'number',
  args_digest: 'string',
  output_digest: 'string',
  prompt_digest: 'string',
  output_summary: 'string',
  redactions: 'number',
  approval: 'string',
  approval_id: 'string',
  approval_by: 'string',
  approval_via: 'string',
  approval_wait_ms: 'number',
  tool_called_as: 'string',
  replica: 'string',
  input: 'json',
  output: 'json',
  info: 'object',
};

export const ZERO_HASH = '0'.repeat(64);

/** Every top-level member a stored line can hold, in canonical (RFC 8785) order; `hash` is spliced in after hashing. */
export const RECORD_KEYS_IN_ORDER: readonly string[] = [...Object.keys(fieldKinds), 'schema', 'seq', 'prev'].sort();

/**
 * Rejects unknown keys and wrongly typed values, so nothing outside the schema (and in
 * particular no nested object outside info/input/output) reaches a line.
 */
export function checkFields(fields: AuditFields): void {
  const source = fields as unknown as Record<string, unknown>;
  for (const key in source) {
    const value = source[key];
    if (value === undefined) continue;
    const kind = Object.hasOwn(fieldKinds, key) ? (fieldKinds as Record<string, FieldKind>)[key] : undefined;
    if (kind === undefined) throw new TypeError(`audit record: unknown field '${key}' (see docs/audit.md for the schema)`);
    if (!matchesKind(value, kind)) throw new TypeError(`audit record: field '${key}' must be ${kind}, got ${typeof value}`);
  }
  if (fields.kind !== 'request' && fields.kind !== 'event') throw new TypeError("audit record: field 'kind' must be 'request' or 'event'");
  if (fields.kind === 'event' && typeof fields.event !== 'string') throw new TypeError("audit record: an event record needs 'event' (its type)");
}

function matchesKind(value: unknown, kind: FieldKind): boolean {
  switch (kind) {
    case 'string':
      return typeof value === 'string';
    case 'id':
      return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'strings':
      return Array.isArray(value) && value.every((item) => typeof item === 'string');
    case 'json':
      return true;
    case 'object':
      return value !== null && typeof value === 'object' && !Array.isArray(value);
  }
}
