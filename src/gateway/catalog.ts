import { deepFreeze, shareResult, type Identity } from '../pipeline/index.js';
import type { Logger } from '../observability/index.js';
import type { Namespace } from './namespace.js';
import type { UpstreamConnection } from './upstream/connection.js';

export type ListKind = 'tools' | 'prompts' | 'resources' | 'resourceTemplates';

const LIST_METHOD: Record<ListKind, string> = {
  tools: 'tools/list',
  prompts: 'prompts/list',
  resources: 'resources/list',
  resourceTemplates: 'resources/templates/list',
};

const CAPABILITY: Record<ListKind, string> = { tools: 'tools', prompts: 'prompts', resources: 'resources', resourceTemplates: 'resources' };

/** An item from an upstream list, as the upstream defined it. */
export type Definition = Record<string, unknown> & { name?: string };

/**
 * Decides which of a server's definitions a caller may see. Policy (least privilege) and the
 * hash lock (quarantine) plug in here, so a tool that is denied or quarantined never appears.
 */
export type ListFilter = (identity: Identity | undefined, server: string, kind: ListKind, items: Definition[]) => Definition[];

/** One server's definitions after inspection: what may be shown, and what is held back and why. */
export interface InspectedDefinitions {
  published: Definition[];
  /** Name (or URI) -> why it is quarantined: hidden from lists and denied when called. */
  quarantined: Map<string, string>;
}

/**
 * How one session's agent sees one server's definitions (operator curation, src/curation): some
 * hidden, some renamed, some with the operator's title and description. An inspector applies it
 * after the hash lock (which compares the upstream's own definitions) and before the scanner
 * (which reads what the client will read).
 */
export interface DefinitionView {
  /** Changes whenever what the view does changes; part of every cache key. */
  readonly key: string;
  /** The items as shown: hidden ones removed, overrides applied, upstream names kept. */
  apply(kind: ListKind, items: Definition[]): Definition[];
  /** True when the item (by upstream name) is not shown at all: it is unknown to the client, not quarantined. */
  hides(kind: ListKind, name: string): boolean;
  /** The client-side own name of an upstream item; undefined when it is not shown. */
  publicName(kind: ListKind, name: string): string | undefined;
  /** The upstream name a client-side own name stands for; undefined when it stands for nothing. */
  upstreamName(kind: ListKind, name: string): string | undefined;
}

/**
 * Looks at a server's definitions each time they are fetched (at start, and after every
 * list_changed). The hash lock plugs in here to quarantine tools that changed since approval.
 */
export type DefinitionInspector = ((server: string, kind: ListKind, items: Definition[], view?: DefinitionView) => InspectedDefinitions) & {
  /** Inspects a server's `initialize` instructions: the text to pass on (possibly cleaned), or undefined to withhold it. */
  instructions?: (server: string, text: string) => string | undefined;
  /** Drops what is kept per server (a server removed or redefined by a config reload). */
  forget?: (server: string) => void;
};

export const publishEverything: DefinitionInspector = (_server, kind, items, view) => ({ published: view === undefined ? items : view.apply(kind, items), quarantined: new Map() });

interface CachedList {
  entry: Promise<InspectedDefinitions>;
  /** What `entry` resolved with, once it has: lets a call find its tool without a promise. */
  value?: InspectedDefinitions;
  fetchedAt: number;
}

/** The tool a call names, or why there is none to call (`Catalog.tool`). */
export type ToolLookup = { tool: Definition; upstreamName: string } | { quarantined: string } | undefined;

/** `Catalog.toolNow`: the list is not fetched (or not fresh) yet, so only `tool()` can answer. */
export const NOT_CACHED: unique symbol = Symbol('not cached');

/**
 * Raw lists per upstream connection, shared by every session's catalog that uses the connection
 * (all the sessions on a pooled process): a new session on a warm pool lists without asking the
 * upstream. The items are frozen, so the work after them (inspection, the agent's policy filter,
 * renaming, merging, the JSON of the answer) is cached by their identity and done once per
 * distinct input rather than per session; policy still decides per agent and policy version.
 * A new process is a new connection, so a restart starts empty; list_changed empties it
 * (forgetSharedLists) and a periodic re-list replaces it.
 */
const sharedLists = new WeakMap<UpstreamConnection, Map<ListKind, { items: Promise<Definition[]>; fetchedAt: number }>>();

/** The upstream said a list changed: the next use by any session fetches it again. */
export function forgetSharedLists(connection: UpstreamConnection, kinds: readonly ListKind[]): void {
  const lists = sharedLists.get(connection);
  for (const kind of kinds) lists?.delete(kind);
}

