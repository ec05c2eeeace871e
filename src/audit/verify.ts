import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative } from 'node:path';
import { sha256Hex } from './canonical.js';
import { parseCheckpoint, verifyCheckpointSignature, type ParsedCheckpoint } from './checkpoint.js';
import { loadVerifier, type NoteVerifier } from './keys.js';
import { MANIFEST_FILE, PUBLIC_KEY_FILE, listCheckpoints, readMetadata, type LogMetadata } from './layout.js';
import { LogUnreadableError, scanLog, type ScanProblem, type ScanResult } from './scan.js';
import { scanLogParallel } from './scan-parallel.js';
import { LEGACY_AUDIT_SCHEMA } from './schema.js';
import { checkIndices, checkTail } from './verify-tail.js';

/** Exit codes of `mcp-auditctl verify`. */
export const VerifyExit = { Clean: 0, Tampered: 2, Unreadable: 3, UnsignedTail: 4 } as const;

export interface VerifyOptions {
  /** Public key: PEM file, vkey file or vkey string. Defaults to the key stored in the log directory. */
  key?: string;
  /** An extra checkpoint (for example one kept elsewhere) that the log must be consistent with. */
  checkpointFile?: string;
  fromCheckpoint?: boolean;
}

export interface VerifyReport {
  status: 'clean' | 'tampered';
  metadata: LogMetadata;
  keySource: 'argument' | 'log directory';
  scan: ScanResult;
  checkpoints: number;
  problem?: ScanProblem | { segment: string; line: number; offset: number; seq: number; message: string };
  bundle?: { files: number };
  /**
   * Records after the newest signed checkpoint: their chain verified, but nothing signed vouches
   * for them yet (anyone who can write the log could have appended them). `mcp-auditctl verify`
   * exits non-zero for them unless --allow-unsigned-tail.
   */
  unsignedTail?: { fromSeq: number; records: number };
  /** True for a bastion.audit/1 log: no seals or checkpoint indices, so fewer checks apply. */
  legacyFormat?: boolean;
}

export class VerifyTamperedError extends Error {
  override name = 'VerifyTamperedError';
}

/**
 * Verifies a log directory or an exported bundle: bundle manifest digests, checkpoint signatures,
 * every record's hash, link and sequence, and each checkpoint's root and chain head.
 * Throws LogUnreadableError when there is nothing readable to verify.
 */
export function verifyLog(dir: string, options: VerifyOptions = {}): VerifyReport {
  const prepared = prepareVerify(dir, options);
  if ('early' in prepared) return prepared.early;
  return conclude(prepared, scanLog(dir, { checkpoints: prepared.checkpoints, fromLastCheckpoint: options.fromCheckpoint === true }));
}

/**
 * Threads `mcp-auditctl verify` checks records with by default: every core. Ranges of about a
 * megabyte go to whichever thread is free, so extra threads cost only their start-up.
 */
export function defaultVerifyThreads(): number {
  return availableParallelism();
}

/** verifyLog with record checking spread over threads (`workers` counts this one); the report is the same. */
export async function verifyLogParallel(dir: string, options: VerifyOptions & { workers: number; chunkBytes?: number }): Promise<VerifyReport> {
  const prepared = prepareVerify(dir, options);
  if ('early' in prepared) return prepared.early;
  const scan = await scanLogParallel(dir, { checkpoints: prepared.checkpoints, fromLastCheckpoint: options.fromCheckpoint === true, workers: options.workers, chunkBytes: options.chunkBytes });
  return conclude(prepared, scan);
}

interface Prepared {
  checkpoints: ParsedCheckpoint[];
  legacy: boolean;
  report: (problem: VerifyReport['problem'], scan: ScanResult, checkpoints: number) => VerifyReport;
}

function conclude(prepared: Prepared, scan: ScanResult): VerifyReport {
  const { checkpoints, report } = prepared;
  if (!scan.problem && scan.startedAfterRetention && !scan.retainedFrom.has(scan.firstSeq)) {
    const first = scan.segments[0];
    return report({ segment: first?.path ?? '(none)', line: 1, offset: 0, seq: scan.firstSeq, message: `the log starts at seq ${scan.firstSeq} but no audit.retention record accounts for the missing earlier segments: they were deleted outside retention` }, scan, checkpoints.length);
  }
  if (scan.problem) return report(scan.problem, scan, checkpoints.length);
  const tail = checkTail(scan.segments, scan.nextSeq, checkpoints, !prepared.legacy);
  const last = scan.segments[scan.segments.length - 1];
  const problem = tail.problem === undefined ? undefined : { segment: last?.path ?? '(none)', line: 0, offset: 0, seq: tail.problem.seq, message: tail.problem.message };
  const result = report(problem, scan, checkpoints.length);
  if (tail.unsignedTail !== undefined) result.unsignedTail = tail.unsignedTail;
  if (prepared.legacy) result.legacyFormat = true;
  return result;
}

