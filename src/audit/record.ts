import { ErrorCode, isSharedResult, sharedText, type AuditFacts, type CallContext, type CallTarget, type Identity, type Outcome, type SessionInfo } from '../pipeline/index.js';
import { canonicalJson, plainCanonicalJson, sha256Hex } from './canonical.js';
import type { CaptureLevel } from './config.js';
import { createRedactor, wellFormed, type Redactor } from './redact.js';
import type { AuditFields, Decision, JsonValue } from './schema.js';

export interface CaptureOptions {
  arguments: CaptureLevel;
  outputs: CaptureLevel;
  maxChars: number;
}

const denyCodes = new Set<number>([ErrorCode.Unauthenticated, ErrorCode.Forbidden, ErrorCode.RateLimited, ErrorCode.RequestTooLarge, ErrorCode.CircuitOpen, ErrorCode.Quarantined]);

/**
 * What the record of one finished request is built from: a plain-data snapshot of the call's
 * context and outcome, so that the record can also be built off the gateway's main thread (the
 * audit writer thread, src/audit/thread) from a structured clone of it.
 */
export interface CallRecordInput {
  requestId: string | number;
  method: string;
  params: Record<string, unknown> | undefined;
  identity: Identity | undefined;
  session: Pick<SessionInfo, 'sessionId' | 'transport' | 'protocolVersion'>;
  taskId: string | undefined;
  traceId: string | undefined;
  target: CallTarget | undefined;
  audit: AuditFacts;
  elapsedMs: number;
  requestBytes: number;
  outcome: Outcome;
}

/** The snapshot of `ctx` and `outcome` a record is built from (cheap: it copies no argument or result). */
export function callRecordInput(ctx: CallContext, outcome: Outcome): CallRecordInput {
  const { identity, target, session } = ctx;
  return {
    requestId: ctx.requestId,
    method: ctx.method,
    params: ctx.params,
    identity: identity === undefined ? undefined : { agentId: identity.agentId, tokenFingerprint: identity.tokenFingerprint, method: identity.method, ...(identity.subject === undefined ? {} : { subject: identity.subject }) },
    session: { sessionId: session.sessionId, transport: session.transport, protocolVersion: session.protocolVersion },
    taskId: ctx.taskId,
    traceId: ctx.trace?.traceId,
    target: target === undefined ? undefined : { server: target.server, ...(target.name === undefined ? {} : { name: target.name }), ...(target.calledAs === undefined ? {} : { calledAs: target.calledAs }) },
    audit: { ...ctx.audit },
    elapsedMs: ctx.elapsedMs(),
    requestBytes: ctx.requestBytes,
    outcome,
  };
}

/** Builds the one record for a finished request (see buildRequestRecord). */
export function requestRecord(ctx: CallContext, outcome: Outcome, capture: CaptureOptions, digestText: (canonicalJson: string) => string = plainDigest): AuditFields {
  return buildRequestRecord(callRecordInput(ctx, outcome), capture, digestText);
}

/**
 * Builds the one record for a finished request. Everything in clear passes the redactor first.
 * `digestText` keys args_digest, output_digest and prompt_digest: they digest what was sent and
 * returned before redaction, so an unkeyed digest would let anyone holding the log confirm a
 * guessed password or a guessed file content. Without it (a sink with no key), plain SHA-256.
 */
