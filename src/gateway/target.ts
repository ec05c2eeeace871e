import type { BastionConfig, LimitsConfig } from '../config/index.js';
import { ErrorCode, failure, type CallContext, type Next, type Outcome } from '../pipeline/index.js';
import { oversizedName } from '../policy/index.js';
import type { Catalog } from './catalog.js';
import type { Namespace, SplitName } from './namespace.js';
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

/** Finds which upstream a request is for and the name that upstream uses (the `route` guard). */
export async function resolveTarget(session: TargetResolution, ctx: CallContext, next: Next): Promise<Outcome> {
  const params = ctx.params ?? {};
  const parsed = addressed(ctx.method, params, session.names);
  if (parsed === null) return next(ctx);
  const oversized = oversizedName(ctx.method, params, session.policy);
  if (oversized !== undefined) return failure(ErrorCode.InvalidParams, oversized, { reason: 'name_too_long' });
  if (parsed === undefined || !session.upstreams.has(parsed.server)) {
    return failure(ErrorCode.InvalidParams, `unknown ${ctx.method.startsWith('tools') ? 'tool' : ctx.method.startsWith('prompts') ? 'prompt' : 'resource'}: names look like <server>.<name> and resource URIs like <server>+<uri>`, { reason: 'unknown_target' });
  }
  ctx.target = { server: parsed.server, name: parsed.name };
  // A curated name is mapped back to the upstream's before limits, policy or the call see it.
  const upstreamName = ctx.method === 'tools/call' ? session.upstreamToolName(parsed.server, parsed.name) : parsed.name;
  ctx.limits = session.limitsFor(parsed.server, ctx.method === 'tools/call' ? upstreamName : undefined);
  if (ctx.method === 'tools/call') {
    const connection = await session.upstreams.get(parsed.server)?.ready(ctx.limits.timeoutMs);
    if (connection === undefined) return session.unavailable(parsed.server);
    const found = await session.catalog.tool(parsed.server, connection, parsed.name).catch(() => undefined);
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
  }
  return next(ctx);
}
