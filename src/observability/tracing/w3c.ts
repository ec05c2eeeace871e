import type { CallContext } from '../../pipeline/index.js';

/** A W3C trace context a client sent, already checked for shape (docs/observability.md). */
export interface RemoteTraceContext {
  traceparent: string;
  tracestate?: string;
}

/** Version 00 exactly: lowercase hex, no trailing data. Later versions are not guessed at. */
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);
/** W3C allows 32 members of up to 256 characters each; a client gets far less room here. */
const MAX_TRACESTATE_CHARS = 512;

/** Whether `value` is a version-00 traceparent with non-zero ids. */
export function validTraceparent(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  const match = TRACEPARENT.exec(value);
  return match !== null && match[1] !== ZERO_TRACE_ID && match[2] !== ZERO_SPAN_ID;
}

/**
 * The trace context the request continues: `_meta.traceparent` (MCP's own carrier) first, then
 * the HTTP `traceparent` header. Anything malformed yields undefined, and the request starts a
 * new root trace: garbage is never continued. `tracestate` is kept only next to a valid
 * traceparent and within a small size (the OpenTelemetry parser then checks its members).
 */
export function remoteTraceContext(ctx: CallContext): RemoteTraceContext | undefined {
  const meta = ctx.params?.['_meta'];
  if (meta !== null && typeof meta === 'object' && !Array.isArray(meta)) {
    const record = meta as Record<string, unknown>;
    if (record['traceparent'] !== undefined) return checked(record['traceparent'], record['tracestate']);
  }
  const transport = ctx.transportTrace;
  return transport === undefined ? undefined : checked(transport.traceparent, transport.tracestate);
}

function checked(traceparent: unknown, tracestate: unknown): RemoteTraceContext | undefined {
  if (!validTraceparent(traceparent)) return undefined;
  return typeof tracestate === 'string' && tracestate.length > 0 && tracestate.length <= MAX_TRACESTATE_CHARS ? { traceparent, tracestate } : { traceparent };
}
