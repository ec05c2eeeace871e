import { performance } from 'node:perf_hooks';
import type { CancelSignal } from './cancellation.js';
import type { Guard, Next } from './chain.js';
import type { Outcome } from './outcome.js';

/** Who is calling. Set by the transport; the authentication guard refuses a context without it. */
export interface Identity {
  /** The agent id that policies and audit records refer to. */
  agentId: string;
  /** A short, non-reversible fingerprint of the credential (never the credential). */
  tokenFingerprint: string;
  /** How the caller proved who it is. */
  method: 'api-token' | 'oauth' | 'stdio';
  /** OAuth subject, when the caller used a JWT. */
  subject?: string;
}

/** Facts about the downstream session the request arrived on. */
export interface SessionInfo {
  sessionId: string;
  transport: 'stdio' | 'http' | 'sse';
  protocolVersion: string | undefined;
  /**
   * Asks the client's user through a form-mode `elicitation/create` the gateway itself sends;
   * present only when the client declared that capability on a stateful session. Resolves with
   * the client's result, rejects on an error answer, no stream to send it on, or `signal`.
   */
  askUser?: (params: Record<string, unknown>, signal: AbortSignal) => Promise<Record<string, unknown>>;
}

/** Per-call limits; config can widen them per server and tool. Guards narrow them by assigning a new object: the one set by the gateway is shared and frozen. */
export interface CallLimits {
  timeoutMs: number;
  maxOutputBytes: number;
  maxRequestBytes: number;
}

/** The upstream a request resolved to, with the names the upstream itself uses. */
export interface CallTarget {
  server: string;
  /** The tool, prompt or resource URI as the upstream knows it (namespace stripped). */
  name?: string;
  /** The tool's name as the client called it, when curation renamed it (namespace stripped). */
  calledAs?: string;
}

/** What the audit record needs; filled in as the request moves through the chain. */
export interface AuditFacts {
  decision?: 'allow' | 'deny' | 'error';
  reason?: string;
  /** The guard that produced the decision, when a guard denied. */
  deniedBy?: string;
  outputBytes?: number;
  upstreamDurationMs?: number;
  timedOut?: boolean;
  /** Set by the approval guard for a call that waited for an operator (docs/audit.md: approval_*). */
  approval?: { id: string; verdict: string; via: string; waitedMs: number; by?: string };
}

/** W3C trace context the transport received with the request (the HTTP `traceparent` header). */
export interface TransportTraceContext {
  traceparent: string;
  tracestate?: string;
}

/**
 * The request's trace, set by the tracing guard (src/observability/tracing) when tracing is on;
 * undefined otherwise, so the chain and dispatch pay one property check and nothing else.
 */
export interface CallTrace {
  /** The trace id (32 lowercase hex) recorded in the audit record. */
  readonly traceId: string;
  /** Runs one guard inside its own span (or records it as an event on the request span). */
  guard(guard: Guard, ctx: CallContext, next: Next): Promise<Outcome>;
  /** Starts the CLIENT span of the upstream call; `meta` goes into the upstream request's `_meta`. */
  upstreamCall(server: string, method: string, tool: string | undefined): UpstreamCallTrace;
}

/** The span of one forwarded request. */
export interface UpstreamCallTrace {
  /** `traceparent` (and `tracestate`) naming the CLIENT span, for the upstream's `_meta`. */
  readonly meta: Readonly<Record<string, string>>;
  /** Ends the span; `errorCode` is the JSON-RPC error the upstream (or the wait for it) produced. */
  end(errorCode: number | undefined): void;
}

export interface CallContextInit {
  requestId: string | number;
  method: string;
  params: Record<string, unknown> | undefined;
  session: SessionInfo;
  identity: Identity | undefined;
  requestBytes: number;
  limits: CallLimits;
  signal: CancelSignal;
  /** Trace context from the transport (HTTP header), when the client sent one. */
  transportTrace?: TransportTraceContext | undefined;
}

/** Everything known about one client request while it runs through the guard chain. */
export class CallContext {
  readonly requestId: string | number;
  readonly method: string;
  params: Record<string, unknown> | undefined;
  readonly session: SessionInfo;
  readonly identity: Identity | undefined;
  readonly requestBytes: number;
  readonly startedAt: number;
  /** Aborts the call. A guard may replace it with one that also aborts on its own condition (a circuit breaker opening), never with one that aborts less. */
  signal: CancelSignal;
  limits: CallLimits;
  target: CallTarget | undefined;
  /** The upstream's definition of the called tool (for tools/call), used by schema validation. */
  tool: Record<string, unknown> | undefined;
  readonly audit: AuditFacts = {};
  /** Set by the tracing guard when tracing is on. */
  trace: CallTrace | undefined = undefined;
  readonly transportTrace: TransportTraceContext | undefined;

  constructor(init: CallContextInit) {
    this.requestId = init.requestId;
    this.method = init.method;
    this.params = init.params;
    this.session = init.session;
    this.identity = init.identity;
    this.requestBytes = init.requestBytes;
    this.limits = init.limits;
    this.signal = init.signal;
    this.transportTrace = init.transportTrace;
    this.startedAt = performance.now();
  }

  /** The task id a client attached to the request (`_meta.taskId` or the related-task key), if any. */
  get taskId(): string | undefined {
    const meta = this.params?.['_meta'];
    if (meta === null || typeof meta !== 'object') return undefined;
    const record = meta as Record<string, unknown>;
    const candidate = record['taskId'] ?? record['io.modelcontextprotocol/related-task'];
    if (typeof candidate === 'string') return candidate;
    if (candidate !== null && typeof candidate === 'object') {
      const nested = (candidate as Record<string, unknown>)['taskId'];
      if (typeof nested === 'string') return nested;
    }
    return undefined;
  }

  elapsedMs(): number {
    return performance.now() - this.startedAt;
  }
}
