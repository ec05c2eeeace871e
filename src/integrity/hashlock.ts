// tool_hashlock.json: what an operator approved for each server (manifest digest, artifact digest
// and every tool, prompt and resource-template definition). Live definitions are compared with it
// at start and on every list; anything changed, added or removed is quarantined, never approved
// automatically.
import { readFileSync } from 'node:fs';
import { writeFileDurably } from '../storage/index.js';
import { canonicalJson, DEFAULT_DIGEST_ALGORITHM, digestBytes, digestJson, digestsEqual, parseDigest, type DigestAlgorithm } from './digest.js';
import type { ArtifactDigest } from './artifact.js';
import type { Manifest } from './manifest.js';

export type DefinitionKind = 'tools' | 'prompts' | 'resourceTemplates';
export const DEFINITION_KINDS: readonly DefinitionKind[] = ['tools', 'prompts', 'resourceTemplates'];

/** A definition as a server lists it (a tool, prompt or resource template). */
export type Definition = Record<string, unknown>;

export interface LiveDefinitions {
  tools: Definition[];
  prompts: Definition[];
  resourceTemplates: Definition[];
  /** The server's `initialize` instructions, when it sends any. */
  instructions?: string;
}

export interface LockedDefinition {
  digest: string;
  /** The hashed subset itself, kept so a diff can show what changed and a reviewer can read it. */
  definition: Definition;
}

export interface LockEntry {
  /** Digest of the manifest without its proof, when the server has one. */
  manifest?: string;
  artifact?: ArtifactDigest;
  tools: Record<string, LockedDefinition>;
  prompts: Record<string, LockedDefinition>;
  resourceTemplates: Record<string, LockedDefinition>;
  /** The server's `initialize` instructions (`definition: { instructions }`), pinned like a definition. */
  instructions?: LockedDefinition;
  /**
   * The operator's curation of this server (renames, title and description overrides, hidden
   * tools; src/curation), pinned apart from the upstream definitions: a change here is a
   * config change reported at start, never a quarantine.
   */
  curation?: LockedDefinition;
  /** Scanner findings an operator accepted when locking (`bastion lock --accept-findings`). */
  acceptedFindings?: AcceptedFinding[];
  lockedAt: string;
}

export interface AcceptedFinding {
  kind: DefinitionKind | 'instructions';
  name: string;
  ruleId: string;
  severity: string;
  field: string;
}

export interface Hashlock {
  version: 1;
  algorithm: DigestAlgorithm;
  servers: Record<string, LockEntry>;
}

export const HASHLOCK_FILE = 'tool_hashlock.json';

/** Fields that are instructions to the model or shape its calls; `_meta`, icons and the like are not pinned. */
const PINNED_FIELDS: Record<DefinitionKind, readonly string[]> = {
  tools: ['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations'],
  prompts: ['name', 'title', 'description', 'arguments'],
  resourceTemplates: ['name', 'title', 'uriTemplate', 'description', 'mimeType', 'annotations'],
};

export function definitionSubset(kind: DefinitionKind, item: Definition): Definition {
  const subset: Definition = {};
  for (const field of PINNED_FIELDS[kind]) if (item[field] !== undefined) subset[field] = item[field];
  return subset;
}

export const definitionDigest = (kind: DefinitionKind, item: Definition, algorithm: DigestAlgorithm = DEFAULT_DIGEST_ALGORITHM): string =>
  digestJson(definitionSubset(kind, item), algorithm);

const nameOf = (item: Definition): string => (typeof item['name'] === 'string' ? item['name'] : '');

function lockDefinitions(kind: DefinitionKind, items: readonly Definition[], algorithm: DigestAlgorithm): Record<string, LockedDefinition> {
  const locked: Record<string, LockedDefinition> = {};
  for (const item of [...items].sort((a, b) => (nameOf(a) < nameOf(b) ? -1 : 1))) {
    const name = nameOf(item);
    if (name === '') throw new Error(`a ${kind} entry has no name; a server that lists nameless definitions cannot be locked`);
    if (Object.hasOwn(locked, name)) throw new Error(`the server lists ${kind} '${name}' twice; it cannot be locked`);
    const definition = definitionSubset(kind, item);
    locked[name] = { digest: digestJson(definition, algorithm), definition };
  }
  return locked;
}

export interface LockInput {
  live: LiveDefinitions;
  acceptedFindings?: AcceptedFinding[];
  manifestDigest?: string;
  artifact?: ArtifactDigest;
  algorithm?: DigestAlgorithm;
  now?: Date;
}

