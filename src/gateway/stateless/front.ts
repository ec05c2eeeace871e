import { ErrorCode, type Identity, type JsonRpcErrorBody } from '../../pipeline/index.js';
import type { JsonRpcRequest } from '../jsonrpc.js';
import type { GatewayRuntime, SessionSummary } from '../session.js';
import type { AgentContext, HeldCall, Listener, Responder } from './agent-context.js';
import { ContextRefused, ContextTable, type ContextLimits } from './context-table.js';
import { ALL_PROTOCOL_VERSIONS, CACHE_TTL_MS, STATELESS_PROTOCOL_VERSION, stampResult, withoutEnvelope, type Envelope } from './envelope.js';
import { InputRounds, nameOf } from './input-rounds.js';

export interface StatelessOptions extends ContextLimits {
  /** How long a requestState stays redeemable; then the held upstream call is cancelled. */
  inputTimeoutMs: number;
}

export const DEFAULT_STATELESS_OPTIONS: Omit<StatelessOptions, 'transport'> = { maxContextsPerAgent: 4, maxContexts: 64, idleMs: 15 * 60_000, inputTimeoutMs: 5 * 60_000 };

/** Methods of the stateful revisions that do not exist in this one. */
const NOT_IN_REVISION = new Set(['initialize', 'ping', 'resources/subscribe', 'resources/unsubscribe', 'logging/setLevel']);

/**
 * Serves the stateless 2026-07-28 revision on top of the stateful machinery. Every request is
 * authenticated by its transport (it carries its token); here it is mapped to a context keyed
 * by the agent and the capabilities its envelope declares (ContextTable), whose internal
 * GatewaySession leases the agent's pooled upstreams. Multi round-trip requests (input_required,
 * requestState) are InputRounds' part; subscriptions/listen streams are kept here.
 */
export class StatelessFront {
  private readonly table: ContextTable;
  private readonly rounds: InputRounds;
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;
  /** Requests waiting for their context (not yet in flight on it). */
  private admitting = 0;

  constructor(
    private readonly runtime: GatewayRuntime,
    private readonly options: StatelessOptions,
  ) {
    this.rounds = new InputRounds(runtime, options, () => this.serverInfo);
    this.table = new ContextTable(runtime, options, {
      inputRequired: (context, call) => this.rounds.inputRequired(context, call),
      serverInfo: () => this.serverInfo,
      closing: (context) => this.rounds.forget(context),
      shuttingDown: () => this.closed,
    });
    this.sweeper = setInterval(() => this.sweep(Date.now()), Math.max(1000, Math.min(30_000, options.idleMs / 2)));
    this.sweeper.unref();
  }

  private get contexts(): Map<string, AgentContext> {
    return this.table.contexts;
  }

  get contextCount(): number {
    return this.table.size;
  }

  /** The agents' contexts as the admin API lists them (kind stateless). */
  contextSummaries(): SessionSummary[] {
    return [...this.contexts.values()].map((context) => context.session.summary('stateless', context.agentId, context.session.requestCount, context.lastUsed));
  }

  /** Stateless calls in flight over every context (held ones included). */
  get inFlightCount(): number {
    return [...this.contexts.values()].reduce((sum, context) => sum + context.calls.size, 0);
  }

  /** requestStates issued and not yet redeemed or expired. */
  get pendingInputCount(): number {
    return this.rounds.pending;
  }

  get serverInfo(): Record<string, unknown> {
    return { name: 'bastion', title: 'Bastion MCP security gateway', version: this.runtime.version };
  }

  /** Serves one stateless request whose envelope and headers were already checked. */
  async request(request: JsonRpcRequest, envelope: Envelope, bytes: number, identity: Identity, responder: Responder): Promise<void> {
    const { id, method, params } = request;
    const fail = (error: JsonRpcErrorBody): void => void responder.send({ jsonrpc: '2.0', id, error }, true);
    if (this.closed) return fail({ code: ErrorCode.UpstreamUnavailable, message: 'the gateway is shutting down' });
    if (NOT_IN_REVISION.has(method)) return fail({ code: ErrorCode.MethodNotFound, message: `'${method}' is not part of protocol revision ${STATELESS_PROTOCOL_VERSION}` });
    let context: AgentContext;
    this.admitting += 1;
    try {
      context = await this.table.contextFor(identity, envelope);
    } catch (error) {
      const refusal = error instanceof ContextRefused ? error.message : 'internal gateway error starting the upstreams for this agent';
      if (!(error instanceof ContextRefused)) this.runtime.logger.error({ err: error }, 'stateless context failed to start');
      return fail({ code: ErrorCode.UpstreamUnavailable, message: refusal });
    } finally {
      // Decremented before the call starts, in the same turn: drain() sees one or the other.
      this.admitting -= 1;
    }
    context.lastUsed = Date.now();
    if (method === 'server/discover') return void responder.send({ jsonrpc: '2.0', id, result: this.discover(context) }, true);
    if (method === 'subscriptions/listen') return this.listen(context, request, identity, responder);
    if (params?.['requestState'] !== undefined || params?.['inputResponses'] !== undefined) return this.rounds.resume(context, request, bytes, identity, responder);
    context.start(method, nameOf(method, params), withoutEnvelope(params), bytes, identity, id, responder);
  }