const NOTHING: Definition[] = shareResult<Definition[]>([]);

/** Presented (renamed, frozen) copies of each visible list, per server, kind, view and namespace. */
const presentedLists = new WeakMap<Definition[], Map<string, Definition[]>>();

/**
 * The merged list of a kind across servers, one frozen array per distinct combination of the
 * servers' presented lists (by identity), so that every session seeing the same tools gets the
 * same array and its JSON is written once. Bounded: the oldest combination goes first.
 */
class MergedLists {
  private readonly ids = new WeakMap<object, number>();
  private nextId = 0;
  private readonly merged = new Map<string, Definition[]>();

  constructor(private readonly capacity: number) {}

  get(kind: ListKind, perServer: ReadonlyArray<Definition[]>): Definition[] {
    const key = `${kind}:${perServer.map((list) => this.idOf(list)).join(',')}`;
    const known = this.merged.get(key);
    if (known !== undefined) return known;
    const merged = shareResult(perServer.flat());
    if (this.merged.size >= this.capacity) this.merged.delete(this.merged.keys().next().value as string);
    this.merged.set(key, merged);
    return merged;
  }

  private idOf(list: object): number {
    let id = this.ids.get(list);
    if (id === undefined) this.ids.set(list, (id = this.nextId++));
    return id;
  }
}

// A few hundred distinct views (agents with their own grants or curation) before the oldest is
// built again; each entry holds one merged list and its JSON texts.
const mergedLists = new MergedLists(256);

/** Most pages fetched from one upstream for one list, so a server cannot loop the gateway forever. */
const MAX_UPSTREAM_PAGES = 100;

/**
 * Every list of every upstream of one session, fetched on demand and cached until list_changed,
 * a reconnect, or until it is older than `relistMs` (then fetched again before it is used, so a
 * server that changes a definition without announcing it is caught on the next call).
 */
export class Catalog {
  private readonly cache = new Map<string, CachedList>();

  constructor(
    private readonly logger: Logger,
    private readonly requestTimeoutMs: number,
    private readonly maxBytes: number,
    private readonly names: Namespace,
    private readonly inspect: DefinitionInspector = publishEverything,
    /** Age after which a cached list is fetched again; 0: every time it is used. */
    private readonly relistMs: number = Number.POSITIVE_INFINITY,
    private readonly now: () => number = Date.now,
    /** This session's curation of a server (src/curation), if any. */
    private readonly viewFor: (server: string) => DefinitionView | undefined = () => undefined,
  ) {}

  /** The lists this session has fetched, as [server, kind] pairs (what a periodic re-list refreshes). */
  cachedLists(): Array<[string, ListKind]> {
    return [...this.cache.keys()].map((key) => key.split('\u0000').slice(0, 2) as [string, ListKind]);
  }

  /**
   * Fetches a list again now. Resolves true when what is published or refused changed, so the
   * caller can tell the client (notifications/KIND/list_changed).
   */
  async refresh(server: string, connection: UpstreamConnection, kind: ListKind): Promise<boolean> {
    const key = this.cacheKey(server, kind);
    const before = await this.cache.get(key)?.entry.catch(() => undefined);
    this.cache.delete(key);
    forgetSharedLists(connection, [kind]);
    const after = await this.inspected(server, connection, kind);
    return before === undefined || fingerprint(before) !== fingerprint(after);
  }

  invalidate(server: string, kind?: ListKind): void {
    for (const key of [...this.cache.keys()]) {
      const [keyServer, keyKind] = key.split('\u0000');
      if (keyServer === server && (kind === undefined || keyKind === kind)) this.cache.delete(key);
    }
  }

  /** The server's own definitions (un-namespaced, all pages), as inspected. */
  inspected(server: string, connection: UpstreamConnection, kind: ListKind): Promise<InspectedDefinitions> {
    const key = this.cacheKey(server, kind);
    const now = this.now();
    const cached = this.freshEntry(key, now);
    if (cached !== undefined) return cached.entry;
    const view = this.viewFor(server);
    const entry = this.sharedFetch(connection, kind, now).then((items) => this.inspect(server, kind, items, view));
    const fresh: CachedList = { entry, fetchedAt: now };
    this.cache.set(key, fresh);
    entry.then(
      (value) => {
        fresh.value = value;
      },
      () => {
        if (this.cache.get(key) === fresh) this.cache.delete(key);
      },
    );
    return entry;
  }