export function buildLockEntry(input: LockInput): LockEntry {
  const algorithm = input.algorithm ?? DEFAULT_DIGEST_ALGORITHM;
  const entry: LockEntry = {
    tools: lockDefinitions('tools', input.live.tools, algorithm),
    prompts: lockDefinitions('prompts', input.live.prompts, algorithm),
    resourceTemplates: lockDefinitions('resourceTemplates', input.live.resourceTemplates, algorithm),
    lockedAt: (input.now ?? new Date()).toISOString(),
  };
  if (input.live.instructions !== undefined && input.live.instructions !== '') entry.instructions = lockInstructions(input.live.instructions, algorithm);
  if (input.acceptedFindings !== undefined && input.acceptedFindings.length > 0) entry.acceptedFindings = input.acceptedFindings;
  if (input.manifestDigest !== undefined) entry.manifest = input.manifestDigest;
  if (input.artifact !== undefined) entry.artifact = input.artifact;
  return entry;
}

/** Instructions are pinned as the definition `{ instructions: TEXT }`. */
export function lockInstructions(text: string, algorithm: DigestAlgorithm = DEFAULT_DIGEST_ALGORITHM): LockedDefinition {
  const definition = { instructions: text };
  return { digest: digestJson(definition, algorithm), definition };
}

export function buildLock(servers: Record<string, LockInput>, algorithm: DigestAlgorithm = DEFAULT_DIGEST_ALGORITHM): Hashlock {
  const entries: Record<string, LockEntry> = {};
  for (const name of Object.keys(servers).sort()) entries[name] = buildLockEntry({ algorithm, ...servers[name]! });
  return { version: 1, algorithm, servers: entries };
}

