import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { SinkConfig } from './config.js';
import { resumePosition } from './resume.js';
import { initialPosition, readCommitted, type ShipItem, type ShipPosition } from './source.js';
import type { DeliveryReport, SinkTransport } from './transport.js';

/** Figures of one sink, for the admin listener's metrics. */
export interface SinkStats {
  sink: string;
  type: string;
  /** Records shipped and acknowledged (or confirmed) since start. */
  shipped: number;
  checkpointsShipped: number;
  /** Failed deliveries since start. */
  failures: number;
  /** Records sent again after a failure: the receiver may hold them twice (at-least-once). */
  resent: number;
  /** Records on disk the sink has not confirmed, and how old the oldest of them is. */
  lagRecords: number;
  lagSeconds: number;
  /** Records retention deleted before the sink had them. */
  lostToRetention: number;
  /** Times the saved cursor pointed into a chain the log no longer holds (tamper restarts). */
  newChains: number;
  /** Records the receiver accepted the delivery of but rejected for good (OTLP partial success); not sent again. */
  rejected: number;
}

/** A delivery the receiver took but partly rejected: which records it held, how many were rejected, and why. */
export interface Rejection {
  sink: string;
  rejected: number;
  message: string;
  fromSeq: number;
  toSeq: number;
}

export interface ShipperOptions {
  sink: SinkConfig;
  transport: SinkTransport;
  /** The audit log directory. */
  logDir: string;
  logId: string;
  /** Where the cursor file lives. */
  cursorDir: string;
  /** Records the writer has appended so far (for the lag). */
  logSize: () => number;
  /** Safety net for a missed wake-up: the log is read at least this often. */
  pollMs: number;
  onError: (error: Error, sink: string) => void;
  onRecovered: (sink: string) => void;
  onWarning: (message: string, sink: string) => void;
  /** A receiver's partial success: rejected records (counted, logged and audited by the caller) or only a message. */
  onRejected: (rejection: Rejection) => void;
}

/**
 * After a delivery smaller than a full batch, the shipper waits this long before reading again, so
 * that under load it ships fewer, larger batches (each costs a cursor write) instead of chasing
 * every synced write of the log. It bounds the lag this adds.
 */
const SETTLE_MS = 200;

/** A checkpoint missing this many reads in a row while the log moved on is skipped, with a warning. */
const MISSING_CHECKPOINT_READS = 20;

/**
 * Ships one sink: reads the committed log from the sink's cursor, delivers, and only then moves
 * the cursor (written durably, so a crash resumes from it: records may be sent twice, never
 * skipped). Failures back off exponentially with full jitter. It runs beside the request path and
 * shares nothing with it but the files: a slow sink only lags.
 */
export class Shipper {
  /** What the receiver has (the cursor on disk). */
  private committed: ShipPosition;
  /** What was read and sent; ahead of committed only for a sink that confirms later (syslog). */
  private reading: ShipPosition;
  private unconfirmedRecords = 0;
  private unconfirmedCheckpoints = 0;
  private oldestUnconfirmedTs: string | undefined;
  private stopped = false;
  /** stop() was called: no settling delays, ship what is left and stop. */
  private stopping = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private consecutiveFailures = 0;
  /** New records do not cut a retry delay short. */
  private backingOff = false;
  private missingCheckpointReads = 0;
  /** The saved cursor was checked against the chain on disk (resume.ts). */
  private resumed = false;
  private readonly stats: Omit<SinkStats, 'lagRecords' | 'lagSeconds'>;

  constructor(private readonly options: ShipperOptions) {
    this.committed = loadCursor(this.cursorPath, options.logId);
    this.reading = { ...this.committed };
    this.stats = { sink: options.sink.name, type: options.sink.type, shipped: 0, checkpointsShipped: 0, failures: 0, resent: 0, lostToRetention: 0, newChains: 0, rejected: 0 };
  }

  get cursorPath(): string {
    return join(this.options.cursorDir, `${this.options.sink.name}.json`);
  }

