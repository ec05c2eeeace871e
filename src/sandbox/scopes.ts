// Turns a server's declared scopes into the sandbox's view: which paths it sees (read-only or
// read-write) and which network destinations the egress broker lets it reach. The same scope
// strings drive the gateway's per-call policy check, so the two enforcement points agree.
import { realpathSync, statSync } from 'node:fs';
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

/**
 * What one agent's policy lets it use, as far as a sandbox can enforce it: the directories it may
 * read and write (canonical; `/` for `*`) and a test for outbound destinations.
 */
export interface AgentSandboxGrants {
  readonly read: readonly string[];
  readonly write: readonly string[];
  /** May the agent connect to host:port? Host `*` asks for every host on that port. */
  mayConnect(host: string, port: number): boolean;
}

/** A sandbox view narrowed to an agent: scopes to bind, and declared directories left empty. */
export interface NarrowedScopes {
  scopes: string[];
  /** Declared directories none of whose contents the agent may use: they exist in the sandbox, empty (a server whose arguments name them still starts). */
  hidden: string[];
}

function within(parent: string, child: string): boolean {
  return parent === '/' || child === parent || child.startsWith(`${parent}/`);
}

function existingDirectoryOrFile(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined; // a grant on a path that does not exist binds nothing (yet)
  }
}

/** The parts of declared path `declared` the agent may use: the whole of it, or the granted paths below it. */
function narrowPath(declared: PathGrant, grants: AgentSandboxGrants): PathGrant[] {
  const writable = (path: string): boolean => declared.writable && grants.write.some((granted) => within(granted, path));
  const granted = [...grants.read, ...grants.write];
  if (granted.some((path) => within(path, declared.path))) return [{ path: declared.path, writable: writable(declared.path) }];
  const below = granted.filter((path) => path !== declared.path && within(declared.path, path)).map(existingDirectoryOrFile);
  return below
    // The real location must still lie below the declared path (a grant through a symlink that leads out binds nothing).
    .filter((path): path is string => path !== undefined && within(declared.path, path))
    .map((path) => ({ path, writable: writable(path) }));
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function formatEgress(grant: EgressGrant): string {
  if (grant.host === '*') return `write:network:${grant.port}`;
  return grant.host.includes(':') ? `write:network:[${grant.host}]:${grant.port}` : `write:network:${grant.host}:${grant.port}`;
}

/**
 * The intersection of what a server declares and what one agent is granted: the sandbox of a
 * process serving only that agent binds these and nothing else. A declared path is bound whole
 * when a grant covers it, else only the granted paths below it; it is writable only when both
 * sides say write. A declared destination is kept only when the agent may connect to it (a
 * port-only declaration only when the agent may reach every host on that port).
 */
export function narrowScopes(declared: readonly string[], grants: AgentSandboxGrants): NarrowedScopes {
  const view = sandboxViewFromScopes(declared);
  const paths = new Map<string, boolean>();
  const hidden: string[] = [];
  for (const path of view.paths) {
    const narrowed = narrowPath(path, grants);
    for (const part of narrowed) paths.set(part.path, (paths.get(part.path) ?? false) || part.writable);
    if (!narrowed.some((part) => part.path === path.path)) hidden.push(path.path);
  }
  const scopes = [...paths.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([path, writable]) => `${writable ? 'write' : 'read'}:filesystem:${path}`);
  for (const egress of view.egress) if (grants.mayConnect(egress.host, egress.port)) scopes.push(formatEgress(egress));
  return { scopes: [...new Set(scopes)], hidden: hidden.filter((path) => isDirectory(path) && !paths.has(path)) };
}

/** The grants of several agents at once: only what every one of them may use (a shared process serves them all). */
export function everyAgent(all: readonly AgentSandboxGrants[]): AgentSandboxGrants {
  const common = (pick: (grants: AgentSandboxGrants) => readonly string[]): string[] => {
    if (all.length === 0) return [];
    // A path is in every agent's set when each agent has a grant covering it; candidates are the agents' own paths.
    const candidates = [...new Set(all.flatMap(pick))];
    return candidates.filter((path) => all.every((grants) => pick(grants).some((granted) => within(granted, path))));
  };
  return {
    read: common((grants) => [...grants.read, ...grants.write]),
    write: common((grants) => grants.write),
    mayConnect: (host, port) => all.length > 0 && all.every((grants) => grants.mayConnect(host, port)),
  };
}
