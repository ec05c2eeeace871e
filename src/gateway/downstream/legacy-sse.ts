import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, type Identity } from '../../pipeline/index.js';
import { classify, errorResponse, parseError, type JsonRpcMessage } from '../jsonrpc.js';
import { parseMessage, serializeMessage } from '../lossless-id.js';
import { GatewaySession, type GatewayRuntime, type SessionSink } from '../session.js';
import { ClientOutbox, DEFAULT_OUTBOX_LIMITS } from './client-outbox.js';
import type { HttpSession, SessionEndReason, SessionTable } from './session-table.js';

/** Where the 2024-11-05 transport lives, relative to nothing: both paths are absolute. */
export interface LegacySsePaths {
  /** GET opens the event stream (default `/sse`). */
  ssePath: string;
  /** POST carries the client's messages (default `/messages`), with `?sessionId=`. */
  messagesPath: string;
}

/** What the endpoint borrows from the HTTP listener: its session table, body reader and answers. */
export interface LegacySseHost {
  runtime: GatewayRuntime;
  sessions: SessionTable;
  readBody(req: IncomingMessage, res: ServerResponse): Promise<Buffer | undefined>;
  json(res: ServerResponse, status: number, body: unknown): void;
  endSession(sessionId: string, reason: SessionEndReason): Promise<void>;
}

/**
 * The deprecated HTTP+SSE transport of MCP 2024-11-05, for clients that have no Streamable HTTP:
 * GET on the SSE path opens one event stream, whose first `endpoint` event names where to POST
 * (`/messages?sessionId=...`); every answer and server message comes back on that stream. The
 * same authentication, session caps, owner binding and guard chain apply as for Streamable HTTP:
 * only the framing differs. Off unless `listeners.http.legacySse.enabled`.
 */
export class LegacySseEndpoint {
  constructor(
    private readonly host: LegacySseHost,
    private readonly paths: LegacySsePaths,
  ) {}

  handles(pathname: string): boolean {
    return pathname === this.paths.ssePath || pathname === this.paths.messagesPath;
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL, identity: Identity): Promise<void> {
    if (url.pathname === this.paths.ssePath && req.method === 'GET') return this.open(req, res, identity);
    if (url.pathname === this.paths.messagesPath && req.method === 'POST') return this.post(req, res, url, identity);
    res.setHeader('allow', url.pathname === this.paths.ssePath ? 'GET' : 'POST');
    this.host.json(res, 405, errorResponse(null, { code: ErrorCode.InvalidRequest, message: `method ${req.method ?? ''} not allowed on ${url.pathname}` }));
  }

  private open(req: IncomingMessage, res: ServerResponse, identity: Identity): void {
    const accept = (req.headers.accept ?? '*/*').toLowerCase();
    if (!accept.includes('text/event-stream') && !accept.includes('*/*')) {
      return this.host.json(res, 406, errorResponse(null, { code: ErrorCode.InvalidRequest, message: 'the SSE endpoint opens an event stream: Accept must include text/event-stream' }));
    }
    const { runtime, sessions } = this.host;
    const admission = sessions.admit(identity.agentId);
    if (!admission.ok) {
      runtime.events('session.refused', { agent: identity.agentId, reason: admission.reason, remote: req.socket.remoteAddress ?? null, transport: 'sse' });
      return this.host.json(res, 503, errorResponse(null, { code: ErrorCode.UpstreamUnavailable, message: admission.message }));
    }
    if (admission.evict !== undefined) void this.host.endSession(admission.evict.id, 'evicted');
    // 256 bits from the CSPRNG, as for Streamable HTTP: the id travels in a URL, so it must not be guessable.
    const sessionId = randomBytes(32).toString('base64url');
    const sink = new LegacySseSink(res, new ClientOutbox(DEFAULT_OUTBOX_LIMITS, {
      onDropped: (count) => runtime.events('client.notifications_dropped', { session_id: sessionId, agent: identity.agentId, count, transport: 'sse' }),
      onOverflow: (queuedBytes) => {
        runtime.logger.warn({ session: sessionId, agent: identity.agentId, queuedBytes }, 'client stopped reading: its session is closed');
        runtime.events('client.disconnected', { session_id: sessionId, agent: identity.agentId, reason: 'slow_client', queued_bytes: queuedBytes, transport: 'sse' });
        sink.disconnect();
        void this.host.endSession(sessionId, 'slow_client');
      },
    }));
    const session = new GatewaySession(runtime, sink, { transport: 'sse', sessionId });
    const entry: HttpSession = { session, sink, owner: identity.agentId, lastSeen: Date.now(), calls: 0, legacySse: true };
    sessions.add(sessionId, entry);
    runtime.events('session.created', { session_id: sessionId, agent: identity.agentId, remote: req.socket.remoteAddress ?? null, transport: 'sse' });
    // The stream is the session: when the client goes, so does everything it started.
    res.once('close', () => void this.host.endSession(sessionId, 'stream_closed'));
    sink.start(`${this.paths.messagesPath}?sessionId=${sessionId}`);
  }

