// What the gateway calls: the trust settings it merges into bastion.yaml, the boot-time admission
// of each server (manifest signature, lock entry, artifact digest, before the process starts) and
// the inspector that quarantines definitions on every list.
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { checkArtifact } from './artifact.js';
import { DEFAULT_DIGEST_ALGORITHM, digestJson, digestsEqual, parseDigest, type DigestAlgorithm } from './digest.js';
import { checkLiveDefinitions, definitionSubset, diffDefinitions, HASHLOCK_FILE, lockInstructions, readLock, type Definition, type DefinitionKind, type Hashlock, type LockedDefinition, type LockEntry, type Quarantined } from './hashlock.js';
import type { QuarantineRecord, QuarantineStore } from './quarantine.js';
import { definitionInspectionSchema, type DefinitionInspectionConfig, type ServerDefinitionInspection } from '../inspection/config.js';
import type { Manifest } from './manifest.js';
import { loadTrustedSigners, type TrustedSigners } from './signers.js';
import { manifestDigest, verifyManifestFile, type VerifyRefusal } from './verify.js';

/** Top-level `integrity:` section of bastion.yaml. */
export interface TrustConfig {
  /** The trusted-signers file (YAML or JSON); relative to the config file. */
  signersFile: string;
  /** The hash lock; relative to the config file. */
  hashlockFile: string;
  /** Digest algorithm for new locks and manifest digests. */
  digestAlgorithm: DigestAlgorithm;
  /** A server with no hash-lock entry: pin its definitions at first sight in this run, or quarantine them all. */
  unlocked: 'pin-first-seen' | 'quarantine';
  /** Runtime inspection of every definition and instructions text (docs/scan.md); per server in servers.NAME.definitions. */
  definitions?: Partial<DefinitionInspectionConfig>;
  /** Seconds after which a cached list is fetched again (periodically, and before a call); 0: before every call. */
  relistIntervalSeconds: number;
  /** Where quarantined definitions are kept; relative to stateDir. */
  quarantineDir: string;
}

export const TRUSTED_SIGNERS_FILE = 'trusted_signers.yaml';

export const trustConfigDefaults: TrustConfig = { signersFile: TRUSTED_SIGNERS_FILE, hashlockFile: HASHLOCK_FILE, digestAlgorithm: DEFAULT_DIGEST_ALGORITHM, unlocked: 'pin-first-seen', relistIntervalSeconds: 60, quarantineDir: 'quarantine' };

/** JSON Schema for the `integrity:` section. */
export const trustConfigSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    signersFile: { type: 'string', minLength: 1, default: TRUSTED_SIGNERS_FILE, description: 'the trusted-signers file (see docs/integrity.md)' },
    hashlockFile: { type: 'string', minLength: 1, default: HASHLOCK_FILE, description: 'the hash lock written by bastion lock' },
    digestAlgorithm: { enum: ['sha256', 'sha3-512'], default: DEFAULT_DIGEST_ALGORITHM, description: 'digest algorithm for new locks' },
    unlocked: {
      enum: ['pin-first-seen', 'quarantine'],
      default: 'pin-first-seen',
      description: "a server with no entry in the hash lock: 'pin-first-seen' (its definitions are pinned the first time this gateway sees them; later changes are quarantined) or 'quarantine' (nothing it lists is published until bastion lock)",
    },
    definitions: definitionInspectionSchema,
    relistIntervalSeconds: { type: 'integer', minimum: 0, maximum: 86_400, default: 60, description: 'seconds after which each upstream is listed again, periodically and before a call (0: before every call)' },
    quarantineDir: { type: 'string', minLength: 1, default: 'quarantine', description: 'directory for quarantined definitions, relative to stateDir' },
  },
} as const;

/** Per-server keys (under `servers.NAME`). */
export interface ServerTrustConfig {
  manifest?: string;
  trust?: 'signed' | 'unsigned';
  /** The server's code on disk (package directory, tarball or entry file), pinned in the lock. */
  artifact?: string;
  /** Runtime definition inspection for this server, over integrity.definitions. */
  definitions?: ServerDefinitionInspection;
  transport?: string;
  command?: string;
  args?: string[];
  cwd?: string;
}

