import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Authenticator } from '../../auth/index.js';
import type { ApiTokenConfig, HttpListenerConfig } from '../../config/index.js';
import { ErrorCode, type Identity, type TransportTraceContext } from '../../pipeline/index.js';
import { classify, errorResponse, parseError, type JsonRpcId } from '../jsonrpc.js';
import { SUPPORTED_PROTOCOL_VERSIONS } from '../protocol.js';
import { GatewaySession, type GatewayRuntime } from '../session.js';
import { HttpSessionSink } from './http-session-sink.js';
import { ClientOutbox, DEFAULT_OUTBOX_LIMITS } from './client-outbox.js';
import { largestRequestCap } from '../limits.js';
import { AuthFailureAggregator } from './auth-failures.js';
import { ConnectionLimiter } from './connection-limits.js';
import { defaultPerAgentCap, SessionTable, type SessionEndReason, type StreamableHttpSession } from './session-table.js';
import { LegacySseEndpoint } from './legacy-sse.js';
import { parseMessage, serializeMessage } from '../lossless-id.js';
import { CALLBACK_PATH } from '../../credentials/index.js';
import { DEFAULT_STATELESS_OPTIONS, StatelessFront } from '../stateless/front.js';
import { isStatelessPost, serveStatelessPost } from '../stateless/http.js';

const METADATA_PATH = '/.well-known/oauth-protected-resource';

/**
 * The Streamable HTTP transport (MCP 2025-03-26 and later): POST carries client messages, GET
 * opens the server's own stream, DELETE ends a session. In front of it: Host and Origin
 * allow-lists (DNS rebinding), bearer authentication, and a body cap enforced while reading.
 */
export class HttpListener {
  private readonly server: Server;
  private readonly sessions: SessionTable;
  private maxBodyBytes: number;
  private readonly sweeper: NodeJS.Timeout;
  private readonly authFailures: AuthFailureAggregator;
  private readonly connections: ConnectionLimiter;
  /** Clients of the stateless 2026-07-28 revision (docs/protocol.md). */
  readonly stateless: StatelessFront;
  private lastRefusalLog = 0;
  private allowedHosts = new Set<string>();
  private publicUrl = '';
  private readonly legacySse: LegacySseEndpoint | undefined;

  constructor(
    private readonly runtime: GatewayRuntime,
    private readonly config: HttpListenerConfig,
    private readonly authenticator: Authenticator,
  ) {
    this.maxBodyBytes = largestRequestCap(runtime.config);
    this.sessions = new SessionTable({ total: config.maxSessions, perAgent: Math.min(config.maxSessions, config.maxSessionsPerAgent ?? defaultPerAgentCap(config.maxSessions)) });
    // requestTimeout bounds receiving a request (headers and body) only: it stops once the body
    // is complete, so long-lived SSE answers are not cut. Both are checked every second.
    const requestTimeout = config.bodyTimeoutMs ?? 30_000;
    this.server = createServer(
      { headersTimeout: Math.min(config.headersTimeoutMs ?? 10_000, requestTimeout), requestTimeout, keepAliveTimeout: 65_000, connectionsCheckingInterval: 1000 },
      (req, res) => {
        this.dispatch(req, res).catch((error: unknown) => {
          runtime.logger.error({ err: error }, 'HTTP request failed');
          if (!res.headersSent) this.json(res, 500, errorResponse(null, { code: ErrorCode.InternalError, message: 'internal gateway error' }));
          else res.destroy();
        });
      },
    );
    // Without a listener, an accept() failure (EMFILE when descriptors run out) would be thrown
    // as an uncaught exception and end the process; libuv keeps accepting once they are back.
    this.server.on('error', (error: NodeJS.ErrnoException) => this.logThrottled({ err: error.message, code: error.code }, 'HTTP listener error (the listener keeps serving)'));
    this.connections = new ConnectionLimiter(
      { total: config.maxConnections ?? 512, perAddress: config.maxConnectionsPerAddress ?? 64 },
      (reason, address) => this.logThrottled({ reason, remote: address }, 'HTTP connection refused: over the connection cap'),
    );
    this.connections.attach(this.server);
    this.authFailures = new AuthFailureAggregator((config.authFailureWindowSeconds ?? 60) * 1000, runtime.events);
    this.stateless = new StatelessFront(runtime, {
      transport: 'http',
      maxContexts: config.maxSessions,
      idleMs: config.sessionIdleSeconds * 1000,
      maxContextsPerAgent: config.stateless?.maxContextsPerAgent ?? DEFAULT_STATELESS_OPTIONS.maxContextsPerAgent,
      inputTimeoutMs: (config.stateless?.inputTimeoutSeconds ?? DEFAULT_STATELESS_OPTIONS.inputTimeoutMs / 1000) * 1000,
    });
    this.sweeper = setInterval(() => this.sweepIdle(Date.now()), Math.min(30_000, ((config.unusedSessionIdleSeconds ?? 60) * 1000) / 2));
    this.sweeper.unref();
    const legacy = config.legacySse;
    this.legacySse = legacy?.enabled === true
      ? new LegacySseEndpoint(
          { runtime, sessions: this.sessions, readBody: (req, res) => this.readBody(req, res), json: (res, status, body) => this.json(res, status, body), endSession: (id, reason) => this.endSession(id, reason) },
          { ssePath: legacy.ssePath ?? '/sse', messagesPath: legacy.messagesPath ?? '/messages' },
        )
      : undefined;
  }