  private async post(req: IncomingMessage, res: ServerResponse, url: URL, identity: Identity): Promise<void> {
    const sessionId = url.searchParams.get('sessionId') ?? '';
    const entry = this.host.sessions.get(sessionId);
    if (entry === undefined || entry.legacySse !== true || entry.owner !== identity.agentId) {
      // Unknown, another transport's, or another agent's session: one answer, so ids cannot be probed.
      return this.host.json(res, 404, errorResponse(null, { code: ErrorCode.InvalidRequest, message: 'session not found: it expired or its event stream closed; open a new one' }));
    }
    const contentType = (req.headers['content-type'] ?? '').toLowerCase();
    if (!contentType.startsWith('application/json')) {
      return this.host.json(res, 415, errorResponse(null, { code: ErrorCode.InvalidRequest, message: 'Content-Type must be application/json' }));
    }
    const body = await this.host.readBody(req, res);
    if (body === undefined) return;
    let parsed: unknown;
    try {
      parsed = parseMessage(body.toString('utf8'));
    } catch (error) {
      return this.host.json(res, 400, parseError(error instanceof Error ? error.message : 'invalid JSON'));
    }
    const classified = classify(parsed);
    if (classified.kind === 'invalid') return this.host.json(res, 400, errorResponse(classified.id, classified.error));
    this.host.sessions.touch(sessionId, entry, Date.now());
    if (classified.kind === 'request' && classified.message.method !== 'initialize') entry.calls += 1;
    // Accepted: the answer goes on the event stream, as the 2024-11-05 transport defines.
    res.writeHead(202, { 'content-type': 'text/plain' });
    res.end('Accepted');
    entry.session.handle(parsed, body.length, identity);
  }
}

/** One event stream carries everything for a legacy session: answers, requests and notifications. */
export class LegacySseSink implements SessionSink {
  private keepAlive: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly stream: ServerResponse,
    private readonly outbox: ClientOutbox,
  ) {}

  /** Opens the stream and names the endpoint for the client's messages. */
  start(endpoint: string): void {
    this.stream.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive' });
    this.stream.write(`event: endpoint\ndata: ${endpoint}\n\n`);
    this.keepAlive = setInterval(() => this.stream.write(': keep-alive\n\n'), 25_000);
    this.keepAlive.unref();
    this.stream.once('close', () => this.stop());
  }

  send(message: JsonRpcMessage): boolean {
    if (this.closed || this.stream.destroyed) return false;
    if (!this.outbox.admit(message, this.stream.writableLength)) return false;
    this.stream.write(`event: message\ndata: ${serializeMessage(message)}\n\n`);
    return true;
  }

  /** Cuts the stream of a client that fell behind. */
  disconnect(): void {
    this.stop();
    this.stream.destroy();
  }

  closeAll(): void {
    this.outbox.flushReport();
    this.stop();
    if (!this.stream.writableEnded) this.stream.end();
  }

  private stop(): void {
    this.closed = true;
    if (this.keepAlive !== undefined) clearInterval(this.keepAlive);
    this.keepAlive = undefined;
  }
}
