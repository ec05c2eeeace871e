import type { BastionConfig, LimitsConfig } from '../config/index.js';
import { ErrorCode, failure, type CallContext, type Next, type Outcome } from '../pipeline/index.js';
import { oversizedName } from '../policy/index.js';
import { NOT_CACHED, type Catalog, type ToolLookup } from './catalog.js';
import type { Namespace, SplitName } from './namespace.js';
import type { UpstreamConnection } from './upstream/connection.js';
import type { SessionUpstream } from './pool/types.js';

/** What routing a request to its upstream needs from the session that received it. */
export interface TargetResolution {
  names: Namespace;
  catalog: Catalog;
  upstreams: ReadonlyMap<string, SessionUpstream>;
  policy: BastionConfig['policy'];
  limitsFor(server: string | undefined, tool: string | undefined): LimitsConfig;
  unavailable(server: string): Outcome;
  /** The upstream's own name of a tool the client names (curation renames it; src/curation). */
  upstreamToolName(server: string, name: string): string;
}

/** The `<server>.<name>` or `<server>+<uri>` a method addresses, or undefined for methods that address no one server. */
function addressed(method: string, params: Record<string, unknown>, names: Namespace): SplitName | undefined | null {
  switch (method) {
    case 'tools/call':
    case 'prompts/get':
      return names.splitName(params['name']);
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      return names.splitUri(params['uri']);
    case 'completion/complete': {
      const ref = (params['ref'] ?? {}) as Record<string, unknown>;
      return ref['type'] === 'ref/prompt' ? names.splitName(ref['name']) : names.splitUri(ref['uri']);
    }
    default:
      return null;
  }
}

/**
 * Finds which upstream a request is for and the name that upstream uses (the `route` guard).
 * When the server is up and its tool list is cached, this decides without a promise; it waits
 * only for what it must (a starting server, a list being fetched).
 */
export function resolveTarget(session: TargetResolution, ctx: CallContext, next: Next): Outcome | Promise<Outcome> {
  const params = ctx.params ?? {};
  const parsed = addressed(ctx.method, params, session.names);
  if (parsed === null) return next(ctx);
  const oversized = oversizedName(ctx.method, params, session.policy);
  if (oversized !== undefined) return failure(ErrorCode.InvalidParams, oversized, { reason: 'name_too_long' });
  if (parsed === undefined || !session.upstreams.has(parsed.server)) {
    return failure(ErrorCode.InvalidParams, `unknown ${ctx.method.startsWith('tools') ? 'tool' : ctx.method.startsWith('prompts') ? 'prompt' : 'resource'}: names look like <server>.<name> and resource URIs like <server>+<uri>`, { reason: 'unknown_target' });
  }
  ctx.target = { server: parsed.server, name: parsed.name };
  if (ctx.method !== 'tools/call') {
    ctx.limits = session.limitsFor(parsed.server, undefined);
    return next(ctx);
  }
  // A curated name is mapped back to the upstream's before limits, policy or the call see it.
  ctx.limits = session.limitsFor(parsed.server, session.upstreamToolName(parsed.server, parsed.name));
  const upstream = session.upstreams.get(parsed.server);
  const connection = upstream?.readyNow?.();
  const found = connection === undefined ? NOT_CACHED : session.catalog.toolNow(parsed.server, parsed.name);
  if (found !== NOT_CACHED) return withTool(session, ctx, next, parsed, found);
  return resolveTool(session, ctx, next, parsed, upstream === undefined ? Promise.resolve(undefined) : upstream.ready(ctx.limits.timeoutMs));
}

/** The slow path of `resolveTarget`: wait for the server and its tool list. */
async function resolveTool(session: TargetResolution, ctx: CallContext, next: Next, parsed: SplitName, ready: Promise<UpstreamConnection | undefined>): Promise<Outcome> {
  const connection = await ready;
  if (connection === undefined) return session.unavailable(parsed.server);
  const found = await session.catalog.tool(parsed.server, connection, parsed.name).catch(() => undefined);
  return withTool(session, ctx, next, parsed, found);
}

function withTool(session: TargetResolution, ctx: CallContext, next: Next, parsed: SplitName, found: ToolLookup): Outcome | Promise<Outcome> {
  if (found !== undefined && 'quarantined' in found) {
    ctx.audit.decision = 'deny';
    ctx.audit.reason = 'quarantined';
    ctx.audit.deniedBy = 'hashlock';
    // The reason is the gateway's own words and a quarantine id: never the upstream's text.
    return failure(ErrorCode.Quarantined, `tool '${parsed.server}.${parsed.name}' is not available: ${found.quarantined}`, { reason: 'quarantined' });
  }
  if (found === undefined) return failure(ErrorCode.InvalidParams, `unknown tool '${parsed.server}.${parsed.name}'`, { reason: 'unknown_tool' });
  ctx.tool = found.tool;
  ctx.target = { server: parsed.server, name: found.upstreamName, ...(found.upstreamName === parsed.name ? {} : { calledAs: parsed.name }) };
  return next(ctx);
}
