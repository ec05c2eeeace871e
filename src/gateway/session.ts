import { randomUUID } from 'node:crypto';
import type { LimitsConfig } from '../config/index.js';
import { CallCancellation, CallContext, ErrorCode, compose, failure, type Guard, type Identity, type Next, type Outcome, type TransportTraceContext } from '../pipeline/index.js';
import { Catalog, type ListKind } from './catalog.js';
import { errorResponse, type JsonRpcId, type JsonRpcNotification, type JsonRpcRequest, type JsonRpcResponse, classify } from './jsonrpc.js';
import { Namespace } from './namespace.js';
import { negotiateProtocolVersion } from './protocol.js';
import { Router } from './router.js';
import { resolveTarget } from './target.js';
import { ServerRequestBroker } from './server-requests.js';
import { ManagedUpstream } from './upstream/managed.js';
import { poolsFor, upstreamBaseOptions } from './pool/registry.js';
import { liveSessions } from './live-sessions.js';
import { isolationOf, type SessionUpstream } from './pool/types.js';

export type { GatewayEventSink, GatewayRuntime, RequestStateSealing, SessionOptions, SessionSink, SessionSummary, UpstreamInitialize } from './session-types.js';
import type { GatewayRuntime, SessionOptions, SessionSink, SessionSummary, UpstreamInitialize } from './session-types.js';

/** Methods a client may send before initialize (server/discover gets Method Not Found from the router). */
const LOCAL_METHODS = new Set(['initialize', 'ping', 'server/discover']);

/**
 * One client's conversation with the gateway. It owns that client's upstream connections, so
 * server-to-client requests (sampling, elicitation, roots) always reach the client they are for.
 */
export class GatewaySession {
  readonly sessionId: string;
  /** Each server as this session uses it: its own process (isolation session) or a lease on a pooled one. */
  readonly upstreams = new Map<string, SessionUpstream>();
  readonly catalog: Catalog;
  /** How the client names each server's tools, prompts and resources. */
  readonly names: Namespace;
  protocolVersion: string | undefined;
  clientCapabilities: Record<string, unknown> = {};
  clientInfo: Record<string, unknown> = {};
  /** The identity that initialized the session; later requests must come from the same one. */
  owner: Identity | undefined;
  /** Client requests received, and when the last one came (the admin API's sessions list). */
  requestCount = 0;
  lastRequestAt = Date.now();
  private readonly inFlight = new Map<JsonRpcId, CallCancellation>();
  private readonly handler: Next;
  private readonly router: Router;
  readonly broker: ServerRequestBroker;
  /** Client requests in flight per server, newest last: server requests made meanwhile belong to them. */
  private readonly activeCalls = new Map<string, JsonRpcId[]>();
  private closed = false;
  private relistTimer: NodeJS.Timeout | undefined;
  private readonly limitsCache = new Map<string, LimitsConfig>();
  private stopAuthorizedListener: (() => void) | undefined;
  /** Kept from initialize: servers a reload adds are started for this session with it. */
  private upstreamInitialize: UpstreamInitialize | undefined;

  constructor(
    readonly runtime: GatewayRuntime,
    private readonly sink: SessionSink,
    readonly options: SessionOptions,
  ) {
    this.sessionId = options.sessionId ?? randomUUID();
    const { config } = runtime;
    this.names = new Namespace(Object.keys(config.servers), Object.entries(config.servers).find(([, server]) => server.namespaced === false)?.[0]);
    const relistMs = (config.integrity?.relistIntervalSeconds ?? 60) * 1000;
    this.catalog = new Catalog(runtime.logger, config.upstream.startTimeoutMs, Math.max(config.limits.maxOutputBytes, 16 * 1024 * 1024), this.names, runtime.inspectDefinitions, relistMs, Date.now, (server) => runtime.curation?.(server, this.owner?.agentId));
    // Servers can change a definition without announcing it: list again on a timer, whatever they say.
    if (relistMs > 0) {
      this.relistTimer = setInterval(() => void this.relist(), relistMs);
      this.relistTimer.unref();
    }
    this.router = new Router(this);
    this.broker = new ServerRequestBroker(this, sink);
    const target = {
      names: this.names,
      catalog: this.catalog,
      upstreams: this.upstreams,
      policy: config.policy,
      limitsFor: (server: string | undefined, tool: string | undefined) => this.limitsFor(server, tool),
      unavailable: (server: string) => this.router.unavailable(server),
      upstreamToolName: (server: string, name: string) => runtime.curation?.(server, this.owner?.agentId)?.upstreamName('tools', name) ?? name,
    };
    const resolver: Guard = { name: 'route', handle: (ctx, next) => resolveTarget(target, ctx, next) };
    this.handler = compose([...runtime.guardsBeforeRouting, resolver, ...runtime.guardsAfterRouting], (ctx) => this.router.route(ctx));
    liveSessions(runtime).add(this);
  }

