// What a config reload changes: a structural comparison of the running config with the new one.
// The reload (src/app/reload.ts) applies the parts listed as live and keeps every other changed
// part as it was, naming it restart_required, so an operator knows what a restart would still do.
import { CURATION_FIELDS } from '../curation/config.js';
import type { BastionConfig, ServerConfig } from './types.js';

export interface ServerChanges {
  /** In the new config only: started (offered to existing and new sessions). */
  added: string[];
  /** In the old config only: drained and stopped. */
  removed: string[];
  /** A field other than curation differs: drained and started again with the new definition. */
  changed: string[];
  /** Only curation (servers.X.tools.T.{rename,title,description,hidden}, servers.X.agents) differs: applied without a restart. */
  curated: string[];
  /** For each changed or curated server, the top-level fields of its definition that differ. */
  fields: Record<string, string[]>;
}

export interface ConfigDiff {
  servers: ServerChanges;
  /** Sections other than `servers` that differ, as dotted paths (auth and quotas by their parts). */
  sections: string[];
  /** Of `sections`, the ones a reload applies live. */
  live: string[];
  /** Of `sections`, the ones kept as they were until a restart. */
  restartRequired: string[];
  /** True when nothing at all differs. */
  empty: boolean;
}

/**
 * Sections a reload applies to the running gateway. Everything else (listeners, audit, sandbox,
 * integrity, policy inputs, stateDir, ...) is bound into objects built once at boot: a live
 * change there would be half-applied, so it waits for a restart.
 */
export const LIVE_SECTIONS: ReadonlySet<string> = new Set([
  'auth.apiTokens',
  'limits',
  'quotas.rates',
  'quotas.cpuBudgets',
  'quotas.concurrency',
  'quotas.chain',
  'quotas.breakers',
  'reload',
]);

/** Sections compared by their children, because some children are live and some are not. */
const SPLIT_SECTIONS: ReadonlySet<string> = new Set(['auth', 'quotas']);

/** Compares two validated configs. Pure: neither is changed. */
export function diffConfig(before: BastionConfig, after: BastionConfig): ConfigDiff {
  const servers = diffServers(before.servers, after.servers);
  const sections = diffSections(before as unknown as Record<string, unknown>, after as unknown as Record<string, unknown>);
  const live = sections.filter((section) => LIVE_SECTIONS.has(section));
  const restartRequired = sections.filter((section) => !LIVE_SECTIONS.has(section));
  const serversEmpty = servers.added.length + servers.removed.length + servers.changed.length + servers.curated.length === 0;
  return { servers, sections, live, restartRequired, empty: serversEmpty && sections.length === 0 };
}

export function diffServers(before: Record<string, ServerConfig>, after: Record<string, ServerConfig>): ServerChanges {
  const changes: ServerChanges = { added: [], removed: [], changed: [], curated: [], fields: {} };
  for (const name of Object.keys(after)) if (!Object.hasOwn(before, name)) changes.added.push(name);
  for (const [name, old] of Object.entries(before)) {
    if (!Object.hasOwn(after, name)) {
      changes.removed.push(name);
      continue;
    }
    const now = after[name] as ServerConfig;
    if (same(old, now)) continue;
    changes.fields[name] = changedKeys(old as unknown as Record<string, unknown>, now as unknown as Record<string, unknown>);
    (same(withoutCuration(old), withoutCuration(now)) ? changes.curated : changes.changed).push(name);
  }
  return changes;
}

function diffSections(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const sections: string[] = [];
  for (const key of changedKeys(before, after)) {
    if (key === 'servers') continue;
    const old = before[key];
    const now = after[key];
    if (SPLIT_SECTIONS.has(key) && isRecord(old) && isRecord(now)) sections.push(...changedKeys(old, now).map((child) => `${key}.${child}`));
    else sections.push(key);
  }
  return sections;
}

/** The keys whose values differ (present on one side only counts), in a stable order. */
function changedKeys(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return keys.filter((key) => !same(before[key], after[key]));
}

/** A server's definition with every curation field removed (what a curation-only edit leaves equal). */
function withoutCuration(server: ServerConfig): Record<string, unknown> {
  const { agents: _agents, tools, ...rest } = server;
  if (tools === undefined) return rest;
  const stripped: Record<string, unknown> = {};
  for (const [tool, config] of Object.entries(tools)) {
    const kept = Object.fromEntries(Object.entries(config).filter(([field]) => !(CURATION_FIELDS as readonly string[]).includes(field)));
    if (Object.keys(kept).length > 0) stripped[tool] = kept;
  }
  return Object.keys(stripped).length === 0 ? rest : { ...rest, tools: stripped };
}

function same(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

/** JSON with object keys sorted, so that key order in the file is not a change. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isRecord(value)) return `{${Object.keys(value).sort().filter((key) => value[key] !== undefined).map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`).join(',')}}`;
  return value === undefined ? 'null' : JSON.stringify(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
