import { createHash, randomBytes } from 'node:crypto';
import { ErrorCode, type Identity } from '../../pipeline/index.js';
import type { JsonRpcRequest } from '../jsonrpc.js';
import type { JsonRpcErrorBody } from '../../pipeline/index.js';
import { LATEST_PROTOCOL_VERSION } from '../protocol.js';
import { GatewaySession, type GatewayRuntime, type RequestStateSealing, type SessionSummary } from '../session.js';
import { AgentContext, type HeldCall, type Listener, type Responder } from './agent-context.js';
import { ALL_PROTOCOL_VERSIONS, CACHE_TTL_MS, STATELESS_PROTOCOL_VERSION, stampResult, withoutEnvelope, type Envelope } from './envelope.js';
import { RequestStateStore, type HeldInput, type RedeemRefusal } from './request-state.js';
import { MemorySpentLedger, requestDigest, StateSealer, type SealedState } from './sealed-state.js';

export interface StatelessOptions {
  transport: 'stdio' | 'http';
  /** Contexts one agent may hold at once (one per distinct set of client capabilities). */
  maxContextsPerAgent: number;
  /** Contexts in total. */
  maxContexts: number;
  /** An idle context (no call, no stream) is closed after this long. */
  idleMs: number;
  /** How long a requestState stays redeemable; then the held upstream call is cancelled. */
  inputTimeoutMs: number;
}

export const DEFAULT_STATELESS_OPTIONS: Omit<StatelessOptions, 'transport'> = { maxContextsPerAgent: 4, maxContexts: 64, idleMs: 15 * 60_000, inputTimeoutMs: 5 * 60_000 };

/** The methods whose calls may be answered with input_required (the revision's multi round-trip requests). */
const INPUT_CAPABLE = new Set(['tools/call', 'prompts/get', 'resources/read']);

/** Methods of the stateful revisions that do not exist in this one. */
const NOT_IN_REVISION = new Set(['initialize', 'ping', 'resources/subscribe', 'resources/unsubscribe', 'logging/setLevel']);

function nameOf(method: string, params: Record<string, unknown> | undefined): string | undefined {
  const value = method === 'resources/read' ? params?.['uri'] : method === 'tools/call' || method === 'prompts/get' ? params?.['name'] : undefined;
  return typeof value === 'string' ? value : undefined;
}

/** Canonical JSON (sorted keys), so equal capabilities give one context key whatever their order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') return `{${Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`).join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

/**
 * Serves the stateless 2026-07-28 revision on top of the stateful machinery. Every request is
 * authenticated by its transport (it carries its token); here it is mapped to a context keyed
 * by the agent and the capabilities its envelope declares, which owns an internal GatewaySession
 * (kept warm, idle-expired, capped per agent). Upstream pools (src/gateway/pool) will later back
 * the context instead of one session per agent; only `createContext` changes then.
 */
export class StatelessFront {
  private readonly contexts = new Map<string, AgentContext>();
  private readonly starting = new Map<string, Promise<AgentContext>>();
  private readonly states: RequestStateStore<{ context: AgentContext; call: HeldCall }>;
  /** Seals requestStates and spends them: with this process's own key, or the cluster's (any replica can redeem). */
  private readonly sealing: RequestStateSealing;
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;
  /** Requests waiting for their context (not yet in flight on it). */
  private admitting = 0;

  constructor(
    private readonly runtime: GatewayRuntime,
    private readonly options: StatelessOptions,
  ) {
    this.states = new RequestStateStore(options.inputTimeoutMs, (held) => this.expired(held));
    this.sealing = runtime.requestStates ?? { replicaId: 'local', sealer: new StateSealer(), ledger: new MemorySpentLedger() };
    this.sealing.ledger.onTakenOver((handle) => this.takenOver(handle));
    this.sweeper = setInterval(() => this.sweep(Date.now()), Math.max(1000, Math.min(30_000, options.idleMs / 2)));
    this.sweeper.unref();
  }

  get contextCount(): number {
    return this.contexts.size;
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
    return this.states.size;
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
      context = await this.contextFor(identity, envelope);
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
    if (params?.['requestState'] !== undefined || params?.['inputResponses'] !== undefined) return this.resume(context, request, bytes, identity, responder);
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
    await Promise.allSettled([...this.starting.values()]);
    await Promise.all([...this.contexts.keys()].map((key) => this.closeContext(key, 'shutdown')));
  }

