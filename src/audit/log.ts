import { mkdirSync, unlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writeFileDurably } from '../storage/index.js';
import { LogProtection, type AppendOnlyStatus } from './append-only.js';
import { encodeLine } from './canonical.js';
import { signCheckpoint, type CheckpointBody, type ParsedCheckpoint } from './checkpoint.js';
import type { AuditConfig } from './config.js';
import type { NoteSigner, NoteVerifier } from './keys.js';
import { CHECKPOINTS_DIR, SEGMENTS_DIR, checkpointName, listSegments, segmentName, type LogMetadata } from './layout.js';
import { inspectLog, loadLogKeys, setAsideTampered, tailCutRecord } from './log-open.js';
import { AuditTamperError, AuditUnavailableError, type AppendResult, type AuditWriter, type LogHandoff, type RecordEntry, type RecoveryReport, type WriterStats } from './log-types.js';
import { MerkleFrontier, leafHashHex } from './merkle.js';
import { scanLog } from './scan.js';
import { AuditEvent, ZERO_HASH, checkFields, type AuditFields, type JsonValue } from './schema.js';
import { keyedDigest, sealLineVerifies, sealMac, type LogKeys } from './seal.js';
import { deleteExpiredSegments } from './retention.js';
import { SegmentWriter, type WriterHost } from './segment-writer.js';
import { acquireWriterLock, releaseWriterLock } from './writer-lock.js';

export { AuditTamperError, AuditUnavailableError } from './log-types.js';
export type { AppendResult, AuditWriter, LogHandoff, RecoveryReport, WriterStats } from './log-types.js';
export { writerLockHolder } from './writer-lock.js';

export interface AuditLogOptions extends AuditConfig {
  /** Clock, for tests of rotation and retention by age. */
  now?: () => Date;
  /** Written as `replica` into every record (cluster.replicaId), so merged logs of replicas tell who wrote what. */
  replica?: string;
  /** Synced writes block the calling thread (only for a thread of its own: the audit writer thread). */
  blockingWrites?: boolean;
}

/**
 * The single writer of one audit log directory. Appends are chained and Merkle-hashed in call
 * order, then written in batches by its SegmentWriter: one synced write per batch, whatever the
 * number of concurrent callers (group commit). In durable mode an append resolves only after its
 * batch is synced.
 */
