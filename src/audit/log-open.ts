// Open-time checks of an audit log directory: metadata, signed checkpoints, the walk of the
// tail with its seals, the cut of a torn or unsealed tail, the checkpoint mirror, and setting
// a tampered log aside. The writer (log.ts) resumes from what this finds.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { writeFileDurably } from '../storage/index.js';
import { LogProtection } from './append-only.js';
import { verifyCheckpointSignature, type ParsedCheckpoint } from './checkpoint.js';
import type { AuditConfig } from './config.js';
import { loadOrCreateSigningKey, publicKeyPem, type NoteSigner } from './keys.js';
import { CHECKPOINTS_DIR, METADATA_FILE, PUBLIC_KEY_FILE, QUARANTINE_DIR, SEGMENTS_DIR, listCheckpoints, type LogMetadata } from './layout.js';
import type { RecoveryReport } from './log-types.js';
import { scanLog, type ScanProblem, type ScanResult } from './scan.js';
import { AUDIT_SCHEMA, AuditEvent, LEGACY_AUDIT_SCHEMA, type AuditFields, type JsonValue } from './schema.js';
import { SealTracker, deriveLogKeys, loadOrCreateLogSecret, type LogKeys } from './seal.js';
import { archiveLegacyLog, checkCheckpointIndices, cutUnsealedTail, moveAside, type TailCut } from './tail.js';
import { compareWithWitness, notesInDirectory, supersedeMirror } from './witness.js';

/** What open() found in the directory, after repairing what may be repaired. */
export interface OpenInspection {
  signer: NoteSigner;
  keys: LogKeys;
  metadata: LogMetadata;
  attributes: LogProtection;
  /** Where a bastion.audit/1 log was archived, if it was. */
  archived: JsonValue | undefined;
  checkpoints: ParsedCheckpoint[];
  lastSize: number;
  lastIndex: number;
  recovery: RecoveryReport;
  tracker: SealTracker;
  scan: ScanResult;
  cut: TailCut | undefined;
  /** Tampering found: the caller refuses to open, or sets the log aside (setAsideTampered). */
  problem: ScanProblem | undefined;
}

function macKeyPath(options: AuditConfig): string {
  return options.checkpoint.macKeyFile ?? join(dirname(options.checkpoint.keyFile), 'audit-mac.key');
}

/** The checkpoint signer and the log's derived keys, for a writer taking over a log opened elsewhere (AuditLog.adopt). */
export function loadLogKeys(options: AuditConfig, logId: string): { signer: NoteSigner; keys: LogKeys } {
  const { signer } = loadOrCreateSigningKey(options.checkpoint.keyFile, options.checkpoint.keyName);
  return { signer, keys: deriveLogKeys(loadOrCreateLogSecret(macKeyPath(options)), logId) };
}

export function inspectLog(options: AuditConfig, now: () => Date): OpenInspection {
  const dir = options.dir;
  const { signer } = loadOrCreateSigningKey(options.checkpoint.keyFile, options.checkpoint.keyName);
  const secret = loadOrCreateLogSecret(macKeyPath(options));
  let metadata = loadOrCreateMetadata(dir, options, signer);
  // The writer lifts the attributes to check and repair the tail (and to quarantine a damaged log); they are set again after open.
  const attributes = LogProtection.prepare(options.appendOnly ?? 'auto', dir, options.checkpoint.mirrorDir);
  attributes.releaseSegments();
  writeFileSync(join(dir, PUBLIC_KEY_FILE), publicKeyPem(signer), { mode: 0o644 });
  let archived: JsonValue | undefined;
  if (metadata.schema !== AUDIT_SCHEMA && metadata.schema !== LEGACY_AUDIT_SCHEMA) throw new Error(`${join(dir, METADATA_FILE)} says the log is in format '${metadata.schema}', which this Bastion does not know (it writes ${AUDIT_SCHEMA}): use the Bastion version that wrote it`);
  if (metadata.schema === LEGACY_AUDIT_SCHEMA) {
    // An older log has no seals: its tail cannot be told from forged records, so it is kept as it is, aside.
    attributes.releaseCheckpoints();
    archived = archiveLegacyLog(dir, now());
    metadata = { ...metadata, schema: AUDIT_SCHEMA };
    writeFileDurably(join(dir, METADATA_FILE), `${JSON.stringify(metadata, null, 2)}\n`, 0o644);
  }
  const keys = deriveLogKeys(secret, metadata.logId);
  const loaded = loadSignedCheckpoints(dir, signer, metadata, options.checkpoint.keyFile);
  const checkpoints = loaded.checkpoints;
  const lastSize = checkpoints.reduce((max, item) => Math.max(max, item.size), 0);
  const lastIndex = checkpoints.reduce((max, item) => Math.max(max, item.index ?? 0), 0);
  const recovery: RecoveryReport = { truncatedBytes: 0, tamperRestart: false };
  const walk = (): { tracker: SealTracker; scan: ScanResult } => {
    const tracker = new SealTracker(keys.seal, metadata.logId, lastSize);
    return { tracker, scan: scanLog(dir, { checkpoints, fromLastCheckpoint: true, onRecord: tracker.observe }) };
  };
  let { tracker, scan } = walk();
  let problem = loaded.problem ?? tracker.problem ?? (scan.problem?.tornTail === true ? undefined : scan.problem);
  let cut: TailCut | undefined;
  if (problem === undefined && (tracker.firstUnsealed !== undefined || scan.problem !== undefined)) {
    const outcome = attributes.repairing(() => cutUnsealedTail(dir, tracker.firstUnsealed, scan.problem, scan.nextSeq, now()));
    if ('problem' in outcome) problem = outcome.problem;
    else {
      cut = outcome;
      recovery.truncatedBytes = cut.bytes;
      recovery.unsealedRecords = cut.records;
      ({ tracker, scan } = walk());
      problem = tracker.problem ?? scan.problem;
    }
  }
  problem ??= checkCheckpointIndices(dir, checkpoints, tracker.announced, lastIndex);
  // A leftover of issue 16: the mirror holds copies an attacker of this directory may not reach.
  const mirror = options.checkpoint.mirrorDir;
  if (problem === undefined && mirror !== undefined) problem = mirrorProblem(dir, mirror, metadata.origin, signer, checkpoints);
  return { signer, keys, metadata, attributes, archived, checkpoints, lastSize, lastIndex, recovery, tracker, scan, cut, problem };
}

