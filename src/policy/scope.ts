// The scope grammar ACTION:RESOURCE:TARGET. A scope denotes a set (of paths, destinations,
// names or URIs); "grant G covers scope S" means S is a subset of G. Grants and static
// declarations are parsed once at load; argument-bound declarations are parsed per call in
// `concrete` mode, where wildcards and lists are refused so an argument value cannot widen itself.
import { canonicalizeLexical, hasControlCharacter, pathCovers } from './path.js';

export type Action = 'read' | 'write' | 'exec';
export type ResourceKind = 'filesystem' | 'network' | 'tools' | 'prompts' | 'resources' | 'sampling' | 'elicitation' | 'roots' | 'logging';

/** Which actions make sense on which resource; anything else is a parse error. */
export const ACTIONS_BY_RESOURCE: Readonly<Record<ResourceKind, readonly Action[]>> = {
  filesystem: ['read', 'write'],
  network: ['read', 'write'],
  tools: ['exec'],
  prompts: ['exec'],
  resources: ['read'],
  sampling: ['exec'],
  elicitation: ['exec'],
  roots: ['read'],
  /** exec:logging:SERVERS: may set these servers' log level (logging/setLevel) for its session. */
  logging: ['exec'],
};

export const RESOURCE_KINDS = Object.keys(ACTIONS_BY_RESOURCE) as ResourceKind[];

export interface PathTarget { kind: 'path'; any: boolean; path: string }
export interface PortRange { lo: number; hi: number }
export type HostPattern = { type: 'any' } | { type: 'exact'; host: string } | { type: 'suffix'; suffix: string };
export interface NetworkTarget { kind: 'network'; host: HostPattern; ports: readonly PortRange[] | 'any' }
/** A name is `tool` (on any server), `server.tool` (split at the first dot) or `server.*`. */
export interface QualifiedName { server: string | undefined; name: string }
export interface NameTarget { kind: 'names'; any: boolean; names: readonly QualifiedName[] }
export interface UriTarget { kind: 'uri'; any: boolean; uri: string; prefix: boolean }
export type Target = PathTarget | NetworkTarget | NameTarget | UriTarget;

export interface Scope {
  readonly text: string;
  readonly action: Action;
  readonly resource: ResourceKind;
  readonly target: Target;
}

export type ParseMode = 'grant' | 'declared' | 'concrete';
export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

const ok = <T>(value: T): ParseResult<T> => ({ ok: true, value });
const err = <T>(error: string): ParseResult<T> => ({ ok: false, error });

/** Splits `ACTION:RESOURCE:TARGET`; the target may itself contain colons. */
export function splitScope(text: string): ParseResult<{ action: Action; resource: ResourceKind; target: string }> {
  const first = text.indexOf(':');
  const second = first < 0 ? -1 : text.indexOf(':', first + 1);
  if (first < 0 || second < 0) return err(`'${text}' is not ACTION:RESOURCE:TARGET (e.g. read:filesystem:/tmp/logs)`);
  const action = text.slice(0, first);
  const resource = text.slice(first + 1, second);
  const target = text.slice(second + 1);
  if (!(resource in ACTIONS_BY_RESOURCE)) return err(`unknown resource kind '${resource}' in '${text}' (known: ${RESOURCE_KINDS.join(', ')})`);
  const allowed = ACTIONS_BY_RESOURCE[resource as ResourceKind];
  if (!allowed.includes(action as Action)) return err(`action '${action}' does not apply to ${resource} in '${text}' (use ${allowed.join(' or ')})`);
  if (target.length === 0) return err(`'${text}' has an empty target`);
  return ok({ action: action as Action, resource: resource as ResourceKind, target });
}

/** Parses a complete scope with no argument bindings. */
export function parseScope(text: string, mode: ParseMode): ParseResult<Scope> {
  const parts = splitScope(text.trim());
  if (!parts.ok) return parts;
  if (parts.value.target.includes('${')) return err(`'${text}' binds an argument; only tool declarations may use \${...}`);
  const target = parseTarget(parts.value.resource, parts.value.target, mode);
  if (!target.ok) return err(`'${text}': ${target.error}`);
  return ok({ text: text.trim(), action: parts.value.action, resource: parts.value.resource, target: target.value });
}