  /** Closes contexts idle for longer than `idleMs`. Public for tests (a clock). */
  sweep(now: number): void {
    for (const [key, context] of this.contexts) {
      if (!context.busy && now - context.lastUsed > this.options.idleMs) void this.closeContext(key, 'expired');
    }
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

  /** The context for this agent and these capabilities, started on first use. */
  private async contextFor(identity: Identity, envelope: Envelope): Promise<AgentContext> {
    const digest = createHash('sha256').update(canonical(envelope.clientCapabilities)).digest('base64url').slice(0, 22);
    const key = `${identity.agentId}\u0000${envelope.protocolVersion}\u0000${digest}`;
    const existing = this.contexts.get(key);
    if (existing !== undefined) return existing;
    const pending = this.starting.get(key);
    if (pending !== undefined) return pending;
    this.admit(identity.agentId);
    const started = this.createContext(key, identity, envelope).finally(() => this.starting.delete(key));
    this.starting.set(key, started);
    return started;
  }

  /** Makes room for one more context of `agentId`, or throws why there is none. */
  private admit(agentId: string): void {
    const all = [...this.contexts.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    const own = all.filter(([, context]) => context.agentId === agentId);
    const startingOwn = [...this.starting.keys()].filter((key) => key.startsWith(`${agentId}\u0000`)).length;
    if (own.length + startingOwn >= this.options.maxContextsPerAgent) {
      const victim = own.find(([, context]) => !context.busy);
      if (victim === undefined) throw new ContextRefused(`agent ${agentId} holds its limit of ${this.options.maxContextsPerAgent} stateless contexts, all busy; retry later`);
      void this.closeContext(victim[0], 'evicted');
      return;
    }
    if (all.length + this.starting.size >= this.options.maxContexts) {
      const victim = all.find(([, context]) => !context.busy);
      if (victim === undefined) throw new ContextRefused(`the gateway is at its limit of ${this.options.maxContexts} stateless contexts, all busy; retry later`);
      void this.closeContext(victim[0], 'evicted');
    }
  }

  private async createContext(key: string, identity: Identity, envelope: Envelope): Promise<AgentContext> {
    const context = new AgentContext(key, identity.agentId, {
      inputRequired: (call) => this.inputRequired(context, call),
      stamp: (method, result) => stampResult(method, result, this.serverInfo),
    });
    const sessionId = `stateless-${randomBytes(16).toString('base64url')}`;
    const session = new GatewaySession(this.runtime, context, { transport: this.options.transport, sessionId, stateless: true });
    context.session = session;
    const clientName = typeof envelope.clientInfo['name'] === 'string' ? envelope.clientInfo['name'] : 'a stateless client';
    // Upstreams are initialized statefully with the newest stateful revision; the client's
    // capabilities decide (as for any session) which server-to-client requests may reach it.
    const outcome = await session.initialize({ protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: envelope.clientCapabilities, clientInfo: { name: clientName, version: String(envelope.clientInfo['version'] ?? '') } });
    session.owner = identity;
    // The audit records of this session carry the client's revision, not the upstreams'.
    session.protocolVersion = envelope.protocolVersion;
    if (outcome.ok) context.initializeResult = outcome.result as Record<string, unknown>;
    if (this.closed) {
      await session.close();
      throw new ContextRefused('the gateway is shutting down');
    }
    this.contexts.set(key, context);
    this.runtime.events('session.created', { session_id: sessionId, agent: identity.agentId, remote: null, transport: this.options.transport, protocol_version: envelope.protocolVersion });
    return context;
  }

  private async closeContext(key: string, reason: 'expired' | 'evicted' | 'shutdown'): Promise<void> {
    const context = this.contexts.get(key);
    if (context === undefined) return;
    this.contexts.delete(key);
    this.states.dropWhere((held) => held.call.context === context);
    this.runtime.events('session.closed', { session_id: context.session.sessionId, agent: context.agentId, reason, calls: 0, transport: this.options.transport, protocol_version: STATELESS_PROTOCOL_VERSION });
    for (const listener of context.listeners) listener.responder.send({ jsonrpc: '2.0', id: listener.subscriptionId, result: { resultType: 'complete', _meta: { 'io.modelcontextprotocol/subscriptionId': listener.subscriptionId } } }, true);
    context.listeners.clear();
    await context.session.close();
  }

  /** The upstream asked the client something mid-call: answer the round with input_required and hold the call. */
  private inputRequired(context: AgentContext, call: HeldCall): void {
    const responder = call.responder;
    if (responder === undefined) return;
    this.answerPrefilled(context, call);
    if (call.batch.length === 0) return;
    if (!INPUT_CAPABLE.has(call.method)) {
      for (const pending of call.batch.splice(0)) context.answerServerRequest(call, String(pending.id), undefined, `the client cannot be asked for input during ${call.method}`);
      return;
    }
    const batch = call.batch.splice(0);
    const inputRequests = Object.fromEntries(batch.map((request) => [String(request.id), { method: request.method, ...(request.params === undefined ? {} : { params: request.params }) }]));
    const keys = batch.map((request) => String(request.id));
    call.asked = batch.map((request) => [String(request.id), request.method]);
    const handle = this.states.issue({ agentId: call.identity.agentId, method: call.method, name: call.name, keys, call: { context, call } });
    const requestState = this.sealing.sealer.seal({
      replica: this.sealing.replicaId, handle, agentId: call.identity.agentId, deadline: Date.now() + this.options.inputTimeoutMs,
      method: call.method, ...(call.name === undefined ? {} : { name: call.name }), digest: call.digest, asked: call.asked,
      answered: call.history.map(({ method, answer }) => [method, answer]),
    });
    call.responder = undefined;
    this.runtime.events('stateless.input_required', { session_id: context.session.sessionId, agent: call.identity.agentId, request_id: call.internalId, methods: batch.map((request) => request.method).join(','), transport: this.options.transport });
    responder.send({ jsonrpc: '2.0', id: call.clientId, result: stampResult(call.method, { resultType: 'input_required', inputRequests, requestState }, this.serverInfo) }, true);
  }

  /** A call re-issued from another replica's requestState: the upstream's questions the client already answered there are answered here. */
  private answerPrefilled(context: AgentContext, call: HeldCall): void {
    if (call.prefilled.length === 0) return;
    const remaining = [];
    for (const request of call.batch.splice(0)) {
      const next = call.prefilled[0];
      if (next === undefined || next.method !== request.method) {
        remaining.push(request);
        continue;
      }
      call.prefilled.shift();
      call.history.push(next);
      context.answerServerRequest(call, String(request.id), next.answer);
    }
    call.batch.push(...remaining);
  }

  /**
   * A retry carrying inputResponses and requestState. The state is opened (any replica's seal),
   * checked against the caller and the request, and spent (single use, across replicas). The
   * replica holding the call feeds it the answers; any other re-issues the call and answers the
   * upstream's questions from them (docs/protocol.md, "Replicas").
   */
  private async resume(context: AgentContext, request: JsonRpcRequest, bytes: number, identity: Identity, responder: Responder): Promise<void> {
    const { id, method, params } = request;
    const token = params?.['requestState'];
    const opened = this.sealing.sealer.open(token);
    if (opened === undefined || Date.now() > opened.deadline) return this.refuseState(identity, method, responder, id, 'unknown');
    const local = opened.replica === this.sealing.replicaId;
    const refusal: RedeemRefusal | undefined = opened.agentId !== identity.agentId ? 'not_yours'
      : opened.method !== method || opened.name !== nameOf(method, params) || opened.digest !== requestDigest(withoutEnvelope(params)) ? 'mismatch' : undefined;
    if (refusal !== undefined) {
      // A state tried by another agent, or with a changed request, is spent: the held call ends too.
      const held = local ? this.states.take(opened.handle) : undefined;
      if (held !== undefined) held.call.context.cancel(held.call.call, `requestState refused: ${refusal}`, held.keys);
      else if (!local) this.sealing.ledger.takenOver(opened.replica, opened.handle);
      return this.refuseState(identity, method, responder, id, refusal);
    }
    let first: boolean;
    try {
      first = await this.sealing.ledger.spend(token as string, opened.deadline - Date.now());
    } catch (error) {
      this.runtime.logger.error({ err: error }, 'requestState ledger unavailable: the retry is refused');
      return void responder.send({ jsonrpc: '2.0', id, error: { code: ErrorCode.UpstreamUnavailable, message: 'cannot confirm that this requestState was not used before (the shared store does not answer); send the request again without it' } }, true);
    }
    if (!first) return this.refuseState(identity, method, responder, id, 'unknown');
    const responses = params?.['inputResponses'];
    const answers = responses !== null && typeof responses === 'object' && !Array.isArray(responses) ? (responses as Record<string, unknown>) : {};
    if (local) {
      const held = this.states.take(opened.handle);
      if (held !== undefined) return this.continueHeld(held, id, responder, answers);
      // Not held here any more (this replica restarted): only a cluster can re-issue it; alone, the state is gone.
      if (this.runtime.requestStates === undefined) return this.refuseState(identity, method, responder, id, 'unknown');
    } else this.sealing.ledger.takenOver(opened.replica, opened.handle);
    this.reissue(context, request, bytes, identity, responder, opened, answers);
  }

  private continueHeld(held: HeldInput<{ context: AgentContext; call: HeldCall }>, id: JsonRpcRequest['id'], responder: Responder, answers: Record<string, unknown>): void {
    const { context: heldContext, call } = held.call;
    if (!heldContext.calls.has(call.internalId)) {
      responder.send({ jsonrpc: '2.0', id, error: { code: ErrorCode.UpstreamUnavailable, message: 'the held call ended before the retry (its upstream stopped); send the request again' } }, true);
      return;
    }
    heldContext.lastUsed = Date.now();
    call.clientId = id;
    call.responder = responder;
    for (const key of held.keys) {
      const answer = Object.hasOwn(answers, key) ? answers[key] : undefined;
      call.history.push({ method: call.asked.find(([asked]) => asked === key)?.[1] ?? '', answer });
      heldContext.answerServerRequest(call, key, answer);
    }
    if (call.finished !== undefined) {
      heldContext.calls.delete(call.internalId);
      responder.send({ ...call.finished, id }, true);
    }
  }

  /** Starts the request again on this replica; the upstream's questions are answered from the client's inputResponses. */
  private reissue(context: AgentContext, request: JsonRpcRequest, bytes: number, identity: Identity, responder: Responder, opened: SealedState, answers: Record<string, unknown>): void {
    const { id, method, params } = request;
    this.runtime.events('stateless.request_state_reissued', { agent: identity.agentId, from_replica: opened.replica, method: method.slice(0, 64), transport: this.options.transport });
    const call = context.start(method, nameOf(method, params), withoutEnvelope(params), bytes, identity, id, responder);
    call.prefilled = [
      ...opened.answered.map(([asked, answer]) => ({ method: asked, answer })),
      ...opened.asked.map(([key, asked]) => ({ method: asked, answer: Object.hasOwn(answers, key) ? answers[key] : undefined })),
    ];
  }

  private refuseState(identity: Identity, method: string, responder: Responder, id: JsonRpcRequest['id'], reason: RedeemRefusal): void {
    this.runtime.events('stateless.request_state_refused', { agent: identity.agentId, reason, method: method.slice(0, 64), transport: this.options.transport });
    responder.send({ jsonrpc: '2.0', id, error: { code: ErrorCode.InvalidParams, message: 'requestState is unknown, expired, already used or not issued to this caller for this request; send the request again without it' } }, true);
  }

  /** Another replica took over one of this replica's held calls: the copy here is cancelled. */
  private takenOver(handle: string): void {
    const held = this.states.take(handle);
    if (held === undefined) return;
    const { context, call } = held.call;
    if (context.calls.has(call.internalId)) context.cancel(call, 'the retry was served by another replica', held.keys);
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

  private expired(held: HeldInput<{ context: AgentContext; call: HeldCall }>): void {
    const { context, call } = held.call;
    this.runtime.events('stateless.input_expired', { session_id: context.session.sessionId, agent: held.agentId, request_id: call.internalId, transport: this.options.transport });
    if (context.calls.has(call.internalId)) context.cancel(call, 'the client did not answer the input request in time', held.keys);
  }
}

class ContextRefused extends Error {}