/** Moves a tampered log (and the mirror's copies) aside for a new chain; returns the tamper_restart record. */
export function setAsideTampered(options: AuditConfig, found: OpenInspection, problem: ScanProblem, now: () => Date): AuditFields {
  const { attributes } = found;
  attributes.releaseCheckpoints();
  const quarantine = moveAside(options.dir, QUARANTINE_DIR, now());
  attributes.releaseMirror();
  const mirror = options.checkpoint.mirrorDir;
  const superseded = mirror === undefined ? undefined : supersedeMirror(mirror, now());
  if (superseded !== undefined) {
    attributes.freezeSuperseded(superseded);
    quarantine.files.push({ mirror_superseded: superseded });
  }
  found.recovery.tamperRestart = true;
  return { kind: 'event', event: AuditEvent.TamperRestart, info: { problem: { ...problem }, quarantine, previous_checkpoint: lastCheckpointInfo(found.checkpoints) } };
}

/** The record that says what was cut off the tail at open. */
export function tailCutRecord(cut: TailCut): AuditFields {
  const info = { reason: cut.records > 0 ? 'complete records after the last batch seal: a batch cut by a crash before its seal reached the disk, or records appended without the MAC key. They were not signed' : 'torn tail after a crash', segment: basename(cut.segment), offset: cut.offset, bytes_removed: cut.bytes, removed_sha256: cut.sha256, unsealed_records: cut.records, evidence: cut.evidence ?? null };
  return { kind: 'event', event: cut.records > 0 ? AuditEvent.UnsealedTail : AuditEvent.Recovery, info };
}

function loadOrCreateMetadata(dir: string, options: AuditConfig, signer: NoteSigner): LogMetadata {
  const path = join(dir, METADATA_FILE);
  if (existsSync(path)) {
    const metadata = JSON.parse(readFileSync(path, 'utf8')) as LogMetadata;
    if (metadata.keyName !== signer.name) throw new Error(`${path} says checkpoints are signed by '${metadata.keyName}' but audit.checkpoint.keyName is '${signer.name}'. Use the same key name, or a new log directory`);
    return metadata;
  }
  const logId = randomBytes(8).toString('hex');
  const metadata: LogMetadata = { schema: AUDIT_SCHEMA, logId, origin: options.origin ?? `bastion.local/audit/${logId}`, keyName: signer.name, created: new Date().toISOString() };
  writeFileDurably(join(dir, METADATA_FILE), `${JSON.stringify(metadata, null, 2)}\n`, 0o644);
  return metadata;
}

/** Checkpoints that parse, belong to this log and carry our signature; anything else is a problem to report. */
function loadSignedCheckpoints(dir: string, signer: NoteSigner, metadata: LogMetadata, keyFile: string): { checkpoints: ParsedCheckpoint[]; problem?: ScanProblem } {
  const where = (message: string): ScanProblem => ({ segment: join(dir, CHECKPOINTS_DIR), line: 0, offset: 0, seq: 0, message, tornTail: false });
  let checkpoints: ParsedCheckpoint[];
  try {
    checkpoints = listCheckpoints(dir).map((item) => item.checkpoint);
  } catch (error) {
    return { checkpoints: [], problem: where((error as Error).message) };
  }
  for (const checkpoint of checkpoints) {
    if (checkpoint.origin !== metadata.origin) return { checkpoints: [], problem: where(`checkpoint of size ${checkpoint.size} is for log '${checkpoint.origin}', but ${METADATA_FILE} says this log is '${metadata.origin}'`) };
    try {
      verifyCheckpointSignature(checkpoint, signer, `checkpoint of size ${checkpoint.size}`);
    } catch (error) {
      return { checkpoints: [], problem: where(`${(error as Error).message}. If the signing key ${keyFile} was replaced on purpose, restore the previous key, or archive this log (mcp-auditctl export) and start a new log directory`) };
    }
  }
  return { checkpoints };
}

/** A fork or truncation against the mirror directory's checkpoints, as a tamper problem. */
function mirrorProblem(dir: string, mirror: string, origin: string, signer: NoteSigner, checkpoints: readonly ParsedCheckpoint[]): ScanProblem | undefined {
  const report = compareWithWitness(dir, origin, notesInDirectory(mirror), signer, checkpoints);
  // A missing local checkpoint whose records are intact is signed again after open (resignAnnounced).
  const finding = report.findings.find((item) => item.kind !== 'missing-checkpoint');
  if (finding === undefined) return undefined;
  return { segment: join(dir, SEGMENTS_DIR), line: 0, offset: 0, seq: finding.size, message: `${finding.message} (compared with the checkpoint mirror ${mirror}). The mirror's copy is the one to trust; compare them with 'mcp-auditctl verify --witness ${mirror}'`, tornTail: false };
}

function lastCheckpointInfo(checkpoints: readonly ParsedCheckpoint[]): JsonValue {
  const last = checkpoints[checkpoints.length - 1];
  return last === undefined ? null : { size: last.size, root: last.root.toString('base64'), head: last.head };
}
