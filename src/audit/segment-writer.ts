// The batching writer of an audit log: queued record lines, rotations and checkpoints are
// written to the segment files in order, in batches of one synced write (group commit), and
// their callers acknowledged once the batch is durable. The log (log.ts) builds and chains the
// records; this module only moves them to disk.
import { constants as fsConstants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { fsyncDirectory } from '../storage/index.js';
import type { CheckpointBody } from './checkpoint.js';
import { AuditUnavailableError, asError, type QueueEntry, type RecordEntry, type WriterStats } from './log-types.js';

/** What the writer asks of the log around each batch. */
export interface WriterHost {
  /** A batch is being taken: end the pending records with a seal (queued through enqueue). */
  sealPending(): void;
  /** The Merkle hashing the log owes, done while the thread pool writes. */
  catchUpFrontier(): void;
  /** Signs and writes a checkpoint note; returns its paths, to be made immutable. */
  writeCheckpoint(body: CheckpointBody): { local: string; mirrored?: string };
  segmentRotated(closed: string, opened: string): Promise<void>;
  checkpointWritten(local: string, mirrored: string | undefined): Promise<void>;
  /** A batch or a checkpoint is on disk: wakes the sinks. */
  committed(): void;
  /** A batch ended and the queue has room: the log may queue its dropped-records event. */
  batchEnded(): void;
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
const SEGMENT_CREATE_FLAGS = SEGMENT_APPEND_FLAGS | fsConstants.O_CREAT | fsConstants.O_EXCL;

export class SegmentWriter {
  private pending: QueueEntry[] = [];
  private queued = 0;
  /** The batch being written, if any: one at a time, so the file holds the batches in order. */
  private flushing: Promise<void> | undefined;
  /** Batches written whose fdatasync has not returned yet (at most SYNCS_IN_FLIGHT). */
  private syncsInFlight = 0;
  /** Settles once every fdatasync started so far has returned and its records were acknowledged (or rejected); never rejects. */
  private syncTail: Promise<void> = Promise.resolve();
  private batchWindow: NodeJS.Immediate | undefined;
  private failure: Error | undefined;
  private handle: FileHandle | undefined;
  /** The same segment opened with O_DSYNC (where the platform has it): a batch written through it is durable when the write returns. */
  private syncedHandle: FileHandle | undefined;
  private handlePath = '';
  /** A record was appended while a batch was being written or synced: the next batch is written for overlap, not with O_DSYNC. */
  private appendedWhileBusy = false;
  private readonly counters: WriterStats = { batches: 0, records: 0, syncMillis: 0, largestBatch: 0, dropped: 0 };
  /** Checkpoint notes being made immutable, one after the other, off the write path. */
  private freezing: Promise<void> = Promise.resolve();

  constructor(
    private readonly segmentsDir: string,
    private readonly host: WriterHost,
  ) {}

  /** Why the writer stopped, once a write or sync failed. */
  get failedWith(): Error | undefined {
    return this.failure;
  }

  /** Records queued and not yet durable. */
  get queuedRecords(): number {
    return this.queued;
  }

  /** The segment the writer appends to. */
  get path(): string {
    return this.handlePath;
  }

  get stats(): WriterStats {
    return { ...this.counters };
  }

  countDropped(): void {
    this.counters.dropped += 1;
  }

  /** Opens an existing segment to append to (at open, before anything is queued). */
  async openSegment(path: string): Promise<void> {
    this.handle = await open(path, SEGMENT_APPEND_FLAGS, 0o600);
    this.syncedHandle = await openSynced(path);
    this.handlePath = path;
  }

  /** Queues an entry; the caller starts the write with kick(). */
  enqueue(entry: QueueEntry): void {
    this.pending.push(entry);
    if (entry.type === 'record') this.queued += 1;
  }

  /**
   * Starts writing what is pending, unless a batch is being written: records that arrive meanwhile
   * form the next batch. A batch normally waits for the end of this turn of the event loop, so
   * every append issued in the turn joins it; once EARLY_WRITE_ENTRIES are pending it starts at
   * once, so the disk syncs one part while this thread builds the rest instead of after it.
   */
  kick(): void {
    if (this.flushing !== undefined || this.syncsInFlight > 0) this.appendedWhileBusy = true;
    if (this.flushing !== undefined || this.failure) return;
    if (this.pending.length >= EARLY_WRITE_ENTRIES) this.writeNext();
    else this.batchWindow ??= setImmediate(() => this.writeNext());
  }

  /** Waits until everything queued so far is on disk (and its checkpoint notes are immutable, where they are made so). */
  async drain(): Promise<void> {
    while ((this.flushing !== undefined || this.pending.length > 0 || this.syncsInFlight > 0) && !this.failure) {
      if (this.flushing === undefined && this.pending.length > 0) this.writeNext();
      // With SYNCS_IN_FLIGHT syncs running, writeNext starts nothing: a returning sync does.
      await (this.flushing ?? this.syncTail);
    }
    await this.freezing;
    if (this.failure) throw new AuditUnavailableError(`audit log unavailable: ${this.failure.message}`);
  }

  /** Closes the segment handles (after drain). */
  async close(): Promise<void> {
    await this.freezing;
    await this.handle?.close();
    await this.syncedHandle?.close();
    this.handle = undefined;
    this.syncedHandle = undefined;
  }

  /** Stops the writer: every pending record is rejected, and every later write refused. */
  fail(error: Error): void {
    this.failure = error;
    for (const entry of this.pending) if (entry.type === 'record') entry.reject?.(new AuditUnavailableError(`audit log unavailable: ${error.message}`));
    this.pending = [];
  }

  private writeNext(): void {
    if (this.batchWindow !== undefined) clearImmediate(this.batchWindow);
    this.batchWindow = undefined;
    if (this.flushing !== undefined || this.failure || this.pending.length === 0 || this.syncsInFlight >= SYNCS_IN_FLIGHT) return;
    // Every batch ends with a seal, written in the same synced write as the records it covers.
    this.host.sealPending();
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
          this.fail(asError(error));
          this.batchWritten();
        },
      );
      return;
    }
    // A rotation or a checkpoint waits for every sync in flight: it closes the segment, or signs what is on disk.
    this.flushing = this.syncTail.then(() => this.writeBatchUnlessFailed(batch)).then(
      (lastChunk) => {
        this.batchWritten();
        this.host.committed();
        // Acknowledged only now that the next batch may start: the callers' next appends can then begin it early.
        for (const entry of lastChunk) entry.resolve?.({ seq: entry.seq, hash: entry.hash });
      },
      (error: unknown) => {
        // Failed first, so that nothing pending is written after a failed write.
        this.fail(asError(error));
        this.batchWritten();
      },
    );
  }

  private batchWritten(): void {
    this.flushing = undefined;
    if (this.failure) return;
    this.host.batchEnded();
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
      this.host.catchUpFrontier();
      await written;
      // An O_DSYNC write is durable now; the chain below still waits for every earlier batch's sync.
      const synced = syncedHandle === undefined ? handle.datasync() : Promise.resolve();
      const earlier = this.syncTail;
      this.syncsInFlight += 1;
      this.syncTail = Promise.all([earlier, synced]).then(
        () => this.batchSynced(batch, started),
        (error: unknown) => this.batchSynced(batch, started, asError(error)),
      );
    } catch (error) {
      const failure = asError(error);
      for (const entry of batch) entry.reject?.(failure);
      throw failure;
    }
  }

  /** A batch's fdatasync returned (every earlier one has too): acknowledge its records, or fail them and the log. */
  private batchSynced(batch: RecordEntry[], started: number, error?: Error): void {
    this.syncsInFlight -= 1;
    this.queued -= batch.length;
    if (error !== undefined) this.fail(error);
    // An earlier batch's failed sync fails this one too: its records would follow a gap.
    const failure = this.failure;
    if (failure !== undefined) {
      for (const entry of batch) entry.reject?.(new AuditUnavailableError(`audit log unavailable: ${failure.message}`));
      return;
    }
    this.count(batch.length, started);
    this.host.committed();
    for (const entry of batch) entry.resolve?.({ seq: entry.seq, hash: entry.hash });
    this.host.batchEnded();
    if (this.flushing === undefined && this.pending.length > 0) this.writeNext();
  }

  private count(records: number, started: number): void {
    this.counters.syncMillis += performance.now() - started;
    this.counters.batches += 1;
    this.counters.records += records;
    this.counters.largestBatch = Math.max(this.counters.largestBatch, records);
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
      this.host.catchUpFrontier();
      await io;
      this.count(chunk.length, started);
      this.queued -= chunk.length;
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
          await this.rotate(entry.path);
        } else {
          await syncChunk();
          acknowledge();
          const written = this.host.writeCheckpoint(entry.body);
          // Off the write path: a chattr run takes milliseconds (tens on a loaded host) that no
          // synced batch should wait for. A failure fails the log, as a failed write does.
          this.freezing = this.freezing
            .then(() => this.host.checkpointWritten(written.local, written.mirrored))
            .catch((error: unknown) => {
              if (!this.failure) this.fail(asError(error));
            });
        }
      }
      await syncChunk();
      return waiting;
    } catch (error) {
      const failure = asError(error);
      for (const entry of waiting) entry.reject?.(failure);
      for (const entry of batch) if (entry.type === 'record' && !waiting.includes(entry)) entry.reject?.(failure);
      throw failure;
    }
  }

  private async rotate(path: string): Promise<void> {
    await this.handle?.close();
    await this.syncedHandle?.close();
    const closed = this.handlePath;
    this.handle = await open(path, SEGMENT_CREATE_FLAGS, 0o600);
    this.syncedHandle = await openSynced(path);
    this.handlePath = path;
    fsyncDirectory(this.segmentsDir);
    await this.host.segmentRotated(closed, path);
  }
}

/** The segment opened a second time with O_DSYNC, for batches written when the log was idle; undefined where the platform has no O_DSYNC. */
async function openSynced(path: string): Promise<FileHandle | undefined> {
  return DSYNC_FLAG === undefined ? undefined : open(path, SEGMENT_APPEND_FLAGS | DSYNC_FLAG);
}

async function writeFully(handle: FileHandle, buffer: Buffer): Promise<void> {
  let written = 0;
  while (written < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, written, buffer.length - written);
    written += bytesWritten;
  }
}
