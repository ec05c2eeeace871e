/**
 * Names the client sees. Server names cannot contain '.' or '+' (the config schema forbids
 * them), so splitting at the first separator always recovers the server: two upstreams can
 * never produce the same public name.
 *   tools and prompts:   <server>.<name>          e.g. filesystem.read_file
 *   resources/templates: <server>+<original uri>   e.g. everything+test://static/resource/1
 *
 * One server may be configured `namespaced: false` (for clients that call fixed names): its
 * names are shown as they are, and a name that does not start with another server's prefix
 * belongs to it. Its own names that do start with another server's prefix would be routed
 * there, so they are not shown at all (`shadowed`).
 */
export interface SplitName {
  server: string;
  name: string;
}

export class Namespace {
  private servers: ReadonlySet<string>;
  /** The server whose names are shown unprefixed, if any. */
  unprefixed: string | undefined;

  constructor(servers: Iterable<string>, unprefixed?: string) {
    this.servers = new Set(servers);
    this.unprefixed = unprefixed;
  }

  /** The configured servers changed (a config reload): names route by the new set from now on. */
  update(servers: Iterable<string>, unprefixed: string | undefined): void {
    this.servers = new Set(servers);
    this.unprefixed = unprefixed;
  }

  publicName(server: string, name: string): string {
    return server === this.unprefixed ? name : `${server}.${name}`;
  }

  publicUri(server: string, uri: string): string {
    return server === this.unprefixed ? uri : `${server}+${uri}`;
  }

  splitName(value: unknown): SplitName | undefined {
    return this.split(value, '.');
  }

  splitUri(value: unknown): SplitName | undefined {
    return this.split(value, '+');
  }

  /** True when one of the unprefixed server's own names would be routed to another server. */
  shadowed(server: string, value: string, separator: '.' | '+'): boolean {
    return server === this.unprefixed && this.split(value, separator)?.server !== server;
  }

  /**
   * Rewrites resource URIs inside a result (embedded resources, resource links, read contents)
   * so that a client can read them back through the gateway.
   */
  prefixResourceUris(server: string, value: unknown): unknown {
    if (server === this.unprefixed) return value;
    return prefixUris(server, value);
  }

  private split(value: unknown, separator: '.' | '+'): SplitName | undefined {
    if (typeof value !== 'string') return undefined;
    const at = value.indexOf(separator);
    if (at > 0 && at < value.length - 1) {
      const server = value.slice(0, at);
      if (this.servers.has(server) && server !== this.unprefixed) return { server, name: value.slice(at + 1) };
    }
    if (this.unprefixed !== undefined && value.length > 0) return { server: this.unprefixed, name: value };
    return at > 0 && at < value.length - 1 ? { server: value.slice(0, at), name: value.slice(at + 1) } : undefined;
  }
}

function prefixUris(server: string, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((item) => prefixUris(server, item));
  if (value === null || typeof value !== 'object') return value;
  const record = value as Record<string, unknown>;
  let changed: Record<string, unknown> | undefined;
  for (const key of ['content', 'contents', 'messages', 'resource']) {
    const inner = record[key];
    if (inner !== undefined && typeof inner === 'object') {
      changed ??= { ...record };
      changed[key] = prefixUris(server, inner);
    }
  }
  const type = record['type'];
  const isResourceLike = type === 'resource_link' || 'blob' in record || 'text' in record || 'mimeType' in record;
  if (isResourceLike && typeof record['uri'] === 'string' && type !== 'text') {
    changed ??= { ...record };
    changed['uri'] = `${server}+${record['uri']}`;
  }
  return changed ?? record;
}