export const serverTrustSchemaProperties = {
  manifest: { type: 'string', minLength: 1, description: 'a path to the server manifest' },
  trust: { enum: ['signed', 'unsigned'], default: 'signed', description: "'signed' (default): refuse to start without a manifest signed by a trusted signer; 'unsigned': start anyway, with a warning at every start" },
  artifact: { type: 'string', minLength: 1, description: "the server's package directory, tarball or entry file; its digest is pinned in the hash lock and checked before every start" },
  definitions: definitionInspectionSchema,
} as const;

export interface TrustContext {
  baseDir: string;
  /** undefined when the signers file does not exist; every `trust: signed` server is then refused. */
  signers: TrustedSigners | undefined;
  /** undefined when no lock exists yet; every definition is then quarantined. */
  lock: Hashlock | undefined;
  config: TrustConfig;
}

export const resolveFrom = (baseDir: string, path: string): string => (isAbsolute(path) ? path : resolve(baseDir, path));

/** Loads the signers file and the lock. Files that exist but do not parse throw: fail closed. */
export function loadTrustContext(config: Partial<TrustConfig>, baseDir: string): TrustContext {
  const full: TrustConfig = { ...trustConfigDefaults, ...config };
  const signersPath = resolveFrom(baseDir, full.signersFile);
  const lockPath = resolveFrom(baseDir, full.hashlockFile);
  return {
    baseDir,
    config: full,
    signers: existsSync(signersPath) ? loadTrustedSigners(signersPath) : undefined,
    lock: existsSync(lockPath) ? readLock(lockPath) : undefined,
  };
}

/**
 * The artifact pinned for a server: `artifact` when configured, otherwise the first of the stdio
 * arguments and then the command that is an existing file given as a path (e.g. the `index.js`
 * that `node` runs). undefined when nothing on disk identifies the code (HTTP servers, bare npx).
 */
export function artifactPathFor(config: ServerTrustConfig, baseDir: string): string | undefined {
  if (config.artifact !== undefined) return resolveFrom(baseDir, config.artifact);
  if (config.transport !== 'stdio' || config.command === undefined) return undefined;
  const cwd = config.cwd === undefined ? baseDir : resolveFrom(baseDir, config.cwd);
  // Arguments first: for `node dist/index.js` the script is the server, not the interpreter.
  for (const candidate of [...(config.args ?? []), config.command]) {
    if (!candidate.includes('/')) continue;
    const path = resolveFrom(cwd, candidate);
    if (statSync(path, { throwIfNoEntry: false })?.isFile() === true) return path;
  }
  return undefined;
}

export type AdmissionRefusal = VerifyRefusal | 'no-manifest' | 'no-signers' | 'manifest-changed' | 'artifact-missing' | 'artifact-changed';

export type Admission =
  | { ok: true; server: string; trust: 'signed' | 'unsigned'; manifest: Manifest | undefined; lockEntry: LockEntry | undefined; warnings: string[] }
  | { ok: false; server: string; reason: AdmissionRefusal; message: string };

/**
 * Decides whether one server may start. Call it before spawning the process: it verifies the
 * manifest signature and signer, compares the manifest with the lock, and re-hashes the artifact.
 */
