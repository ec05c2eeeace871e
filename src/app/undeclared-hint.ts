import type { ListFilter } from '../gateway/index.js';
import type { Logger } from '../observability/index.js';
import type { PolicyStore } from '../policy/index.js';
import type { RecordEvent } from './events.js';

/**
 * A server whose tools are all undeclared shows an empty list to every agent, which looks like a
 * broken server. The first time a server lists tools none of which is declared, the gateway says
 * so once (log and audit), with the fix; the list itself stays filtered (fail closed).
 */
export function hintWhenAllUndeclared(filter: ListFilter, policy: PolicyStore, logger: Logger, record: RecordEvent): ListFilter {
  const hinted = new Set<string>();
  // The same (frozen) list under the same policy needs looking at once, not once per session.
  const checked = new WeakMap<object, object>();
  return (identity, server, kind, items) => {
    const visible = filter(identity, server, kind, items);
    if (kind !== 'tools' || items.length === 0 || hinted.has(server)) return visible;
    if (checked.get(items) === policy.current) return visible;
    if (Object.isFrozen(items)) checked.set(items, policy.current);
    const names = items.map((item) => item.name).filter((name): name is string => typeof name === 'string');
    if (names.length === 0 || policy.undeclaredTools(server, names).length !== names.length) return visible;
    hinted.add(server);
    const sample = names.slice(0, 5);
    const fix = `declare them in servers.${server}.tools (each with its scopes, e.g. ${sample[0] ?? 'TOOL'}: { scopes: [] }) or draft a manifest: npx bastion manifest from-server --config bastion.yaml --server ${server}`;
    logger.warn({ server, tools: names.length, examples: sample, fix }, `server '${server}' offers ${names.length} tools and declares none of them, so every agent sees an empty list`);
    record('server.tools_undeclared', { server, tools: names.length, examples: sample, fix });
    return visible;
  };
}