  /** The cached list under `key` if it may still be used at `now` (the same rule for `inspected` and `toolNow`). */
  private freshEntry(key: string, now: number): CachedList | undefined {
    const cached = this.cache.get(key);
    if (cached !== undefined && (this.relistMs === Number.POSITIVE_INFINITY || now - cached.fetchedAt < this.relistMs || (this.relistMs === 0 && cached.fetchedAt === now))) return cached;
    return undefined;
  }

  async definitions(server: string, connection: UpstreamConnection, kind: ListKind): Promise<Definition[]> {
    return (await this.inspected(server, connection, kind)).published;
  }

  /**
   * One published tool's definition by the name the client uses (after curation), with the
   * upstream's own name for it, or why there is none to call.
   */
  async tool(server: string, connection: UpstreamConnection, name: string): Promise<ToolLookup> {
    const view = this.viewFor(server);
    const upstreamName = view === undefined ? name : view.upstreamName('tools', name);
    if (upstreamName === undefined) return undefined;
    return lookupTool(await this.inspected(server, connection, 'tools'), upstreamName);
  }

  /**
   * What `tool()` would resolve with, when the server's list is cached, fresh and fetched:
   * the same answer without a promise. NOT_CACHED otherwise (the caller then calls `tool()`).
   */
  toolNow(server: string, name: string): ToolLookup | typeof NOT_CACHED {
    const view = this.viewFor(server);
    const upstreamName = view === undefined ? name : view.upstreamName('tools', name);
    if (upstreamName === undefined) return undefined;
    const value = this.freshEntry(this.cacheKey(server, 'tools'), this.now())?.value;
    return value === undefined ? NOT_CACHED : lookupTool(value, upstreamName);
  }

  /** Cached per view too: a session whose owner has its own curation never shares another's entry. */
  private cacheKey(server: string, kind: ListKind): string {
    return `${server}\u0000${kind}\u0000${this.viewFor(server)?.key ?? ''}`;
  }

  /** The namespaced, filtered list across servers, in configuration order. */
  async merged(kind: ListKind, connections: ReadonlyArray<[string, UpstreamConnection | undefined]>, identity: Identity | undefined, filter: ListFilter): Promise<Definition[]> {
    const perServer = await Promise.all(
      connections.map(async ([server, connection]) => {
        if (connection === undefined || !hasCapability(connection, kind)) return NOTHING;
        try {
          const visible = filter(identity, server, kind, await this.definitions(server, connection, kind));
          return this.presented(server, kind, visible, this.viewFor(server));
        } catch (error) {
          this.logger.warn({ server, kind, err: error instanceof Error ? error.message : String(error) }, 'list from upstream failed; omitted');
          return NOTHING;
        }
      }),
    );
    return mergedLists.get(kind, perServer);
  }

  /**
   * A server's visible items under their public names. The same visible list (the same object:
   * inspection and policy filtering are cached) gives the same presented list, so sessions that
   * see the same tools share one frozen copy instead of renaming every item each time.
   */
  private presented(server: string, kind: ListKind, visible: Definition[], view: DefinitionView | undefined): Definition[] {
    const key = `${server}\u0000${kind}\u0000${view?.key ?? ''}\u0000${this.names.key}`;
    let byKey = presentedLists.get(visible);
    if (byKey === undefined) presentedLists.set(visible, (byKey = new Map()));
    let presented = byKey.get(key);
    if (presented === undefined) {
      presented = shareResult(visible.flatMap((item) => this.present(server, kind, item, view)));
      byKey.set(key, presented);
    }
    return presented;
  }

  /** The item under its public name; nothing when that name would route to another server. */
  private present(server: string, kind: ListKind, item: Definition, view: DefinitionView | undefined): Definition[] {
    const { names } = this;
    const [field, separator] = kind === 'tools' || kind === 'prompts' ? (['name', '.'] as const) : kind === 'resources' ? (['uri', '+'] as const) : (['uriTemplate', '+'] as const);
    const own = view === undefined ? String(item[field]) : view.publicName(kind, String(item[field]));
    if (own === undefined) {
      this.logger.warn({ server, kind, name: item[field] }, 'not listed: a curation rename gave another tool of this server this name');
      return [];
    }
    if (names.shadowed(server, own, separator)) {
      this.logger.warn({ server, kind, name: own }, 'not listed: the name starts with another server\'s prefix, so calls to it would reach that server');
      return [];
    }
    return [{ ...item, [field]: separator === '.' ? names.publicName(server, own) : names.publicUri(server, own) }];
  }

