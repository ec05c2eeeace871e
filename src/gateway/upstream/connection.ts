import type { Logger } from '../../observability/index.js';
import { ErrorCode, type CancelSignal, type JsonRpcErrorBody } from '../../pipeline/index.js';
import { classify, type JsonRpcId, type JsonRpcNotification, type JsonRpcRequest } from '../jsonrpc.js';
import { SUPPORTED_PROTOCOL_VERSIONS } from '../protocol.js';
import type { UpstreamChannel, ViolationKind } from './channel.js';
import { ThrottledReporter, type UpstreamAuditSink } from './reporter.js';

/** Ids of settled calls remembered, so a late answer is told apart from a stray one. */
const RECENTLY_SETTLED = 1024;

export interface UpstreamReply {
  ok: boolean;
  result?: unknown;
  error?: JsonRpcErrorBody;
  /** Size of the upstream's answer on the wire. */
  bytes: number;
  timedOut?: boolean;
}

export interface UpstreamRequestOptions {
  timeoutMs: number;
  maxOutputBytes: number;
  signal?: CancelSignal;
  /** Receives this request's progress notifications, with the client's own progress token restored. */
  onProgress?: (params: Record<string, unknown>) => void;
  /** Runs the moment the call ends (before its promise settles), so nothing arriving after the answer is attributed to it. */
  onSettle?: () => void;
}

/** What the upstream answered to `initialize`. */
export interface UpstreamIdentity {
  protocolVersion: string;
  capabilities: Record<string, unknown>;
  serverInfo: { name?: string; version?: string } & Record<string, unknown>;
  instructions?: string;
}

export interface InitializeParams {
  protocolVersion: string;
  capabilities: Record<string, unknown>;
  clientInfo: Record<string, unknown>;
}

interface Pending {
  resolve: (reply: UpstreamReply) => void;
  timer: NodeJS.Timeout;
  maxOutputBytes: number;
  progressToken: string | undefined;
  onProgress: ((params: Record<string, unknown>) => void) | undefined;
  clientProgressToken: unknown;
  abort: (() => void) | undefined;
  signal: CancelSignal | undefined;
  onSettle: (() => void) | undefined;
}

/**
 * One live JSON-RPC conversation with an upstream server over a channel: ids, progress
 * tokens and cancellation are remapped here, so nothing a client chose ever reaches the
 * upstream verbatim and two clients can never collide.
 */
export class UpstreamConnection {
  onServerRequest: (request: JsonRpcRequest) => void = () => {};
  onNotification: (notification: JsonRpcNotification) => void = () => {};
  onClose: (reason: string) => void = () => {};
  identity: UpstreamIdentity | undefined;
  private nextId = 1;
  private readonly pending = new Map<JsonRpcId, Pending>();
  private readonly progress = new Map<string, Pending>();
  private closedReason: string | undefined;
  /** Ids of calls already answered, timed out or cancelled (oldest first), bounded. */
  private readonly settledIds = new Set<JsonRpcId>();
  private readonly reporter: ThrottledReporter;

  constructor(
    readonly server: string,
    private readonly channel: UpstreamChannel,
    private readonly logger: Logger,
    audit: UpstreamAuditSink = () => {},
  ) {
    this.reporter = new ThrottledReporter(audit);
    channel.onMessage = (message, bytes) => this.receive(message, bytes);
    channel.onProtocolViolation = (kind, description, bytes, raw) => this.violation(kind, description, bytes, raw);
    channel.onClose = (reason) => this.closed(reason);
  }