export function buildRequestRecord(call: CallRecordInput, capture: CaptureOptions, digestText: (canonicalJson: string) => string = plainDigest): AuditFields {
  const { outcome } = call;
  const redactor = createRedactor();
  const params = call.params ?? {};
  const args = call.method === 'tools/call' ? params['arguments'] : withoutMeta(params);
  const errorCode = outcome.ok ? undefined : outcome.error.code;
  const timedOut = call.audit.timedOut === true || errorCode === ErrorCode.RequestTimeout;
  const decision: Decision = call.audit.decision ?? (outcome.ok ? 'allow' : errorCode !== undefined && denyCodes.has(errorCode) ? 'deny' : 'error');
  const reason = call.audit.reason ?? (outcome.ok ? undefined : outcome.error.message);
  const produced = outcome.ok ? outcome.result : outcome.error;
  // Each value is canonicalised once: the digest, the size and the capture's length check share the text.
  const producedPlain = plainCanonicalJson(produced);
  const producedText = producedPlain ?? canonicalJson(jsonSafe(produced));
  const argsPlain = args === undefined ? undefined : plainCanonicalJson(args);
  const argsText = args === undefined ? undefined : (argsPlain ?? canonicalJson(jsonSafe(args)));
  const identity = call.identity;
  const target = call.target;
  // A call denied before routing has no target yet; the name the client asked for is still evidence.
  const requestedName = target?.name ?? requestedTarget(call.method, params);
  const fields: AuditFields = {
    kind: 'request',
    request_id: typeof call.requestId === 'string' ? redactor.text(call.requestId) : call.requestId,
    method: call.method,
    agent_id: identity?.agentId,
    auth_method: identity?.method,
    subject: identity?.subject === undefined ? undefined : redactor.text(identity.subject),
    token_fingerprint: identity?.tokenFingerprint,
    session_id: call.session.sessionId,
    transport: call.session.transport,
    protocol_version: call.session.protocolVersion,
    task_id: call.taskId === undefined ? undefined : redactor.text(call.taskId),
    // Bastion's own trace id (validated hex), never a client's tracestate.
    trace_id: call.traceId,
    server: target?.server,
    // Clipped before redaction: a client-chosen name is evidence, but not 1 MB of it per record.
    tool: requestedName === undefined ? undefined : redactor.text(clip(requestedName, 512)),
    tools_invoked: call.method === 'tools/call' ? toolsInvoked(call, redactor) : undefined,
    tool_called_as: target?.calledAs === undefined ? undefined : redactor.text(clip(target.calledAs, 512)),
    decision,
    reason: reason === undefined ? undefined : clip(redactor.text(reason), 512),
    denied_by: call.audit.deniedBy,
    error_code: errorCode,
    timed_out: timedOut ? true : undefined,
    exec_duration_ms: round(call.elapsedMs),
    upstream_duration_ms: call.audit.upstreamDurationMs === undefined ? undefined : round(call.audit.upstreamDurationMs),
    request_bytes: call.requestBytes,
    output_bytes: call.audit.outputBytes ?? outputBytes(produced, producedText),
    args_digest: argsText === undefined ? undefined : digestText(argsText),
    output_digest: outputDigest(produced, producedText, digestText),
    prompt_digest: promptDigest(call.method, params, outcome, digestText),
    output_summary: clip(redactor.text(summarize(outcome)), 256),
    input: args === undefined ? undefined : captured(args, argsPlain, capture.arguments, capture.maxChars, redactor),
    output: captured(produced, producedPlain, capture.outputs, capture.maxChars, redactor),
  };
  const approval = call.audit.approval;
  if (approval !== undefined) {
    fields.approval = approval.verdict;
    fields.approval_id = approval.id;
    fields.approval_via = approval.via;
    fields.approval_wait_ms = approval.waitedMs;
    if (approval.by !== undefined) fields.approval_by = redactor.text(clip(approval.by, 256));
  }
  if (redactor.count > 0) fields.redactions = redactor.count;
  return fields;
}

/** Each digest function (one per log key) gets its own memo form, so a shared result's digest is never another key's. */
const digestForms = new WeakMap<(canonicalJson: string) => string, string>();
let digestFormCount = 0;

/** The output digest; for a result many sessions share (a cached list page), computed once per key. */
function outputDigest(produced: unknown, producedText: string, digestText: (canonicalJson: string) => string): string {
  if (!isSharedResult(produced)) return digestText(producedText);
  let form = digestForms.get(digestText);
  if (form === undefined) digestForms.set(digestText, (form = `digest:${digestFormCount++}`));
  return sharedText(produced, form, () => digestText(producedText)) ?? digestText(producedText);
}

function outputBytes(produced: unknown, producedText: string): number {
  if (!isSharedResult(produced)) return Buffer.byteLength(producedText);
  return Number(sharedText(produced, 'bytes', () => String(Buffer.byteLength(producedText))));
}

function requestedTarget(method: string, params: Record<string, unknown>): string | undefined {
  const key = method === 'resources/read' || method === 'resources/subscribe' ? 'uri' : 'name';
  const value = params[key];
  return typeof value === 'string' ? value : undefined;
}