export function parseLock(text: string, file = HASHLOCK_FILE): Hashlock {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file}: not valid JSON (${(error as Error).message}); restore it from version control or run bastion lock`, { cause: error });
  }
  const lock = value as Partial<Hashlock>;
  if (typeof lock !== 'object' || lock === null || lock.version !== 1 || typeof lock.servers !== 'object' || lock.servers === null) {
    throw new Error(`${file}: not a Bastion hash lock (expected {"version": 1, "algorithm", "servers"}); run bastion lock to create one`);
  }
  parseDigest(`${String(lock.algorithm)}:${'0'.repeat(lock.algorithm === 'sha3-512' ? 128 : 64)}`);
  for (const [server, entry] of Object.entries(lock.servers)) {
    const pinnedInstructions = entry.instructions;
    if (pinnedInstructions !== undefined && (typeof pinnedInstructions.digest !== 'string' || !digestsEqual(digestJson(pinnedInstructions.definition, parseDigest(pinnedInstructions.digest).algorithm), pinnedInstructions.digest))) {
      throw new Error(`${file}: servers.${server}.instructions: the stored text does not match its digest (the lock was edited by hand)`);
    }
    const pinnedCuration = entry.curation;
    if (pinnedCuration !== undefined && (typeof pinnedCuration.digest !== 'string' || !digestsEqual(digestJson(pinnedCuration.definition, parseDigest(pinnedCuration.digest).algorithm), pinnedCuration.digest))) {
      throw new Error(`${file}: servers.${server}.curation: the stored curation does not match its digest (the lock was edited by hand)`);
    }
    for (const kind of DEFINITION_KINDS) {
      if (typeof entry[kind] !== 'object' || entry[kind] === null) throw new Error(`${file}: servers.${server}.${kind} is missing; run bastion lock --update ${server}`);
      for (const [name, locked] of Object.entries(entry[kind])) {
        parseDigest(locked.digest);
        // A hand-edited definition whose digest no longer matches would mislead a reviewer.
        if (!digestsEqual(digestJson(locked.definition, parseDigest(locked.digest).algorithm), locked.digest)) {
          throw new Error(`${file}: servers.${server}.${kind}.${name}: the stored definition does not match its digest (the lock was edited by hand)`);
        }
      }
    }
  }
  return lock as Hashlock;
}

export const readLock = (file: string): Hashlock => parseLock(readFileSync(file, 'utf8'), file);

/** Written durably (temporary file, fsync, rename), so a crash never leaves a half-written lock. */
export function writeLock(file: string, lock: Hashlock): void {
  writeFileDurably(file, `${JSON.stringify(lock, null, 2)}\n`, 0o644);
}

// ---- diff -------------------------------------------------------------------------------------

export interface FieldChange {
  field: string;
  old: string;
  new: string;
}

export interface LockChange {
  server: string;
  what: 'server' | 'manifest' | 'artifact' | 'instructions' | DefinitionKind;
  name?: string;
  change: 'added' | 'removed' | 'changed';
  fields: FieldChange[];
}

const SNIPPET = 70;

/** Where two texts first differ, shown with a little context on each side. */
export function snippets(oldText: string, newText: string): { old: string; new: string } {
  let start = 0;
  while (start < oldText.length && start < newText.length && oldText[start] === newText[start]) start++;
  const from = Math.max(0, start - 20);
  const cut = (text: string): string => `${from > 0 ? '…' : ''}${text.slice(from, from + SNIPPET)}${text.length > from + SNIPPET ? '…' : ''}`;
  return { old: cut(oldText), new: cut(newText) };
}

const asText = (value: unknown): string => (value === undefined ? '(absent)' : typeof value === 'string' ? value : canonicalJson(value));

export function diffDefinitions(oldDefinition: Definition, newDefinition: Definition): FieldChange[] {
  const fields = [...new Set([...Object.keys(oldDefinition), ...Object.keys(newDefinition)])].sort();
  const changes: FieldChange[] = [];
  for (const field of fields) {
    const before = asText(oldDefinition[field]);
    const after = asText(newDefinition[field]);
    if (before !== after) changes.push({ field, ...snippets(before, after) });
  }
  return changes;
}

function diffEntry(server: string, before: LockEntry, after: LockEntry): LockChange[] {
  const changes: LockChange[] = [];
  if ((before.manifest ?? '') !== (after.manifest ?? '')) changes.push({ server, what: 'manifest', change: 'changed', fields: [{ field: 'digest', old: before.manifest ?? '(none)', new: after.manifest ?? '(none)' }] });
  if ((before.artifact?.digest ?? '') !== (after.artifact?.digest ?? '')) {
    changes.push({ server, what: 'artifact', change: 'changed', fields: [{ field: 'digest', old: before.artifact?.digest ?? '(none)', new: after.artifact?.digest ?? '(none)' }] });
  }
  if ((before.instructions?.digest ?? '') !== (after.instructions?.digest ?? '')) {
    const change = before.instructions === undefined ? 'added' : after.instructions === undefined ? 'removed' : 'changed';
    changes.push({ server, what: 'instructions', change, fields: diffDefinitions(before.instructions?.definition ?? {}, after.instructions?.definition ?? {}) });
  }
  for (const kind of DEFINITION_KINDS) {
    const names = [...new Set([...Object.keys(before[kind]), ...Object.keys(after[kind])])].sort();
    for (const name of names) {
      const old = before[kind][name];
      const now = after[kind][name];
      if (old === undefined) changes.push({ server, what: kind, name, change: 'added', fields: [] });
      else if (now === undefined) changes.push({ server, what: kind, name, change: 'removed', fields: [] });
      else if (old.digest !== now.digest) changes.push({ server, what: kind, name, change: 'changed', fields: diffDefinitions(old.definition, now.definition) });
    }
  }
  return changes;
}

/** Every difference between two locks, server by server; empty when they pin the same things. */
export function diffLock(before: Hashlock, after: Hashlock): LockChange[] {
  const servers = [...new Set([...Object.keys(before.servers), ...Object.keys(after.servers)])].sort();
  const changes: LockChange[] = [];
  for (const server of servers) {
    const old = before.servers[server];
    const now = after.servers[server];
    if (old === undefined) changes.push({ server, what: 'server', change: 'added', fields: [] });
    else if (now === undefined) changes.push({ server, what: 'server', change: 'removed', fields: [] });
    else changes.push(...diffEntry(server, old, now));
  }
  return changes;
}

const SINGULAR: Record<LockChange['what'], string> = { server: 'server', manifest: 'manifest', artifact: 'artifact', instructions: 'instructions', tools: 'tool', prompts: 'prompt', resourceTemplates: 'resource template' };

export function formatLockDiff(changes: readonly LockChange[]): string {
  if (changes.length === 0) return 'no changes: the live servers match the lock\n';
  const lines: string[] = [];
  for (const change of changes) {
    const subject = change.name === undefined ? `${change.server}: ${SINGULAR[change.what]}` : `${change.server}: ${SINGULAR[change.what]} '${change.name}'`;
    lines.push(`${change.change === 'added' ? '+' : change.change === 'removed' ? '-' : '~'} ${subject} ${change.change}`);
    for (const field of change.fields) {
      lines.push(`    ${field.field}:`);
      lines.push(`      - ${field.old}`);
      lines.push(`      + ${field.new}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

// ---- live check -------------------------------------------------------------------------------

export type QuarantineReason = 'changed' | 'added' | 'removed' | 'differs-from-manifest';

