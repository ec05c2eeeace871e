// Supply-chain checks at the gateway's edge: which configured servers may start (signed manifest
// from a trusted signer, unchanged since locked, artifact unchanged on disk, not on the threat
// feed, certified when a level is required), the re-check before every process start, and the
// inspector that quarantines definitions that differ from the lock or the manifest.
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import type { AuditWriter } from '../audit/index.js';
import { AuditEvent } from '../audit/index.js';
import type { LoadedConfig, ServerConfig } from '../config/index.js';
import type { Definition, DefinitionInspector, DefinitionView, InspectedDefinitions, LaunchSpec, ListKind, ProcessLauncher } from '../gateway/index.js';
import { admitServer, artifactPathFor, createHashlockInspector, FileQuarantineStore, loadTrustContext, MemoryQuarantineStore, resolveFrom, trustConfigDefaults, type Admission, type QuarantineStore, type TrustContext } from '../integrity/index.js';
import { createRuntimeInspection, DefinitionScanner, inspectionFor, type DefinitionInspectionConfig } from '../inspection/index.js';
import type { Logger } from '../observability/index.js';
import { shareResult } from '../pipeline/index.js';
import type { RecordEvent } from './events.js';
import { artifactDigest, checkServerAtBoot, loadFeed, loadRules, loadTrustedKeys, manifestDigest as scanManifestDigest, type FeedSubject, type ThreatFeed } from '../scan/index.js';

type Admitted = Extract<Admission, { ok: true }>;

export interface ServerAdmissions {
  /** Servers that passed every check, with their verified manifest and lock entry. */
  admitted: Map<string, Admitted>;
  /** Servers that may not start, with why. */
  refused: Map<string, string>;
  context: TrustContext;
}

/** The trust view of a server's config (what admitServer and artifactPathFor read). */
function trustView(server: ServerConfig): Parameters<typeof admitServer>[1] {
  const view: Parameters<typeof admitServer>[1] = { transport: server.transport };
  if (server.manifest !== undefined) view.manifest = server.manifest;
  if (server.trust !== undefined) view.trust = server.trust;
  if (server.artifact !== undefined) view.artifact = server.artifact;
  if (server.transport === 'stdio') {
    view.command = server.command;
    view.args = server.args;
    if (server.cwd !== undefined) view.cwd = server.cwd;
  }
  return view;
}

/**
 * Decides, once at boot and before any server process exists, which servers may run. A bad
 * signers file, lock or threat feed throws: the gateway does not start on files it cannot read.
 */
export async function admitServers(loaded: LoadedConfig, audit: AuditWriter, logger: Logger): Promise<ServerAdmissions> {
  const context = loadTrustContext(loaded.config.integrity, loaded.baseDir);
  const admissions: ServerAdmissions = { admitted: new Map(), refused: new Map(), context };
  await admitNamed(Object.keys(loaded.config.servers), loaded, admissions, audit, logger);
  return admissions;
}

/**
 * Admits the named servers of `loaded` as boot does (a config reload adds or redefines them),
 * with the trust context of boot and the threat feed and certifiers as they are on disk now.
 * Each named server's earlier verdict is replaced; a server refused now is not offered.
 */
export async function admitNamed(names: readonly string[], loaded: LoadedConfig, admissions: ServerAdmissions, audit: AuditWriter, logger: Logger): Promise<void> {
  const { config, baseDir } = loaded;
  const feed = config.scan.feedPath === undefined ? undefined : loadFeed(resolve(baseDir, config.scan.feedPath));
  const certifiersPath = config.scan.certification.trustedCertifiersPath;
  const certifiers = certifiersPath === undefined ? undefined : loadTrustedKeys(resolve(baseDir, certifiersPath));
  const { admitted, refused, context } = admissions;
  for (const name of names) {
    const server = config.servers[name];
    admitted.delete(name);
    refused.delete(name);
    if (server === undefined) continue;
    const admission = await admitServer(name, trustView(server), context);
    const problem = admission.ok ? bootCheckProblem(name, server, admission, loaded, feed, certifiers) : admission.message;
    if (!admission.ok || problem !== undefined) {
      const message = problem ?? 'refused';
      refused.set(name, message);
      logger.error({ server: name }, message);
      await audit.event(AuditEvent.Alert, { alert: 'server_refused', server: name, reason: admission.ok ? 'boot-check' : admission.reason, detail: message });
      continue;
    }
    for (const warning of admission.warnings) logger.warn({ server: name }, warning);
    if (admission.trust === 'unsigned') await audit.event(AuditEvent.Alert, { alert: 'server_unsigned', server: name, detail: admission.warnings[0] ?? 'trust: unsigned' });
    admitted.set(name, admission);
  }
}