function toolsInvoked(call: CallRecordInput, redactor: Redactor): string[] | undefined {
  if (call.target?.name !== undefined) return [`${call.target.server}.${call.target.name}`];
  const name = call.params?.['name'];
  return typeof name === 'string' ? [redactor.text(clip(name, 512))] : undefined;
}

/** Canonical JSON of anything a call produced; what JSON cannot hold is replaced first (see jsonSafe). */
function safeCanonicalJson(value: unknown): string {
  return plainCanonicalJson(value) ?? canonicalJson(jsonSafe(value));
}

function withoutMeta(params: Record<string, unknown>): Record<string, unknown> | undefined {
  const rest = { ...params };
  delete rest['_meta'];
  return Object.keys(rest).length === 0 ? undefined : rest;
}

/** Sampling requests and prompts put text into a model's context: their messages get their own digest. */
function promptDigest(method: string, params: Record<string, unknown>, outcome: Outcome, digestText: (canonicalJson: string) => string): string | undefined {
  if (method === 'sampling/createMessage') return digestText(safeCanonicalJson({ messages: params['messages'] ?? null, systemPrompt: params['systemPrompt'] ?? null }));
  if (method === 'prompts/get' && outcome.ok && outcome.result !== null && typeof outcome.result === 'object') return digestText(safeCanonicalJson((outcome.result as Record<string, unknown>)['messages'] ?? null));
  return undefined;
}

/** The digest a sink without a key writes: `sha256:` of the canonical JSON text. */
export function plainDigest(canonicalJson: string): string {
  return `sha256:${sha256Hex(canonicalJson)}`;
}

function summarize(outcome: Outcome): string {
  if (!outcome.ok) return `error ${outcome.error.code}: ${outcome.error.message}`;
  const result = outcome.result;
  if (result === null || typeof result !== 'object') return typeof result;
  const record = result as Record<string, unknown>;
  const parts: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (Array.isArray(value)) parts.push(`${key}: ${value.length} item${value.length === 1 ? '' : 's'}${key === 'content' ? ` (${contentKinds(value)})` : ''}`);
  }
  if (record['isError'] === true) parts.unshift('isError');
  return parts.length > 0 ? parts.join('; ') : `object with ${Object.keys(record).length} keys`;
}

function contentKinds(items: unknown[]): string {
  const counts = new Map<string, number>();
  for (const item of items) {
    const type = item !== null && typeof item === 'object' && typeof (item as { type?: unknown }).type === 'string' ? (item as { type: string }).type : 'unknown';
    counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  return [...counts].map(([type, count]) => `${count} ${type}`).join(', ');
}

/**
 * The value as the record captures it. `plainText` is the value's canonical JSON when it is plain
 * JSON data (plainCanonicalJson): then the redactor's copy differs from it only where the
 * redactor replaced or cut something, so when it did neither that text is the copy's too.
 */
function captured(value: unknown, plainText: string | undefined, level: CaptureLevel, maxChars: number, redactor: Redactor): JsonValue | undefined {
  if (level === 'none') return undefined;
  const before = redactor.count + redactor.truncations;
  // The redactor makes its copy JSON-safe as it goes (lone surrogates, non-finite numbers, bigint).
  const redacted = redactor.json(value);
  if (level === 'full') return redacted;
  const text = plainText !== undefined && redactor.count + redactor.truncations === before ? plainText : canonicalJson(redacted);
  if (text.length <= maxChars) return redacted;
  return `${clip(text, maxChars)}…[truncated ${text.length - maxChars} chars]`;
}

/** Cuts a string without splitting a surrogate pair (a lone surrogate has no canonical JSON form). */
function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  return text.slice(0, end);
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** Replaces what JSON cannot hold (undefined, functions, bigint, lone surrogates) so digests never throw. */
function jsonSafe(value: unknown, depth = 0): JsonValue {
  if (depth > 64) return '[TRUNCATED:depth]';
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'string') return wellFormed(value);
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map((item) => jsonSafe(item, depth + 1));
  if (typeof value === 'object') {
    const out: { [key: string]: JsonValue } = {};
    for (const [key, item] of Object.entries(value as Record<string, unknown>)) if (item !== undefined && typeof item !== 'function') out[wellFormed(key)] = jsonSafe(item, depth + 1);
    return out;
  }
  return null;
}
