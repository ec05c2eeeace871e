import { ErrorCode, type Identity } from '../../pipeline/index.js';
import { forgetSharedLists, type ListKind } from '../catalog.js';
import type { JsonRpcNotification, JsonRpcRequest } from '../jsonrpc.js';
import type { GatewayRuntime } from '../session.js';
import { ManagedUpstream, type ManagedUpstreamOptions } from '../upstream/managed.js';
import type { PoolLease } from './lease.js';

/** Facts every audit record of a pooled process carries. */
export interface PoolFacts {
  server: string;
  /** The pool key as recorded: the agent id at isolation agent, `*` at shared. */
  pool: string;
  isolation: 'agent' | 'shared';
  agentId: string | null;
}

/**
 * One pooled upstream process and the sessions leasing it. Everything the process sends that is
 * not the answer to a call is routed here: server requests to the one session whose call is in
 * flight (refused when there is none, or more than one), list changes to every lease, resource
 * updates to the leases that subscribed to that URI.
 */
export class PooledProcess {
  readonly upstream: ManagedUpstream;
  readonly leases = new Set<PoolLease>();
  /** Calls in flight on this process, per lease. */
  private readonly calls = new Map<PoolLease, number>();
  /** Upstream URI -> leases subscribed to it (the upstream is subscribed while the set is not empty). */
  readonly subscriptions = new Map<string, Set<PoolLease>>();
  private idleTimer: NodeJS.Timeout | undefined;
  /** Set while the process waits for its calls to finish before a restart (new calls wait for the restart). */
  private drainingNow: Promise<number> | undefined;
  /** Called when the last call in flight ends. */
  private readonly whenIdle: Array<() => void> = [];
  /** The sandbox view the process runs with (a key of it; src/app/sandbox.ts). */
  viewKey: string | undefined;

  constructor(
    private readonly runtime: GatewayRuntime,
    readonly facts: PoolFacts,
    /** The identity policy decisions for the process use (the agent's; undefined at shared). */
    private readonly identity: () => Identity | undefined,
    private readonly idleMs: number,
    options: Omit<ManagedUpstreamOptions, 'events' | 'restartOnDemand'>,
  ) {
    this.upstream = new ManagedUpstream({
      ...options,
      restartOnDemand: true,
      events: {
        onServerRequest: (_server, request) => this.serverRequest(request),
        onNotification: (_server, notification) => this.notification(notification),
        onReady: (server, restarted) => this.ready(server, restarted),
        onDown: (server, reason, retryInMs, aggregated) => this.runtime.events('upstream.down', { ...this.auditFacts(), server, reason, retry_in_ms: retryInMs, aggregated: aggregated ?? 1 }),
        onAudit: (event, info) => this.runtime.events(event, { ...info, ...this.auditFacts() }),
      },
    });
  }

  get pid(): number | undefined {
    return this.upstream.pid;
  }

  /** Calls in flight on this process from any session. */
  get inFlight(): number {
    let total = 0;
    for (const count of this.calls.values()) total += count;
    return total;
  }

