import { Worker } from 'node:worker_threads';
import type { Finding, Severity } from './types.js';

/**
 * Inspecting text costs tens of microseconds per KiB on the thread that does it, so one large
 * answer from an upstream would hold the gateway's event loop, and with it every other session,
 * for as long as it is scanned. Answers above a threshold are inspected on worker threads
 * instead. The workers run the same rules; a worker that fails or dies fails the inspection, and
 * the caller withholds the answer (fail closed).
 */

export interface InspectWorkerSettings {
  blockAt: Severity;
  categories?: string[];
}

export interface InspectJob {
  id: number;
  texts: string[];
  subject: string;
  field: string;
}

export type InspectReply = { id: number; findings: Finding[] } | { id: number; error: string };

interface Pending {
  resolve: (findings: Finding[]) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

export interface InspectionWorkersOptions extends InspectWorkerSettings {
  /** Worker threads at most (default 1: one thread beside the event loop). */
  threads?: number;
  /** The worker script (tests point it at a hostile one). */
  script?: URL;
}

export class InspectionWorkers {
  private readonly slots: (Slot | undefined)[];
  private readonly script: URL;
  private next = 0;
  private lastJobId = 0;
  private closed = false;

  constructor(private readonly options: InspectionWorkersOptions) {
    this.slots = new Array<Slot | undefined>(Math.max(1, options.threads ?? 1)).fill(undefined);
    this.script = options.script ?? new URL('./inspect-worker.js', import.meta.url);
  }

  /** The findings of every text, from a worker thread. Rejects when the worker fails or exits. */
  inspect(texts: string[], subject: string, field: string): Promise<Finding[]> {
    if (this.closed) return Promise.reject(new Error('inspection workers are closed'));
    const slot = this.slot();
    const id = (this.lastJobId += 1);
    return new Promise<Finding[]>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      // Held while it has work, so an answer being inspected keeps the process alive.
      if (slot.pending.size === 1) slot.worker.ref();
      const job: InspectJob = { id, texts, subject, field };
      try {
        slot.worker.postMessage(job);
      } catch (error) {
        slot.pending.delete(id);
        if (slot.pending.size === 0) slot.worker.unref();
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  /** Stops the threads; inspections still running are failed. */
  async close(): Promise<void> {
    this.closed = true;
    const running = this.slots.filter((slot): slot is Slot => slot !== undefined);
    this.slots.fill(undefined);
    await Promise.all(running.map((slot) => slot.worker.terminate()));
  }

  /** Round robin over the slots, starting a thread the first time a slot is used or after its thread died. */
  private slot(): Slot {
    const index = this.next;
    this.next = (this.next + 1) % this.slots.length;
    const existing = this.slots[index];
    if (existing !== undefined) return existing;
    const settings: InspectWorkerSettings = { blockAt: this.options.blockAt, ...(this.options.categories ? { categories: this.options.categories } : {}) };
    const worker = new Worker(this.script, { workerData: settings });
    // The gateway's exit must not wait for an idle inspection thread.
    worker.unref();
    const slot: Slot = { worker, pending: new Map() };
    this.slots[index] = slot;
    worker.on('message', (reply: InspectReply) => {
      const pending = slot.pending.get(reply.id);
      if (pending === undefined) return;
      slot.pending.delete(reply.id);
      if (slot.pending.size === 0) slot.worker.unref();
      if ('error' in reply) pending.reject(new Error(`output inspection failed: ${reply.error}`));
      else pending.resolve(reply.findings);
    });
    const fail = (why: string): void => {
      if (this.slots[index] === slot) this.slots[index] = undefined;
      for (const pending of slot.pending.values()) pending.reject(new Error(`output inspection thread ${why}`));
      slot.pending.clear();
    };
    worker.on('error', (error) => fail(`failed: ${error.message}`));
    worker.on('exit', (code) => fail(`exited with code ${code}`));
    return slot;
  }
}