export interface Quarantined {
  name: string;
  reason: QuarantineReason;
  /** For the operator (audit log, CLI); it quotes upstream text, so it never goes to a client. */
  detail: string;
  /** The approved definition (lock or signed manifest) and its digest, when there is one. */
  oldDigest?: string;
  oldDefinition?: Definition;
  /** What the server lists now (the pinned subset) and its digest. */
  newDigest?: string;
  newDefinition?: Definition;
}

export interface LiveCheck {
  published: Definition[];
  quarantined: Quarantined[];
}

function manifestItems(manifest: Manifest, kind: DefinitionKind): Definition[] {
  const items = kind === 'tools' ? manifest.tools : kind === 'prompts' ? manifest.prompts : manifest.resourceTemplates;
  return (items ?? []) as unknown as Definition[];
}

function describeFields(fields: readonly FieldChange[]): string {
  return fields.map((field) => `${field.field} was "${field.old}", now "${field.new}"`).join('; ');
}

/**
 * Compares what a server lists now with its lock entry and (when signed) its manifest. Only
 * definitions identical to both are published; everything else is quarantined with a reason.
 * With no lock entry every definition is quarantined as 'added' (fail closed).
 */
// Canonical forms of a manifest's definitions, computed once per manifest object and kind.
const declaredCache = new WeakMap<Manifest, Map<DefinitionKind, Map<string, { subset: Definition; canonical: string }>>>();

function declaredDefinitions(manifest: Manifest, kind: DefinitionKind): Map<string, { subset: Definition; canonical: string }> {
  let byKind = declaredCache.get(manifest);
  if (byKind === undefined) declaredCache.set(manifest, (byKind = new Map()));
  let declared = byKind.get(kind);
  if (declared === undefined) {
    declared = new Map(manifestItems(manifest, kind).map((item) => {
      const subset = definitionSubset(kind, item);
      return [nameOf(item), { subset, canonical: canonicalJson(subset) }];
    }));
    byKind.set(kind, declared);
  }
  return declared;
}

export function checkLiveDefinitions(lockEntry: LockEntry | undefined, manifest: Manifest | undefined, live: readonly Definition[], kind: DefinitionKind = 'tools'): LiveCheck {
  const locked = lockEntry?.[kind] ?? {};
  const declared = manifest === undefined ? new Map<string, { subset: Definition; canonical: string }>() : declaredDefinitions(manifest, kind);
  const published: Definition[] = [];
  const quarantined: Quarantined[] = [];
  const seen = new Set<string>();
  for (const item of live) {
    const name = nameOf(item);
    const subset = definitionSubset(kind, item);
    const current = (algorithm: DigestAlgorithm = DEFAULT_DIGEST_ALGORITHM): Pick<Quarantined, 'newDigest' | 'newDefinition'> => ({ newDigest: digestJson(subset, algorithm), newDefinition: subset });
    if (seen.has(name)) {
      quarantined.push({ name, reason: 'added', detail: `listed twice by the server; neither copy is trusted`, ...current() });
      continue;
    }
    seen.add(name);
    const lockedItem = locked[name];
    if (lockedItem === undefined) {
      quarantined.push({ name, reason: 'added', detail: lockEntry === undefined ? 'the server has no entry in the hash lock; run bastion lock' : `not in the hash lock; approve it with bastion lock --update SERVER`, ...current() });
      continue;
    }
    const algorithm = parseDigest(lockedItem.digest).algorithm;
    const canonical = canonicalJson(subset);
    const newDigest = digestBytes(canonical, algorithm);
    if (!digestsEqual(newDigest, lockedItem.digest)) {
      quarantined.push({ name, reason: 'changed', detail: `changed since it was locked: ${describeFields(diffDefinitions(lockedItem.definition, subset))}`, oldDigest: lockedItem.digest, oldDefinition: lockedItem.definition, newDigest, newDefinition: subset });
      continue;
    }
    if (manifest !== undefined) {
      const expected = declared.get(name);
      if (expected === undefined) {
        quarantined.push({ name, reason: 'differs-from-manifest', detail: `not declared in the signed manifest of ${manifest.name}`, newDigest, newDefinition: subset });
        continue;
      }
      if (expected.canonical !== canonical) {
        quarantined.push({ name, reason: 'differs-from-manifest', detail: `differs from the signed manifest: ${describeFields(diffDefinitions(expected.subset, subset))}`, oldDigest: digestBytes(expected.canonical, algorithm), oldDefinition: expected.subset, newDigest, newDefinition: subset });
        continue;
      }
    }
    published.push(item);
  }
  for (const name of Object.keys(locked)) {
    if (!seen.has(name)) quarantined.push({ name, reason: 'removed', detail: 'locked but no longer listed by the server', oldDigest: locked[name]!.digest, oldDefinition: locked[name]!.definition });
  }
  return { published, quarantined };
}