  /** Marks a call of `lease` as running until the returned function is called (once). */
  trackCall(lease: PoolLease): () => void {
    this.calls.set(lease, (this.calls.get(lease) ?? 0) + 1);
    this.cancelIdle();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.calls.get(lease) ?? 1) - 1;
      if (left > 0) this.calls.set(lease, left);
      else this.calls.delete(lease);
      this.scheduleIdle();
      this.notifyIfIdle();
    };
  }

  /** A drain in progress, if any: calls routed now wait for it, so they reach the restarted process. */
  get draining(): Promise<number> | undefined {
    return this.drainingNow;
  }

  /**
   * Restarts the process once the calls in flight on it have finished (each ends by its own
   * answer or timeout), or once `deadlineMs` has passed (the calls still running are then
   * cancelled: their clients get an error); the next call starts it again, with whatever view
   * applies then. Resolves with how many calls were still running at the deadline.
   */
  drain(reason: string, deadlineMs?: number): Promise<number> {
    this.drainingNow ??= (async () => {
      if (this.inFlight > 0) await this.idleOrDeadline(deadlineMs);
      const cancelled = this.inFlight;
      await this.upstream.recycle(reason);
      return cancelled;
    })().finally(() => {
      this.drainingNow = undefined;
    });
    return this.drainingNow;
  }

  private idleOrDeadline(deadlineMs: number | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.whenIdle.push(done);
      if (deadlineMs !== undefined) timer = setTimeout(done, Math.max(0, deadlineMs));
    });
  }

  attach(lease: PoolLease): void {
    this.leases.add(lease);
  }

  /** The lease is gone: its calls stop counting and its subscriptions end (upstream too, if it was the last). */
  detach(lease: PoolLease): string[] {
    this.leases.delete(lease);
    this.calls.delete(lease);
    this.notifyIfIdle();
    const orphaned: string[] = [];
    for (const [uri, subscribers] of this.subscriptions) {
      if (!subscribers.delete(lease) || subscribers.size > 0) continue;
      this.subscriptions.delete(uri);
      orphaned.push(uri);
    }
    this.scheduleIdle();
    return orphaned;
  }

  async stop(): Promise<void> {
    this.cancelIdle();
    for (const resolve of this.whenIdle.splice(0)) resolve();
    await this.upstream.stop();
  }

  /** Records with the pool's facts instead of a session id: the process outlives any one session. */
  private auditFacts(): Record<string, string | null> {
    return { pool: this.facts.pool, isolation: this.facts.isolation, agent_id: this.facts.agentId, session_id: null };
  }

  private ready(server: string, restarted: boolean): void {
    for (const lease of this.leases) lease.events.onReady(server, restarted);
    this.scheduleIdle();
    if (!restarted) return;
    // A new process knows nothing of the old one's subscriptions: ask again for each URI still wanted.
    const connection = this.upstream.current;
    for (const uri of this.subscriptions.keys()) {
      void connection?.request('resources/subscribe', { uri }, { timeoutMs: this.runtime.config.upstream.startTimeoutMs, maxOutputBytes: 1024 * 1024 });
    }
  }

  /** The leases with a call in flight now. */
  private callers(): PoolLease[] {
    return [...this.calls.keys()];
  }

  private serverRequest(request: JsonRpcRequest): void {
    const connection = this.upstream.current;
    if (connection === undefined) return;
    if (request.method === 'ping') return connection.reply(request.id, { result: {} });
    const answerFilter = this.runtime.serverRequestPolicy.answerFilter;
    if (request.method === 'roots/list' && answerFilter !== undefined) return this.roots(request, answerFilter);
    const callers = this.callers();
    const caller = callers.length === 1 ? callers[0] : undefined;
    if (caller !== undefined) return caller.events.onServerRequest(this.facts.server, request);
    // A pooled process speaks for several sessions: with no call in flight, or calls of several
    // sessions, nothing says whose client should see the request, so nobody does (fail closed).
    const reason = callers.length === 0 ? 'no_causing_call' : 'ambiguous_causing_call';
    const message = callers.length === 0
      ? `the gateway relays '${request.method.slice(0, 64)}' only while a call that could have caused it is in flight; there is none`
      : `the gateway cannot tell which of ${callers.length} sessions' calls caused '${request.method.slice(0, 64)}'; refused (give the server isolation: session, or more pool processes)`;
    this.runtime.logger.warn({ server: this.facts.server, method: request.method.slice(0, 128), reason }, 'server-to-client request refused');
    this.runtime.events('server_request', { ...this.auditFacts(), server: this.facts.server, method: request.method.slice(0, 128), decision: 'deny', reason });
    connection.reply(request.id, { error: { code: ErrorCode.InvalidRequest, message } });
  }

  /**
   * A pooled server's roots are the agent's filesystem grants, not what one of the agent's
   * clients answered: the policy narrows "everything" to the grants (none at shared isolation).
   */
  private roots(request: JsonRpcRequest, answerFilter: NonNullable<GatewayRuntime['serverRequestPolicy']['answerFilter']>): void {
    const connection = this.upstream.current;
    if (connection === undefined) return;
    const identity = this.identity();
    const denial = this.runtime.serverRequestPolicy(identity, this.facts.server, request.method);
    const facts = { ...this.auditFacts(), server: this.facts.server, method: request.method };
    if (denial !== undefined) {
      this.runtime.events('server_request', { ...facts, decision: 'deny', reason: denial });
      return connection.reply(request.id, { error: { code: ErrorCode.Forbidden, message: `denied by Bastion policy: ${denial}` } });
    }
    this.runtime.events('server_request', { ...facts, decision: 'allow', reason: 'answered_from_grants' });
    connection.reply(request.id, { result: answerFilter(identity, this.facts.server, request.method, { roots: [{ uri: 'file:///' }] }) });
  }

  private notification(notification: JsonRpcNotification): void {
    const server = this.facts.server;
    switch (notification.method) {
      case 'notifications/resources/updated': {
        const uri = notification.params?.['uri'];
        const subscribers = typeof uri === 'string' ? this.subscriptions.get(uri) : undefined;
        for (const lease of subscribers ?? []) lease.events.onNotification(server, notification);
        return;
      }
      case 'notifications/message': {
        // A log line made during one session's call goes to that session only.
        const callers = this.callers();
        for (const lease of callers.length === 1 ? callers : this.leases) lease.events.onNotification(server, notification);
        return;
      }
      case 'notifications/tools/list_changed':
      case 'notifications/prompts/list_changed':
      case 'notifications/resources/list_changed': {
        const connection = this.upstream.current;
        const kinds: ListKind[] = notification.method === 'notifications/tools/list_changed' ? ['tools'] : notification.method === 'notifications/prompts/list_changed' ? ['prompts'] : ['resources', 'resourceTemplates'];
        if (connection !== undefined) forgetSharedLists(connection, kinds);
        for (const lease of this.leases) lease.events.onNotification(server, notification);
        return;
      }
      default:
        // cancelled (each broker matches only its own requests), and anything else the router decides on.
        for (const lease of this.leases) lease.events.onNotification(server, notification);
    }
  }

  private notifyIfIdle(): void {
    if (this.inFlight > 0) return;
    for (const resolve of this.whenIdle.splice(0)) resolve();
  }

  private cancelIdle(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  /** An idle process (nothing in flight, nothing subscribed) is stopped after idleMs; the next call starts it. */
  private scheduleIdle(): void {
    this.cancelIdle();
    if (this.inFlight > 0 || this.subscriptions.size > 0 || this.upstream.current === undefined) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.inFlight === 0 && this.subscriptions.size === 0) void this.upstream.recycle(`idle for ${this.idleMs} ms`);
    }, this.idleMs);
    this.idleTimer.unref();
  }
}
