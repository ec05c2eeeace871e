import { randomBytes, timingSafeEqual } from 'node:crypto';
import { constants as fsConstants, closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fsyncDirectory, writeFileDurably } from '../storage/index.js';
import { LogProtection, type AppendOnlyStatus } from './append-only.js';
import { chainMembers, encodeLine, sha256Hex } from './canonical.js';
import { signCheckpoint, verifyCheckpointSignature, type CheckpointBody, type ParsedCheckpoint } from './checkpoint.js';
import type { AuditConfig } from './config.js';
import { loadOrCreateSigningKey, publicKeyPem, type NoteSigner, type NoteVerifier } from './keys.js';
import { CHECKPOINTS_DIR, METADATA_FILE, PUBLIC_KEY_FILE, QUARANTINE_DIR, SEGMENTS_DIR, checkpointName, listCheckpoints, listSegments, segmentName, type LogMetadata } from './layout.js';
import { MerkleFrontier, leafHashHex } from './merkle.js';
import { scanLog, type ScanProblem } from './scan.js';
import { AUDIT_SCHEMA, AuditEvent, LEGACY_AUDIT_SCHEMA, ZERO_HASH, checkFields, type AuditFields, type JsonValue } from './schema.js';
import { SealTracker, deriveLogKeys, keyedDigest, loadOrCreateLogSecret, sealMac, sealOf, type LogKeys } from './seal.js';
import { archiveLegacyLog, checkCheckpointIndices, cutUnsealedTail, moveAside, type TailCut } from './tail.js';
import { compareWithWitness, notesInDirectory, supersedeMirror } from './witness.js';

export interface AppendResult {
  seq: number;
  hash: string;
  /** True when async mode dropped the record because the queue was full (its count is logged later). */
  dropped?: boolean;
}

/** open() found a chain break before the last checkpointed record. */
export class AuditTamperError extends Error {
  override name = 'AuditTamperError';
  constructor(readonly problem: ScanProblem) {
    super(`audit log tampering detected in ${problem.segment} line ${problem.line} (byte ${problem.offset}, seq ${problem.seq}): ${problem.message}. Bastion will not write to a log whose history was changed. Inspect it with 'mcp-auditctl verify', keep a copy as evidence, then restart with audit.startNewSegmentAfterTamper: true to start a new chain (the damaged files are moved to quarantine/).`);
  }
}

/** The log cannot take more records right now (async mode, queue full, onFull: deny) or at all. */
export class AuditUnavailableError extends Error {
  override name = 'AuditUnavailableError';
}

interface RecordEntry {
  type: 'record';
  /** The line and its newline. */
  data: Buffer;
  seq: number;
  hash: string;
  resolve?: (result: AppendResult) => void;
  reject?: (error: Error) => void;
}
type QueueEntry = RecordEntry | { type: 'rotate'; path: string } | { type: 'checkpoint'; body: CheckpointBody };

export interface AuditLogOptions extends AuditConfig {
  /** Clock, for tests of rotation and retention by age. */
  now?: () => Date;
  /** Written as `replica` into every record (cluster.replicaId), so merged logs of replicas tell who wrote what. */
  replica?: string;
}

/** Counters for metrics and benchmarks. */
export interface WriterStats {
  /** Synced write rounds (write + fdatasync). */
  batches: number;
  records: number;
  /** Wall time spent waiting for synced writes, in milliseconds. */
  syncMillis: number;
  largestBatch: number;
  dropped: number;
}

export interface RecoveryReport {
  truncatedBytes: number;
  tamperRestart: boolean;
  /** Complete records after the last seal that were cut off the chain (kept in quarantine/). */
  unsealedRecords?: number;
  /** Sizes of checkpoints the sealed records announced but that were missing, signed again. */
  resignedCheckpoints?: number[];
  /** A bastion.audit/1 log was moved to archive/ and a new chain started. */
  formatUpgrade?: boolean;
}

/**
 * The single writer of one audit log directory. Appends are chained and Merkle-hashed in call
 * order, then written in batches: one synced write per batch, whatever the number of
 * concurrent callers (group commit). In durable mode an append resolves only after its batch is
 * synced.
 */
