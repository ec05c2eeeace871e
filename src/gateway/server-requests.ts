import { ErrorCode, type Identity } from '../pipeline/index.js';
import type { JsonRpcId, JsonRpcRequest, JsonRpcResponse } from './jsonrpc.js';
import type { GatewaySession, SessionSink } from './session.js';
import { inspectServerRequest } from './server-request-inspection.js';

/**
 * Returns why `server` may not send `method` to this caller's client, or undefined if it may.
 * `answerFilter`, when present, reshapes the client's answer before the server sees it (the
 * policy narrows a roots/list answer to the agent's grants).
 */
export type ServerRequestPolicy = ((identity: Identity | undefined, server: string, method: string) => string | undefined) & {
  answerFilter?: (identity: Identity | undefined, server: string, method: string, result: unknown) => unknown;
};

/** The client capability each server-to-client request needs. */
const NEEDS_CAPABILITY: Record<string, string> = {
  'sampling/createMessage': 'sampling',
  'elicitation/create': 'elicitation',
  'roots/list': 'roots',
};

/** How long a client may take to answer a server's request (a human may be in the loop). */
const CLIENT_ANSWER_TIMEOUT_MS = 10 * 60_000;

interface PendingServerRequest {
  server: string;
  method: string;
  upstreamId: JsonRpcId;
  timer: NodeJS.Timeout;
}

/**
 * Carries requests an upstream makes of the client (sampling, elicitation, roots) through the
 * gateway: the policy decides whether that server may ask, ids are remapped both ways, and the
 * answer goes back to the server that asked and to no other.
 */
export class ServerRequestBroker {
  private nextId = 1;
  private readonly pending = new Map<string, PendingServerRequest>();
  /** Requests the gateway itself made of the client (approval by elicitation), by the id the client sees. */
  private readonly own = new Map<string, (response: JsonRpcResponse | Error) => void>();

  constructor(
    private readonly session: GatewaySession,
    private readonly sink: SessionSink,
  ) {}

  serverRequest(server: string, request: JsonRpcRequest): void {
    const connection = this.session.upstreams.get(server)?.current;
    if (connection === undefined) return;
    if (request.method === 'ping') return connection.reply(request.id, { result: {} });
    const facts = { server, method: request.method.slice(0, 128), agent_id: this.session.owner?.agentId ?? null, session_id: this.session.sessionId };
    const refuse = (code: number, reason: string, message: string, extra: Record<string, string | number | boolean | null> = {}): void => {
      this.session.runtime.logger.warn({ server, method: facts.method, reason }, 'server-to-client request refused');
      this.session.runtime.events('server_request', { ...facts, decision: 'deny', reason, ...extra });
      connection.reply(request.id, { error: { code, message } });
    };
    const capability = NEEDS_CAPABILITY[request.method];
    if (capability === undefined) {
      return refuse(ErrorCode.MethodNotFound, 'method_not_relayed', `the gateway does not relay '${facts.method}' to clients`);
    }
    if (this.session.clientCapabilities[capability] === undefined) {
      return refuse(ErrorCode.MethodNotFound, `client_capability_missing: ${capability}`, `the client did not declare the '${capability}' capability`);
    }
    const denial = this.session.runtime.serverRequestPolicy(this.session.owner, server, request.method);
    if (denial !== undefined) {
      return refuse(ErrorCode.Forbidden, denial, `denied by Bastion policy: ${denial}`);
    }
    const verdict = inspectServerRequest(this.session.runtime, server, request.method, request.params);
    const digest: Record<string, string> = verdict.promptDigest === undefined ? {} : { prompt_digest: verdict.promptDigest };
    if (verdict.refusal !== undefined) {
      const review = verdict.reviewId === undefined ? '' : ` (review ${verdict.reviewId})`;
      return refuse(ErrorCode.Forbidden, `inspection: ${verdict.refusal}${review}`, `refused by Bastion: ${verdict.refusal}`, { ...digest, rule_ids: verdict.ruleIds.join(','), review_id: verdict.reviewId ?? null });
    }
    if (verdict.downgradedFrom !== undefined) {
      this.session.runtime.logger.info({ server, asked: verdict.downgradedFrom, allowed: verdict.params?.['includeContext'] }, 'sampling includeContext lowered');
    }
    this.session.runtime.events('server_request', {
      ...facts,
      decision: 'allow',
      reason: null,
      ...digest,
      ...(verdict.downgradedFrom === undefined ? {} : ({ include_context_requested: verdict.downgradedFrom.slice(0, 32), include_context: String(verdict.params?.['includeContext']) } as Record<string, string>)),
    });
    const params = verdict.params;
    const downstreamId = `bastion-${this.nextId++}`;
    const timer = setTimeout(() => this.expire(downstreamId), CLIENT_ANSWER_TIMEOUT_MS);
    timer.unref();
    this.pending.set(downstreamId, { server, method: request.method, upstreamId: request.id, timer });
    const delivered = this.sink.send({ jsonrpc: '2.0', id: downstreamId, method: request.method, ...(params === undefined ? {} : { params }) }, this.session.relatedRequestFor(server));
    if (!delivered) {
      this.settle(downstreamId);
      connection.reply(request.id, { error: { code: ErrorCode.UpstreamUnavailable, message: 'the client has no open stream to receive this request' } });
    }
  }