export class AuditLog implements AuditWriter {
  private readonly writer: SegmentWriter;
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
  /** Lines chained but not yet added to the Merkle frontier: hashed while a batch is being synced. */
  private unhashed: Buffer[] = [];
  private readonly commitListeners = new Set<() => void>();

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
    /** chattr +a / +i on the segments and checkpoints, or nothing (audit.appendOnly). */
    private readonly attributes: LogProtection,
  ) {
    const host: WriterHost = {
      sealPending: () => {
        if (this.unsealed > 0) this.pushSeal();
      },
      catchUpFrontier: () => this.catchUpFrontier(),
      writeCheckpoint: (body) => this.writeCheckpoint(body),
      segmentRotated: (closed, opened) => this.attributes.rotated(closed, opened),
      checkpointWritten: (local, mirrored) => this.attributes.checkpointWritten(local, mirrored),
      committed: () => this.notifyCommit(),
      batchEnded: () => this.recordDropsIfAny(),
    };
    this.writer = new SegmentWriter(join(options.dir, SEGMENTS_DIR), host, options.blockingWrites === true);
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
    const now = options.now ?? (() => new Date());
    const found = inspectLog(options, now);
    const { metadata, signer, keys, scan, attributes, recovery, checkpoints, cut, problem } = found;
    let log: AuditLog;
    if (problem !== undefined) {
      if (!options.startNewSegmentAfterTamper) throw new AuditTamperError(problem);
      const restart = setAsideTampered(options, found, problem, now);
      log = new AuditLog(options, metadata, signer, keys, 0, ZERO_HASH, new MerkleFrontier(), '', recovery, attributes);
      await log.startSegment('tamper_restart');
      await log.append(restart);
    } else {
      const segments = listSegments(options.dir);
      const last = segments[segments.length - 1];
      log = new AuditLog(options, metadata, signer, keys, scan.nextSeq, scan.head, scan.frontier, last?.path ?? '', recovery, attributes);
      log.lastCheckpointSize = found.lastSize;
      log.checkpointIndex = found.lastIndex;
      if (last === undefined || scan.lastSegmentValidBytes === 0) {
        if (last !== undefined) unlinkSync(last.path);
        await log.startSegment(last === undefined ? (found.archived === undefined ? 'new_log' : 'format_upgrade') : 'recovery');
      } else {
        log.segmentBytes = scan.lastSegmentValidBytes;
        log.segmentStartedMs = Date.parse(scan.lastSegmentStartedAt ?? '') || now().getTime();
        await log.writer.openSegment(last.path);
      }
      // A crash between a sealed batch and its checkpoint file leaves an announced checkpoint missing (as does deleting it).
      const resigned = log.resignAnnounced(checkpoints, found.tracker.announced);
      if (resigned.length > 0) recovery.resignedCheckpoints = resigned;
      log.sinceCheckpoint = log.nextSeq - log.lastCheckpointSize;
      if (found.archived !== undefined) {
        recovery.formatUpgrade = true;
        await log.append({ kind: 'event', event: AuditEvent.FormatUpgrade, info: { reason: 'the log was written in format bastion.audit/1, which has no batch seals: its records after the last checkpoint could not be authenticated. It was moved aside unchanged (verify it with mcp-auditctl verify --log <archive dir>)', archive: found.archived } });
      }
      if (cut !== undefined) {
        await log.append(tailCutRecord(cut));
        if (cut.records > 0) process.emitWarning(`audit log ${options.dir}: ${cut.records} record(s) after the last batch seal were cut off the chain and kept in ${cut.evidence ?? 'quarantine'}; they may be forged`, { code: 'BASTION_AUDIT_UNSEALED_TAIL' });
      }
      if (resigned.length > 0) await log.append({ kind: 'event', event: AuditEvent.Recovery, info: { reason: 'checkpoints announced by sealed records were missing (a crash before the checkpoint file was written, or deleted): signed again after their records\' seals verified', sizes: resigned } });
      // The tail's seals verified: sign it now rather than at the next interval.
      if (log.sinceCheckpoint > 0) await log.checkpoint();
    }
    attributes.protect(log.writer.path);
    log.startTimer();
    return log;
  }

  /**
   * Takes over a log that another writer of this process released (release()): the chain, the
   * Merkle frontier, the counters and the open segment continue where it stopped, without the
   * open-time walk (that writer did it) and without writing anything for the move.
   */
  static async adopt(options: AuditLogOptions, handoff: LogHandoff): Promise<AuditLog> {
    const { signer, keys } = loadLogKeys(options, handoff.metadata.logId);
    const attributes = LogProtection.adopted(options.dir, options.checkpoint.mirrorDir, handoff.appendOnly);
    const log = new AuditLog(options, handoff.metadata, signer, keys, handoff.nextSeq, handoff.head, MerkleFrontier.fromJSON(handoff.frontier), handoff.segmentPath, handoff.recovery, attributes);
    log.segmentBytes = handoff.segmentBytes;
    log.segmentStartedMs = handoff.segmentStartedMs;
    log.lastCheckpointSize = handoff.lastCheckpointSize;
    log.checkpointIndex = handoff.checkpointIndex;
    log.sinceCheckpoint = handoff.sinceCheckpoint;
    log.dropped = handoff.dropped;
    log.droppedSince = handoff.droppedSince;
    log.writer.resumeStats(handoff.stats);
    await log.writer.openSegment(handoff.segmentPath);
    log.startTimer();
    return log;
  }

  /**
   * Stops this writer once everything queued is written, synced and sealed, and returns its state
   * for adopt() on another thread of this process. The writer lock stays held (the process still
   * writes the log); this instance refuses every later append. Fails, with nothing handed over,
   * when the writer has failed.
   */
  async release(): Promise<LogHandoff> {
    if (this.closed) throw new AuditUnavailableError('audit log is closed');
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.flush();
    if (this.unsealed !== 0) throw new AuditUnavailableError(`audit log: ${this.unsealed} record(s) unsealed after a flush; the log is not handed over`);
    this.catchUpFrontier();
    await this.writer.close();
    const handoff: LogHandoff = { metadata: this.metadata, recovery: this.recovery, appendOnly: this.attributes.status, nextSeq: this.nextSeq, head: this.head, frontier: this.frontier.toJSON(), segmentPath: this.writer.path, segmentBytes: this.segmentBytes, segmentStartedMs: this.segmentStartedMs, lastCheckpointSize: this.lastCheckpointSize, checkpointIndex: this.checkpointIndex, sinceCheckpoint: this.sinceCheckpoint, dropped: this.dropped, stats: this.writer.stats };
    if (this.droppedSince !== undefined) handoff.droppedSince = this.droppedSince;
    return handoff;
  }

  get size(): number {
    return this.nextSeq;
  }

  get placement(): { onMainThread: boolean; moves: number } {
    return { onMainThread: this.options.blockingWrites !== true, moves: 0 };
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
    return this.writer.stats;
  }

  /** Why the log stopped accepting records, once it has (readiness probes report it). */
  get failedWith(): Error | undefined {
    return this.writer.failedWith;
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
    const failure = this.writer.failedWith;
    if (failure) throw new AuditUnavailableError(`audit log unavailable: ${failure.message}. Calls must be denied until the gateway restarts with a writable log`);
    if (this.closed) throw new AuditUnavailableError('audit log is closed');
    checkFields(fields);
    if (this.options.mode === 'async' && this.writer.queuedRecords >= this.options.queue.maxRecords) {
      if (this.options.queue.onFull === 'deny') throw new AuditUnavailableError(`audit queue is full (${this.options.queue.maxRecords} records waiting for disk): the call is denied so that no record is lost`);
      this.dropped += 1;
      this.writer.countDropped();
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
  flush(): Promise<void> {
    return this.writer.drain();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    if (this.writer.failedWith === undefined) {
      if (this.sinceCheckpoint > 0) this.queueCheckpoint();
      await this.flush().catch(() => undefined);
    }
    this.closed = true;
    await this.writer.close();
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
    return sealLineVerifies(this.keys.seal, this.metadata.logId, line, seq);
  }

  /**
   * The log's keys and checkpoint verifier, for a copy of the log's read side on another thread
   * (src/audit/thread): the same process holds them either way.
   */
  get sharedKeys(): { keys: LogKeys; verifier: NoteVerifier } {
    return { keys: this.keys, verifier: { name: this.signer.name, publicKey: this.signer.publicKey, raw: this.signer.raw, keyId: this.signer.keyId } };
  }

  /** The public side of the checkpoint key, to check checkpoint signatures. */
  get checkpointVerifier(): NoteVerifier {
    return this.signer;
  }

  private enqueueRecord(fields: AuditFields): RecordEntry {
    const entry = this.pushRecord(fields);
    if (this.sinceCheckpoint >= this.options.checkpoint.everyRecords) this.queueCheckpoint();
    this.writer.kick();
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
    this.writer.enqueue(entry);
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
    this.writer.enqueue({ type: 'checkpoint', body: { origin: this.metadata.origin, size: this.nextSeq, root: this.frontier.root(), head: this.head, timestamp: this.timestamp(), index: this.checkpointIndex } });
    this.sinceCheckpoint = 0;
    this.writer.kick();
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
    this.writer.enqueue({ type: 'rotate', path });
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
    const info = deleteExpiredSegments({ dir: this.options.dir, retention: this.options.retention, checkpointedSize: this.lastCheckpointSize, activePath: this.writer.path, nowMs: (this.options.now ?? (() => new Date()))().getTime(), attributes: this.attributes, nextSeq: this.nextSeq });
    if (info !== undefined) this.enqueueRecord({ kind: 'event', event: AuditEvent.Retention, info });
  }

  private recordDropsIfAny(): void {
    if (this.dropped === 0 || this.writer.queuedRecords >= this.options.queue.maxRecords) return;
    const count = this.dropped;
    const since = this.droppedSince ?? '';
    this.dropped = 0;
    this.droppedSince = undefined;
    this.enqueueRecord({ kind: 'event', event: AuditEvent.Dropped, info: { count, since, until: this.timestamp() } });
  }

  private startTimer(): void {
    this.timer = setInterval(() => {
      if (this.sinceCheckpoint > 0 && this.writer.failedWith === undefined && !this.closed) this.queueCheckpoint();
    }, this.options.checkpoint.everySeconds * 1000);
    this.timer.unref();
  }
}