export async function admitServer(server: string, config: ServerTrustConfig, context: TrustContext, now: Date = new Date()): Promise<Admission> {
  const trust = config.trust ?? 'signed';
  const warnings: string[] = [];
  const refuse = (reason: AdmissionRefusal, message: string): Admission => ({ ok: false, server, reason, message: `server '${server}' refused: ${message}` });
  let manifest: Manifest | undefined;
  if (trust === 'signed') {
    if (config.manifest === undefined) return refuse('no-manifest', 'it has no manifest; set servers.' + server + ".manifest to a signed manifest, or trust: unsigned to run it unverified");
    if (context.signers === undefined) return refuse('no-signers', `the trusted signers file ${resolveFrom(context.baseDir, context.config.signersFile)} does not exist; create it (see docs/integrity.md)`);
    const verified = verifyManifestFile(resolveFrom(context.baseDir, config.manifest), context.signers, { now, digestAlgorithm: context.config.digestAlgorithm });
    if (!verified.ok) return refuse(verified.reason, `${verified.file}: ${verified.message}`);
    manifest = verified.manifest;
    const lockEntry = context.lock?.servers[server];
    if (lockEntry?.manifest !== undefined) {
      const current = manifestDigest(manifest, parseDigest(lockEntry.manifest).algorithm);
      if (!digestsEqual(lockEntry.manifest, current)) {
        return refuse('manifest-changed', `the signed manifest changed since it was locked (locked ${lockEntry.manifest}, now ${current}); review it and run bastion lock --update ${server}`);
      }
    }
  } else {
    warnings.push(`server '${server}' runs with trust: unsigned: its manifest is not verified and any code on its command line runs as configured`);
  }
  const lockEntry = context.lock?.servers[server];
  if (lockEntry === undefined) {
    warnings.push(
      context.config.unlocked === 'quarantine'
        ? `server '${server}' has no entry in the hash lock; all its tools stay quarantined until you run bastion lock`
        : `server '${server}' has no entry in the hash lock; its definitions are pinned as first seen in this run only (run bastion lock to pin them across restarts)`,
    );
  }
  if (lockEntry?.artifact !== undefined) {
    const artifact = { ...lockEntry.artifact, path: resolveFrom(context.baseDir, lockEntry.artifact.path) };
    const check = await checkArtifact(artifact);
    if (!check.ok) return refuse(check.reason, check.message.replace('SERVER', server));
  }
  if (manifest?.artifact?.path !== undefined) {
    const check = await checkArtifact({ path: resolveFrom(context.baseDir, manifest.artifact.path), kind: manifest.artifact.kind ?? 'tree', digest: manifest.artifact.digest });
    if (!check.ok) return refuse(check.reason, `the artifact does not match the signed manifest: ${check.message}`);
  }
  return { ok: true, server, trust, manifest, lockEntry, warnings };
}

export type InspectedKind = DefinitionKind | 'resources';

/** One held definition, as the audit log records it (old and new digests, the operator's detail). */
export interface QuarantinedItem extends Quarantined {
  /** The quarantine record's id; absent for definitions that vanished (nothing to approve). */
  id?: string;
  status?: QuarantineRecord['status'];
}

export interface QuarantineEvent {
  server: string;
  kind: DefinitionKind | 'instructions';
  quarantined: QuarantinedItem[];
}

export interface InspectorOptions {
  /**
   * What to do with a server that has no entry in the hash lock: pin what it lists the first time
   * it is seen in this run (changes after that are quarantined), or quarantine everything it lists.
   */
  unlocked: 'pin-first-seen' | 'quarantine';
  /** Where quarantines persist; without one they last as long as this process. */
  store?: QuarantineStore;
  onQuarantine?: (event: QuarantineEvent) => void;
  /** Called once per server and kind when an unlocked server's definitions are pinned at first sight. */
  onPin?: (server: string, kind: DefinitionKind | 'instructions', names: string[]) => void;
}

type AdmittedState = Pick<Extract<Admission, { ok: true }>, 'manifest' | 'lockEntry'>;

/** Why a definition is held, in words the gateway may send to a client: never the upstream's text. */
const CLIENT_REASON: Record<Quarantined['reason'], string> = {
  changed: 'its definition changed since it was approved',
  added: 'it is not in the hash lock',
  removed: 'it is no longer listed',
  'differs-from-manifest': 'it differs from the signed manifest',
};

export const clientReason = (item: QuarantinedItem): string =>
  `${item.status === 'rejected' ? 'an operator rejected this definition' : CLIENT_REASON[item.reason]}${item.id === undefined ? '' : ` (quarantine ${item.id})`}`;