export function parseTarget(resource: ResourceKind, raw: string, mode: ParseMode): ParseResult<Target> {
  switch (resource) {
    case 'filesystem':
      return parsePathTarget(raw, mode);
    case 'network':
      return parseNetworkTarget(raw, mode);
    case 'resources':
      return parseUriTarget(raw, mode);
    case 'tools':
    case 'prompts':
    case 'sampling':
    case 'elicitation':
    case 'roots':
    case 'logging':
      return parseNameTarget(raw, mode);
  }
}

function parsePathTarget(raw: string, mode: ParseMode): ParseResult<Target> {
  if (raw === '*' && mode !== 'concrete') return ok({ kind: 'path', any: true, path: '/' });
  const canonical = canonicalizeLexical(raw);
  if (!canonical.ok) return err(canonical.message);
  return ok({ kind: 'path', any: false, path: canonical.path });
}

// ---- names ------------------------------------------------------------------------------

const NAME = /^[A-Za-z0-9_\-.:/@]+$/;

function parseNameTarget(raw: string, mode: ParseMode): ParseResult<Target> {
  const text = raw.trim();
  if (text === '*') return mode === 'concrete' ? err("'*' is not a name") : ok({ kind: 'names', any: true, names: [] });
  const isList = text.startsWith('[');
  if (isList && mode === 'concrete') return err('a list is not a single name');
  if (isList && !text.endsWith(']')) return err(`unclosed list '${text}' (write [a, b])`);
  const items = isList ? text.slice(1, -1).split(',').map((item) => item.trim()) : [text];
  if (items.length === 0 || items.some((item) => item.length === 0)) return err(`empty name in '${text}'`);
  const names: QualifiedName[] = [];
  for (const item of items) {
    const name = parseName(item, mode);
    if (!name.ok) return name;
    names.push(name.value);
  }
  return ok({ kind: 'names', any: false, names });
}

function parseName(item: string, mode: ParseMode): ParseResult<QualifiedName> {
  if (item === '*') return err("'*' inside a list; write the scope target as * alone");
  const dot = item.indexOf('.');
  const server = dot < 0 ? undefined : item.slice(0, dot);
  const name = dot < 0 ? item : item.slice(dot + 1);
  if (name === '*' && server !== undefined && mode !== 'concrete') {
    if (!NAME.test(server)) return err(`invalid server name '${server}'`);
    return ok({ server, name });
  }
  if (!NAME.test(name) || (server !== undefined && (server.length === 0 || !NAME.test(server)))) {
    return err(`invalid name '${item}' (letters, digits and _ - . : / @; 'server.tool' names a tool of one server)`);
  }
  return ok({ server, name });
}

/** Does the single (server, name) fall in the granted set? */
export function nameCovered(granted: NameTarget, server: string, name: string): boolean {
  if (granted.any) return true;
  return granted.names.some((g) => (g.server === undefined || g.server === server) && (g.name === name || (g.name === '*' && g.server === server)));
}

function namesCover(granted: NameTarget, requested: NameTarget): boolean {
  if (granted.any) return true;
  if (requested.any) return false;
  return requested.names.every((r) =>
    granted.names.some((g) => {
      if (g.server !== undefined && g.server !== r.server) return false;
      if (g.server !== undefined && g.name === '*') return true;
      return g.name === r.name && r.name !== '*';
    }),
  );
}

// ---- network ----------------------------------------------------------------------------

const HOST_CHARS = /^[A-Za-z0-9.\-_]+$/;

/**
 * A plain DNS name needs no URL parser: non-empty labels, and a last label that the WHATWG
 * host parser would not read as an IPv4 number (all digits, or 0x...).
 */
function isPlainHostname(text: string): boolean {
  const labels = (text.endsWith('.') ? text.slice(0, -1) : text).split('.');
  const last = labels[labels.length - 1] ?? '';
  return labels.every((label) => label.length > 0) && !/^\d+$/.test(last) && !/^0x/i.test(last);
}

