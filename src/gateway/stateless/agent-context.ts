import { ErrorCode, type Identity } from '../../pipeline/index.js';
import type { JsonRpcId, JsonRpcMessage, JsonRpcRequest, JsonRpcResponse } from '../jsonrpc.js';
import type { GatewaySession, SessionSink } from '../session.js';
import { META } from './envelope.js';
import { requestDigest } from './sealed-state.js';

/** Where the messages of one client request go (an HTTP answer, a stdio line writer, a promise). */
export interface Responder {
  /** Sends one message; `final` ends the request. False when the client is gone. */
  send(message: JsonRpcMessage, final: boolean): boolean;
  /** Ends the request without an answer (it was cancelled). */
  abandon(): void;
}

/** One stateless client request on its way through the agent's session, possibly over several rounds. */
export class HeldCall {
  /** Server-to-client requests gathered for the next input_required answer. */
  readonly batch: JsonRpcRequest[] = [];
  /** The answer that arrived while the client was away between rounds (delivered on its retry). */
  finished: JsonRpcResponse | undefined;
  flushScheduled = false;
  /**
   * Answers the client already gave on another replica, for a call re-issued here: the upstream's
   * input requests are answered from them, in order and by method, before the client is asked again.
   */
  prefilled: Array<{ method: string; answer: unknown }> = [];
  /** The answers given so far, in order, sealed into each new requestState (another replica replays them). */
  readonly history: Array<{ method: string; answer: unknown }> = [];
  /** The input requests of the round in progress: [key, method]. */
  asked: Array<[string, string]> = [];
  /** requestDigest of the arguments, bound into the requestStates of this call. */
  digest = '';

  constructor(
    readonly internalId: string,
    readonly method: string,
    readonly name: string | undefined,
    readonly identity: Identity,
    /** The id the client used for the round in progress. */
    public clientId: JsonRpcId,
    /** Undefined while the client holds a requestState and has not retried yet. */
    public responder: Responder | undefined,
  ) {}
}

/** A subscriptions/listen stream and what it asked for. */
export interface Listener {
  subscriptionId: JsonRpcId;
  tools: boolean;
  prompts: boolean;
  resources: boolean;
  /** Public resource URIs whose updates this stream receives. */
  uris: Set<string>;
  responder: Responder;
}

/** What the context tells its owner (the stateless front). */
export interface ContextEvents {
  /** A call has server-to-client requests pending: answer its client with input_required. */
  inputRequired(call: HeldCall): void;
  /** A result for a stateless client: stamp it before delivery. */
  stamp(method: string, result: unknown): Record<string, unknown>;
}

/**
 * The gateway-side state behind one agent's stateless requests: an internal GatewaySession
 * (created through the ordinary session API, so the guard chain, the audit, the server-request
 * inspection and the policy are exactly those of a stateful client), the calls it has in flight,
 * and the subscriptions/listen streams it feeds. It is the session's sink: it maps each message
 * the session sends back to the stateless request it belongs to.
 */
export class AgentContext implements SessionSink {
  session!: GatewaySession;
  readonly calls = new Map<string, HeldCall>();
  readonly listeners = new Set<Listener>();
  /** The merged initialize answer of the upstreams (capabilities, instructions) for server/discover. */
  initializeResult: Record<string, unknown> = {};
  lastUsed = Date.now();
  private nextId = 1;

  constructor(
    readonly key: string,
    readonly agentId: string,
    private readonly events: ContextEvents,
  ) {}

  /** Requests in flight or streams open: a busy context is never expired or evicted. */
  get busy(): boolean {
    return this.calls.size > 0 || this.listeners.size > 0;
  }

  /** Starts a request on the session; its messages go to `responder`. */
  start(method: string, name: string | undefined, params: Record<string, unknown> | undefined, bytes: number, identity: Identity, clientId: JsonRpcId, responder: Responder): HeldCall {
    // Unique within the session (clients of one agent may reuse ids), and still naming the client's id in the audit record.
    const call = new HeldCall(`stateless-${this.nextId++}:${String(clientId).slice(0, 64)}`, method, name, identity, clientId, responder);
    call.digest = requestDigest(params);
    this.calls.set(call.internalId, call);
    this.lastUsed = Date.now();
    this.session.handle({ jsonrpc: '2.0', id: call.internalId, method, ...(params === undefined ? {} : { params }) }, bytes, identity);
    return call;
  }

