/**
 * Names the client sees. Server names cannot contain '.' or '+' (the config schema forbids
 * them), so splitting at the first separator always recovers the server: two upstreams can
 * never produce the same public name.
 *   tools and prompts:   <server>.<name>          e.g. filesystem.read_file
 *   resources/templates: <server>+<original uri>   e.g. everything+test://static/resource/1
 */
export function publicName(server: string, name: string): string {
  return `${server}.${name}`;
}

export function splitName(value: unknown): { server: string; name: string } | undefined {
  if (typeof value !== 'string') return undefined;
  const dot = value.indexOf('.');
  if (dot <= 0 || dot === value.length - 1) return undefined;
  return { server: value.slice(0, dot), name: value.slice(dot + 1) };
}

export function publicUri(server: string, uri: string): string {
  return `${server}+${uri}`;
}

export function splitUri(value: unknown): { server: string; name: string } | undefined {
  if (typeof value !== 'string') return undefined;
  const plus = value.indexOf('+');
  if (plus <= 0 || plus === value.length - 1) return undefined;
  return { server: value.slice(0, plus), name: value.slice(plus + 1) };
}

/**
 * Rewrites resource URIs inside a result (embedded resources, resource links, read contents)
 * so that a client can read them back through the gateway.
 */
export function prefixResourceUris(server: string, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((item) => prefixResourceUris(server, item));
  if (value === null || typeof value !== 'object') return value;
  const record = value as Record<string, unknown>;
  let changed: Record<string, unknown> | undefined;
  for (const key of ['content', 'contents', 'messages', 'resource']) {
    const inner = record[key];
    if (inner !== undefined && typeof inner === 'object') {
      changed ??= { ...record };
      changed[key] = prefixResourceUris(server, inner);
    }
  }
  const type = record['type'];
  const isResourceLike = type === 'resource_link' || 'blob' in record || 'text' in record || 'mimeType' in record;
  if (isResourceLike && typeof record['uri'] === 'string' && type !== 'text') {
    changed ??= { ...record };
    changed['uri'] = publicUri(server, record['uri']);
  }
  return changed ?? record;
}