  get isOpen(): boolean {
    return this.closedReason === undefined;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Runs the initialize handshake; throws if the upstream refuses or speaks an unsupported revision. */
  async initialize(params: InitializeParams, timeoutMs: number): Promise<UpstreamIdentity> {
    const reply = await this.request('initialize', params as unknown as Record<string, unknown>, { timeoutMs, maxOutputBytes: 4 * 1024 * 1024 });
    if (!reply.ok) throw new Error(`initialize failed: ${reply.error?.message ?? 'unknown error'}`);
    const result = reply.result as Partial<UpstreamIdentity> | undefined;
    if (result === undefined || typeof result.protocolVersion !== 'string' || !SUPPORTED_PROTOCOL_VERSIONS.includes(result.protocolVersion)) {
      throw new Error(`unsupported protocol version ${JSON.stringify(result?.protocolVersion)} (Bastion speaks ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`);
    }
    this.identity = {
      protocolVersion: result.protocolVersion,
      capabilities: (result.capabilities ?? {}) as Record<string, unknown>,
      serverInfo: (result.serverInfo ?? {}) as UpstreamIdentity['serverInfo'],
      ...(typeof result.instructions === 'string' ? { instructions: result.instructions } : {}),
    };
    this.notify('notifications/initialized', undefined);
    return this.identity;
  }

  /** Sends a request and resolves with the answer, an error, or a timeout. Never rejects. */
  request(method: string, params: Record<string, unknown> | undefined, options: UpstreamRequestOptions): Promise<UpstreamReply> {
    if (this.closedReason !== undefined) {
      return Promise.resolve({ ok: false, bytes: 0, error: { code: ErrorCode.UpstreamUnavailable, message: `server '${this.server}' is not running (${this.closedReason})` } });
    }
    const id = this.nextId++;
    return new Promise<UpstreamReply>((resolve) => {
      const entry: Pending = {
        resolve,
        timer: setTimeout(() => this.timeout(id, method, options.timeoutMs), options.timeoutMs),
        maxOutputBytes: options.maxOutputBytes,
        progressToken: undefined,
        onProgress: options.onProgress,
        clientProgressToken: undefined,
        abort: undefined,
        signal: options.signal,
        onSettle: options.onSettle,
      };
      let outgoing = params;
      const meta = params?.['_meta'] as Record<string, unknown> | undefined;
      if (meta !== undefined && meta['progressToken'] !== undefined) {
        entry.clientProgressToken = meta['progressToken'];
        entry.progressToken = `${this.server}-p${id}`;
        this.progress.set(entry.progressToken, entry);
        outgoing = { ...params, _meta: { ...meta, progressToken: entry.progressToken } };
      }
      if (options.signal !== undefined) {
        entry.abort = () => this.cancel(id, 'cancelled by the client');
        options.signal.addEventListener('abort', entry.abort, { once: true });
      }
      this.pending.set(id, entry);
      const sent = this.channel.send(outgoing === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params: outgoing });
      if (!sent) {
        this.settle(id, { ok: false, bytes: 0, error: { code: ErrorCode.UpstreamUnavailable, message: `server '${this.server}' is not reading its input; the request was refused`, data: { reason: 'upstream_backpressure' } } });
      }
    });
  }

