import { ErrorCode, failure, success, type CallContext, type Outcome } from '../pipeline/index.js';
import { decodeCursor, forgetSharedLists, listPage, type ListKind } from './catalog.js';
import type { JsonRpcNotification } from './jsonrpc.js';
import type { GatewaySession } from './session.js';
import type { UpstreamConnection } from './upstream/connection.js';
import { NotificationControl } from './notification-control.js';

const LIST_KINDS: Record<string, ListKind> = {
  'tools/list': 'tools',
  'prompts/list': 'prompts',
  'resources/list': 'resources',
  'resources/templates/list': 'resourceTemplates',
};

/** The end of the guard chain: sends the request to its upstream(s) and shapes the answer. */
export class Router {
  /** Rates and coalescing of what upstreams send this session (docs/security.md). */
  readonly notifications: NotificationControl;

  constructor(private readonly session: GatewaySession) {
    const { config } = session.runtime;
    const defaults = config.upstream.notifications;
    this.notifications = new NotificationControl({
      serverLimits: (server) => ({ perSecond: config.servers[server]?.notifications?.perSecond ?? defaults.perSecond, burst: config.servers[server]?.notifications?.burst ?? defaults.burst }),
      session: { perSecond: defaults.sessionPerSecond, burst: defaults.sessionBurst },
      coalesceMs: defaults.coalesceMs,
      onDropped: (server, dropped, coalesced, windowMs) => {
        session.runtime.logger.warn({ server, dropped, coalesced, windowMs }, 'upstream notifications over the rate were dropped');
        session.runtime.events('upstream.notifications_dropped', { server, dropped, coalesced, window_ms: windowMs, session_id: session.sessionId });
      },
    });
  }

  /** Not async: a method answered here (ping, an unknown method) costs no promise. */
  route(ctx: CallContext): Outcome | Promise<Outcome> {
    const method = ctx.method;
    if (method === 'initialize') return this.session.initialize(ctx.params);
    if (method === 'ping') return success({});
    const kind = LIST_KINDS[method];
    if (kind !== undefined) return this.list(ctx, kind);
    switch (method) {
      case 'tools/call':
      case 'prompts/get':
      case 'resources/read':
      case 'completion/complete':
      case 'resources/subscribe':
      case 'resources/unsubscribe':
        return this.forward(ctx);
      case 'logging/setLevel':
        return this.broadcast(ctx);
      default:
        return failure(ErrorCode.MethodNotFound, `method not found: '${method}' is not an MCP method this gateway serves`);
    }
  }

  unavailable(server: string): Outcome {
    const upstream = this.session.upstreams.get(server);
    const needed = upstream?.authorizationRequired;
    if (needed !== undefined) return { ok: false, error: needed.errorBody() };
    const detail = upstream?.lastError === undefined ? 'it is starting' : upstream.lastError;
    return failure(ErrorCode.UpstreamUnavailable, `server '${server}' is unavailable (${detail}); retry shortly`, { reason: 'upstream_unavailable', server });
  }

  /** Relays an upstream notification to the client, renamed into the gateway's namespace. */
  upstreamNotification(server: string, notification: JsonRpcNotification): void {
    const params = notification.params;
    const method = notification.method;
    switch (method) {
      case 'notifications/tools/list_changed':
      case 'notifications/prompts/list_changed':
      case 'notifications/resources/list_changed':
        // The catalog forgets the list at once (the next list call asks again); the client hears once per window.
        {
          const connection = this.session.upstreams.get(server)?.current;
          if (connection !== undefined) forgetSharedLists(connection, method === 'notifications/tools/list_changed' ? ['tools'] : method === 'notifications/prompts/list_changed' ? ['prompts'] : ['resources', 'resourceTemplates']);
        }
        if (method === 'notifications/tools/list_changed') this.session.catalog.invalidate(server, 'tools');
        else if (method === 'notifications/prompts/list_changed') this.session.catalog.invalidate(server, 'prompts');
        else {
          this.session.catalog.invalidate(server, 'resources');
          this.session.catalog.invalidate(server, 'resourceTemplates');
        }
        return this.notifications.offer(server, 'list', method, () => this.session.notifyClient(method));
      case 'notifications/resources/updated': {
        if (typeof params?.['uri'] !== 'string') return;
        const uri = this.session.names.publicUri(server, params['uri']);
        return this.notifications.offer(server, 'other', method, () => this.session.notifyClient(method, { ...params, uri }));
      }
      case 'notifications/message': {
        const own = typeof params?.['logger'] === 'string' ? params['logger'] : undefined;
        const logger = own === undefined ? server : this.session.names.publicName(server, own);
        return this.notifications.offer(server, 'other', method, () => this.session.notifyClient(method, { ...params, logger }));
      }
      case 'notifications/cancelled':
        return this.session.broker.upstreamCancelled(server, params?.['requestId'], params?.['reason']);
      default:
        this.session.runtime.logger.debug({ server, method: notification.method }, 'upstream notification not relayed');
    }
  }

  private async connection(server: string, waitMs: number): Promise<UpstreamConnection | undefined> {
    return this.session.upstreams.get(server)?.ready(waitMs);
  }