/** The scanner's boot check: threat feed, then the certification level the config requires. */
function bootCheckProblem(name: string, server: ServerConfig, admission: Admitted, loaded: LoadedConfig, feed: ThreatFeed | undefined, certifiers: ReturnType<typeof loadTrustedKeys> | undefined): string | undefined {
  const minimum = server.minCertificationLevel ?? 0;
  if (feed === undefined && minimum === 0) return undefined;
  const manifest = admission.manifest;
  const subject: FeedSubject = {};
  const packages = (manifest?.packages ?? []).map((pkg) => ({ ecosystem: pkg.registryType, name: pkg.identifier, version: pkg.version }));
  const artifactPath = artifactPathFor(trustView(server), loaded.baseDir);
  const installed = artifactPath === undefined ? undefined : installedNpmPackage(artifactPath);
  if (installed !== undefined) packages.push({ ecosystem: 'npm', ...installed });
  if (packages.length > 0) subject.packages = packages;
  const result = checkServerAtBoot({
    server: name,
    ...(feed === undefined ? {} : { feed, subject }),
    minCertificationLevel: minimum,
    ...(server.certification === undefined ? {} : { certification: readJson(resolve(loaded.baseDir, server.certification)) }),
    ...(manifest === undefined ? {} : { manifestDigest: scanManifestDigest(manifest) }),
    ...(minimum > 0 && artifactPath !== undefined ? { artifactDigest: artifactDigest(artifactPath) } : {}),
    ...(certifiers === undefined ? {} : { trustedCertifiers: certifiers }),
  });
  return result.ok ? undefined : `server '${name}' refused: ${result.reasons.join('; ')}`;
}

/** The npm package a server's entry file belongs to, when it runs from a node_modules tree. */
function installedNpmPackage(entry: string): { name: string; version: string } | undefined {
  const marker = `${sep}node_modules${sep}`;
  const real = realpathSync(entry);
  const index = real.lastIndexOf(marker);
  if (index === -1) return undefined;
  const parts = real.slice(index + marker.length).split(sep);
  const depth = parts[0]?.startsWith('@') === true ? 2 : 1;
  const manifest = readJson(join(real.slice(0, index + marker.length), ...parts.slice(0, depth), 'package.json')) as { name?: unknown; version?: unknown };
  return typeof manifest.name === 'string' && typeof manifest.version === 'string' ? { name: manifest.name, version: manifest.version } : undefined;
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    // An unreadable attestation is an absent one: the level check then refuses with its reason.
    return { unreadable: (error as Error).message };
  }
}

/**
 * Wraps the process launcher: a refused server never gets a process, and an admitted one is
 * admitted again (signature, lock, artifact digest) right before each process start, so code
 * that changed on disk after boot does not run.
 */
export function guardLaunches(launcher: ProcessLauncher, loaded: LoadedConfig, admissions: ServerAdmissions, audit: AuditWriter, logger: Logger): ProcessLauncher {
  return {
    name: launcher.name,
    async launch(spec: LaunchSpec) {
      const refusedAtBoot = admissions.refused.get(spec.server);
      if (refusedAtBoot !== undefined) throw new Error(refusedAtBoot);
      const server = loaded.config.servers[spec.server];
      if (server === undefined) throw new Error(`server '${spec.server}' is not configured`);
      const again = await admitServer(spec.server, trustView(server), admissions.context);
      if (!again.ok) {
        logger.error({ server: spec.server }, again.message);
        await audit.event(AuditEvent.Alert, { alert: 'server_refused', server: spec.server, reason: again.reason, detail: again.message });
        throw new Error(again.message);
      }
      return launcher.launch(spec);
    },
    forget: (server) => launcher.forget?.(server),
  };
}

/**
 * The state directory's quarantine store. The gateway opens it once and hands the same instance to
 * the catalog's inspector and to the admin API, so that a decision made in the console is seen by
 * the next call at once (another process's decision, the CLI's, is seen within the store's recheck).
 */
export function openQuarantineStore(loaded: LoadedConfig): QuarantineStore {
  return FileQuarantineStore.inDirectory(resolveFrom(resolve(loaded.baseDir, loaded.config.stateDir), loaded.config.integrity.quarantineDir ?? trustConfigDefaults.quarantineDir));
}

/**
 * The catalog's inspector: the hash lock and manifest comparison first (on the definitions as the
 * upstream sent them), then the scanner's verdict on what the lock let through. Quarantines are
 * kept in the state directory; every quarantine and finding is audited with its digests. A list
 * that has not changed since the last inspection (the same bytes, the same quarantine state)
 * costs one hash comparison.
 */