function prepareVerify(dir: string, options: VerifyOptions): Prepared | { early: VerifyReport } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new LogUnreadableError(`${dir} is not a directory: pass the audit log directory (audit.dir in bastion.yaml) or an exported bundle`);
  const metadata = readMetadataOrThrow(dir);
  const bundle = existsSync(join(dir, MANIFEST_FILE)) ? checkManifest(dir) : undefined;
  const keySource = options.key !== undefined ? 'argument' : 'log directory';
  const verifier = loadKey(dir, options.key, metadata.keyName);
  const report = (problem: VerifyReport['problem'], scan: ScanResult, checkpoints: number): VerifyReport => ({ status: problem ? 'tampered' : 'clean', metadata, keySource, scan, checkpoints, problem, bundle: typeof bundle === 'object' ? bundle : undefined });
  const emptyScan = scanLog(join(dir, '.none'), { checkpoints: [] });
  if (typeof bundle === 'string') return { early: report({ segment: MANIFEST_FILE, line: 0, offset: 0, seq: 0, message: bundle }, emptyScan, 0) };
  let checkpoints: ParsedCheckpoint[];
  const legacy = metadata.schema === LEGACY_AUDIT_SCHEMA;
  try {
    checkpoints = listCheckpoints(dir).map((item) => item.checkpoint);
    const external = options.checkpointFile === undefined ? undefined : readExternalCheckpoint(options.checkpointFile);
    if (external !== undefined) checkpoints.push(external);
    for (const checkpoint of checkpoints) {
      if (checkpoint.origin !== metadata.origin) throw new VerifyTamperedError(`checkpoint of size ${checkpoint.size} is for log '${checkpoint.origin}', this log is '${metadata.origin}'`);
      verifyCheckpointSignature(checkpoint, verifier, `checkpoint of size ${checkpoint.size}`);
    }
    const bySize = new Map<number, ParsedCheckpoint>();
    for (const checkpoint of checkpoints) {
      const same = bySize.get(checkpoint.size);
      if (same !== undefined && (!same.root.equals(checkpoint.root) || same.head !== checkpoint.head)) throw new VerifyTamperedError(`two validly signed checkpoints of size ${checkpoint.size} disagree: the log was forked or rewritten`);
      bySize.set(checkpoint.size, checkpoint);
    }
    const indexProblem = legacy ? undefined : checkIndices(external === undefined ? checkpoints : checkpoints.slice(0, -1), external);
    if (indexProblem !== undefined) throw new VerifyTamperedError(indexProblem);
  } catch (error) {
    if (error instanceof LogUnreadableError) throw error;
    return { early: report({ segment: 'checkpoints', line: 0, offset: 0, seq: 0, message: (error as Error).message }, emptyScan, 0) };
  }
  return { checkpoints, legacy, report };
}

function readMetadataOrThrow(dir: string): LogMetadata {
  try {
    return readMetadata(dir);
  } catch (error) {
    throw new LogUnreadableError((error as Error).message);
  }
}

function loadKey(dir: string, key: string | undefined, keyName: string): NoteVerifier {
  const source = key ?? join(dir, PUBLIC_KEY_FILE);
  if (key === undefined && !existsSync(source)) throw new LogUnreadableError(`no public key: ${source} is missing. Pass --key with the log's public key (PEM or vkey)`);
  try {
    return loadVerifier(source, keyName);
  } catch (error) {
    throw new LogUnreadableError(`cannot use key ${source}: ${(error as Error).message}`);
  }
}

function readExternalCheckpoint(path: string): ParsedCheckpoint {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new LogUnreadableError(`cannot read checkpoint ${path}: ${(error as Error).message}`);
  }
  return parseCheckpoint(text, path);
}

export interface ManifestEntry {
  path: string;
  sha256: string;
  bytes: number;
}

export interface BundleManifest {
  schema: 'bastion.audit-bundle/1';
  logId: string;
  origin: string;
  created: string;
  records: number;
  head: string;
  files: ManifestEntry[];
}

/** Checks a bundle's manifest: every listed file present with its digest. Returns an error text or the count. */
function checkManifest(dir: string): { files: number } | string {
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')) as BundleManifest;
  } catch (error) {
    return `bundle manifest is unreadable: ${(error as Error).message}`;
  }
  if (!Array.isArray(manifest.files)) return 'bundle manifest lists no files';
  for (const entry of manifest.files) {
    const path = join(dir, entry.path);
    if (relative(dir, path).startsWith('..')) return `bundle manifest names a file outside the bundle: ${entry.path}`;
    if (!existsSync(path)) return `bundle file ${entry.path} listed in the manifest is missing`;
    const digest = sha256Hex(readFileSync(path));
    if (digest !== entry.sha256) return `bundle file ${entry.path} does not match its manifest digest (corrupt or altered bundle)`;
  }
  return { files: manifest.files.length };
}
