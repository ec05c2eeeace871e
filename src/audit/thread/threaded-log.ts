// The audit log run on a worker thread of its own (audit.writer: thread, and adaptive while calls overlap). The
// gateway's main thread only hands over what a record is built from (a structured clone of the
// call's arguments and outcome); building the record (redaction, canonical JSON, keyed digests),
// chaining, hashing, sealing, checkpointing and the synced writes all happen on the writer thread,
// with the same AuditLog as the inline writer. What it guarantees is the inline writer's: records
// are appended in the order they were handed over, and in durable mode an append (and so the
// answer to the call) resolves only after the synced write holding its record returned. If the
// thread fails or ends, every pending and later append is refused (the calls fail closed) and the
// readiness check reports why.
//
// Adaptive (audit.writer: adaptive, the default): while calls come one at a time the log moves to
// the main thread (placement.ts), where a call's record costs no thread wake-up; when calls
// overlap it moves back. A move waits until everything is written, synced and sealed, hands the
// log's state over (AuditLog.release, AuditLog.adopt) and holds the records that arrive meanwhile;
// they go to the new writer in their order. Nothing is written for a move, and the chain goes on.
import type { KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { AppendOnlyStatus } from '../append-only.js';
import type { NoteVerifier } from '../keys.js';
import type { LogMetadata } from '../layout.js';
import type { AuditLogOptions } from '../log.js';
import { AuditTamperError, AuditUnavailableError, type AppendResult, type AuditWriter, type RecoveryReport, type WriterStats } from '../log-types.js';
import type { CallRecordInput, CaptureOptions } from '../record.js';
import type { ScanProblem } from '../scan.js';
import type { AuditFields, JsonValue } from '../schema.js';
import { AuditLog } from '../log.js';
import { buildRequestRecord } from '../record.js';
import { keyedDigest, sealLineVerifies } from '../seal.js';
import { Placement } from './placement.js';
import type { LogState, WireError, WriterAnswer, WriterMessage, WriterRequest } from './protocol.js';

interface Pending {
  resolve(answer: WriterAnswer): void;
  reject(error: Error): void;
}

/** A call's record, built on the writer thread, and what the log said. */
export interface CallAppended {
  result: AppendResult;
  /** Present when asked for (the console feed shows the record). */
  fields?: AuditFields;
}

const NOT_CLONEABLE = 'AuditNotCloneableError';

/** A request the writer thread could not be given (a part of it cannot be cloned); nothing was appended. */
export function isNotCloneable(error: unknown): boolean {
  return error instanceof Error && error.name === NOT_CLONEABLE;
}

function fromWire(error: WireError): Error {
  if (error.name === 'AuditTamperError' && error.problem !== undefined) return new AuditTamperError(error.problem as ScanProblem);
  if (error.name === 'AuditUnavailableError') return new AuditUnavailableError(error.message);
  const rebuilt = new Error(error.message);
  rebuilt.name = error.name;
  return rebuilt;
}

export class ThreadedAuditLog implements AuditWriter {
  private readonly pending = new Map<number, Pending>();
  private batch: WriterRequest[] = [];
  private flushScheduled = false;
  private reffed = true;
  private nextId = 1;
  private state: LogState;
  /** Set when the thread failed or ended on its own: nothing more is accepted. */
  private broken: Error | undefined;
  private closing: Promise<void> | undefined;
  private readonly commitListeners = new Set<() => void>();
  /** The log while the main thread writes it (adaptive); undefined while the writer thread does. */
  private inline: AuditLog | undefined;
  /** A move between the threads in progress; requests made meanwhile wait in `held`. */
  private moving: Promise<void> | undefined;
  private held: Array<() => void> = [];
  private moves = 0;
  readonly dir: string;
  readonly metadata: LogMetadata;
  readonly appendOnly: AppendOnlyStatus;
  readonly recovery: RecoveryReport;
  readonly checkpointVerifier: NoteVerifier;
  private readonly keys: { seal: KeyObject; digest: KeyObject };

  private constructor(
    private readonly worker: Worker,
    opened: Extract<WriterMessage, { type: 'opened' }>['log'],
    private readonly options: AuditLogOptions,
    /** Set when the log may move to the main thread (audit.writer: adaptive). */
    private readonly placer: Placement | undefined,
  ) {
    this.state = opened;
    this.dir = opened.dir;
    this.metadata = opened.metadata;
    this.appendOnly = opened.appendOnly;
    this.recovery = opened.recovery;
    this.checkpointVerifier = opened.verifier;
    this.keys = opened.keys;
    worker.on('message', (message: WriterMessage) => this.received(message));
    worker.on('error', (error) => this.fail(new AuditUnavailableError(`audit log unavailable: its writer thread failed: ${error.message}. Calls must be denied until the gateway restarts`)));
    worker.on('exit', (code) => {
      if (this.closing === undefined) this.fail(new AuditUnavailableError(`audit log unavailable: its writer thread ended (exit code ${code}). Calls must be denied until the gateway restarts`));
    });
    this.refreshRef();
  }

  /** Opens the log on a new writer thread; fails as AuditLog.open fails (the same errors). */
  static async open(options: AuditLogOptions, { adaptive = false }: { adaptive?: boolean } = {}): Promise<ThreadedAuditLog> {
    if (options.now !== undefined) throw new Error('audit: a test clock cannot be handed to the writer thread; use AuditLog.open');
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: options });
    const opened = await new Promise<Extract<WriterMessage, { type: 'opened' }>['log']>((resolve, reject) => {
      const onMessage = (message: WriterMessage): void => {
        cleanup();
        if (message.type === 'opened') resolve(message.log);
        else reject(message.type === 'open-failed' ? fromWire(message.error) : new Error('audit writer thread: unexpected first message'));
      };
      const onError = (error: Error): void => {
        cleanup();
        reject(error);
      };
      const onExit = (code: number): void => {
        cleanup();
        reject(new Error(`audit writer thread ended while opening the log (exit code ${code})`));
      };
      const cleanup = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    }).catch(async (error: unknown) => {
      await worker.terminate();
      throw error;
    });
    return new ThreadedAuditLog(worker, opened, options, adaptive ? new Placement() : undefined);
  }

  get size(): number {
    return this.inline?.size ?? this.state.size;
  }

  get chainHead(): string {
    return this.inline?.chainHead ?? this.state.head;
  }

  get stats(): WriterStats {
    return this.inline?.stats ?? this.state.stats;
  }

  get failedWith(): Error | undefined {
    return this.broken ?? this.inline?.failedWith ?? (this.state.failed === undefined ? undefined : fromWire(this.state.failed));
  }

  /** Which thread writes the log now. */
  get writingOn(): 'main' | 'thread' {
    return this.inline === undefined ? 'thread' : 'main';
  }

  get placement(): { onMainThread: boolean; moves: number } {
    return { onMainThread: this.inline !== undefined, moves: this.moves };
  }

  append(fields: AuditFields): Promise<AppendResult> {
    return this.route(
      (log) => log.append(fields),
      async () => (await this.request({ op: 'append', id: 0, fields })).result as AppendResult,
    );
  }

  event(type: string, info: { [key: string]: JsonValue } = {}): Promise<AppendResult> {
    return this.append({ kind: 'event', event: type, info });
  }

  /**
   * Builds the record of a finished call on the writer thread and appends it. A call whose parts
   * cannot be cloned (no such part comes from JSON) is refused here; the audit guard then builds
   * the record on this thread and appends the fields instead.
   */
  appendCall(call: CallRecordInput, capture: CaptureOptions, wantFields = false, alone = false): Promise<CallAppended> {
    this.place(alone);
    return this.route(
      async (log) => {
        const fields = buildRequestRecord(call, capture, (text) => log.digestText(text));
        const result = await log.append(fields);
        return wantFields ? { result, fields } : { result };
      },
      async () => {
        const answer = await this.request({ op: 'call', id: 0, call, capture, wantFields });
        return answer.fields === undefined ? { result: answer.result as AppendResult } : { result: answer.result as AppendResult, fields: answer.fields };
      },
    );
  }

  digestText(canonicalJson: string): string {
    return keyedDigest(this.keys.digest, canonicalJson);
  }

  sealVerifies(line: Buffer, seq: number): boolean {
    return sealLineVerifies(this.keys.seal, this.metadata.logId, line, seq);
  }

  onCommit(listener: () => void): () => void {
    this.commitListeners.add(listener);
    return () => this.commitListeners.delete(listener);
  }

  checkpoint(): Promise<void> {
    return this.route(
      (log) => log.checkpoint(),
      async () => {
        await this.request({ op: 'checkpoint', id: 0 });
      },
    );
  }

  flush(): Promise<void> {
    return this.route(
      (log) => log.flush(),
      async () => {
        await this.request({ op: 'flush', id: 0 });
      },
    );
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.moving;
      const inline = this.inline;
      if (inline !== undefined) await inline.close().catch(() => undefined);
      else if (this.broken === undefined) await this.request({ op: 'close', id: 0 }, true).catch(() => undefined);
      this.broken ??= new AuditUnavailableError('audit log is closed');
      await this.worker.terminate();
    })();
    return this.closing;
  }

  /** To the log's writer now, in call order; held while a move is in progress. */
  private route<T>(onMain: (log: AuditLog) => Promise<T>, onThread: () => Promise<T>): Promise<T> {
    if (this.broken !== undefined) return Promise.reject(this.broken);
    if (this.closing !== undefined) return Promise.reject(new AuditUnavailableError('audit log is closed'));
    if (this.moving !== undefined) return new Promise<T>((resolve, reject) => this.held.push(() => this.route(onMain, onThread).then(resolve, reject)));
    return this.inline === undefined ? onThread() : onMain(this.inline);
  }

  /** Starts a move when the placement asks for the other thread. */
  private place(alone: boolean): void {
    if (this.placer === undefined || this.moving !== undefined || this.broken !== undefined || this.closing !== undefined) return;
    const onMain = this.inline !== undefined;
    if (this.placer.observe(alone, onMain) === onMain) return;
    this.moving = (onMain ? this.moveToThread() : this.moveToMain()).then(
      () => {
        this.moves += 1;
      },
      (error: unknown) => this.fail(new AuditUnavailableError(`audit log unavailable: moving it between threads failed: ${error instanceof Error ? error.message : String(error)}. Calls must be denied until the gateway restarts`)),
    ).finally(() => {
      this.moving = undefined;
      const held = this.held;
      this.held = [];
      for (const go of held) go();
    });
  }

  private async moveToMain(): Promise<void> {
    // Moves finish even when close() is called meanwhile (it waits for them): their requests count as closing ones.
    const { handoff } = await this.request({ op: 'release', id: 0 }, true);
    if (handoff === undefined) throw new Error('the writer thread released the log without its state');
    const inline = await AuditLog.adopt({ ...this.options, blockingWrites: true }, handoff);
    inline.onCommit(() => this.notifyCommit());
    this.inline = inline;
  }

  private async moveToThread(): Promise<void> {
    const inline = this.inline as AuditLog;
    const handoff = await inline.release();
    // Until the writer thread answers with its own state, report where the main thread stopped.
    this.state = { size: inline.size, head: inline.chainHead, stats: inline.stats };
    this.inline = undefined;
    await this.request({ op: 'adopt', id: 0, handoff }, true);
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

  private request(request: WriterRequest, closing = false): Promise<WriterAnswer> {
    if (this.broken !== undefined) return Promise.reject(this.broken);
    if (this.closing !== undefined && !closing) return Promise.reject(new AuditUnavailableError('audit log is closed'));
    const id = this.nextId++;
    request.id = id;
    return new Promise<WriterAnswer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.batch.push(request);
      this.refreshRef();
      this.scheduleFlush();
    });
  }

  /** One message per turn of this thread's loop, whatever the number of calls finished in it. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      const batch = this.batch;
      this.batch = [];
      this.post(batch);
    });
  }

  private post(batch: WriterRequest[]): void {
    try {
      this.worker.postMessage(batch);
      return;
    } catch {
      // One request that cannot be cloned must not take the others with it: send them one by one.
    }
    for (const request of batch) {
      try {
        this.worker.postMessage([request]);
      } catch (error) {
        this.settle({ id: request.id, error: { name: NOT_CLONEABLE, message: `audit: this record cannot be handed to the writer thread: ${(error as Error).message}` } });
      }
    }
  }

  private received(message: WriterMessage): void {
    if (message.type !== 'answers') return;
    this.state = message.state;
    for (const answer of message.answers) this.settle(answer);
    // A wake-up only (sinks then read the files): one per message, however many batches it covers.
    if (message.commits > 0) this.notifyCommit();
    this.refreshRef();
  }

  private settle(answer: WriterAnswer): void {
    const waiting = this.pending.get(answer.id);
    if (waiting === undefined) return;
    this.pending.delete(answer.id);
    if (answer.error !== undefined) waiting.reject(fromWire(answer.error));
    else waiting.resolve(answer);
  }

  private fail(error: Error): void {
    if (this.broken !== undefined) return;
    this.broken = error;
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
    this.refreshRef();
  }

  /** The thread keeps the process alive only while a record is on its way to disk. */
  private refreshRef(): void {
    const wanted = this.pending.size > 0;
    if (wanted === this.reffed) return;
    this.reffed = wanted;
    if (wanted) this.worker.ref();
    else this.worker.unref();
  }
}