export interface InstructionsCheck {
  ok: boolean;
  /** For a client, when not ok. */
  reason?: string;
  item?: QuarantinedItem;
}

export interface HashlockInspector {
  (server: string, kind: InspectedKind, items: Definition[]): { published: Definition[]; quarantined: Map<string, string> };
  /** Holds a server's `initialize` instructions to the lock (or to the first text seen) like a definition. */
  checkInstructions(server: string, text: string): InstructionsCheck;
}

/**
 * A function of the shape the gateway catalog calls on every list (at start, after every
 * list_changed and on every re-list). Plain resources are not pinned (servers list them
 * dynamically) and pass through. A server that was never admitted publishes nothing. Pins made at
 * first sight are shared by every session of this gateway, so a definition that changes mid-run is
 * caught in all of them; quarantines are kept in the store, so they also outlive the process.
 */
export function createHashlockInspector(admitted: ReadonlyMap<string, AdmittedState>, options: InspectorOptions = { unlocked: 'quarantine' }): HashlockInspector {
  const pinned = new Map<string, LockEntry>();
  const pinnedKinds = new Set<string>();
  const { store } = options;
  const pinnedEntry = (server: string): LockEntry => {
    let entry = pinned.get(server);
    if (entry === undefined) {
      entry = { tools: {}, prompts: {}, resourceTemplates: {}, lockedAt: new Date().toISOString() };
      pinned.set(server, entry);
    }
    return entry;
  };
  const lockFor = (server: string, state: AdmittedState, kind: DefinitionKind, items: Definition[]): LockEntry | undefined => {
    if (state.lockEntry !== undefined || options.unlocked === 'quarantine') return state.lockEntry;
    const entry = pinnedEntry(server);
    if (!pinnedKinds.has(`${server}\u0000${kind}`)) {
      pinnedKinds.add(`${server}\u0000${kind}`);
      entry[kind] = pinFirstSeen(kind, items);
      options.onPin?.(server, kind, Object.keys(entry[kind]));
    }
    return entry;
  };
  /** Persists a held definition; an operator's approval of this exact definition publishes it instead. */
  const hold = (server: string, kind: DefinitionKind | 'instructions', item: Quarantined): QuarantinedItem => {
    if (store === undefined || item.reason === 'removed' || item.newDigest === undefined || item.newDefinition === undefined) return item;
    const record = store.find(server, kind, item.name, item.newDigest) ?? store.hold({
      server, kind, name: item.name, cause: item.reason, newDigest: item.newDigest, newDefinition: item.newDefinition,
      ...(item.oldDigest === undefined ? {} : { oldDigest: item.oldDigest }),
      ...(item.oldDefinition === undefined ? {} : { oldDefinition: item.oldDefinition }),
      diff: diffDefinitions(item.oldDefinition ?? {}, item.newDefinition), findings: [],
    });
    return { ...item, id: record.id, status: record.status };
  };
  const inspect = (server: string, kind: InspectedKind, items: Definition[]): { published: Definition[]; quarantined: Map<string, string> } => {
    if (kind === 'resources') return { published: items, quarantined: new Map() };
    const state = admitted.get(server);
    if (state === undefined) {
      return { published: [], quarantined: new Map(items.map((item) => [String(item['name'] ?? ''), 'the server was not admitted at start'])) };
    }
    const entry = lockFor(server, state, kind, items);
    const result = checkLiveDefinitions(entry, state.manifest, items, kind);
    const byName = new Map<string, Definition[]>();
    for (const item of items) byName.set(String(item['name'] ?? ''), [...(byName.get(String(item['name'] ?? '')) ?? []), item]);
    const published: Definition[] = [];
    const held: QuarantinedItem[] = [];
    // Published by the lock, but held by an operator's earlier quarantine (it survives a restart that re-pinned it).
    for (const item of result.published) {
      const name = String(item['name'] ?? '');
      const digest = entry?.[kind][name]?.digest;
      const record = store !== undefined && digest !== undefined && store.mentions(server, kind, name) ? store.find(server, kind, name, digest) : undefined;
      if (record !== undefined && record.status !== 'approved') held.push({ name, reason: record.cause === 'findings' ? 'changed' : record.cause, detail: `held by quarantine ${record.id} (${record.status})`, newDigest: digest!, id: record.id, status: record.status });
      else published.push(item);
    }
    for (const item of result.quarantined) {
      const persisted = hold(server, kind, item);
      const live = byName.get(item.name);
      // An operator approved exactly this definition (not one that contradicts a signed manifest, not a duplicate).
      if (persisted.status === 'approved' && item.reason !== 'differs-from-manifest' && live?.length === 1) published.push(live[0]!);
      else held.push(persisted);
    }
    if (held.length > 0) options.onQuarantine?.({ server, kind, quarantined: held });
    return { published, quarantined: new Map(held.filter((item) => item.reason !== 'removed').map((item) => [item.name, clientReason(item)])) };
  };
  const checkInstructions = (server: string, text: string): InstructionsCheck => {
    const state = admitted.get(server);
    if (state === undefined) return { ok: false, reason: 'the server was not admitted at start' };
    let locked = state.lockEntry?.instructions;
    const algorithm = locked === undefined ? DEFAULT_DIGEST_ALGORITHM : parseDigest(locked.digest).algorithm;
    const live = lockInstructions(text, algorithm);
    if (state.lockEntry === undefined && options.unlocked === 'pin-first-seen') {
      const entry = pinnedEntry(server);
      if (entry.instructions === undefined) {
        entry.instructions = live;
        options.onPin?.(server, 'instructions', ['instructions']);
      }
      locked = entry.instructions;
    }
    let problem: Quarantined | undefined;
    if (locked === undefined) problem = { name: 'instructions', reason: 'added', detail: state.lockEntry === undefined ? 'the server has no entry in the hash lock; run bastion lock' : 'the lock pins no instructions for this server', newDigest: live.digest, newDefinition: live.definition };
    else if (!digestsEqual(locked.digest, live.digest)) problem = { name: 'instructions', reason: 'changed', detail: 'the instructions changed since they were locked', oldDigest: locked.digest, oldDefinition: locked.definition, newDigest: live.digest, newDefinition: live.definition };
    if (problem === undefined) {
      const record = store?.mentions(server, 'instructions', 'instructions') === true ? store.find(server, 'instructions', 'instructions', live.digest) : undefined;
      if (record === undefined || record.status === 'approved') return { ok: true };
      problem = { name: 'instructions', reason: record.cause === 'findings' ? 'changed' : record.cause, detail: `held by quarantine ${record.id} (${record.status})`, newDigest: live.digest };
      const item: QuarantinedItem = { ...problem, id: record.id, status: record.status };
      options.onQuarantine?.({ server, kind: 'instructions', quarantined: [item] });
      return { ok: false, reason: clientReason(item), item };
    }
    const item = hold(server, 'instructions', problem);
    if (item.status === 'approved') return { ok: true };
    options.onQuarantine?.({ server, kind: 'instructions', quarantined: [item] });
    return { ok: false, reason: clientReason(item), item };
  };
  return Object.assign(inspect, { checkInstructions });
}

/** Pins each well-formed, uniquely named definition; duplicates and nameless ones stay unpinned (and so quarantined). */
function pinFirstSeen(kind: DefinitionKind, items: readonly Definition[]): Record<string, LockedDefinition> {
  const counts = new Map<string, number>();
  for (const item of items) if (typeof item['name'] === 'string') counts.set(item['name'], (counts.get(item['name']) ?? 0) + 1);
  const pins: Record<string, LockedDefinition> = {};
  for (const item of items) {
    const name = item['name'];
    if (typeof name !== 'string' || name === '' || counts.get(name) !== 1) continue;
    const definition = definitionSubset(kind, item);
    pins[name] = { digest: digestJson(definition), definition };
  }
  return pins;
}