  /** The client went away before its answer (its HTTP stream closed): the call is cancelled upstream. */
  clientGone(identity: Identity, responderOf: (call: HeldCall) => boolean): void {
    for (const context of this.contexts.values()) {
      if (context.agentId !== identity.agentId) continue;
      for (const call of context.calls.values()) {
        if (call.responder === undefined || !responderOf(call)) continue;
        call.responder = undefined;
        this.runtime.events('request.cancelled', { session_id: context.session.sessionId, request_id: call.internalId, reason: 'cancelled by the client', transport: this.options.transport });
        context.cancel(call, 'the client closed its stream');
      }
    }
  }

  /**
   * A cancellation notification from a stateless client: it ends one of its listen streams or
   * calls (over stdio; over HTTP the client closes the request's stream instead). Client ids are
   * only unique per client, so a cancellation reaches the calls of the same agent only.
   */
  cancelled(identity: Identity, requestId: unknown): void {
    if (typeof requestId !== 'string' && typeof requestId !== 'number') return;
    this.clientGone(identity, (call) => call.clientId === requestId);
    for (const context of this.contexts.values()) {
      if (context.agentId !== identity.agentId) continue;
      for (const listener of context.listeners) {
        if (listener.subscriptionId === requestId) this.endListener(context, listener, identity);
      }
    }
  }

  /** Waits (at most `waitMs`) for contexts being started and calls in flight, as a session drains before it closes. */
  async drain(waitMs: number): Promise<void> {
    const deadline = Date.now() + waitMs;
    while ((this.admitting > 0 || this.inFlightCount > 0) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    await this.table.closeAll();
  }

  /** Closes contexts idle for longer than `idleMs`. Public for tests (a clock). */
  sweep(now: number): void {
    this.table.sweep(now);
  }

  private discover(context: AgentContext): Record<string, unknown> {
    const init = context.initializeResult;
    return stampResult('server/discover', {
      supportedVersions: [...ALL_PROTOCOL_VERSIONS],
      capabilities: { tools: { listChanged: true }, prompts: { listChanged: true }, resources: { subscribe: true, listChanged: true }, completions: {} },
      ...(typeof init['instructions'] === 'string' ? { instructions: init['instructions'] } : {}),
      ttlMs: CACHE_TTL_MS,
      cacheScope: 'private',
    }, this.serverInfo);
  }

  /** subscriptions/listen: a stream of list_changed and resource updates for the caller's subscriptions. */
  private async listen(context: AgentContext, request: JsonRpcRequest, identity: Identity, responder: Responder): Promise<void> {
    const filter = request.params?.['notifications'];
    if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) {
      responder.send({ jsonrpc: '2.0', id: request.id, error: { code: ErrorCode.InvalidParams, message: 'subscriptions/listen needs params.notifications (toolsListChanged, promptsListChanged, resourcesListChanged, resourceSubscriptions)' } }, true);
      return;
    }
    const wanted = filter as Record<string, unknown>;
    const uris = Array.isArray(wanted['resourceSubscriptions']) ? wanted['resourceSubscriptions'].filter((uri): uri is string => typeof uri === 'string').slice(0, 256) : [];
    const honoredUris: string[] = [];
    for (const uri of uris) {
      // Each subscription runs through the chain like a resources/subscribe: policy and audit decide.
      const answer = await context.internalRequest('resources/subscribe', { uri }, identity);
      if ('result' in answer) honoredUris.push(uri);
    }
    const listener: Listener = { subscriptionId: request.id, tools: wanted['toolsListChanged'] === true, prompts: wanted['promptsListChanged'] === true, resources: wanted['resourcesListChanged'] === true, uris: new Set(honoredUris), responder };
    context.listeners.add(listener);
    const honored = { ...(listener.tools ? { toolsListChanged: true } : {}), ...(listener.prompts ? { promptsListChanged: true } : {}), ...(listener.resources ? { resourcesListChanged: true } : {}), ...(uris.length > 0 ? { resourceSubscriptions: honoredUris } : {}) };
    if (!responder.send({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: { _meta: { 'io.modelcontextprotocol/subscriptionId': request.id }, notifications: honored } }, false)) this.endListener(context, listener, identity);
  }

  /** Ends a listen stream: its resource subscriptions no other stream holds are dropped upstream. */
  endListener(context: AgentContext, listener: Listener, identity: Identity): void {
    if (!context.listeners.delete(listener)) return;
    listener.responder.abandon();
    const stillWanted = new Set([...context.listeners].flatMap((other) => [...other.uris]));
    for (const uri of listener.uris) if (!stillWanted.has(uri)) void context.internalRequest('resources/unsubscribe', { uri }, identity);
  }

  /** A listen stream's client closed it. */
  listenerGone(identity: Identity, responder: Responder): void {
    for (const context of this.contexts.values()) {
      for (const listener of context.listeners) if (listener.responder === responder) this.endListener(context, listener, identity);
    }
  }
}
