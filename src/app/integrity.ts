// Supply-chain checks at the gateway's edge: which configured servers may start (signed manifest
// from a trusted signer, unchanged since locked, artifact unchanged on disk, not on the threat
// feed, certified when a level is required), the re-check before every process start, and the
// inspector that quarantines definitions that differ from the lock or the manifest.
import { readFileSync, realpathSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import type { AuditLog } from '../audit/index.js';
import { AuditEvent } from '../audit/index.js';
import type { LoadedConfig, ServerConfig } from '../config/index.js';
import type { DefinitionInspector, LaunchSpec, ProcessLauncher } from '../gateway/index.js';
import { admitServer, artifactPathFor, createHashlockInspector, loadTrustContext, type Admission, type TrustContext } from '../integrity/index.js';
import type { Logger } from '../observability/index.js';
import type { RecordEvent } from './events.js';
import { artifactDigest, checkServerAtBoot, loadFeed, loadTrustedKeys, manifestDigest as scanManifestDigest, type FeedSubject, type ThreatFeed } from '../scan/index.js';

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
export async function admitServers(loaded: LoadedConfig, audit: AuditLog, logger: Logger): Promise<ServerAdmissions> {
  const { config, baseDir } = loaded;
  const context = loadTrustContext(config.integrity, baseDir);
  const feed = config.scan.feedPath === undefined ? undefined : loadFeed(resolve(baseDir, config.scan.feedPath));
  const certifiersPath = config.scan.certification.trustedCertifiersPath;
  const certifiers = certifiersPath === undefined ? undefined : loadTrustedKeys(resolve(baseDir, certifiersPath));
  const admitted = new Map<string, Admitted>();
  const refused = new Map<string, string>();
  for (const [name, server] of Object.entries(config.servers)) {
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
  return { admitted, refused, context };
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
export function guardLaunches(launcher: ProcessLauncher, loaded: LoadedConfig, admissions: ServerAdmissions, audit: AuditLog, logger: Logger): ProcessLauncher {
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
  };
}

/** The catalog's inspector: lock and manifest comparison, with every quarantine audited. */
export function hashlockInspector(admissions: ServerAdmissions, record: RecordEvent, logger: Logger): DefinitionInspector {
  const inspect = createHashlockInspector(admissions.admitted, {
    unlocked: admissions.context.config.unlocked,
    onQuarantine: (event) => {
      const live = event.quarantined.filter((item) => item.reason !== 'removed');
      if (live.length > 0) logger.warn({ server: event.server, kind: event.kind, quarantined: live.map((item) => `${item.name} (${item.reason})`) }, 'definitions quarantined: they differ from the hash lock or the signed manifest');
      record(AuditEvent.Quarantine, { server: event.server, kind: event.kind, items: event.quarantined.map((item) => ({ name: item.name, reason: item.reason, detail: item.detail })) });
    },
    onPin: (server, kind, names) => {
      if (names.length > 0) logger.info({ server, kind, count: names.length }, 'no hash-lock entry: definitions pinned as first seen for this run (run bastion lock to pin them across restarts)');
    },
  });
  return (server, kind, items) => inspect(server, kind, items);
}