export class AuditLog {
  private pending: QueueEntry[] = [];
  private queuedRecords = 0;
  /** The batch being written, if any: one at a time, so the file holds the batches in order. */
  private flushing: Promise<void> | undefined;
  /** Batches written whose fdatasync has not returned yet (at most SYNCS_IN_FLIGHT). */
  private syncsInFlight = 0;
  /** Settles once every fdatasync started so far has returned and its records were acknowledged (or rejected); never rejects. */
  private syncTail: Promise<void> = Promise.resolve();
  private batchWindow: NodeJS.Immediate | undefined;
  private failure: Error | undefined;
  private closed = false;
  /** The last record timestamp and the millisecond it is for. */
  private stampMillis = -1;
  private stamp = '';
  private dropped = 0;
  private droppedSince: string | undefined;
  private sinceCheckpoint = 0;
  private lastCheckpointSize = 0;
  /** Index of the newest checkpoint (1 for a log's first). */
  private checkpointIndex = 0;
  /** Records queued since the last seal. */
  private unsealed = 0;
  private segmentBytes = 0;
  private segmentStartedMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private handle: FileHandle | undefined;
  /** The same segment opened with O_DSYNC (where the platform has it): a batch written through it is durable when the write returns. */
  private syncedHandle: FileHandle | undefined;
  private handlePath = '';
  /** A record was appended while a batch was being written or synced: the next batch is written for overlap, not with O_DSYNC. */
  private appendedWhileBusy = false;
  /** Lines chained but not yet added to the Merkle frontier: hashed while a batch is being synced. */
  private unhashed: Buffer[] = [];
  private readonly counters: WriterStats = { batches: 0, records: 0, syncMillis: 0, largestBatch: 0, dropped: 0 };
  private readonly commitListeners = new Set<() => void>();
  /** chattr +a / +i on the segments and checkpoints, or nothing (audit.appendOnly). */
  private attributes: LogProtection;
  /** Checkpoint notes being made immutable, one after the other, off the write path. */
  private freezing: Promise<void> = Promise.resolve();

  private constructor(
    readonly options: AuditLogOptions,
    readonly metadata: LogMetadata,
    private readonly signer: NoteSigner,
    private readonly keys: LogKeys,
    private nextSeq: number,
    private head: string,
    private readonly frontier: MerkleFrontier,
    private segmentPath: string,
    readonly recovery: RecoveryReport,
  ) {
    this.attributes = LogProtection.disabled(options.dir);
  }

  static async open(options: AuditLogOptions): Promise<AuditLog> {
    const dir = options.dir;
    for (const sub of ['', SEGMENTS_DIR, CHECKPOINTS_DIR]) mkdirSync(join(dir, sub), { recursive: true, mode: 0o700 });
    const releaseLock = acquireWriterLock(dir);
    try {
      return await AuditLog.openLocked(options);
    } catch (error) {
      releaseLock();
      throw error;
    }
  }

