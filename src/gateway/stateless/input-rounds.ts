// The multi round-trip requests of the stateless revision: an upstream that asks its client
// something mid-call (sampling, elicitation, roots) makes the gateway answer the round with
// input_required and a sealed requestState; the client's retry carries the answers. The state is
// opened here (any replica's seal), checked against the caller and the request, spent once across
// replicas, and either fed to the call held on this replica or used to re-issue the call here
// (docs/protocol.md, "Replicas").
import { ErrorCode, type Identity } from '../../pipeline/index.js';
import type { JsonRpcRequest } from '../jsonrpc.js';
import type { GatewayRuntime, RequestStateSealing } from '../session.js';
import type { AgentContext, HeldCall, Responder } from './agent-context.js';
import { stampResult, withoutEnvelope } from './envelope.js';
import { RequestStateStore, type HeldInput, type RedeemRefusal } from './request-state.js';
import { MemorySpentLedger, requestDigest, StateSealer, type SealedState } from './sealed-state.js';

/** The methods whose calls may be answered with input_required (the revision's multi round-trip requests). */
const INPUT_CAPABLE = new Set(['tools/call', 'prompts/get', 'resources/read']);

type Held = HeldInput<{ context: AgentContext; call: HeldCall }>;

/** The name a stateless request is about (the tool, prompt or resource), bound into its requestStates. */
export function nameOf(method: string, params: Record<string, unknown> | undefined): string | undefined {
  const value = method === 'resources/read' ? params?.['uri'] : method === 'tools/call' || method === 'prompts/get' ? params?.['name'] : undefined;
  return typeof value === 'string' ? value : undefined;
}

export class InputRounds {
  private readonly states: RequestStateStore<{ context: AgentContext; call: HeldCall }>;
  /** Seals requestStates and spends them: with this process's own key, or the cluster's (any replica can redeem). */
  private readonly sealing: RequestStateSealing;

  constructor(
    private readonly runtime: GatewayRuntime,
    private readonly options: { transport: 'stdio' | 'http'; inputTimeoutMs: number },
    private readonly serverInfo: () => Record<string, unknown>,
  ) {
    this.states = new RequestStateStore(options.inputTimeoutMs, (held) => this.expired(held));
    this.sealing = runtime.requestStates ?? { replicaId: 'local', sealer: new StateSealer(), ledger: new MemorySpentLedger() };
    this.sealing.ledger.onTakenOver((handle) => this.takenOver(handle));
  }

  /** requestStates issued and not yet redeemed or expired. */
  get pending(): number {
    return this.states.size;
  }

  /** A context closed: the requestStates of its calls are void. */
  forget(context: AgentContext): void {
    this.states.dropWhere((held) => held.call.context === context);
  }

  /** The upstream asked the client something mid-call: answer the round with input_required and hold the call. */
  inputRequired(context: AgentContext, call: HeldCall): void {
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
    responder.send({ jsonrpc: '2.0', id: call.clientId, result: stampResult(call.method, { resultType: 'input_required', inputRequests, requestState }, this.serverInfo()) }, true);
  }

  /**
   * A retry carrying inputResponses and requestState. The state is opened (any replica's seal),
   * checked against the caller and the request, and spent (single use, across replicas). The
   * replica holding the call feeds it the answers; any other re-issues the call and answers the
   * upstream's questions from them (docs/protocol.md, "Replicas").
   */
  async resume(context: AgentContext, request: JsonRpcRequest, bytes: number, identity: Identity, responder: Responder): Promise<void> {
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

  private continueHeld(held: Held, id: JsonRpcRequest['id'], responder: Responder, answers: Record<string, unknown>): void {
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

  private expired(held: Held): void {
    const { context, call } = held.call;
    this.runtime.events('stateless.input_expired', { session_id: context.session.sessionId, agent: held.agentId, request_id: call.internalId, transport: this.options.transport });
    if (context.calls.has(call.internalId)) context.cancel(call, 'the client did not answer the input request in time', held.keys);
  }
}