  notify(method: string, params: Record<string, unknown> | undefined): void {
    if (this.closedReason !== undefined) return;
    this.channel.send(params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params });
  }

  /** Answers a request the upstream sent to the client side (sampling, elicitation, roots). */
  reply(id: JsonRpcId, outcome: { result: unknown } | { error: JsonRpcErrorBody }): void {
    if (this.closedReason !== undefined) return;
    this.channel.send('result' in outcome ? { jsonrpc: '2.0', id, result: outcome.result } : { jsonrpc: '2.0', id, error: outcome.error });
  }

  async close(): Promise<void> {
    await this.channel.close();
  }

  private receive(message: unknown, bytes: number): void {
    const classified = classify(message);
    switch (classified.kind) {
      case 'response': {
        const id = classified.message.id;
        const entry = id === null ? undefined : this.pending.get(id);
        if (entry === undefined || id === null) {
          this.unmatchedResponse(id, bytes);
          return;
        }
        if (bytes > entry.maxOutputBytes) {
          this.settle(id, { ok: false, bytes, error: { code: ErrorCode.OutputTooLarge, message: `the answer from server '${this.server}' is ${bytes} bytes, over the ${entry.maxOutputBytes}-byte output cap`, data: { reason: 'output_too_large', bytes, limit: entry.maxOutputBytes } } });
        } else if ('error' in classified.message) {
          this.settle(id, { ok: false, bytes, error: classified.message.error });
        } else {
          this.settle(id, { ok: true, bytes, result: classified.message.result });
        }
        return;
      }
      case 'request':
        this.onServerRequest(classified.message);
        return;
      case 'notification':
        if (classified.message.method === 'notifications/progress') this.progressNotification(classified.message);
        else this.onNotification(classified.message);
        return;
      case 'invalid':
        if (Array.isArray(message)) this.batch(message, bytes);
        // The id of a malformed *response* is one of ours; a malformed request's id is the server's own.
        else this.violation('garbage', `invalid JSON-RPC: ${classified.error.message}`, bytes, undefined, isRequestShaped(message) ? null : classified.id);
        return;
    }
  }

  private progressNotification(notification: JsonRpcNotification): void {
    const params = notification.params ?? {};
    const token = params['progressToken'];
    const entry = typeof token === 'string' ? this.progress.get(token) : undefined;
    if (entry === undefined || entry.onProgress === undefined) return;
    entry.onProgress({ ...params, progressToken: entry.clientProgressToken });
  }

  private timeout(id: JsonRpcId, method: string, timeoutMs: number): void {
    this.notify('notifications/cancelled', { requestId: id, reason: `timed out after ${timeoutMs} ms` });
    this.settle(id, { ok: false, bytes: 0, timedOut: true, error: { code: ErrorCode.RequestTimeout, message: `${method} on server '${this.server}' timed out after ${timeoutMs} ms; the request was cancelled upstream`, data: { reason: 'timeout', timeoutMs } } });
  }

  private cancel(id: JsonRpcId, reason: string): void {
    this.notify('notifications/cancelled', { requestId: id, reason });
    this.settle(id, { ok: false, bytes: 0, error: { code: ErrorCode.RequestTimeout, message: `request cancelled: ${reason}`, data: { reason: 'cancelled' } } });
  }

  private settle(id: JsonRpcId, reply: UpstreamReply): void {
    const entry = this.pending.get(id);
    if (entry === undefined) return;
    this.pending.delete(id);
    this.settledIds.add(id);
    if (this.settledIds.size > RECENTLY_SETTLED) this.settledIds.delete(this.settledIds.values().next().value as JsonRpcId);
    clearTimeout(entry.timer);
    if (entry.progressToken !== undefined) this.progress.delete(entry.progressToken);
    if (entry.abort !== undefined) entry.signal?.removeEventListener('abort', entry.abort);
    entry.onSettle?.();
    entry.resolve(reply);
  }

  /**
   * Output the upstream should not have produced. It is logged and audited with the server's
   * name; any call it makes impossible to answer fails at once instead of waiting for its
   * timeout. An oversized message cannot be attributed to one call (its id is inside the part
   * that was discarded), so every call in flight fails; a malformed message whose id can be
   * read fails that call.
   */
  private violation(kind: ViolationKind, description: string, bytes: number, raw?: string, knownId?: JsonRpcId | null): void {
    this.logger.warn({ server: this.server, bytes, kind }, `upstream protocol violation: ${description}`);
    this.reporter.report('upstream.protocol_violation', kind, { server: this.server, description: description.slice(0, 200), bytes });
    if (kind === 'oversize') {
      for (const id of [...this.pending.keys()]) {
        this.settle(id, { ok: false, bytes, error: { code: ErrorCode.OutputTooLarge, message: `server '${this.server}' sent ${description}; the call was cut off`, data: { reason: 'output_too_large', bytes } } });
      }
      return;
    }
    const id = knownId ?? (raw === undefined || /"method"\s*:/.test(raw) ? null : idInText(raw, this.pending));
    if (id !== null && this.pending.has(id)) this.failProtocol(id, bytes, `it answered with a malformed message (${description.slice(0, 160)})`);
  }

  /** MCP has no batches (since 2025-06-18, and Bastion never sends one): an answer inside one fails its call. */
  private batch(items: unknown[], bytes: number): void {
    this.violation('garbage', `a JSON-RPC batch of ${items.length} message(s); MCP does not allow batches`, bytes);
    for (const item of items) {
      if (item === null || typeof item !== 'object') continue;
      const id = (item as Record<string, unknown>)['id'];
      if ((typeof id === 'string' || typeof id === 'number') && this.pending.has(id)) this.failProtocol(id, bytes, 'it sent its answer inside a JSON-RPC batch, which MCP does not allow');
    }
  }

  private failProtocol(id: JsonRpcId, bytes: number, why: string): void {
    this.settle(id, { ok: false, bytes, error: { code: ErrorCode.InternalError, message: `server '${this.server}' broke the MCP protocol: ${why}; the call failed`, data: { reason: 'upstream_protocol_violation' } } });
  }

  /** A response to no call in flight: late (the call timed out or was cancelled) or stray (an id never sent). */
  private unmatchedResponse(id: JsonRpcId | null, bytes: number): void {
    if (id !== null && this.settledIds.has(id)) {
      this.logger.debug({ server: this.server, id }, 'late answer to a call that already ended; dropped');
      return;
    }
    this.logger.warn({ server: this.server, id, bytes }, 'upstream sent a response to a request the gateway never made; dropped');
    this.reporter.report('upstream.stray_response', id === null ? 'null-id' : 'unknown-id', { server: this.server, id: id === null ? null : String(id).slice(0, 64), bytes });
  }

  private closed(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    for (const id of [...this.pending.keys()]) {
      this.settle(id, { ok: false, bytes: 0, error: { code: ErrorCode.UpstreamUnavailable, message: `server '${this.server}' stopped during the call (${reason})`, data: { reason: 'upstream_exited' } } });
    }
    this.onClose(reason);
  }
}

/** The id of a pending call named in a line that is not valid JSON, if one can be read from it. */
function idInText(raw: string, pending: Map<JsonRpcId, unknown>): JsonRpcId | null {
  for (const match of raw.matchAll(/"id"\s*:\s*(-?\d{1,15}|"[^"\\]{0,200}")/g)) {
    const token = match[1] ?? '';
    const id: JsonRpcId = token.startsWith('"') ? token.slice(1, -1) : Number(token);
    if (pending.has(id)) return id;
  }
  return null;
}

function isRequestShaped(message: unknown): boolean {
  return message !== null && typeof message === 'object' && 'method' in message;
}