  /** Cancels a call upstream (its client went away, or its requestState expired or was misused). */
  cancel(call: HeldCall, reason: string, pendingKeys: readonly string[] = []): void {
    // Its pending server requests get an answer first, so the upstream is not left waiting on them.
    for (const key of [...pendingKeys, ...call.batch.splice(0).map((pending) => String(pending.id))]) this.answerServerRequest(call, key, undefined, reason);
    this.session.handle({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: call.internalId, reason } }, 0, call.identity);
    this.calls.delete(call.internalId);
  }

  /** Gives the upstream the client's answer to one of its requests (an error when the client gave none). */
  answerServerRequest(call: HeldCall, key: string, result: unknown, missingReason = 'the client did not answer this input request'): void {
    const response: JsonRpcResponse = result === undefined
      ? { jsonrpc: '2.0', id: key, error: { code: ErrorCode.InvalidParams, message: missingReason } }
      : { jsonrpc: '2.0', id: key, result };
    this.session.handle(response, 0, call.identity);
  }

  send(message: JsonRpcMessage, related?: JsonRpcId): boolean {
    if ('method' in message && 'id' in message) return this.serverRequest(message, related);
    if (!('method' in message)) return this.response(message);
    if (related !== undefined) {
      // Progress (and anything else) about one call goes on that call's stream.
      const call = this.calls.get(String(related));
      return call?.responder?.send({ ...message }, false) ?? false;
    }
    this.notify(message.method, message.params);
    return true;
  }

  release(id: JsonRpcId): void {
    const call = this.calls.get(String(id));
    if (call === undefined) return;
    this.calls.delete(call.internalId);
    call.responder?.abandon();
  }

  private serverRequest(request: JsonRpcRequest, related: JsonRpcId | undefined): boolean {
    const call = related === undefined ? undefined : this.calls.get(String(related));
    // No call asked for it, or its client is between rounds: the broker refuses it to the upstream.
    if (call?.responder === undefined) return false;
    call.batch.push(request);
    if (!call.flushScheduled) {
      call.flushScheduled = true;
      // Requests an upstream sends together go to the client in one input_required answer.
      setImmediate(() => {
        call.flushScheduled = false;
        if (call.batch.length > 0 && this.calls.has(call.internalId)) this.events.inputRequired(call);
      });
    }
    return true;
  }

  private response(response: JsonRpcResponse): boolean {
    const call = response.id === null ? undefined : this.calls.get(String(response.id));
    if (call === undefined) return false;
    const translated: JsonRpcResponse = 'result' in response
      ? { jsonrpc: '2.0', id: call.clientId, result: this.events.stamp(call.method, response.result) }
      : { jsonrpc: '2.0', id: call.clientId, error: response.error };
    if (call.responder === undefined) {
      call.finished = translated;
      return true;
    }
    this.calls.delete(call.internalId);
    return call.responder.send(translated, true);
  }

  /** A notification outside any call: to the listen streams that asked for it. */
  private notify(method: string, params: Record<string, unknown> | undefined): void {
    for (const listener of this.listeners) {
      const wanted = (method === 'notifications/tools/list_changed' && listener.tools)
        || (method === 'notifications/prompts/list_changed' && listener.prompts)
        || (method === 'notifications/resources/list_changed' && listener.resources)
        || (method === 'notifications/resources/updated' && typeof params?.['uri'] === 'string' && listener.uris.has(params['uri']));
      if (!wanted) continue;
      const meta = { ...((params?.['_meta'] as Record<string, unknown> | undefined) ?? {}), [META.subscriptionId]: listener.subscriptionId };
      listener.responder.send({ jsonrpc: '2.0', method, params: { ...params, _meta: meta } }, false);
    }
  }

  /** Sends a request of the gateway's own through the session (resources/subscribe for a listen stream). */
  internalRequest(method: string, params: Record<string, unknown>, identity: Identity): Promise<JsonRpcResponse> {
    return new Promise((resolve) => {
      const responder: Responder = {
        send: (message, final) => {
          if (final) resolve(message as JsonRpcResponse);
          return true;
        },
        abandon: () => resolve({ jsonrpc: '2.0', id: null, error: { code: ErrorCode.InternalError, message: 'cancelled' } }),
      };
      this.start(method, undefined, params, 0, identity, 0, responder);
    });
  }
}