  /** The connection's raw list, fetched once for every catalog using it while younger than relistMs. */
  private sharedFetch(connection: UpstreamConnection, kind: ListKind, now: number): Promise<Definition[]> {
    let lists = sharedLists.get(connection);
    if (lists === undefined) {
      lists = new Map();
      sharedLists.set(connection, lists);
    }
    const shared = lists.get(kind);
    if (shared !== undefined && this.relistMs > 0 && now - shared.fetchedAt < this.relistMs) return shared.items;
    // Frozen: every session on the connection reads these very objects (and caches keyed by them).
    const items = this.fetchAll(connection, kind).then((fetched) => {
      deepFreeze(fetched);
      return fetched;
    });
    const entry = { items, fetchedAt: now };
    lists.set(kind, entry);
    const owned = lists;
    items.catch(() => {
      if (owned.get(kind) === entry) owned.delete(kind);
    });
    return items;
  }

  private async fetchAll(connection: UpstreamConnection, kind: ListKind): Promise<Definition[]> {
    const items: Definition[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_UPSTREAM_PAGES; page += 1) {
      const reply = await connection.request(LIST_METHOD[kind], cursor === undefined ? undefined : { cursor }, { timeoutMs: this.requestTimeoutMs, maxOutputBytes: this.maxBytes });
      if (!reply.ok) throw new Error(reply.error?.message ?? `${LIST_METHOD[kind]} failed`);
      const result = (reply.result ?? {}) as Record<string, unknown>;
      const pageItems = result[kind];
      if (Array.isArray(pageItems)) items.push(...(pageItems.filter((item) => item !== null && typeof item === 'object') as Definition[]));
      cursor = typeof result['nextCursor'] === 'string' ? result['nextCursor'] : undefined;
      if (cursor === undefined) return items;
    }
    throw new Error(`${LIST_METHOD[kind]} returned more than ${MAX_UPSTREAM_PAGES} pages`);
  }
}

/** What a list shows and refuses, to tell whether a re-list changed anything. */
function fingerprint(inspected: InspectedDefinitions): string {
  return JSON.stringify([inspected.published, [...inspected.quarantined.entries()].sort()]);
}

function hasCapability(connection: UpstreamConnection, kind: ListKind): boolean {
  return connection.identity?.capabilities[CAPABILITY[kind]] !== undefined;
}

/** Items per downstream list page. */
const PAGE_SIZE = 200;

/** Page results of each merged list by offset (only offsets at page boundaries: a client cannot grow it). */
const pages = new WeakMap<Definition[], Map<number, Record<string, unknown>>>();

/**
 * One page of a merged list as the client gets it. For a shared (frozen) merged list the page is
 * shared too: the same object for every session, so its JSON is written once.
 */
export function listPage(kind: ListKind, items: Definition[], offset: number): Record<string, unknown> {
  const cacheable = offset % PAGE_SIZE === 0 && offset <= items.length && Object.isFrozen(items);
  const cached = cacheable ? pages.get(items)?.get(offset) : undefined;
  if (cached !== undefined) return cached;
  const result: Record<string, unknown> = { [kind]: items.slice(offset, offset + PAGE_SIZE) };
  if (offset + PAGE_SIZE < items.length) result['nextCursor'] = encodeCursor(kind, offset + PAGE_SIZE);
  if (!cacheable) return result;
  let byOffset = pages.get(items);
  if (byOffset === undefined) pages.set(items, (byOffset = new Map()));
  byOffset.set(offset, shareResult(result));
  return result;
}

/** Opaque downstream cursors: the offset into the merged list, bound to the list kind. */
export function encodeCursor(kind: ListKind, offset: number): string {
  return Buffer.from(JSON.stringify({ k: kind, o: offset })).toString('base64url');
}

export function decodeCursor(kind: ListKind, cursor: unknown): number | undefined {
  if (cursor === undefined) return 0;
  if (typeof cursor !== 'string') return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { k?: unknown; o?: unknown };
    return parsed.k === kind && typeof parsed.o === 'number' && Number.isInteger(parsed.o) && parsed.o >= 0 ? parsed.o : undefined;
  } catch {
    return undefined;
  }
}

function lookupTool({ published, quarantined }: InspectedDefinitions, upstreamName: string): ToolLookup {
  const reason = quarantined.get(upstreamName);
  if (reason !== undefined) return { quarantined: reason };
  const tool = published.find((item) => item.name === upstreamName);
  return tool === undefined ? undefined : { tool, upstreamName };
}