  get position(): ShipPosition {
    return { ...this.committed };
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** The log has new committed records. */
  notify(): void {
    if (!this.backingOff) this.wake?.();
  }

  snapshot(): SinkStats {
    const lagRecords = Math.max(0, this.options.logSize() - this.committed.nextSeq);
    const oldest = this.oldestUnconfirmedTs === undefined ? undefined : Date.parse(this.oldestUnconfirmedTs);
    const lagSeconds = lagRecords === 0 || oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000);
    return { ...this.stats, lagRecords, lagSeconds };
  }

  /**
   * Ships what is committed until caught up (or until deadlineMs passes), then stops. Used at
   * gateway shutdown, after the audit log's last records and checkpoint are written.
   */
  async stop(deadlineMs: number): Promise<void> {
    this.stopping = true;
    const deadline = Date.now() + deadlineMs;
    // Caught up includes the last checkpoint: its seal can be read before its note is on disk (the
    // note is written after the synced batch that holds the seal), and the note is then still due.
    const caughtUp = (): boolean => this.reading.nextSeq >= this.options.logSize() && this.reading.pendingCheckpoint === undefined && this.unconfirmedRecords === 0 && this.unconfirmedCheckpoints === 0;
    while (!this.stopped && Date.now() < deadline && this.consecutiveFailures === 0 && !caughtUp()) {
      this.notify();
      await delay(20);
    }
    this.stopped = true;
    this.wake?.();
    await this.loop;
    await this.options.transport.close();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        const progressed = await this.step();
        if (this.consecutiveFailures > 0) this.options.onRecovered(this.options.sink.name);
        this.consecutiveFailures = 0;
        if (progressed === 'nothing') await this.idle(this.options.pollMs);
        else if (progressed === 'partial' && !this.stopping) await delay(SETTLE_MS);
      } catch (error) {
        this.fail(error instanceof Error ? error : new Error(String(error)));
        this.backingOff = true;
        await this.idle(this.backoffMs());
        this.backingOff = false;
      }
    }
  }

  /** One read and delivery: a full batch, less than that, or nothing new. */
  private async step(): Promise<'full' | 'partial' | 'nothing'> {
    const { sink, transport } = this.options;
    if (!this.resumed) await this.resume();
    const read = await readCommitted(this.options.logDir, this.reading, sink.batchRecords);
    if (read.skippedByRetention > 0) {
      this.stats.lostToRetention += read.skippedByRetention;
      this.options.onWarning(`${read.skippedByRetention} audit record(s) were deleted by retention before this sink received them`, sink.name);
    }
    if (read.items.length === 0) {
      if (read.waitingForCheckpoint) this.skipCheckpointIfGone();
      if (this.unconfirmedRecords > 0 || this.unconfirmedCheckpoints > 0) {
        await this.confirm();
        return 'partial';
      }
      return 'nothing';
    }
    this.missingCheckpointReads = 0;
    const firstRecord = read.items.find((item) => item.kind === 'record');
    if (firstRecord !== undefined) this.oldestUnconfirmedTs ??= firstRecord.record.ts;
    const report = await transport.deliver(read.items);
    if (report !== undefined) this.rejectedBy(report, read.items);
    this.reading = read.next;
    this.count(read.items);
    if (transport.acknowledges || this.unconfirmedRecords >= (sink.type === 'syslog' ? sink.confirmEveryRecords : 0)) await this.confirm();
    const records = read.items.filter((item) => item.kind === 'record').length;
    return records >= sink.batchRecords ? 'full' : 'partial';
  }

  /** A cursor into a chain the log no longer holds (a tamper restart) starts over at the new chain. */
  private async resume(): Promise<void> {
    const { position, newChain } = await resumePosition(this.options.logDir, this.committed);
    if (newChain) {
      this.options.onWarning(`the audit log holds a new chain (a tamper restart) where this sink's cursor pointed at seq ${this.committed.nextSeq}: shipping the new chain from its start`, this.options.sink.name);
      await saveCursor(this.cursorPath, position);
      this.committed = position;
      this.reading = { ...position };
      this.stats.newChains += 1;
    }
    this.resumed = true;
  }

  /** Rejected records are not retried (the receiver refused them for good): counted, and reported with the delivery's seq range. */
  private rejectedBy(report: DeliveryReport, items: ShipItem[]): void {
    const seqs = items.flatMap((item) => (item.kind === 'record' ? [item.seq] : []));
    this.stats.rejected += report.rejected;
    this.options.onRejected({ sink: this.options.sink.name, rejected: report.rejected, message: report.message, fromSeq: seqs[0] ?? -1, toSeq: seqs[seqs.length - 1] ?? -1 });
  }

  private count(items: ShipItem[]): void {
    for (const item of items) {
      if (item.kind === 'record') this.unconfirmedRecords += 1;
      else this.unconfirmedCheckpoints += 1;
    }
  }

  private async confirm(): Promise<void> {
    await this.options.transport.confirm?.();
    this.committed = { ...this.reading };
    await saveCursor(this.cursorPath, this.committed);
    this.stats.shipped += this.unconfirmedRecords;
    this.stats.checkpointsShipped += this.unconfirmedCheckpoints;
    this.unconfirmedRecords = 0;
    this.unconfirmedCheckpoints = 0;
    this.oldestUnconfirmedTs = undefined;
  }

  private fail(error: Error): void {
    this.stats.failures += 1;
    // Everything after the cursor is read and sent again: the receiver may already hold part of it.
    this.stats.resent += this.reading.nextSeq - this.committed.nextSeq;
    this.reading = { ...this.committed };
    this.unconfirmedRecords = 0;
    this.unconfirmedCheckpoints = 0;
    this.options.transport.reset();
    if (this.consecutiveFailures === 0) this.options.onError(error, this.options.sink.name);
    this.consecutiveFailures += 1;
  }

  /** A checkpoint deleted from disk must not stop shipping for good: skipped after repeated reads, with a warning. */
  private skipCheckpointIfGone(): void {
    const pending = this.reading.pendingCheckpoint;
    if (pending === undefined || this.options.logSize() <= pending.size) return;
    this.missingCheckpointReads += 1;
    if (this.missingCheckpointReads < MISSING_CHECKPOINT_READS) return;
    this.options.onWarning(`checkpoint ${pending.index} (size ${pending.size}) is announced by its seal but missing from disk: not shipped`, this.options.sink.name);
    this.reading = { ...this.reading, checkpointIndex: pending.index };
    delete this.reading.pendingCheckpoint;
    this.missingCheckpointReads = 0;
  }

  /** Full jitter: a random delay up to the exponential bound, so many gateways do not retry in step. */
  private backoffMs(): number {
    const { retryInitialMs, retryMaxMs } = this.options.sink;
    const bound = Math.min(retryMaxMs, retryInitialMs * 2 ** Math.min(this.consecutiveFailures - 1, 30));
    return retryInitialMs / 2 + Math.random() * Math.max(0, bound - retryInitialMs / 2);
  }

  private idle(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }
}

function loadCursor(path: string, logId: string): ShipPosition {
  if (!existsSync(path)) return initialPosition(logId);
  let parsed: ShipPosition;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as ShipPosition;
  } catch (error) {
    throw new Error(`audit sink cursor ${path} is unreadable (${(error as Error).message}): delete it to ship this sink again from the start of the log`, { cause: error });
  }
  // A cursor of another log (the directory was replaced) says nothing about this one.
  if (parsed.logId !== logId || !Number.isInteger(parsed.nextSeq)) return initialPosition(logId);
  return parsed;
}

/**
 * The cursor, written like storage's writeFileDurably (temporary file, fsync, rename, fsync of the
 * directory) but on the thread pool: a synchronous fsync here would stall the gateway's event
 * loop, and with it every call, for as long as the disk takes.
 */
async function saveCursor(path: string, position: ShipPosition): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temporary = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  const file = await open(temporary, 'w', 0o600);
  try {
    await file.writeFile(`${JSON.stringify(position)}\n`);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, path);
  const directory = await open(dir, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
