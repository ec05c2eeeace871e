// The core of `bastion lock`: for each server, verify (or read) its manifest, hash its artifact,
// list its live definitions and build its lock entry. Approval stays with the caller.
import { relative, isAbsolute } from 'node:path';
import { artifactDigest } from './artifact.js';
import { buildLockEntry, checkLiveDefinitions, type AcceptedFinding, type LiveDefinitions, type LockEntry } from './hashlock.js';
import { fetchLiveDefinitions, type LiveServerSpec, type StdioProcess } from './live.js';
import { loadManifest, type Manifest } from './manifest.js';
import { artifactPathFor, resolveFrom, type ServerTrustConfig, type TrustContext } from './trust.js';
import { manifestDigest, verifyManifestFile } from './verify.js';

/** A server started by the caller (e.g. in the Bastion sandbox) and disposed of after listing. */
export interface LaunchedServer {
  process: StdioProcess;
  dispose(): Promise<void>;
}

export type LiveSource = LiveServerSpec | { transport: 'launch'; launch: () => Promise<LaunchedServer> };

/** Lists the definitions of a server reached or started as `source` describes. */
export async function listLive(source: LiveSource): Promise<LiveDefinitions> {
  if (source.transport !== 'launch') return fetchLiveDefinitions(source);
  const launched = await source.launch();
  try {
    return await fetchLiveDefinitions({ transport: 'process', process: launched.process });
  } finally {
    await launched.dispose();
  }
}

export interface LockTarget {
  /** How to reach the server to list its definitions. */
  live: LiveSource;
  trust: ServerTrustConfig;
  /**
   * Reviews what the server lists before it is pinned (the scanner, in the CLI): throws
   * LockRefusedError to refuse, or returns the findings the operator accepted, which the lock
   * entry records.
   */
  vet?: (server: string, live: LiveDefinitions) => AcceptedFinding[];
}

export interface LockedServer {
  entry: LockEntry;
  warnings: string[];
}

export class LockRefusedError extends Error {
  override name = 'LockRefusedError';
}

function manifestFor(server: string, trust: ServerTrustConfig, context: TrustContext, now: Date): Manifest | undefined {
  if (trust.manifest === undefined) {
    if ((trust.trust ?? 'signed') === 'signed') throw new LockRefusedError(`server '${server}' has no manifest and is not marked trust: unsigned; it would not start, so it is not locked`);
    return undefined;
  }
  const path = resolveFrom(context.baseDir, trust.manifest);
  if ((trust.trust ?? 'signed') === 'unsigned') return loadManifest(path).manifest;
  if (context.signers === undefined) throw new LockRefusedError(`server '${server}': no trusted signers file, so its manifest cannot be verified`);
  const verified = verifyManifestFile(path, context.signers, { now });
  if (!verified.ok) throw new LockRefusedError(`server '${server}': ${verified.file}: ${verified.reason}: ${verified.message}`);
  return verified.manifest;
}

/** Builds one server's lock entry from what it lists now. Throws LockRefusedError for an untrusted manifest. */
export async function lockServer(server: string, target: LockTarget, context: TrustContext, now: Date = new Date()): Promise<LockedServer> {
  const algorithm = context.config.digestAlgorithm;
  const manifest = manifestFor(server, target.trust, context, now);
  const artifactPath = artifactPathFor(target.trust, context.baseDir);
  const artifact = artifactPath === undefined ? undefined : await artifactDigest(artifactPath, algorithm);
  if (artifact !== undefined) {
    // Stored relative to the config, so the lock can be committed next to it.
    const fromBase = relative(context.baseDir, artifact.path);
    if (!fromBase.startsWith('..') && !isAbsolute(fromBase)) artifact.path = fromBase;
  }
  const live = await listLive(target.live);
  const acceptedFindings = target.vet?.(server, live) ?? [];
  const entry = buildLockEntry({ live, algorithm, now, acceptedFindings, ...(manifest === undefined ? {} : { manifestDigest: manifestDigest(manifest, algorithm) }), ...(artifact === undefined ? {} : { artifact }) });
  const warnings: string[] = [];
  if (artifact === undefined) warnings.push(`server '${server}': no artifact on disk identifies its code (set servers.${server}.artifact); only its definitions are pinned`);
  if (manifest !== undefined) {
    for (const kind of ['tools', 'prompts', 'resourceTemplates'] as const) {
      const list = kind === 'tools' ? live.tools : kind === 'prompts' ? live.prompts : live.resourceTemplates;
      for (const item of checkLiveDefinitions(entry, manifest, list, kind).quarantined) {
        warnings.push(`server '${server}': ${kind} '${item.name}' ${item.detail}; it will stay quarantined until the manifest and the server agree`);
      }
    }
  }
  return { entry, warnings };
}
