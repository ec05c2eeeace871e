import type { AuditRecord } from './schema.js';

/** Conversions of audit records to SIEM schemas. Bastion-specific fields go to `unmapped` (OCSF) or `bastion` (ECS). */

export type SiemFormat = 'ocsf' | 'ecs';

const OCSF_API_ACTIVITY = 6003;
const OCSF_APPLICATION_ACTIVITY = 6;

/** OCSF 1.1 API Activity (class 6003). */
export function toOcsf(record: AuditRecord): Record<string, unknown> {
  const activityId = ocsfActivity(record.method ?? record.event ?? '');
  const failed = record.decision === 'deny' || record.decision === 'error';
  return {
    class_uid: OCSF_API_ACTIVITY,
    class_name: 'API Activity',
    category_uid: OCSF_APPLICATION_ACTIVITY,
    category_name: 'Application Activity',
    activity_id: activityId,
    type_uid: OCSF_API_ACTIVITY * 100 + activityId,
    time: Date.parse(record.ts),
    severity_id: record.decision === 'deny' ? 3 : record.decision === 'error' ? 2 : 1,
    status_id: record.decision === undefined ? 0 : failed ? 2 : 1,
    status: record.decision === undefined ? 'Unknown' : failed ? 'Failure' : 'Success',
    status_detail: record.reason,
    duration: record.exec_duration_ms,
    message: record.kind === 'event' ? record.event : `${record.method ?? ''} ${record.decision ?? ''}`.trim(),
    actor: { user: { uid: record.agent_id, name: record.agent_id, credential_uid: record.token_fingerprint }, session: { uid: record.session_id } },
    api: {
      operation: record.method ?? record.event,
      service: { name: record.server },
      request: { uid: record.request_id === undefined ? undefined : String(record.request_id) },
      response: record.error_code === undefined ? undefined : { code: record.error_code, message: record.reason },
    },
    resources: record.tool === undefined ? undefined : [{ name: record.tool, type: 'mcp-tool', group: { name: record.server } }],
    metadata: { version: '1.1.0', product: { name: 'Bastion', vendor_name: 'Bastion', feature: { name: 'audit' } }, uid: record.hash, sequence: record.seq, log_name: 'bastion.audit', original_time: record.ts },
    unmapped: { task_id: record.task_id, tools_invoked: record.tools_invoked, args_digest: record.args_digest, output_digest: record.output_digest, prompt_digest: record.prompt_digest, output_summary: record.output_summary, denied_by: record.denied_by, timed_out: record.timed_out, protocol_version: record.protocol_version, prev: record.prev, info: record.info },
  };
}

function ocsfActivity(operation: string): number {
  if (/\/(list|read|get)$/.test(operation)) return 2;
  if (operation === 'tools/call' || operation.startsWith('sampling/') || operation.startsWith('elicitation/')) return 99;
  return 99;
}

/** Elastic Common Schema 8.x. */
export function toEcs(record: AuditRecord): Record<string, unknown> {
  const outcome = record.decision === undefined ? 'unknown' : record.decision === 'allow' ? 'success' : 'failure';
  return {
    '@timestamp': record.ts,
    ecs: { version: '8.11.0' },
    event: {
      kind: record.kind === 'event' ? 'event' : 'event',
      category: record.kind === 'event' ? ['configuration'] : ['api'],
      type: record.decision === 'deny' ? ['denied'] : record.kind === 'event' ? ['info'] : ['access'],
      action: record.kind === 'event' ? record.event : record.method,
      outcome,
      reason: record.reason,
      duration: record.exec_duration_ms === undefined ? undefined : Math.round(record.exec_duration_ms * 1e6),
      id: record.hash,
      sequence: record.seq,
      dataset: 'bastion.audit',
      provider: 'bastion',
    },
    user: record.agent_id === undefined ? undefined : { id: record.agent_id, name: record.agent_id },
    service: record.server === undefined ? undefined : { name: record.server },
    error: record.error_code === undefined ? undefined : { code: String(record.error_code), message: record.reason },
    observer: { product: 'Bastion', vendor: 'Bastion', type: 'gateway' },
    labels: { session_id: record.session_id, task_id: record.task_id, tool: record.tool },
    bastion: { audit: { schema: record.schema, tool: record.tool, tools_invoked: record.tools_invoked, denied_by: record.denied_by, timed_out: record.timed_out, args_digest: record.args_digest, output_digest: record.output_digest, prompt_digest: record.prompt_digest, output_summary: record.output_summary, token_fingerprint: record.token_fingerprint, protocol_version: record.protocol_version, prev: record.prev, info: record.info } },
  };
}

/** Drops undefined members so the JSON output stays small. */
export function compact(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value)) as unknown;
}