  /** Binds the socket. Resolves with the URL clients should use. */
  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.port, this.config.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const port = (this.server.address() as AddressInfo).port;
    const hostForUrl = this.config.host.includes(':') ? `[${this.config.host}]` : this.config.host;
    this.publicUrl = this.config.publicUrl ?? `http://${hostForUrl}:${port}${this.config.path}`;
    this.runtime.credentials?.listenerStarted(this.publicUrl);
    this.allowedHosts = new Set(
      (this.config.allowedHosts ?? [`${hostForUrl}:${port}`, `localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, new URL(this.publicUrl).host]).map((host) => host.toLowerCase()),
    );
    return this.publicUrl;
  }

  get url(): string {
    return this.publicUrl;
  }

  /** A config reload changed limits or servers: the body cap follows the largest request cap now configured. */
  configChanged(): void {
    this.maxBodyBytes = largestRequestCap(this.runtime.config);
  }

  /** A config reload changed auth.apiTokens (sessions stay; each request is authenticated again anyway). */
  replaceApiTokens(tokens: ApiTokenConfig[]): void {
    this.authenticator.replaceApiTokens(tokens);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Requests in flight over every session (operators and tests watch it). */
  get inFlightRequests(): number {
    return this.sessions.values().reduce((sum, entry) => sum + entry.session.inFlightCount, 0);
  }

  /** The open sessions, for the admin API: who owns each, its client, and how busy it is. */
  sessionSummaries(): { sessionId: string; agent: string; protocolVersion: string | undefined; client: Record<string, unknown>; calls: number; inFlight: number; lastSeen: string }[] {
    return this.sessions.values().map((entry) => ({
      sessionId: entry.session.sessionId,
      agent: entry.owner,
      protocolVersion: entry.session.protocolVersion,
      client: entry.session.clientInfo,
      calls: entry.calls,
      inFlight: entry.session.inFlightCount,
      lastSeen: new Date(entry.lastSeen).toISOString(),
    }));
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.authFailures.close();
    await Promise.all([...this.sessions.keys().map((id) => this.endSession(id, 'shutdown')), this.stateless.close()]);
    // One turn for the error answers just written to reach their sockets before they close.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://bastion.invalid');
    if (!this.hostAllowed(req)) return this.refuse(req, res, 403, errorResponse(null, { code: ErrorCode.Forbidden, message: 'Host header not allowed (DNS rebinding protection); add it to listeners.http.allowedHosts if it is legitimate' }));
    if (url.pathname === METADATA_PATH || url.pathname === `${METADATA_PATH}${this.config.path}`) return this.metadata(res);
    if (url.pathname === '/healthz') return this.json(res, 200, { status: 'ok' });
    // The user's browser returns here from the upstream's consent page (src/credentials): no bearer, the state parameter is the proof.
    if (url.pathname === CALLBACK_PATH && req.method === 'GET' && this.runtime.credentials !== undefined) return this.runtime.credentials.handleCallback(url, res);
    const legacy = this.legacySse?.handles(url.pathname) === true ? this.legacySse : undefined;
    if (url.pathname !== this.config.path && legacy === undefined) return this.refuse(req, res, 404, { error: 'not found' });
    if (!this.originAllowed(req)) return this.refuse(req, res, 403, errorResponse(null, { code: ErrorCode.Forbidden, message: 'Origin not allowed; add it to listeners.http.allowedOrigins if it is legitimate' }));
    const auth = await this.authenticator.authenticate(req.headers.authorization);
    if (!auth.ok) {
      this.authFailures.refused(req.socket.remoteAddress, auth.description);
      return this.unauthorized(req, res, auth.error, auth.description);
    }
    if (legacy !== undefined) return legacy.handle(req, res, url, auth.identity);
    switch (req.method) {
      case 'POST':
        return this.post(req, res, auth.identity);
      case 'GET':
        return this.get(req, res, auth.identity);
      case 'DELETE':
        return this.delete(req, res, auth.identity);
      default:
        res.setHeader('allow', 'GET, POST, DELETE');
        return this.refuse(req, res, 405, errorResponse(null, { code: ErrorCode.InvalidRequest, message: `method ${req.method ?? ''} not allowed` }));
    }
  }

  private async post(req: IncomingMessage, res: ServerResponse, identity: Identity): Promise<void> {
    const contentType = req.headers['content-type'] ?? '';
    if (!contentType.toLowerCase().startsWith('application/json')) {
      return this.refuse(req, res, 415, errorResponse(null, { code: ErrorCode.InvalidRequest, message: 'Content-Type must be application/json' }));
    }
    const accept = (req.headers.accept ?? '').toLowerCase();
    if (!accept.includes('application/json') || !accept.includes('text/event-stream')) {
      return this.refuse(req, res, 406, errorResponse(null, { code: ErrorCode.InvalidRequest, message: 'Accept must list both application/json and text/event-stream' }));
    }
    const body = await this.readBody(req, res);
    if (body === undefined) return;
    let parsed: unknown;
    try {
      parsed = parseMessage(body.toString('utf8'));
    } catch (error) {
      return this.json(res, 400, parseError(error instanceof Error ? error.message : 'invalid JSON'));
    }
    const classified = classify(parsed);
    if (classified.kind === 'invalid') return this.json(res, 400, errorResponse(classified.id, classified.error));
    if (isStatelessPost(req, classified)) return serveStatelessPost(this.stateless, req, res, classified, body.length, identity);
    const versionProblem = this.protocolVersionProblem(req, classified.kind === 'request' && classified.message.method === 'initialize');
    if (versionProblem !== undefined) return this.json(res, 400, errorResponse(null, { code: ErrorCode.InvalidRequest, message: versionProblem }));
    const sessionHeader = req.headers['mcp-session-id'];
    if (classified.kind === 'request' && classified.message.method === 'initialize') {
      if (sessionHeader !== undefined) return this.json(res, 400, errorResponse(classified.message.id, { code: ErrorCode.InvalidRequest, message: 'initialize must not carry Mcp-Session-Id: a session is initialized once' }));
      return this.initialize(req, res, classified.message.id, parsed, body.length, identity);
    }
    const entry = this.sessionFor(req, res, identity);
    if (entry === undefined) return;
    if (classified.kind === 'request') {
      const { id } = classified.message;
      // A second POST with the id of one still open would take over its answer and leave the
      // first hanging: refuse it, and let the first be answered.
      if (entry.sink.isExpecting(id)) return this.json(res, 200, errorResponse(id, { code: ErrorCode.InvalidRequest, message: `request id ${JSON.stringify(id)} is already in use by a request in flight in this session` }));
      entry.calls += 1;
      entry.sink.expect(id, res);
    }
    entry.session.handle(parsed, body.length, identity, transportTrace(req));
    if (classified.kind !== 'request') {
      res.writeHead(202);
      res.end();
    }
  }

  private initialize(req: IncomingMessage, res: ServerResponse, id: JsonRpcId, message: unknown, bytes: number, identity: Identity): void {
    const admission = this.sessions.admit(identity.agentId);
    if (!admission.ok) {
      this.runtime.events('session.refused', { agent: identity.agentId, reason: admission.reason, remote: req.socket.remoteAddress ?? null, transport: 'http' });
      return this.json(res, 503, errorResponse(id, { code: ErrorCode.UpstreamUnavailable, message: admission.message }));
    }
    if (admission.evict !== undefined) void this.endSession(admission.evict.id, 'evicted');
    // 256 bits from the CSPRNG: a session id cannot be guessed, and it is bound to its owner anyway.
    const sessionId = randomBytes(32).toString('base64url');
    const sink: HttpSessionSink = new HttpSessionSink(
      new ClientOutbox(DEFAULT_OUTBOX_LIMITS, {
        onDropped: (count) => this.runtime.events('client.notifications_dropped', { session_id: sessionId, agent: identity.agentId, count, transport: 'http' }),
        onOverflow: (queuedBytes) => {
          this.runtime.logger.warn({ session: sessionId, agent: identity.agentId, queuedBytes }, 'client stopped reading: its session is closed');
          this.runtime.events('client.disconnected', { session_id: sessionId, agent: identity.agentId, reason: 'slow_client', queued_bytes: queuedBytes, transport: 'http' });
          sink.disconnect();
          void this.endSession(sessionId, 'slow_client');
        },
      }),
    );
    const session = new GatewaySession(this.runtime, sink, { transport: 'http', sessionId });
    const entry: StreamableHttpSession = { session, sink, owner: identity.agentId, lastSeen: Date.now(), calls: 0 };
    this.sessions.add(sessionId, entry);
    this.runtime.events('session.created', { session_id: sessionId, agent: identity.agentId, remote: req.socket.remoteAddress ?? null, transport: 'http' });
    res.setHeader('mcp-session-id', sessionId);
    res.once('close', () => {
      if (!session.initialized) void this.endSession(sessionId, 'initialize_failed');
    });
    sink.expect(id, res);
    session.handle(message, bytes, identity);
  }

  private get(req: IncomingMessage, res: ServerResponse, identity: Identity): void {
    if (!(req.headers.accept ?? '').toLowerCase().includes('text/event-stream')) {
      return this.json(res, 406, errorResponse(null, { code: ErrorCode.InvalidRequest, message: 'GET opens an event stream: Accept must include text/event-stream' }));
    }
    const entry = this.sessionFor(req, res, identity);
    if (entry === undefined) return;
    if (entry.sink.hasStandaloneStream) return this.json(res, 409, errorResponse(null, { code: ErrorCode.InvalidRequest, message: 'this session already has an open stream' }));
    entry.sink.openStandalone(res);
  }

  private async delete(req: IncomingMessage, res: ServerResponse, identity: Identity): Promise<void> {
    const entry = this.sessionFor(req, res, identity);
    if (entry === undefined) return;
    await this.endSession(entry.session.sessionId, 'delete');
    res.writeHead(204);
    res.end();
  }

  /** The caller's session, or an answer saying why there is none. A session belongs to the agent that created it. */
  private sessionFor(req: IncomingMessage, res: ServerResponse, identity: Identity): StreamableHttpSession | undefined {
    const header = req.headers['mcp-session-id'];
    if (typeof header !== 'string' || header === '') {
      this.json(res, 400, errorResponse(null, { code: ErrorCode.InvalidRequest, message: 'missing Mcp-Session-Id header: send initialize first' }));
      return undefined;
    }
    const entry = this.sessions.get(header);
    if (entry === undefined || entry.legacySse === true || entry.owner !== identity.agentId) {
      // An unknown id, another agent's id and a legacy SSE session's id get the same answer, so ids cannot be probed.
      this.json(res, 404, errorResponse(null, { code: ErrorCode.InvalidRequest, message: 'session not found: it expired or was closed; initialize a new one' }));
      return undefined;
    }
    this.sessions.touch(header, entry, Date.now());
    return entry;
  }

  private protocolVersionProblem(req: IncomingMessage, isInitialize: boolean): string | undefined {
    const header = req.headers['mcp-protocol-version'];
    if (isInitialize || header === undefined) return undefined;
    const value = Array.isArray(header) ? header[0] : header;
    if (value !== undefined && SUPPORTED_PROTOCOL_VERSIONS.includes(value)) return undefined;
    return `unsupported MCP-Protocol-Version ${JSON.stringify(value)}; supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')}`;
  }

  private async readBody(req: IncomingMessage, res: ServerResponse): Promise<Buffer | undefined> {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > this.maxBodyBytes) {
      this.tooLarge(req, res, declared);
      return undefined;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > this.maxBodyBytes) {
        this.tooLarge(req, res, size);
        return undefined;
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks, size);
  }

  private tooLarge(req: IncomingMessage, res: ServerResponse, bytes: number): void {
    this.refuse(req, res, 413, errorResponse(null, { code: ErrorCode.RequestTooLarge, message: `request body of ${bytes}+ bytes is over the ${this.maxBodyBytes}-byte cap` }));
  }

  /**
   * Answers a request refused before its body was read, then closes the connection: the
   * gateway does not read (or wait for) a body it will never use, so a client that drips one
   * slowly holds nothing once it has its answer.
   */
  private refuse(req: IncomingMessage, res: ServerResponse, status: number, body: unknown): void {
    if (!req.complete) res.setHeader('connection', 'close');
    this.json(res, status, body);
    if (!req.complete) res.once('finish', () => req.socket.destroy());
  }

  /** Logs at most once a second: refusals come in floods, and each would otherwise be a line. */
  private logThrottled(fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    if (now - this.lastRefusalLog < 1000) return;
    this.lastRefusalLog = now;
    this.runtime.logger.warn(fields, message);
  }

  private hostAllowed(req: IncomingMessage): boolean {
    const host = req.headers.host;
    return typeof host === 'string' && this.allowedHosts.has(host.toLowerCase());
  }

  private originAllowed(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return true; // non-browser clients send none; browsers always do
    return this.config.allowedOrigins.includes(origin);
  }

  private metadataUrl(): string {
    const base = new URL(this.publicUrl);
    return `${base.origin}${METADATA_PATH}${base.pathname}`;
  }

  private metadata(res: ServerResponse): void {
    const oauth = this.runtime.config.auth.oauth;
    this.json(res, 200, {
      resource: this.publicUrl,
      authorization_servers: oauth === undefined ? [] : [oauth.issuer],
      bearer_methods_supported: ['header'],
      scopes_supported: oauth?.scopesSupported ?? [],
      resource_name: 'Bastion MCP gateway',
    });
  }

  private unauthorized(req: IncomingMessage, res: ServerResponse, error: string, description: string): void {
    const quoted = description.replace(/["\\]/g, "'");
    const challenge = error === 'invalid_request' && description.startsWith('no bearer')
      ? `Bearer resource_metadata="${this.metadataUrl()}"`
      : `Bearer resource_metadata="${this.metadataUrl()}", error="${error}", error_description="${quoted}"`;
    res.setHeader('www-authenticate', challenge);
    this.refuse(req, res, 401, errorResponse(null, { code: ErrorCode.Unauthenticated, message: `authentication required: ${description}` }));
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = serializeMessage(body as object);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async endSession(sessionId: string, reason: SessionEndReason): Promise<void> {
    const entry = this.sessions.remove(sessionId);
    if (entry === undefined) return;
    this.runtime.events('session.closed', { session_id: sessionId, agent: entry.owner, reason, calls: entry.calls, transport: 'http' });
    // The session answers its requests in flight with an error first, then the streams close.
    await entry.session.close();
    entry.sink.closeAll();
  }

  /** Ends idle sessions: any after sessionIdleSeconds, one that made no call after initialize much sooner. Public for tests (a clock). */
  sweepIdle(now: number): void {
    const idleCutoff = now - this.config.sessionIdleSeconds * 1000;
    const unusedCutoff = now - (this.config.unusedSessionIdleSeconds ?? 60) * 1000;
    for (const entry of this.sessions.values()) {
      if (!entry.session.initialized || entry.session.inFlightCount > 0) continue;
      const id = entry.session.sessionId;
      if (entry.lastSeen < idleCutoff) void this.endSession(id, 'expired');
      else if (entry.calls === 0 && entry.lastSeen < unusedCutoff) void this.endSession(id, 'unused');
    }
  }
}

/** The W3C `traceparent`/`tracestate` headers, when sent (the tracing guard validates them; without tracing they are ignored). */
function transportTrace(req: IncomingMessage): TransportTraceContext | undefined {
  const traceparent = req.headers['traceparent'];
  if (typeof traceparent !== 'string') return undefined;
  const tracestate = req.headers['tracestate'];
  return typeof tracestate === 'string' ? { traceparent, tracestate } : { traceparent };
}
