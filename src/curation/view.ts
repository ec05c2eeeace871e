// One agent's view of one server's tools: which are hidden, what they are called, and which
// title and description replace the upstream's. The gateway applies it between the hash lock
// (which sees the upstream's own definitions) and the definition scanner (which sees what the
// client will see), and maps names back when a call comes in.
import { createHash } from 'node:crypto';
import type { Definition, DefinitionView, ListKind } from '../gateway/catalog.js';
import { CURATION_FIELDS, type CuratedServerConfig, type ToolCurationConfig } from './config.js';

/** Told once per view and tool when an entry names a tool the server does not list. */
export type UnknownToolWarning = (server: string, agent: string | undefined, tool: string) => void;

export class CurationView implements DefinitionView {
  readonly key: string;
  /** Client-side name -> upstream name, for renamed tools. */
  private readonly renamed = new Map<string, string>();
  private readonly warned = new Set<string>();

  constructor(
    readonly server: string,
    readonly agent: string | undefined,
    /** Effective entries by upstream tool name (agent fields already merged over the server's). */
    private readonly tools: ReadonlyMap<string, ToolCurationConfig>,
    private readonly onUnknown: UnknownToolWarning = () => undefined,
  ) {
    for (const [name, entry] of tools) if (entry.hidden !== true && entry.rename !== undefined) this.renamed.set(entry.rename, name);
    const canonical = [...tools.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    this.key = createHash('sha256').update(JSON.stringify(canonical)).digest('base64url').slice(0, 22);
  }

  get empty(): boolean {
    return this.tools.size === 0;
  }

  apply(kind: ListKind, items: Definition[]): Definition[] {
    if (kind !== 'tools' || this.tools.size === 0) return items;
    this.warnUnknown(items);
    const shown: Definition[] = [];
    for (const item of items) {
      const entry = typeof item.name === 'string' ? this.tools.get(item.name) : undefined;
      if (entry?.hidden === true) continue;
      shown.push(entry === undefined ? item : overridden(item, entry));
    }
    return shown;
  }

  hides(kind: ListKind, name: string): boolean {
    return kind === 'tools' && this.tools.get(name)?.hidden === true;
  }

  publicName(kind: ListKind, name: string): string | undefined {
    if (kind !== 'tools') return name;
    const entry = this.tools.get(name);
    if (entry?.hidden === true) return undefined;
    if (entry?.rename !== undefined) return entry.rename;
    // Another tool was renamed to this one's name: the operator's rename wins, this one is not shown.
    return this.renamed.has(name) ? undefined : name;
  }

  upstreamName(kind: ListKind, name: string): string | undefined {
    if (kind !== 'tools') return name;
    const target = this.renamed.get(name);
    if (target !== undefined) return target;
    const entry = this.tools.get(name);
    // A renamed tool answers to its new name only; a hidden one to none.
    if (entry?.hidden === true || entry?.rename !== undefined) return undefined;
    return name;
  }

  private warnUnknown(items: readonly Definition[]): void {
    const listed = new Set(items.map((item) => item.name));
    for (const name of this.tools.keys()) {
      if (listed.has(name) || this.warned.has(name)) continue;
      this.warned.add(name);
      this.onUnknown(this.server, this.agent, name);
    }
  }
}

/** The definition with the operator's title and description in place of the upstream's. */
function overridden(item: Definition, entry: ToolCurationConfig): Definition {
  const out: Definition = { ...item };
  if (entry.description !== undefined) out['description'] = entry.description;
  if (entry.title !== undefined) {
    out['title'] = entry.title;
    // annotations.title is shown by some clients: the upstream's must not survive beside the override.
    const annotations = item['annotations'];
    if (annotations !== null && typeof annotations === 'object' && !Array.isArray(annotations) && 'title' in annotations) out['annotations'] = { ...(annotations as Record<string, unknown>), title: entry.title };
  }
  return out;
}

function curationOf(entry: ToolCurationConfig | undefined): ToolCurationConfig {
  const picked: ToolCurationConfig = {};
  if (entry === undefined) return picked;
  for (const field of CURATION_FIELDS) if (entry[field] !== undefined) (picked as Record<string, unknown>)[field] = entry[field];
  return picked;
}

/** Each tool's entry for one agent: the agent's fields over the server's, field by field. */
export function effectiveCuration(server: CuratedServerConfig, agent: string | undefined): Map<string, ToolCurationConfig> {
  const own = agent === undefined ? undefined : server.agents?.[agent]?.tools;
  const names = new Set([...Object.keys(server.tools ?? {}), ...Object.keys(own ?? {})]);
  const effective = new Map<string, ToolCurationConfig>();
  for (const name of names) {
    const merged = { ...curationOf(server.tools?.[name]), ...curationOf(own?.[name]) };
    if (Object.keys(merged).length > 0) effective.set(name, merged);
  }
  return effective;
}

/** Finds a session's view of a server; undefined when nothing is curated. */
export type CurationSource = (server: string, agent: string | undefined) => DefinitionView | undefined;

/** Views from the servers' config, one per server and (when it has its own entries) per agent. */
export function curationFromConfig(servers: Readonly<Record<string, CuratedServerConfig>>, onUnknown?: UnknownToolWarning): CurationSource {
  const views = new Map<string, CurationView | undefined>();
  return (server, agent) => {
    const config = servers[server];
    if (config === undefined) return undefined;
    const own = agent !== undefined && config.agents?.[agent] !== undefined ? agent : undefined;
    const key = `${server}\u0000${own ?? ''}`;
    if (!views.has(key)) {
      const effective = effectiveCuration(config, own);
      views.set(key, effective.size === 0 ? undefined : new CurationView(server, own, effective, onUnknown));
    }
    return views.get(key);
  };
}