  get initialized(): boolean {
    return this.protocolVersion !== undefined;
  }

  /** Client requests not answered yet (a session with none is idle). */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Entry point for every message from the client (already parsed from JSON). */
  handle(message: unknown, bytes: number, identity: Identity | undefined, transportTrace?: TransportTraceContext): void {
    if (this.closed) return;
    const classified = classify(message);
    switch (classified.kind) {
      case 'invalid':
        this.sink.send(errorResponse(classified.id, classified.error), classified.id ?? undefined);
        return;
      case 'request':
        void this.request(classified.message, bytes, identity, transportTrace);
        return;
      case 'notification':
        this.notification(classified.message);
        return;
      case 'response':
        this.broker.clientResponse(classified.message);
        return;
    }
  }

  /** Sends a notification to the client, outside any request. */
  notifyClient(method: string, params?: Record<string, unknown>, related?: JsonRpcId): void {
    this.sink.send(params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params }, related);
  }

  /**
   * Limits for a call: global defaults, then the server's, then the tool's (computed once per pair).
   * Only servers and tools named in the config have entries of their own; any other name (one a
   * client made up) shares the server's entry, so the cache is bounded by the config, not the client.
   */
  limitsFor(server: string | undefined, tool: string | undefined): LimitsConfig {
    const { config } = this.runtime;
    const serverConfig = server === undefined || !Object.hasOwn(config.servers, server) ? undefined : config.servers[server];
    const toolConfig = tool === undefined || serverConfig?.tools === undefined || !Object.hasOwn(serverConfig.tools, tool) ? undefined : serverConfig.tools[tool];
    const key = `${serverConfig === undefined ? '' : (server as string)}\u0000${toolConfig === undefined ? '' : (tool as string)}`;
    let limits = this.limitsCache.get(key);
    if (limits === undefined) {
      limits = Object.freeze({ ...config.limits, ...serverConfig?.limits, ...toolConfig?.limits });
      this.limitsCache.set(key, limits);
    }
    return limits;
  }

  /** How many limit entries this session holds (bounded by the configured servers and tools). */
  get cachedLimitEntries(): number {
    return this.limitsCache.size;
  }

  /**
   * Starts (or leases) every configured upstream for this client; failures are logged and
   * retried. A pooled server that is already warm costs nothing here.
   */
  async startUpstreams(initialize: UpstreamInitialize): Promise<void> {
    this.upstreamInitialize = initialize;
    for (const name of Object.keys(this.runtime.config.servers)) this.attachUpstream(name, initialize);
    // After the owner's consent, the upstream waiting for it connects at once.
    this.stopAuthorizedListener = this.runtime.credentials?.onAuthorized((agent, server) => {
      if (agent === this.owner?.agentId) void this.upstreams.get(server)?.start();
    });
    await Promise.all([...this.upstreams.values()].map((upstream) => upstream.start()));
  }

  /**
   * The configured servers changed (a config reload, src/gateway/reconfigure.ts): names, limits
   * and curated lists are derived again, `detach` servers leave this session at once (new calls
   * to them are unknown; the caller drains and stops what is returned), and `attach` servers are
   * started for it. The client is told its lists changed. Unaffected servers are not touched.
   */
  reconfigure(detach: readonly string[], attach: readonly string[], relisted: readonly string[]): Map<string, SessionUpstream> {
    const { config } = this.runtime;
    this.names.update(Object.keys(config.servers), Object.entries(config.servers).find(([, server]) => server.namespaced === false)?.[0]);
    this.limitsCache.clear();
    const detached = new Map<string, SessionUpstream>();
    for (const name of detach) {
      const upstream = this.upstreams.get(name);
      this.upstreams.delete(name);
      this.catalog.invalidate(name);
      if (upstream !== undefined) detached.set(name, upstream);
    }
    for (const name of relisted) this.catalog.invalidate(name);
    if (this.closed || this.upstreamInitialize === undefined) return detached;
    const initialize = this.upstreamInitialize;
    for (const name of attach) {
      this.catalog.invalidate(name);
      if (!Object.hasOwn(config.servers, name)) continue;
      this.attachUpstream(name, initialize);
      void this.upstreams.get(name)?.start();
    }
    if (this.initialized && detach.length + attach.length + relisted.length > 0) {
      this.notifyClient('notifications/tools/list_changed');
      this.notifyClient('notifications/prompts/list_changed');
      this.notifyClient('notifications/resources/list_changed');
    }
    return detached;
  }

  /** Creates this session's upstream of one server: a lease on its pool, or a process of its own. */
  private attachUpstream(name: string, initialize: UpstreamInitialize): void {
    const serverConfig = this.runtime.config.servers[name];
    if (serverConfig === undefined) return;
    const onServerRequest = (server: string, request: JsonRpcRequest): void => this.broker.serverRequest(server, request);
    const onNotification = (server: string, notification: JsonRpcNotification): void => this.router.upstreamNotification(server, notification);
    const onReady = (server: string, restarted: boolean): void => {
      this.catalog.invalidate(server);
      if (restarted && this.initialized) this.notifyClient('notifications/tools/list_changed');
    };
    if (isolationOf(serverConfig) !== 'session') {
      this.upstreams.set(name, poolsFor(this.runtime).lease(name, this.owner, { onServerRequest, onNotification, onReady }, this.sessionId));
      return;
    }
    this.upstreams.set(
      name,
      new ManagedUpstream({
        ...upstreamBaseOptions(this.runtime, name),
        logger: this.runtime.logger.child({ session: this.sessionId }),
        initialize,
        serves: { isolation: 'session', agentId: this.owner?.agentId ?? null },
        // The token is the session owner's own (never another agent's or a shared one).
        bearer: this.runtime.credentials?.bearer(name, this.owner, this.clientCapabilities),
        events: {
          onServerRequest,
          onNotification,
          onDown: (server, reason, retryInMs, aggregated) => this.runtime.events('upstream.down', { server, reason, retry_in_ms: retryInMs, session_id: this.sessionId, aggregated: aggregated ?? 1 }),
          onAudit: (event, info) => this.runtime.events(event, { ...info, session_id: this.sessionId }),
          onReady,
        },
      }),
    );
  }

  /** Records what the client said in initialize and answers with the merged capabilities. */
  async initialize(params: Record<string, unknown> | undefined): Promise<Outcome> {
    if (this.initialized) return failure(ErrorCode.InvalidRequest, 'the session is already initialized');
    const protocolVersion = negotiateProtocolVersion(params?.['protocolVersion']);
    this.clientCapabilities = (params?.['capabilities'] ?? {}) as Record<string, unknown>;
    this.clientInfo = (params?.['clientInfo'] ?? {}) as Record<string, unknown>;
    await this.startUpstreams({
      protocolVersion,
      capabilities: this.clientCapabilities,
      clientInfo: { name: 'bastion', version: this.runtime.version, title: `Bastion gateway for ${String(this.clientInfo['name'] ?? 'a client')}` },
    });
    this.protocolVersion = protocolVersion;
    const inspectInstructions = this.runtime.inspectDefinitions.instructions;
    const instructions = [...this.upstreams.values()]
      .map((upstream) => [upstream.name, upstream.current?.identity?.instructions] as const)
      .filter((entry): entry is readonly [string, string] => typeof entry[1] === 'string' && entry[1].length > 0)
      // Pinned and scanned like definitions: changed or poisoned instructions are withheld, not merged.
      .map(([name, text]) => [name, inspectInstructions === undefined ? text : inspectInstructions(name, text)] as const)
      .filter((entry): entry is readonly [string, string] => typeof entry[1] === 'string' && entry[1].length > 0)
      .map(([name, text]) => `[${name}] ${text}`)
      .join('\n\n');
    return {
      ok: true,
      result: {
        protocolVersion,
        capabilities: {
          tools: { listChanged: true },
          prompts: { listChanged: true },
          resources: { subscribe: true, listChanged: true },
          logging: {},
          completions: {},
        },
        serverInfo: { name: 'bastion', title: 'Bastion MCP security gateway', version: this.runtime.version },
        ...(instructions.length > 0 ? { instructions } : {}),
      },
    };
  }

  /** The client request a server-initiated message most likely belongs to (the newest call to that server). */
  /** This session as the admin API lists it. */
  summary(kind: 'session' | 'stateless', agent: string | undefined, calls = this.requestCount, lastSeen = this.lastRequestAt): SessionSummary {
    return { sessionId: this.sessionId, agent: agent ?? this.owner?.agentId ?? 'unknown', transport: this.options.transport, kind, protocolVersion: this.protocolVersion, client: this.clientInfo, calls, inFlight: this.inFlightCount, lastSeen: new Date(lastSeen).toISOString() };
  }

  /** What a call's guards know of this session; `askUser` when the client takes form elicitations. */
  private sessionInfo(requestId: JsonRpcId): CallContext['session'] {
    const info: CallContext['session'] = { sessionId: this.sessionId, transport: this.options.transport, protocolVersion: this.protocolVersion };
    if (this.options.stateless !== true && acceptsFormElicitation(this.clientCapabilities['elicitation'])) info.askUser = (params, signal) => this.broker.ask('elicitation/create', params, requestId, signal);
    return info;
  }

  relatedRequestFor(server: string): JsonRpcId | undefined {
    const calls = this.activeCalls.get(server);
    return calls === undefined ? undefined : calls[calls.length - 1];
  }

  /** Marks a client request as running on `server` until the returned function is called. */
  trackCall(server: string, id: JsonRpcId): () => void {
    let calls = this.activeCalls.get(server);
    if (calls === undefined) {
      calls = [];
      this.activeCalls.set(server, calls);
    }
    calls.push(id);
    const untrackPooled = this.upstreams.get(server)?.trackCall?.();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      untrackPooled?.();
      const index = calls.indexOf(id);
      if (index !== -1) calls.splice(index, 1);
    };
  }

  /** Waits (at most `waitMs`) for the requests in flight to be answered. */
  async drain(waitMs: number): Promise<void> {
    const deadline = Date.now() + waitMs;
    while (this.inFlight.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  /** Lists every cached list again; tells the client about each kind that changed. */
  async relist(): Promise<void> {
    if (this.closed || !this.initialized) return;
    const changed = new Set<ListKind>();
    await Promise.all(this.catalog.cachedLists().map(async ([server, kind]) => {
      const connection = this.upstreams.get(server)?.current;
      if (connection === undefined) return;
      try {
        if (await this.catalog.refresh(server, connection, kind)) changed.add(kind);
      } catch (error) {
        this.runtime.logger.warn({ server, kind, err: error instanceof Error ? error.message : String(error) }, 're-list failed; it is fetched again when next used');
      }
    }));
    if (this.closed) return;
    if (changed.has('tools')) this.notifyClient('notifications/tools/list_changed');
    if (changed.has('prompts')) this.notifyClient('notifications/prompts/list_changed');
    if (changed.has('resources') || changed.has('resourceTemplates')) this.notifyClient('notifications/resources/list_changed');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    liveSessions(this.runtime).delete(this);
    if (this.relistTimer !== undefined) clearInterval(this.relistTimer);
    this.stopAuthorizedListener?.();
    // Every request still in flight gets an error answer before its connection goes (a client
    // would otherwise see only a dropped connection); aborting then suppresses the late result.
    for (const [id, controller] of this.inFlight) {
      if (controller.aborted) continue;
      this.sink.send(errorResponse(id, { code: ErrorCode.UpstreamUnavailable, message: 'the gateway closed this session (shutdown, expiry or DELETE) before the request completed; it may or may not have run' }), id);
      controller.abort();
    }
    this.broker.closeAll();
    this.router.notifications.close();
    await Promise.all([...this.upstreams.values()].map((upstream) => upstream.stop()));
  }

  private async request(message: JsonRpcRequest, bytes: number, identity: Identity | undefined, transportTrace: TransportTraceContext | undefined): Promise<void> {
    const { id, method } = message;
    if (!this.initialized && !LOCAL_METHODS.has(method)) {
      this.sink.send(errorResponse(id, { code: ErrorCode.InvalidRequest, message: `'${method}' before initialize: send initialize first` }), id);
      return;
    }
    if (this.inFlight.has(id)) {
      this.sink.send(errorResponse(id, { code: ErrorCode.InvalidRequest, message: `request id ${JSON.stringify(id)} is already in use by a request in flight` }), id);
      return;
    }
    if (method === 'initialize' && !this.initialized) this.owner = identity;
    this.requestCount += 1;
    this.lastRequestAt = Date.now();
    const cancellation = new CallCancellation();
    this.inFlight.set(id, cancellation);
    const ctx = new CallContext({
      requestId: id,
      method,
      params: message.params,
      session: this.sessionInfo(id),
      identity,
      requestBytes: bytes,
      limits: this.limitsFor(undefined, undefined),
      signal: cancellation,
      transportTrace,
    });
    let outcome: Outcome;
    try {
      outcome = await this.handler(ctx);
    } catch (error) {
      this.runtime.logger.error({ err: error, method }, 'request handler failed');
      outcome = failure(ErrorCode.InternalError, 'internal gateway error; the request was not completed');
    } finally {
      this.inFlight.delete(id);
    }
    if (cancellation.aborted) {
      this.sink.release?.(id); // cancelled by the client: the spec says no response
      return;
    }
    const response: JsonRpcResponse = outcome.ok ? { jsonrpc: '2.0', id, result: outcome.result } : errorResponse(id, outcome.error);
    this.sink.send(response, id);
  }

  private notification(message: JsonRpcNotification): void {
    switch (message.method) {
      case 'notifications/cancelled': {
        const requestId = message.params?.['requestId'];
        if (typeof requestId !== 'string' && typeof requestId !== 'number') return;
        const cancellation = this.inFlight.get(requestId);
        if (cancellation === undefined || cancellation.aborted) return; // nothing to cancel: not worth a record each
        const reason = message.params?.['reason'];
        this.runtime.events('request.cancelled', { session_id: this.sessionId, request_id: requestId, reason: typeof reason === 'string' ? reason.slice(0, 200) : null, transport: this.options.transport });
        cancellation.abort();
        return;
      }
      case 'notifications/roots/list_changed':
        // A pooled server's roots are the agent's grants, not this client's: it is not told.
        for (const upstream of this.upstreams.values()) if (upstream.isolation === undefined) upstream.current?.notify(message.method, message.params);
        return;
      case 'notifications/initialized':
        return;
      default:
        this.runtime.logger.debug({ method: message.method }, 'client notification ignored');
    }
  }
}

/** MCP 2025-11-25: `elicitation: {}` (older clients) or one with `form` takes form requests; `{ url: {} }` alone does not. */
function acceptsFormElicitation(capability: unknown): boolean {
  if (typeof capability !== 'object' || capability === null) return false;
  const modes = Object.keys(capability);
  return modes.length === 0 || modes.includes('form');
}