export function hashlockInspector(admissions: ServerAdmissions, record: RecordEvent, logger: Logger, loaded?: LoadedConfig, shared?: QuarantineStore): DefinitionInspector {
  const config = loaded?.config;
  const store: QuarantineStore = shared !== undefined ? shared : loaded === undefined ? new MemoryQuarantineStore() : openQuarantineStore(loaded);
  const lock = createHashlockInspector(admissions.admitted, {
    unlocked: admissions.context.config.unlocked,
    store,
    onQuarantine: (event) => {
      const live = event.quarantined.filter((item) => item.reason !== 'removed');
      if (live.length > 0) logger.warn({ server: event.server, kind: event.kind, quarantined: live.map((item) => `${item.name} (${item.reason}${item.id === undefined ? '' : `, ${item.id}`})`) }, 'definitions quarantined: they differ from the hash lock or the signed manifest');
      record(AuditEvent.Quarantine, {
        server: event.server,
        kind: event.kind,
        items: event.quarantined.map((item) => ({
          name: item.name, reason: item.reason, detail: item.detail, id: item.id ?? null, status: item.status ?? null, old_digest: item.oldDigest ?? null, new_digest: item.newDigest ?? null,
        })),
      });
    },
    onPin: (server, kind, names) => {
      if (names.length > 0) logger.info({ server, kind, count: names.length }, 'no hash-lock entry: definitions pinned as first seen for this run (run bastion lock to pin them across restarts)');
    },
  });
  const global = config?.integrity.definitions;
  if (global?.enabled === false) {
    logger.warn('definition inspection is OFF (integrity.definitions.enabled: false): tool descriptions and instructions reach clients unscanned');
    record(AuditEvent.Alert, { alert: 'definition_inspection_disabled' });
  }
  const settings = new Map<string, DefinitionInspectionConfig>();
  const inspection = createRuntimeInspection({
    scanner: new DefinitionScanner(loadRules(config?.scan.dataDir === undefined || loaded === undefined ? undefined : resolve(loaded.baseDir, config.scan.dataDir))),
    settingsFor: (server) => {
      let effective = settings.get(server);
      if (effective === undefined) settings.set(server, (effective = inspectionFor(global, config?.servers[server]?.definitions)));
      return effective;
    },
    store,
    onFindings: (event) => {
      const blocked = event.action === 'block' || event.action === 'quarantine';
      (blocked ? logger.warn : logger.info).call(logger, { server: event.server, kind: event.kind, name: event.name, action: event.action, rules: event.findings.map((finding) => finding.ruleId) }, `definition inspection: ${event.action}`);
      record('definition.finding', {
        server: event.server,
        kind: event.kind,
        tool: event.name,
        digest: event.digest,
        action: event.action,
        quarantine_id: event.quarantineId ?? null,
        findings: event.findings.map((finding) => ({ rule_id: finding.ruleId, severity: finding.severity, field: finding.field, action: finding.action, evidence: finding.evidence })),
      });
    },
  });
  const lists = new Map<string, { key: string; result: InspectedDefinitions }>();
  // The catalog hands every session of a pooled process the same (frozen) list: hashed once.
  const digests = new WeakMap<Definition[], string>();
  const digestOf = (items: Definition[]): string => {
    let digest = Object.isFrozen(items) ? digests.get(items) : undefined;
    if (digest === undefined) {
      digest = createHash('sha256').update(JSON.stringify(items)).digest('base64');
      if (Object.isFrozen(items)) digests.set(items, digest);
    }
    return digest;
  };
  const inspect = (server: string, kind: ListKind, items: Definition[], view?: DefinitionView): InspectedDefinitions => {
    const key = `${digestOf(items)}\u0000${store.version()}`;
    const slot = `${server}\u0000${kind}\u0000${view?.key ?? ''}`;
    const cached = lists.get(slot);
    if (cached?.key === key) return cached.result;
    // The lock compares what the upstream sent, so a change upstream is caught even under an
    // override; the scanner reads the curated text, which is what the client will read.
    const locked = lock(server, kind, items);
    const shown = view === undefined ? locked.published : view.apply(kind, locked.published);
    const inspected = inspection.inspect(server, kind, shown);
    // A hidden tool is unknown to the client: it is neither listed nor reported as quarantined.
    const held = [...locked.quarantined].filter(([name]) => view?.hides(kind, name) !== true);
    // Frozen: every session of the process reads this very list, and the policy filter and the
    // catalog cache their work by its identity.
    const result = { published: shareResult(inspected.published), quarantined: new Map([...held, ...inspected.refused]) };
    lists.set(slot, { key, result });
    return result;
  };
  // Every session's initialize asks about the same text: the verdict is kept while the text and the quarantine state are the same.
  const verdicts = new Map<string, { text: string; version: string; shown: string | undefined }>();
  const instructions = (server: string, text: string): string | undefined => {
    const version = store.version();
    const cached = verdicts.get(server);
    if (cached !== undefined && cached.text === text && cached.version === version) return cached.shown;
    const pinned = lock.checkInstructions(server, text);
    const shown = pinned.ok ? inspection.instructions(server, text) : undefined;
    // The version after the check: a quarantine the check itself recorded is part of this verdict.
    verdicts.set(server, { text, version: store.version(), shown });
    return shown;
  };
  // A server removed or redefined by a reload: its inspection settings and cached verdicts go.
  const forget = (server: string): void => {
    settings.delete(server);
    for (const slot of [...lists.keys()]) if (slot.startsWith(`${server}\u0000`)) lists.delete(slot);
  };
  return Object.assign(inspect, { instructions, forget });
}