  /**
   * Sends a request of the gateway's own to the client (never an upstream's text: the caller
   * writes it), on the stream of the client request `related`. Aborting `signal` withdraws it
   * with notifications/cancelled.
   */
  ask(method: string, params: Record<string, unknown>, related: JsonRpcId, signal: AbortSignal): Promise<Record<string, unknown>> {
    const id = `bastion-gw-${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.own.delete(id)) return;
        this.session.notifyClient('notifications/cancelled', { requestId: id, reason: 'decided elsewhere' });
        reject(new Error('withdrawn: decided elsewhere'));
      };
      this.own.set(id, (answer) => {
        signal.removeEventListener('abort', onAbort);
        if (answer instanceof Error) reject(answer);
        else if ('error' in answer) reject(new Error(`the client answered with error ${answer.error.code}: ${String(answer.error.message).slice(0, 200)}`));
        else resolve(typeof answer.result === 'object' && answer.result !== null ? (answer.result as Record<string, unknown>) : {});
      });
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      if (!this.sink.send({ jsonrpc: '2.0', id, method, params }, related)) this.settleOwn(id, new Error('the client has no open stream to receive the request'));
    });
  }

  /** The client's answer to one of the relayed requests. */
  clientResponse(response: JsonRpcResponse): void {
    const key = String(response.id);
    if (this.settleOwn(key, response)) return;
    const entry = this.settle(key);
    if (entry === undefined) return;
    const connection = this.session.upstreams.get(entry.server)?.current;
    if (connection === undefined) return;
    if ('error' in response) return connection.reply(entry.upstreamId, { error: response.error });
    const filter = this.session.runtime.serverRequestPolicy.answerFilter;
    connection.reply(entry.upstreamId, { result: filter === undefined ? response.result : filter(this.session.owner, entry.server, entry.method, response.result) });
  }

  /** The upstream withdrew a request it had made: tell the client under the id it knows. */
  upstreamCancelled(server: string, upstreamId: unknown, reason: unknown): void {
    for (const [downstreamId, entry] of this.pending) {
      if (entry.server === server && entry.upstreamId === upstreamId) {
        this.settle(downstreamId);
        this.session.notifyClient('notifications/cancelled', { requestId: downstreamId, ...(typeof reason === 'string' ? { reason } : {}) });
        return;
      }
    }
  }

  closeAll(): void {
    for (const key of [...this.pending.keys()]) this.settle(key);
    for (const key of [...this.own.keys()]) this.settleOwn(key, new Error('the session closed'));
  }

  private settleOwn(id: string, answer: JsonRpcResponse | Error): boolean {
    const settle = this.own.get(id);
    if (settle === undefined) return false;
    this.own.delete(id);
    settle(answer);
    return true;
  }

  private expire(downstreamId: string): void {
    const entry = this.settle(downstreamId);
    if (entry === undefined) return;
    this.session.upstreams.get(entry.server)?.current?.reply(entry.upstreamId, { error: { code: ErrorCode.RequestTimeout, message: 'the client did not answer in time' } });
    this.session.notifyClient('notifications/cancelled', { requestId: downstreamId, reason: 'timed out waiting for the client' });
  }

  private settle(downstreamId: string): PendingServerRequest | undefined {
    const entry = this.pending.get(downstreamId);
    if (entry === undefined) return undefined;
    this.pending.delete(downstreamId);
    clearTimeout(entry.timer);
    return entry;
  }
}
