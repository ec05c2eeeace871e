import { copyFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { writeFileDurably } from '../storage/index.js';
import { CLIENT_FORMATS, CLIENT_IDS, type BastionEndpoint, type ClientFormat, type ClientId, type LocationEnv } from './formats.js';

/** A client config that cannot be merged without losing what is in it. */
export class ClientConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClientConfigError';
  }
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads a client config file. A missing or empty file is an empty config; anything that is not
 * one JSON object (comments, trailing commas, a list) is refused, because rewriting it would
 * drop what the user wrote.
 */
export function readClientConfig(path: string): JsonObject | undefined {
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, 'utf8');
  if (text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ClientConfigError(`${path} is not plain JSON (${(error as Error).message}); Bastion will not rewrite it and lose its comments: add the entry by hand (use --print)`);
  }
  if (!isObject(parsed)) throw new ClientConfigError(`${path} does not hold a JSON object; add the entry by hand (use --print)`);
  return parsed;
}

export interface SetupRequest {
  client: ClientId;
  scope: 'user' | 'project';
  env: LocationEnv;
  endpoint: BastionEndpoint;
  /** The server name the client shows (default bastion). */
  name: string;
  /** Only compute the result; write nothing. */
  dryRun: boolean;
}

export interface SetupResult {
  path: string;
  entry: JsonObject;
  /** The whole file as it is (or would be) written. */
  text: string;
  /** Where the previous file was copied, when there was one. */
  backup: string | undefined;
  /** Whether an entry of that name was already there (and is now replaced). */
  replaced: boolean;
}

export function configPath(format: ClientFormat, scope: 'user' | 'project', env: LocationEnv): string {
  const location = format.locations(env).find((candidate) => candidate.scope === scope);
  if (location === undefined) throw new ClientConfigError(`${format.title} has no ${scope}-scope config file; use --scope ${format.locations(env)[0]?.scope ?? 'user'}`);
  return location.path;
}

/** Adds (or replaces) Bastion's entry in the client's config, keeping everything else. */
export function setupClient(request: SetupRequest): SetupResult {
  const format = CLIENT_FORMATS[request.client];
  if (request.endpoint.transport === 'http' && !format.supportsHttp) throw new ClientConfigError(`${format.title} starts local commands only: use --transport stdio`);
  const path = configPath(format, request.scope, request.env);
  const existing = readClientConfig(path);
  const config: JsonObject = existing ?? {};
  const servers = config[format.container] ?? {};
  if (!isObject(servers)) throw new ClientConfigError(`${path}: '${format.container}' is not an object; fix it by hand first`);
  const entry = format.entry(request.endpoint);
  const replaced = Object.hasOwn(servers, request.name);
  const merged: JsonObject = { ...config, [format.container]: { ...servers, [request.name]: entry } };
  const text = `${JSON.stringify(merged, null, 2)}\n`;
  let backup: string | undefined;
  if (!request.dryRun) {
    if (existing !== undefined) {
      backup = `${path}.bak-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      copyFileSync(path, backup);
    }
    writeAtomically(path, text);
  }
  return { path, entry, text, backup, replaced };
}

/** Client configs may hold the user's other credentials: keep the old mode, or 0600 for a new file. */
function writeAtomically(path: string, text: string): void {
  writeFileDurably(path, text, existsSync(path) ? statSync(path).mode & 0o777 : 0o600);
}

export interface ClientListing {
  client: ClientId;
  title: string;
  scope: 'user' | 'project';
  path: string;
  state: 'configured' | 'not-configured' | 'no-file' | 'unreadable';
  /** What the Bastion entry points at (command or URL). */
  target: string | undefined;
}

/** Every known client config location and whether it has an entry called `name`. */
export function listClients(env: LocationEnv, name: string): ClientListing[] {
  const rows: ClientListing[] = [];
  for (const id of CLIENT_IDS) {
    const format = CLIENT_FORMATS[id];
    for (const location of format.locations(env)) {
      const row = { client: id, title: format.title, scope: location.scope, path: location.path };
      let config: JsonObject | undefined;
      try {
        config = readClientConfig(location.path);
      } catch {
        rows.push({ ...row, state: 'unreadable', target: undefined });
        continue;
      }
      const servers = config?.[format.container];
      const entry = isObject(servers) ? servers[name] : undefined;
      if (config === undefined) rows.push({ ...row, state: 'no-file', target: undefined });
      else if (!isObject(entry)) rows.push({ ...row, state: 'not-configured', target: undefined });
      else rows.push({ ...row, state: 'configured', target: describeEntry(entry) });
    }
  }
  return rows;
}

function describeEntry(entry: JsonObject): string {
  const url = entry['url'] ?? entry['serverUrl'];
  if (typeof url === 'string') return url;
  const args = Array.isArray(entry['args']) ? entry['args'].map(String) : [];
  return [String(entry['command'] ?? '?'), ...args].join(' ');
}