  private async list(ctx: CallContext, kind: ListKind): Promise<Outcome> {
    const offset = decodeCursor(kind, ctx.params?.['cursor']);
    if (offset === undefined) return failure(ErrorCode.InvalidParams, 'invalid cursor: use the nextCursor value from the previous page');
    const waitMs = Math.min(ctx.limits.timeoutMs, 5000);
    const connections = await Promise.all(
      [...this.session.upstreams.keys()].map(async (server) => [server, await this.connection(server, waitMs)] as [string, UpstreamConnection | undefined]),
    );
    const items = await this.session.catalog.merged(kind, connections, ctx.identity, this.session.runtime.listFilter);
    return success(listPage(kind, items, offset));
  }

  private forward(ctx: CallContext): Outcome | Promise<Outcome> {
    const target = ctx.target;
    if (target === undefined) return failure(ErrorCode.InvalidParams, 'no target for this request');
    // A server that is up needs no wait (and no promise) before the request is sent.
    const now = this.session.upstreams.get(target.server)?.readyNow?.();
    if (now !== undefined) return this.forwardOn(ctx, now, target);
    return this.connection(target.server, ctx.limits.timeoutMs).then((connection) => (connection === undefined ? this.unavailable(target.server) : this.forwardOn(ctx, connection, target)));
  }

  private forwardOn(ctx: CallContext, connection: UpstreamConnection, target: NonNullable<CallContext['target']>): Promise<Outcome> {
    const upstream = this.session.upstreams.get(target.server);
    if ((ctx.method === 'resources/subscribe' || ctx.method === 'resources/unsubscribe') && upstream?.subscription !== undefined && target.name !== undefined) {
      return upstream.subscription(ctx.method, target.name, () => this.send(ctx, connection, target.server));
    }
    return this.send(ctx, connection, target.server);
  }

  private async send(ctx: CallContext, connection: UpstreamConnection, server: string): Promise<Outcome> {
    const target = { server };
    const upstreamTrace = ctx.trace?.upstreamCall(server, ctx.method, ctx.method === 'tools/call' ? ctx.target?.name : undefined);
    const params = upstreamParams(ctx, upstreamTrace?.meta);
    const untrack = this.session.trackCall(target.server, ctx.requestId);
    let reply: Awaited<ReturnType<UpstreamConnection['request']>>;
    try {
      reply = await connection.request(ctx.method, params, {
        timeoutMs: ctx.limits.timeoutMs,
        maxOutputBytes: ctx.limits.maxOutputBytes,
        signal: ctx.signal,
        onSettle: untrack,
        onProgress: (progress) => this.notifications.offer(target.server, 'progress', `progress\u0000${String(ctx.requestId)}`, () => this.session.notifyClient('notifications/progress', progress, ctx.requestId)),
      });
    } finally {
      untrack();
    }
    upstreamTrace?.end(reply.ok ? undefined : (reply.error?.code ?? ErrorCode.InternalError));
    ctx.audit.outputBytes = reply.bytes;
    ctx.audit.upstreamDurationMs = ctx.elapsedMs();
    if (reply.timedOut === true) ctx.audit.timedOut = true;
    if (!reply.ok) return { ok: false, error: reply.error ?? { code: ErrorCode.InternalError, message: 'upstream error' } };
    return success(this.session.names.prefixResourceUris(target.server, reply.result));
  }

  private async broadcast(ctx: CallContext): Promise<Outcome> {
    await Promise.all(
      [...this.session.upstreams.values()].map(async (upstream) => {
        const connection = upstream.current;
        if (connection?.identity?.capabilities['logging'] === undefined) return;
        await connection.request(ctx.method, ctx.params, { timeoutMs: ctx.limits.timeoutMs, maxOutputBytes: ctx.limits.maxOutputBytes });
      }),
    );
    return success({});
  }
}

/** The request's params with the gateway's names replaced by the upstream's own. */
function upstreamParams(ctx: CallContext, traceMeta: Readonly<Record<string, string>> | undefined): Record<string, unknown> {
  const params = { ...(ctx.params ?? {}) };
  // With tracing on, the upstream sees the gateway's CLIENT span as its parent, never the client's own values.
  if (traceMeta !== undefined) params['_meta'] = withTraceMeta(params['_meta'], traceMeta);
  const name = ctx.target?.name;
  if (name === undefined) return params;
  switch (ctx.method) {
    case 'tools/call':
    case 'prompts/get':
      params['name'] = name;
      break;
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      params['uri'] = name;
      break;
    case 'completion/complete': {
      const ref = { ...(params['ref'] as Record<string, unknown>) };
      if (ref['type'] === 'ref/prompt') ref['name'] = name;
      else ref['uri'] = name;
      params['ref'] = ref;
      break;
    }
  }
  return params;
}

function withTraceMeta(meta: unknown, traceMeta: Readonly<Record<string, string>>): Record<string, unknown> {
  const merged: Record<string, unknown> = meta !== null && typeof meta === 'object' && !Array.isArray(meta) ? { ...(meta as Record<string, unknown>) } : {};
  delete merged['traceparent'];
  delete merged['tracestate'];
  return Object.assign(merged, traceMeta);
}
