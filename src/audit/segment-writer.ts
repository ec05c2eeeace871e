// The batching writer of an audit log: queued record lines, rotations and checkpoints are
// written to the segment files in order, in batches of one synced write (group commit), and
// their callers acknowledged once the batch is durable. The log (log.ts) builds and chains the
// records; this module only moves them to disk.
import { constants as fsConstants, fdatasyncSync, writeSync } from 'node:fs';
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
 * acknowledged together append together; starting the write of the first part at once lets the
 * disk sync it while this thread builds the rest (which then forms the next batch), and still
 * amortizes each sync over dozens of records.
 */
const EARLY_WRITE_ENTRIES = 32;

// Segments are opened with O_DSYNC where the platform has it: a write is durable when it returns,
// one thread-pool round trip per batch instead of two for write + fdatasync. Only one batch is
// in flight at a time, so nothing is gained by splitting the write from its sync.
const SEGMENT_APPEND_FLAGS = fsConstants.O_WRONLY | fsConstants.O_APPEND;
const DSYNC_FLAG: number | undefined = (fsConstants as { O_DSYNC?: number }).O_DSYNC;
const SEGMENT_OPEN_FLAGS = SEGMENT_APPEND_FLAGS | (DSYNC_FLAG ?? 0);
const SEGMENT_CREATE_FLAGS = SEGMENT_OPEN_FLAGS | fsConstants.O_CREAT | fsConstants.O_EXCL;

export class SegmentWriter {
  private pending: QueueEntry[] = [];
  private queued = 0;
  /** The one batch being written and synced, if any: records that arrive meanwhile wait for the next. */
  private flushing: Promise<void> | undefined;
  private batchWindow: NodeJS.Immediate | undefined;
  private failure: Error | undefined;
  private handle: FileHandle | undefined;
  private handlePath = '';
  private readonly counters: WriterStats = { batches: 0, records: 0, syncMillis: 0, largestBatch: 0, dropped: 0 };
  /** Checkpoint notes being made immutable, one after the other, off the write path. */
  private freezing: Promise<void> = Promise.resolve();

  constructor(
    private readonly segmentsDir: string,
    private readonly host: WriterHost,
    /**
     * Write and sync on this thread instead of the thread pool: right for a thread that does
     * nothing else (the audit writer thread), where it saves a hand-off to a pool thread and
     * back per batch; records that arrive meanwhile wait in the thread's message queue instead
     * of this writer's, and form the next batch all the same.
     */
    private readonly blockingWrites = false,
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

  /** Carries on the counters of the writer this one takes over from (a log moved between threads). */
  resumeStats(stats: WriterStats): void {
    Object.assign(this.counters, stats);
  }

  countDropped(): void {
    this.counters.dropped += 1;
  }

  /** Opens an existing segment to append to (at open, before anything is queued). */
  async openSegment(path: string): Promise<void> {
    this.handle = await open(path, SEGMENT_OPEN_FLAGS, 0o600);
    this.handlePath = path;
  }

  /** Queues an entry; the caller starts the write with kick(). */
  enqueue(entry: QueueEntry): void {
    this.pending.push(entry);
    if (entry.type === 'record') this.queued += 1;
  }

  /**
   * Starts writing what is pending, unless a batch is in flight: records that arrive meanwhile
   * form the next batch, written as soon as that one is synced. A batch normally waits for the end
   * of this turn of the event loop, so every append issued in the turn joins it; once
   * EARLY_WRITE_ENTRIES are pending it starts at once.
   */
  kick(): void {
    if (this.flushing !== undefined || this.failure) return;
    if (this.pending.length >= EARLY_WRITE_ENTRIES) this.writeNext();
    else this.batchWindow ??= setImmediate(() => this.writeNext());
  }

  /** Waits until everything queued so far is on disk (and its checkpoint notes are immutable, where they are made so). */
  async drain(): Promise<void> {
    while ((this.flushing !== undefined || this.pending.length > 0) && !this.failure) {
      if (this.flushing === undefined) this.writeNext();
      await this.flushing;
    }
    await this.freezing;
    if (this.failure) throw new AuditUnavailableError(`audit log unavailable: ${this.failure.message}`);
  }

  /** Closes the segment handle (after drain). */
  async close(): Promise<void> {
    await this.freezing;
    await this.handle?.close();
    this.handle = undefined;
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
    if (this.flushing !== undefined || this.failure || this.pending.length === 0) return;
    // Every batch ends with a seal, written in the same synced write as the records it covers.
    this.host.sealPending();
    const batch = this.pending;
    this.pending = [];
    // writeBatch yields at its first await, before anything it does can append and kick: this is set first.
    this.flushing = this.writeBatch(batch).then(
      (lastChunk) => {
        this.flushing = undefined;
        this.host.committed();
        this.host.batchEnded();
        // What arrived during the sync goes now (its records already waited a whole sync); then the
        // callers are answered, so their next appends form the batch after it.
        if (this.pending.length > 0) this.writeNext();
        for (const entry of lastChunk) entry.resolve?.({ seq: entry.seq, hash: entry.hash });
      },
      (error: unknown) => {
        // Failed first, so that nothing pending is written after a failed write.
        this.fail(asError(error));
        this.flushing = undefined;
      },
    );
  }

  private count(records: number, started: number): void {
    this.counters.syncMillis += performance.now() - started;
    this.counters.batches += 1;
    this.counters.records += records;
    this.counters.largestBatch = Math.max(this.counters.largestBatch, records);
  }

  /**
   * Writes a batch, syncing before each checkpoint or rotation in it and at its end. Records synced
   * before its end are acknowledged here; those of the last chunk are returned for the caller to
   * acknowledge. On a failure every record of the batch not yet acknowledged is rejected.
   */
  private async writeBatch(batch: QueueEntry[]): Promise<RecordEntry[]> {
    let chunk: Buffer[] = [];
    let waiting: RecordEntry[] = [];
    const syncChunk = async (): Promise<void> => {
      if (chunk.length === 0) return;
      const started = performance.now();
      const io = this.syncedWrite(chunk.length === 1 ? (chunk[0] as Buffer) : Buffer.concat(chunk));
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
      this.queued -= chunk.length;
      for (const entry of waiting) entry.reject?.(failure);
      for (const entry of batch) if (entry.type === 'record' && !waiting.includes(entry)) entry.reject?.(failure);
      throw failure;
    }
  }

  /** Appends the bytes and returns once they are durable: one O_DSYNC write, or write + fdatasync. */
  private async syncedWrite(buffer: Buffer): Promise<void> {
    const handle = this.handle;
    if (handle === undefined) throw new Error('no open segment');
    if (this.blockingWrites) {
      let written = 0;
      while (written < buffer.length) written += writeSync(handle.fd, buffer, written, buffer.length - written);
      if (DSYNC_FLAG === undefined) fdatasyncSync(handle.fd);
      return;
    }
    await writeFully(handle, buffer);
    if (DSYNC_FLAG === undefined) await handle.datasync();
  }

  private async rotate(path: string): Promise<void> {
    await this.handle?.close();
    const closed = this.handlePath;
    this.handle = await open(path, SEGMENT_CREATE_FLAGS, 0o600);
    this.handlePath = path;
    fsyncDirectory(this.segmentsDir);
    await this.host.segmentRotated(closed, path);
  }
}

async function writeFully(handle: FileHandle, buffer: Buffer): Promise<void> {
  let written = 0;
  while (written < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, written, buffer.length - written);
    written += bytesWritten;
  }
}