function parseNetworkTarget(raw: string, mode: ParseMode): ParseResult<Target> {
  const text = raw.trim();
  if (text === '*') return mode === 'concrete' ? err('a destination must name a host and port') : ok({ kind: 'network', host: { type: 'any' }, ports: 'any' });
  if (text.includes('://')) return parseUrlDestination(text);
  let hostText: string | undefined;
  let portText: string | undefined;
  if (text.startsWith('[') && !/^\[[\d\s,\-*]*\]$/.test(text)) {
    const close = text.indexOf(']');
    if (close < 0) return err(`unclosed IPv6 literal in '${text}'`);
    hostText = text.slice(0, close + 1);
    const rest = text.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) return err(`expected ':PORT' after ${hostText}`);
    portText = rest === '' ? undefined : rest.slice(1);
  } else if (/^[\d\s,\-[\]*]+$/.test(text) && text !== '*') {
    portText = text;
  } else {
    const colon = text.indexOf(':');
    hostText = colon < 0 ? text : text.slice(0, colon);
    portText = colon < 0 ? undefined : text.slice(colon + 1);
  }
  const host = hostText === undefined ? ok<HostPattern>({ type: 'any' }) : parseHost(hostText, mode);
  if (!host.ok) return host;
  if (mode === 'concrete' && (host.value.type !== 'exact' || portText === undefined)) return err(`'${text}' must name one host and one port`);
  const ports = portText === undefined ? ok<readonly PortRange[] | 'any'>('any') : parsePorts(portText, mode);
  if (!ports.ok) return ports;
  return ok({ kind: 'network', host: host.value, ports: ports.value });
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443, 'ws:': 80, 'wss:': 443, 'ftp:': 21 };

/** A bound `${url}` argument: the destination is the URL's host and (default) port. */
function parseUrlDestination(text: string): ParseResult<Target> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return err(`'${text}' is not a valid URL`);
  }
  const port = url.port === '' ? DEFAULT_PORTS[url.protocol] : Number(url.port);
  if (port === undefined) return err(`URL scheme ${url.protocol} has no default port; give the port explicitly`);
  // The WHATWG parser already lower-cased, punycoded and normalized numeric hosts.
  const host = url.hostname.replace(/\.$/, '');
  if (host.length === 0) return err(`'${text}' has no host`);
  return ok({ kind: 'network', host: { type: 'exact', host }, ports: [{ lo: port, hi: port }] });
}

function parseHost(text: string, mode: ParseMode): ParseResult<HostPattern> {
  if (text === '*') return mode === 'concrete' ? err('a host wildcard is not a host') : ok({ type: 'any' });
  if (text.startsWith('*.')) {
    if (mode === 'concrete') return err(`'${text}' is a wildcard, not a host`);
    const suffix = canonicalHost(text.slice(2));
    if (!suffix.ok) return suffix;
    return ok({ type: 'suffix', suffix: `.${suffix.value}` });
  }
  const host = canonicalHost(text);
  return host.ok ? ok({ type: 'exact', host: host.value }) : host;
}

/** Lower-case, punycode and the WHATWG number forms (127.1 -> 127.0.0.1) so spellings cannot dodge a rule. */
function canonicalHost(text: string): ParseResult<string> {
  const bracketed = text.startsWith('[') && text.endsWith(']');
  if (!bracketed && !HOST_CHARS.test(text)) return err(`invalid host '${text}' (write non-ASCII names in punycode)`);
  if (!bracketed && isPlainHostname(text)) return ok(text.toLowerCase().replace(/\.$/, ''));
  try {
    const host = new URL(`http://${text}/`).hostname.replace(/\.$/, '');
    if (host.length === 0) return err(`invalid host '${text}'`);
    return ok(host);
  } catch {
    return err(`invalid host '${text}'`);
  }
}

function parsePorts(text: string, mode: ParseMode): ParseResult<readonly PortRange[] | 'any'> {
  const trimmed = text.trim();
  if (trimmed === '*') return mode === 'concrete' ? err('a port wildcard is not a port') : ok('any');
  const isList = trimmed.startsWith('[') && trimmed.endsWith(']');
  const items = (isList ? trimmed.slice(1, -1) : trimmed).split(',').map((item) => item.trim());
  if (mode === 'concrete' && (isList || items.length !== 1 || items[0]?.includes('-'))) return err(`'${text}' must be one port`);
  const ranges: PortRange[] = [];
  for (const item of items) {
    const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(item);
    const lo = Number(match?.[1]);
    const hi = match?.[2] === undefined ? lo : Number(match[2]);
    if (match === null || lo < 1 || hi > 65535 || lo > hi) return err(`invalid port '${item}' (1-65535, a range 8000-8100, a list [80, 443] or *)`);
    ranges.push({ lo, hi });
  }
  return ok(mergeRanges(ranges));
}

function mergeRanges(ranges: PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) => a.lo - b.lo);
  const merged: PortRange[] = [];
  for (const range of sorted) {
    const last = merged[merged.length - 1];
    if (last !== undefined && range.lo <= last.hi + 1) last.hi = Math.max(last.hi, range.hi);
    else merged.push({ ...range });
  }
  return merged;
}

