// Turns a server's declared scopes into the sandbox's view: which paths it sees (read-only or
// read-write) and which network destinations the egress broker lets it reach. The same scope
// strings drive the gateway's per-call policy check, so the two enforcement points agree.
import { realpathSync } from 'node:fs';
import { isAbsolute } from 'node:path';

export interface PathGrant {
  path: string;
  writable: boolean;
}

/** A destination the broker allows: `host` is a name or literal IP (lower-case), `*` for any host. */
export interface EgressGrant {
  host: string;
  port: number;
}

export interface SandboxView {
  paths: PathGrant[];
  egress: EgressGrant[];
}

/** Canonical path of a scope: symlinks resolved so a bind cannot be redirected afterwards. */
function canonicalScopePath(scope: string, raw: string): string {
  if (!isAbsolute(raw)) throw new Error(`sandbox: scope "${scope}" needs an absolute path`);
  try {
    return realpathSync(raw);
  } catch (error) {
    throw new Error(`sandbox: scope "${scope}" names ${raw}, which does not exist (${(error as Error).message}); create it or remove the scope`, { cause: error });
  }
}

function parsePort(scope: string, raw: string): number {
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port < 1 || port > 65535) throw new Error(`sandbox: scope "${scope}" has an invalid port "${raw}" (expected 1-65535)`);
  return port;
}

/** `HOST:PORT`, `[v6]:PORT` or `PORT` (any host). */
function parseEgress(scope: string, target: string): EgressGrant {
  const bracketed = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(target);
  if (bracketed) return { host: (bracketed[1] as string).toLowerCase(), port: parsePort(scope, bracketed[2] as string) };
  const colon = target.lastIndexOf(':');
  if (colon < 0) return { host: '*', port: parsePort(scope, target) };
  const host = target.slice(0, colon).toLowerCase();
  if (!/^[a-z0-9.*-]+$/.test(host)) throw new Error(`sandbox: scope "${scope}" has an invalid host "${host}"`);
  return { host, port: parsePort(scope, target.slice(colon + 1)) };
}

/**
 * Scopes that do not concern the sandbox (e.g. `exec:tools:[...]`) are ignored here; they are
 * the gateway's business. A write grant on a path wins over a read grant on the same path.
 */
export function sandboxViewFromScopes(scopes: readonly string[]): SandboxView {
  const paths = new Map<string, boolean>();
  const egress: EgressGrant[] = [];
  for (const scope of scopes) {
    const match = /^(read|write):(filesystem|network):(.+)$/.exec(scope);
    if (!match) continue;
    const [, access, resource, target] = match as unknown as [string, string, string, string];
    if (resource === 'filesystem') {
      const path = canonicalScopePath(scope, target);
      paths.set(path, (paths.get(path) ?? false) || access === 'write');
    } else if (access === 'write') {
      egress.push(parseEgress(scope, target));
    }
  }
  const sorted = [...paths.entries()].sort(([a], [b]) => a.length - b.length || a.localeCompare(b));
  return { paths: sorted.map(([path, writable]) => ({ path, writable })), egress };
}

export function egressAllowed(grants: readonly EgressGrant[], host: string, port: number): boolean {
  const wanted = host.toLowerCase().replace(/^\[|\]$/g, '');
  return grants.some((grant) => grant.port === port && (grant.host === '*' || grant.host === wanted));
}