  private static async openLocked(options: AuditLogOptions): Promise<AuditLog> {
    const dir = options.dir;
    const now = options.now ?? (() => new Date());
    const { signer } = loadOrCreateSigningKey(options.checkpoint.keyFile, options.checkpoint.keyName);
    const secret = loadOrCreateLogSecret(options.checkpoint.macKeyFile ?? join(dirname(options.checkpoint.keyFile), 'audit-mac.key'));
    let metadata = loadOrCreateMetadata(dir, options, signer);
    // The writer lifts the attributes to check and repair the tail (and to quarantine a damaged log); they are set again below.
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
    const walk = (): { tracker: SealTracker; scan: ReturnType<typeof scanLog> } => {
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
    let log: AuditLog;
    if (problem !== undefined) {
      if (!options.startNewSegmentAfterTamper) throw new AuditTamperError(problem);
      attributes.releaseCheckpoints();
      const quarantine = moveAside(dir, QUARANTINE_DIR, now());
      attributes.releaseMirror();
      const superseded = mirror === undefined ? undefined : supersedeMirror(mirror, now());
      if (superseded !== undefined) {
        attributes.freezeSuperseded(superseded);
        quarantine.files.push({ mirror_superseded: superseded });
      }
      recovery.tamperRestart = true;
      log = new AuditLog(options, metadata, signer, keys, 0, ZERO_HASH, new MerkleFrontier(), '', recovery);
      log.attributes = attributes;
      await log.startSegment('tamper_restart');
      await log.append({ kind: 'event', event: AuditEvent.TamperRestart, info: { problem: { ...problem }, quarantine, previous_checkpoint: lastCheckpointInfo(checkpoints) } });
    } else {
      const segments = listSegments(dir);
      const last = segments[segments.length - 1];
      log = new AuditLog(options, metadata, signer, keys, scan.nextSeq, scan.head, scan.frontier, last?.path ?? '', recovery);
      log.attributes = attributes;
      log.lastCheckpointSize = lastSize;
      log.checkpointIndex = lastIndex;
      if (last === undefined || scan.lastSegmentValidBytes === 0) {
        if (last !== undefined) unlinkSync(last.path);
        await log.startSegment(last === undefined ? (archived === undefined ? 'new_log' : 'format_upgrade') : 'recovery');
      } else {
        log.segmentBytes = scan.lastSegmentValidBytes;
        log.segmentStartedMs = Date.parse(scan.lastSegmentStartedAt ?? '') || now().getTime();
        await log.openSegment(last.path);
      }
      // A crash between a sealed batch and its checkpoint file leaves an announced checkpoint missing (as does deleting it).
      const resigned = log.resignAnnounced(checkpoints, tracker.announced);
      if (resigned.length > 0) recovery.resignedCheckpoints = resigned;
      log.sinceCheckpoint = log.nextSeq - log.lastCheckpointSize;
      if (archived !== undefined) {
        recovery.formatUpgrade = true;
        await log.append({ kind: 'event', event: AuditEvent.FormatUpgrade, info: { reason: 'the log was written in format bastion.audit/1, which has no batch seals: its records after the last checkpoint could not be authenticated. It was moved aside unchanged (verify it with mcp-auditctl verify --log <archive dir>)', archive: archived } });
      }
      if (cut !== undefined) {
        const info = { reason: cut.records > 0 ? 'complete records after the last batch seal: a batch cut by a crash before its seal reached the disk, or records appended without the MAC key. They were not signed' : 'torn tail after a crash', segment: basename(cut.segment), offset: cut.offset, bytes_removed: cut.bytes, removed_sha256: cut.sha256, unsealed_records: cut.records, evidence: cut.evidence ?? null };
        await log.append({ kind: 'event', event: cut.records > 0 ? AuditEvent.UnsealedTail : AuditEvent.Recovery, info });
        if (cut.records > 0) process.emitWarning(`audit log ${dir}: ${cut.records} record(s) after the last batch seal were cut off the chain and kept in ${cut.evidence ?? 'quarantine'}; they may be forged`, { code: 'BASTION_AUDIT_UNSEALED_TAIL' });
      }
      if (resigned.length > 0) await log.append({ kind: 'event', event: AuditEvent.Recovery, info: { reason: 'checkpoints announced by sealed records were missing (a crash before the checkpoint file was written, or deleted): signed again after their records\' seals verified', sizes: resigned } });
      // The tail's seals verified: sign it now rather than at the next interval.
      if (log.sinceCheckpoint > 0) await log.checkpoint();
    }
    attributes.protect(log.handlePath);
    log.startTimer();
    return log;
  }

  get size(): number {
    return this.nextSeq;
  }

  get chainHead(): string {
    return this.head;
  }

  get dir(): string {
    return this.options.dir;
  }

  /** Whether the segments and checkpoints carry chattr +a / +i, and why not where they do not. */
  get appendOnly(): AppendOnlyStatus {
    return this.attributes.status;
  }

  get stats(): WriterStats {
    return { ...this.counters };
  }

  /** Why the log stopped accepting records, once it has (readiness probes report it). */
  get failedWith(): Error | undefined {
    return this.failure;
  }

  /**
   * Calls `listener` after every synced batch and every checkpoint written. It is only a wake-up:
   * audit sinks then read the segment files, so they ship what is on disk and nothing else.
   * Returns the unsubscribe function.
   */
  onCommit(listener: () => void): () => void {
    this.commitListeners.add(listener);
    return () => this.commitListeners.delete(listener);
  }

  private notifyCommit(): void {
    for (const listener of this.commitListeners) {
      try {
        listener();
      } catch {
        // A sink's wake-up must never fail a write.
      }
    }
  }

  /** Appends one record. Resolves (durable mode) once it is on disk. */
  async append(fields: AuditFields): Promise<AppendResult> {
    if (this.failure) throw new AuditUnavailableError(`audit log unavailable: ${this.failure.message}. Calls must be denied until the gateway restarts with a writable log`);
    if (this.closed) throw new AuditUnavailableError('audit log is closed');
    checkFields(fields);
    if (this.options.mode === 'async' && this.queuedRecords >= this.options.queue.maxRecords) {
      if (this.options.queue.onFull === 'deny') throw new AuditUnavailableError(`audit queue is full (${this.options.queue.maxRecords} records waiting for disk): the call is denied so that no record is lost`);
      this.dropped += 1;
      this.counters.dropped += 1;
      this.droppedSince ??= this.timestamp();
      return { seq: -1, hash: '', dropped: true };
    }
    this.rotateIfDue();
    const entry = this.enqueueRecord(fields);
    if (this.options.mode === 'async') return { seq: entry.seq, hash: entry.hash };
    return new Promise<AppendResult>((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
  }

  /** Records a notable event: gateway start/stop, config load, key or policy change, quarantine, alert. */
  event(type: string, info: { [key: string]: JsonValue } = {}): Promise<AppendResult> {
    return this.append({ kind: 'event', event: type, info });
  }

  /** Writes a checkpoint for everything appended so far (after it is on disk). */
  async checkpoint(): Promise<void> {
    this.queueCheckpoint();
    await this.flush();
  }

  /** Waits until everything queued so far is on disk (and its checkpoint notes are immutable, where they are made so). */
  async flush(): Promise<void> {
    while ((this.flushing !== undefined || this.pending.length > 0 || this.syncsInFlight > 0) && !this.failure) {
      if (this.flushing === undefined && this.pending.length > 0) this.writeNext();
      // With SYNCS_IN_FLIGHT syncs running, writeNext starts nothing: a returning sync does.
      await (this.flushing ?? this.syncTail);
    }
    await this.freezing;
    if (this.failure) throw new AuditUnavailableError(`audit log unavailable: ${this.failure.message}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    if (!this.failure) {
      if (this.sinceCheckpoint > 0) this.queueCheckpoint();
      await this.flush().catch(() => undefined);
    }
    this.closed = true;
    await this.freezing;
    await this.handle?.close();
    await this.syncedHandle?.close();
    this.handle = undefined;
    this.syncedHandle = undefined;
    releaseWriterLock(this.options.dir);
  }

  private timestamp(): string {
    if (this.options.now !== undefined) return this.options.now().toISOString();
    // Formatting a Date costs about a microsecond; records appended within one millisecond share it.
    const millis = Date.now();
    if (millis !== this.stampMillis) {
      this.stampMillis = millis;
      this.stamp = new Date(millis).toISOString();
    }
    return this.stamp;
  }

  /**
   * `hmac-sha256:` digest of a canonical JSON text under this log's digest key, for args_digest,
   * output_digest and prompt_digest: a guessed argument, output or prompt can be confirmed only by
   * someone holding the key.
   */
  digestText(canonicalJson: string): string {
    return keyedDigest(this.keys.digest, canonicalJson);
  }

  /**
   * Whether a seal record line carries this log's MAC (the console's record badge; the writer's
   * open-time scan checks the same). Only the gateway holds the key, so only it can answer.
   */
  sealVerifies(line: Buffer, seq: number): boolean {
    const seal = sealOf(line);
    const members = chainMembers(line);
    if (seal === undefined || typeof members === 'string') return false;
    const expected = sealMac(this.keys.seal, this.metadata.logId, seq, members.prev, seal.checkpoint);
    return seal.mac.length === expected.length && timingSafeEqual(Buffer.from(seal.mac, 'latin1'), Buffer.from(expected, 'latin1'));
  }

  /** The public side of the checkpoint key, to check checkpoint signatures. */
  get checkpointVerifier(): NoteVerifier {
    return this.signer;
  }

  private enqueueRecord(fields: AuditFields): RecordEntry {
    const entry = this.pushRecord(fields);
    if (this.sinceCheckpoint >= this.options.checkpoint.everyRecords) this.queueCheckpoint();
    this.kick();
    return entry;
  }

  /** Ends the records queued so far with a seal (seal.ts); `checkpoint` is the index of the checkpoint it closes. */
  private pushSeal(checkpoint?: number): void {
    const mac = sealMac(this.keys.seal, this.metadata.logId, this.nextSeq, this.head, checkpoint);
    this.pushRecord({ kind: 'event', event: AuditEvent.Seal, info: checkpoint === undefined ? { mac } : { mac, checkpoint } });
    this.unsealed = 0;
  }

  /** Chains, encodes and queues one record; the caller decides about checkpoints and starting a write. */
  private pushRecord(given: AuditFields): RecordEntry {
    const replica = this.options.replica;
    const fields = replica === undefined || given.replica !== undefined ? given : { ...given, replica };
    const built = encodeLine(fields, fields.ts ?? this.timestamp(), this.nextSeq, this.head);
    const data = built.bytes;
    const entry: RecordEntry = { type: 'record', data, seq: this.nextSeq, hash: built.hash };
    this.unhashed.push(data.subarray(0, data.length - 1));
    this.head = built.hash;
    this.nextSeq += 1;
    this.segmentBytes += data.length;
    this.pending.push(entry);
    this.queuedRecords += 1;
    this.sinceCheckpoint += 1;
    this.unsealed += 1;
    return entry;
  }

  /** Brings the Merkle frontier up to every record appended so far. */
  private catchUpFrontier(): void {
    for (const line of this.unhashed) this.frontier.append(leafHashHex(line));
    this.unhashed = [];
  }

  private queueCheckpoint(): void {
    if (this.sinceCheckpoint === 0) return;
    // The checkpoint's last record is a seal naming it: a verifier can then tell when it is missing.
    this.checkpointIndex += 1;
    this.pushSeal(this.checkpointIndex);
    this.catchUpFrontier();
    this.pending.push({ type: 'checkpoint', body: { origin: this.metadata.origin, size: this.nextSeq, root: this.frontier.root(), head: this.head, timestamp: this.timestamp(), index: this.checkpointIndex } });
    this.sinceCheckpoint = 0;
    this.kick();
  }

  private rotateIfDue(): void {
    const tooBig = this.segmentBytes >= this.options.rotation.maxBytes;
    const tooOld = (this.options.now ?? (() => new Date()))().getTime() - this.segmentStartedMs >= this.options.rotation.maxAgeSeconds * 1000;
    if (tooBig || tooOld) this.queueSegmentStart(tooBig ? 'size' : 'age');
  }

  private queueSegmentStart(reason: string): void {
    // Records before a rotation are acknowledged before the batch ends: they need their seal first.
    if (this.unsealed > 0) this.pushSeal();
    const path = join(this.options.dir, SEGMENTS_DIR, segmentName(this.nextSeq));
    this.pending.push({ type: 'rotate', path });
    this.segmentPath = path;
    this.segmentBytes = 0;
    this.segmentStartedMs = (this.options.now ?? (() => new Date()))().getTime();
    this.catchUpFrontier();
    const frontier = this.frontier.toJSON();
    this.enqueueRecord({ kind: 'event', event: AuditEvent.SegmentStart, info: { reason, segment: basename(path), log_id: this.metadata.logId, origin: this.metadata.origin, frontier } });
  }

  private async startSegment(reason: string): Promise<void> {
    this.queueSegmentStart(reason);
    await this.flush();
  }

  private async openSegment(path: string): Promise<void> {
    this.handle = await open(path, SEGMENT_APPEND_FLAGS, 0o600);
    this.syncedHandle = await openSynced(path);
    this.handlePath = path;
    this.segmentPath = path;
  }

  /**
   * Starts writing what is pending, unless a batch is being written: records that arrive meanwhile
   * form the next batch. A batch normally waits for the end of this turn of the event loop, so
   * every append issued in the turn joins it; once EARLY_WRITE_ENTRIES are pending it starts at
   * once, so the disk syncs one part while this thread builds the rest instead of after it.
   */
  private kick(): void {
    if (this.flushing !== undefined || this.syncsInFlight > 0) this.appendedWhileBusy = true;
    if (this.flushing !== undefined || this.failure) return;
    if (this.pending.length >= EARLY_WRITE_ENTRIES) this.writeNext();
    else this.batchWindow ??= setImmediate(() => this.writeNext());
  }

  private writeNext(): void {
    if (this.batchWindow !== undefined) clearImmediate(this.batchWindow);
    this.batchWindow = undefined;
    if (this.flushing !== undefined || this.failure || this.pending.length === 0 || this.syncsInFlight >= SYNCS_IN_FLIGHT) return;
    // Every batch ends with a seal, written in the same synced write as the records it covers.
    if (this.unsealed > 0) this.pushSeal();
    const batch = this.pending;
    this.pending = [];
    if (batch.every((entry): entry is RecordEntry => entry.type === 'record')) {
      // An idle log (one call at a time) writes with O_DSYNC: one thread-pool round trip instead of
      // two. Under load it writes and syncs apart, so that the next batch can overlap the sync.
      const synced = this.appendedWhileBusy ? undefined : this.syncedHandle;
      this.appendedWhileBusy = false;
      // writeRecords yields at its first await, before anything it does can append and kick: this is set first.
      this.flushing = this.writeRecords(batch, synced).then(
        () => this.batchWritten(),
        (error: unknown) => {
          this.fail(error instanceof Error ? error : new Error(String(error)));
          this.batchWritten();
        },
      );
      return;
    }
    // A rotation or a checkpoint waits for every sync in flight: it closes the segment, or signs what is on disk.
    this.flushing = this.syncTail.then(() => this.writeBatchUnlessFailed(batch)).then(
      (lastChunk) => {
        this.batchWritten();
        this.notifyCommit();
        // Acknowledged only now that the next batch may start: the callers' next appends can then begin it early.
        for (const entry of lastChunk) entry.resolve?.({ seq: entry.seq, hash: entry.hash });
      },
      (error: unknown) => {
        // Failed first, so that nothing pending is written after a failed write.
        this.fail(error instanceof Error ? error : new Error(String(error)));
        this.batchWritten();
      },
    );
  }

  private batchWritten(): void {
    this.flushing = undefined;
    if (this.failure) return;
    this.recordDropsIfAny();
    // Whatever arrived during the write goes now: waiting longer would only add latency.
    if (this.pending.length > 0) this.writeNext();
  }

  /**
   * The common batch, records only: written (in order: one write at a time), then synced while
   * the next batch may already be written. Its records are acknowledged once its fdatasync has
   * returned and every earlier batch's has too, so an acknowledged record is always preceded on
   * disk by every record before it. Syncs of consecutive batches overlap on the disk (measured
   * here: two in flight take less time each than one alone), which is what lets the upstream's
   * work for one group of calls overlap the synced write of another's records.
   */
  private async writeRecords(batch: RecordEntry[], syncedHandle: FileHandle | undefined): Promise<void> {
    const handle = this.handle;
    try {
      if (handle === undefined) throw new Error('no open segment');
      const started = performance.now();
      // Both handles append to the same file; writes are one at a time, so the order holds.
      const written = writeFully(syncedHandle ?? handle, batch.length === 1 ? (batch[0] as RecordEntry).data : Buffer.concat(batch.map((entry) => entry.data)));
      // The thread pool writes; meanwhile this thread does the Merkle hashing it owes.
      this.catchUpFrontier();
      await written;
      // An O_DSYNC write is durable now; the chain below still waits for every earlier batch's sync.
      const synced = syncedHandle === undefined ? handle.datasync() : Promise.resolve();
      const earlier = this.syncTail;
      this.syncsInFlight += 1;
      this.syncTail = Promise.all([earlier, synced]).then(
        () => this.batchSynced(batch, started),
        (error: unknown) => this.batchSynced(batch, started, error instanceof Error ? error : new Error(String(error))),
      );
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      for (const entry of batch) entry.reject?.(failure);
      throw failure;
    }
  }

  /** A batch's fdatasync returned (every earlier one has too): acknowledge its records, or fail them and the log. */
  private batchSynced(batch: RecordEntry[], started: number, error?: Error): void {
    this.syncsInFlight -= 1;
    this.queuedRecords -= batch.length;
    if (error !== undefined) this.fail(error);
    // An earlier batch's failed sync fails this one too: its records would follow a gap.
    const failure = this.failure;
    if (failure !== undefined) {
      for (const entry of batch) entry.reject?.(new AuditUnavailableError(`audit log unavailable: ${failure.message}`));
      return;
    }
    this.counters.syncMillis += performance.now() - started;
    this.counters.batches += 1;
    this.counters.records += batch.length;
    this.counters.largestBatch = Math.max(this.counters.largestBatch, batch.length);
    this.notifyCommit();
    for (const entry of batch) entry.resolve?.({ seq: entry.seq, hash: entry.hash });
    this.recordDropsIfAny();
    if (this.flushing === undefined && this.pending.length > 0) this.writeNext();
  }

  /** writeBatch, once the syncs it waited for have returned; if one of them failed, its records fail instead. */
  private async writeBatchUnlessFailed(batch: QueueEntry[]): Promise<RecordEntry[]> {
    const failure = this.failure;
    if (failure === undefined) return this.writeBatch(batch);
    for (const entry of batch) if (entry.type === 'record') entry.reject?.(new AuditUnavailableError(`audit log unavailable: ${failure.message}`));
    return [];
  }

  /**
   * Writes a batch, syncing before each checkpoint or rotation in it and at its end. Records synced
   * before its end are acknowledged here; those of the last chunk are returned for the caller to
   * acknowledge.
   */
  private async writeBatch(batch: QueueEntry[]): Promise<RecordEntry[]> {
    let chunk: Buffer[] = [];
    let waiting: RecordEntry[] = [];
    const syncChunk = async (): Promise<void> => {
      if (chunk.length === 0) return;
      if (this.handle === undefined) throw new Error('no open segment');
      const handle = this.handle;
      const started = performance.now();
      const io = (async () => {
        await writeFully(handle, chunk.length === 1 ? (chunk[0] as Buffer) : Buffer.concat(chunk));
        await handle.datasync();
      })();
      // The thread pool writes and syncs; meanwhile this thread does the Merkle hashing it owes.
      this.catchUpFrontier();
      await io;
      this.counters.syncMillis += performance.now() - started;
      this.counters.batches += 1;
      this.counters.records += chunk.length;
      this.counters.largestBatch = Math.max(this.counters.largestBatch, chunk.length);
      this.queuedRecords -= chunk.length;
      chunk = [];
    };
    const acknowledge = (): void => {
      for (const entry of waiting) entry.resolve?.({ seq: entry.seq, hash: entry.hash });
      waiting = [];
    };
    try {
      for (const entry of batch) {
        if (entry.type === 'record') {
          chunk.push(entry.data);
          waiting.push(entry);
        } else if (entry.type === 'rotate') {
          await syncChunk();
          acknowledge();
          await this.handle?.close();
          await this.syncedHandle?.close();
          const closed = this.handlePath;
          this.handle = await open(entry.path, SEGMENT_CREATE_FLAGS, 0o600);
          this.syncedHandle = await openSynced(entry.path);
          this.handlePath = entry.path;
          fsyncDirectory(join(this.options.dir, SEGMENTS_DIR));
          await this.attributes.rotated(closed, entry.path);
        } else {
          await syncChunk();
          acknowledge();
          const written = this.writeCheckpoint(entry.body);
          // Off the write path: a chattr run takes milliseconds (tens on a loaded host) that no
          // synced batch should wait for. A failure fails the log, as a failed write does.
          this.freezing = this.freezing
            .then(() => this.attributes.checkpointWritten(written.local, written.mirrored))
            .catch((error: unknown) => {
              if (!this.failure) this.fail(error instanceof Error ? error : new Error(String(error)));
            });
        }
      }
      await syncChunk();
      return waiting;
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      for (const entry of waiting) entry.reject?.(failure);
      for (const entry of batch) if (entry.type === 'record' && !waiting.includes(entry)) entry.reject?.(failure);
      throw failure;
    }
  }

  /**
   * Signs again the checkpoints that sealed records announce but that are missing (checked
   * consecutive by checkCheckpointIndices); returns their sizes.
   */
  resignAnnounced(checkpoints: readonly ParsedCheckpoint[], announced: ReadonlyArray<{ index: number; size: number }>): number[] {
    const resigned: number[] = [];
    for (const missing of announced) {
      if (missing.index <= this.checkpointIndex) continue;
      const upTo = scanLog(this.options.dir, { checkpoints: checkpoints.filter((item) => item.size <= missing.size), fromLastCheckpoint: true, stopAt: missing.size });
      if (upTo.nextSeq !== missing.size || upTo.problem !== undefined) throw new AuditTamperError(upTo.problem ?? { segment: this.segmentPath, line: 0, offset: 0, seq: missing.size, message: `checkpoint ${missing.index} is announced at size ${missing.size} but the log does not reach it`, tornTail: false });
      this.writeCheckpoint({ origin: this.metadata.origin, size: missing.size, root: upTo.frontier.root(), head: upTo.head, timestamp: this.timestamp(), index: missing.index });
      this.checkpointIndex = missing.index;
      resigned.push(missing.size);
    }
    return resigned;
  }

  /** Writes a checkpoint note (and its mirror copy); returns their paths, for the caller to make immutable. */
  private writeCheckpoint(body: CheckpointBody): { local: string; mirrored?: string } {
    const note = signCheckpoint(body, this.signer);
    const name = checkpointName(body.size);
    const local = join(this.options.dir, CHECKPOINTS_DIR, name);
    writeFileDurably(local, note, 0o644);
    const mirror = this.options.checkpoint.mirrorDir;
    const mirrored = mirror === undefined ? undefined : join(mirror, name);
    if (mirror !== undefined && mirrored !== undefined) {
      mkdirSync(mirror, { recursive: true, mode: 0o700 });
      writeFileDurably(mirrored, note, 0o644);
    }
    if (this.options.checkpoint.mirrorStdout) process.stdout.write(note);
    this.notifyCommit();
    this.lastCheckpointSize = body.size;
    this.applyRetention();
    return mirrored === undefined ? { local } : { local, mirrored };
  }

  /** Deletes old segments per the retention policy, only ones entirely covered by a checkpoint. */
  private applyRetention(): void {
    const { maxAgeDays, maxTotalBytes } = this.options.retention;
    if (maxAgeDays === undefined && maxTotalBytes === undefined) return;
    const segments = listSegments(this.options.dir);
    const sizes = segments.map((segment) => statSync(segment.path).size);
    let total = sizes.reduce((sum, size) => sum + size, 0);
    const nowMs = (this.options.now ?? (() => new Date()))().getTime();
    const deleted: Array<{ segment: string; sha256: string; bytes: number; immutable_lifted?: boolean }> = [];
    for (let index = 0; index < segments.length - 1; index += 1) {
      const segment = segments[index] as (typeof segments)[number];
      const next = segments[index + 1] as (typeof segments)[number];
      if (next.firstSeq > this.lastCheckpointSize || segment.path === this.handlePath) break;
      const ageDays = (nowMs - statSync(segment.path).mtimeMs) / 86_400_000;
      const overAge = maxAgeDays !== undefined && ageDays > maxAgeDays;
      const overSize = maxTotalBytes !== undefined && total > maxTotalBytes;
      if (!overAge && !overSize) break;
      const bytes = sizes[index] as number;
      const sha256 = sha256Hex(readFileSync(segment.path));
      try {
        // The only place a sealed segment loses its immutable attribute while the gateway runs; the record below says so.
        this.attributes.retire(segment.path);
        unlinkSync(segment.path);
      } catch (error) {
        process.emitWarning(`audit retention could not delete ${segment.path}: ${(error as Error).message}; it is kept and retried at the next checkpoint`, { code: 'BASTION_AUDIT_RETENTION' });
        break;
      }
      deleted.push({ segment: segment.name, sha256, bytes, ...(this.attributes.enabled ? { immutable_lifted: true } : {}) });
      total -= bytes;
    }
    if (deleted.length > 0) {
      fsyncDirectory(join(this.options.dir, SEGMENTS_DIR));
      const retainedFrom = listSegments(this.options.dir)[0]?.firstSeq ?? this.nextSeq;
      this.enqueueRecord({ kind: 'event', event: AuditEvent.Retention, info: { deleted, retained_from_seq: retainedFrom, max_age_days: maxAgeDays ?? null, max_total_bytes: maxTotalBytes ?? null } });
    }
  }

  private recordDropsIfAny(): void {
    if (this.dropped === 0 || this.queuedRecords >= this.options.queue.maxRecords) return;
    const count = this.dropped;
    const since = this.droppedSince ?? '';
    this.dropped = 0;
    this.droppedSince = undefined;
    this.enqueueRecord({ kind: 'event', event: AuditEvent.Dropped, info: { count, since, until: this.timestamp() } });
  }

  private fail(error: Error): void {
    this.failure = error;
    for (const entry of this.pending) if (entry.type === 'record') entry.reject?.(new AuditUnavailableError(`audit log unavailable: ${error.message}`));
    this.pending = [];
  }

  private startTimer(): void {
    this.timer = setInterval(() => {
      if (this.sinceCheckpoint > 0 && !this.failure && !this.closed) this.queueCheckpoint();
    }, this.options.checkpoint.everySeconds * 1000);
    this.timer.unref();
  }
}

/**
 * Pending entries at which a batch starts without waiting for the end of the turn. Many callers
 * acknowledged together append together; splitting them lets one half's synced write overlap
 * the building of the other half's records, and still amortizes each sync over dozens of records.
 */
const EARLY_WRITE_ENTRIES = 32;

/**
 * Batches whose fdatasync may run at once. Two let the disk sync one group of calls' records while
 * the next group's are written; more would split the records of a burst into smaller batches, each
 * with its own seal and thread-pool round trips, for little gain (docs/performance.md).
 */
const SYNCS_IN_FLIGHT = 2;

// Under load, segments are written with plain appends and made durable with fdatasync: an O_DSYNC
// write holds the writer until the disk has it, so the next batch could only be written after it,
// and the syncs of consecutive batches could not overlap. An idle log (concurrency 1) writes
// through a second, O_DSYNC handle instead: write + fdatasync is two thread-pool round trips,
// O_DSYNC one (measured at c=1: about 90 us of main-thread CPU and 0.3 ms of latency per call).
const SEGMENT_APPEND_FLAGS = fsConstants.O_WRONLY | fsConstants.O_APPEND;
const DSYNC_FLAG: number | undefined = (fsConstants as { O_DSYNC?: number }).O_DSYNC;

/** The segment opened a second time with O_DSYNC, for batches written when the log was idle; undefined where the platform has no O_DSYNC. */
async function openSynced(path: string): Promise<FileHandle | undefined> {
  return DSYNC_FLAG === undefined ? undefined : open(path, SEGMENT_APPEND_FLAGS | DSYNC_FLAG);
}
const SEGMENT_CREATE_FLAGS = SEGMENT_APPEND_FLAGS | fsConstants.O_CREAT | fsConstants.O_EXCL;

async function writeFully(handle: FileHandle, buffer: Buffer): Promise<void> {
  let written = 0;
  while (written < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, written, buffer.length - written);
    written += bytesWritten;
  }
}


function loadOrCreateMetadata(dir: string, options: AuditLogOptions, signer: NoteSigner): LogMetadata {
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
  // A missing local checkpoint whose records are intact is signed again below (resignAnnounced).
  const finding = report.findings.find((item) => item.kind !== 'missing-checkpoint');
  if (finding === undefined) return undefined;
  return { segment: join(dir, SEGMENTS_DIR), line: 0, offset: 0, seq: finding.size, message: `${finding.message} (compared with the checkpoint mirror ${mirror}). The mirror's copy is the one to trust; compare them with 'mcp-auditctl verify --witness ${mirror}'`, tornTail: false };
}

function lastCheckpointInfo(checkpoints: readonly ParsedCheckpoint[]): JsonValue {
  const last = checkpoints[checkpoints.length - 1];
  return last === undefined ? null : { size: last.size, root: last.root.toString('base64'), head: last.head };
}

const LOCK_FILE = 'writer.lock';

/** One writer per directory: a second gateway on the same log would fork the chain. */
function acquireWriterLock(dir: string): () => void {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => releaseWriterLock(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) throw new Error(`audit log ${dir} is already open by process ${holder}${holder === process.pid ? ' (this process)' : ''}; one writer per log`, { cause: error });
      unlinkSync(path);
    }
  }
  throw new Error(`could not take the writer lock ${path}`);
}

/** The live process holding the audit log's writer lock, if any (for a clear start-up refusal). */
export function writerLockHolder(dir: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, LOCK_FILE), 'utf8');
  } catch {
    return undefined;
  }
  const holder = Number(text.trim());
  return Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder) ? holder : undefined;
}

function releaseWriterLock(dir: string): void {
  try {
    unlinkSync(join(dir, LOCK_FILE));
  } catch {
    // already gone
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