function hostCovers(granted: HostPattern, requested: HostPattern): boolean {
  if (granted.type === 'any') return true;
  if (requested.type === 'any') return false;
  if (granted.type === 'exact') return requested.type === 'exact' && requested.host === granted.host;
  if (requested.type === 'exact') return requested.host.endsWith(granted.suffix) && requested.host.length > granted.suffix.length;
  return requested.suffix.endsWith(granted.suffix);
}

function portsCover(granted: readonly PortRange[] | 'any', requested: readonly PortRange[] | 'any'): boolean {
  if (granted === 'any') return true;
  if (requested === 'any') return false;
  return requested.every((r) => granted.some((g) => g.lo <= r.lo && r.hi <= g.hi));
}

// ---- resources (URIs) -------------------------------------------------------------------

const URI_DOT_SEGMENT = /(^|\/)\.{1,2}(\/|$|[?#])/;
const URI_ENCODED_SEPARATOR = /%(2e|2f|5c|00)/i;

/**
 * `*`, an exact URI, or a prefix ending in `*`. file: URIs are decoded once and their path
 * canonicalized like any path; in other URIs, dot segments and encoded dots, slashes and
 * backslashes are refused because servers disagree on whether to decode them.
 */
function parseUriTarget(raw: string, mode: ParseMode): ParseResult<Target> {
  const text = raw.trim();
  if (text === '*') return mode === 'concrete' ? err("'*' is not a URI") : ok({ kind: 'uri', any: true, uri: '', prefix: true });
  const prefix = mode !== 'concrete' && text.endsWith('*');
  const body = prefix ? text.slice(0, -1) : text;
  if (hasControlCharacter(body, true)) return err('the URI contains whitespace or a control character');
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(body)) return err(`'${text}' is not an absolute URI (scheme:...)`);
  if (/^file:/i.test(body)) {
    const canonical = canonicalFileUri(body, prefix);
    return canonical.ok ? ok({ kind: 'uri', any: false, uri: canonical.value, prefix }) : canonical;
  }
  if (URI_DOT_SEGMENT.test(body.slice(body.indexOf(':') + 1))) return err(`'${text}' contains a '.' or '..' segment`);
  if (URI_ENCODED_SEPARATOR.test(body)) return err(`'${text}' contains an encoded dot, slash, backslash or NUL`);
  return ok({ kind: 'uri', any: false, uri: body, prefix });
}

function canonicalFileUri(body: string, prefix: boolean): ParseResult<string> {
  const match = /^file:\/\/(localhost)?(\/[^?#]*)$/i.exec(body);
  if (match === null) return err(`'${body}' is not a local file URI (file:///absolute/path, no query or fragment)`);
  let decoded: string;
  try {
    decoded = decodeURIComponent(match[2] as string);
  } catch {
    return err(`'${body}' has invalid percent-encoding`);
  }
  const canonical = canonicalizeLexical(decoded);
  if (!canonical.ok) return err(canonical.message);
  // A prefix like file:///docs/* keeps its trailing slash so it stays a directory prefix.
  const keepSlash = prefix && decoded.endsWith('/') && canonical.path !== '/';
  return ok(`file://${canonical.path}${keepSlash ? '/' : ''}`);
}

function urisCover(granted: UriTarget, requested: UriTarget): boolean {
  if (granted.any) return true;
  if (requested.any) return false;
  if (!granted.prefix) return !requested.prefix && requested.uri === granted.uri;
  return requested.uri.startsWith(granted.uri);
}

// ---- covers ------------------------------------------------------------------------------

/** True when every thing `requested` denotes is also denoted by `granted` (same action and resource). */
export function covers(granted: Scope, requested: Scope): boolean {
  if (granted.action !== requested.action || granted.resource !== requested.resource) return false;
  return targetCovers(granted.target, requested.target);
}

export function targetCovers(granted: Target, requested: Target): boolean {
  switch (granted.kind) {
    case 'path':
      if (requested.kind !== 'path') return false;
      return granted.any || (!requested.any && pathCovers(granted.path, requested.path));
    case 'network':
      return requested.kind === 'network' && hostCovers(granted.host, requested.host) && portsCover(granted.ports, requested.ports);
    case 'names':
      return requested.kind === 'names' && namesCover(granted, requested);
    case 'uri':
      return requested.kind === 'uri' && urisCover(granted, requested);
  }
}

/** The scope as text, with a canonical target (used in explanations and audit reasons). */
export function formatScope(action: Action, resource: ResourceKind, target: string): string {
  return `${action}:${resource}:${target}`;
}
