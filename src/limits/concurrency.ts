// In-flight limits per agent, server and tool, with a bounded wait for a free slot. Counted in
// this process: a replica's in-flight calls are its own (docs/limits.md says why).
import type { CancelSignal } from '../pipeline/index.js';
import type { ConcurrencyConfig } from './config.js';
import type { CallSubject } from './match.js';

interface Waiter {
  grant(): void;
}

/** A counting semaphore with a FIFO queue. */
class Slots {
  active = 0;
  readonly queue: Waiter[] = [];

  constructor(readonly max: number) {}

  release(): void {
    const waiter = this.queue.shift();
    if (waiter !== undefined) waiter.grant();
    else this.active -= 1;
  }
}

export type ConcurrencyLimit = 'perAgent' | 'perServer' | 'perTool';

export interface ConcurrencyDenial {
  limit: ConcurrencyLimit;
  max: number;
  /** `queue_full` when too many were already waiting, `wait_timeout` after maxQueueMs. */
  why: 'queue_full' | 'wait_timeout' | 'aborted';
  waitedMs: number;
}

export type Acquired = { ok: true; release: () => void } | { ok: false; denial: ConcurrencyDenial };

export class Concurrency {
  private readonly groups = new Map<string, Slots>();

  constructor(private readonly config: ConcurrencyConfig) {}

  /** Takes a slot in the agent's, the server's and the tool's group, in that order (one order, so no deadlock). */
  async acquire(subject: CallSubject, signal: CancelSignal): Promise<Acquired> {
    const started = Date.now();
    const deadline = started + this.config.maxQueueMs;
    const wanted: Array<[ConcurrencyLimit, string, number]> = [
      ['perAgent', `a:${subject.agent}`, this.config.perAgent],
      ['perServer', `s:${subject.server}`, this.config.perServer],
      ['perTool', `t:${subject.server}\u0000${subject.tool}`, this.config.perTool],
    ];
    const held: Slots[] = [];
    const releaseAll = (): void => {
      for (const slots of held.splice(0).reverse()) this.release(slots);
    };
    for (const [limit, key, max] of wanted) {
      const slots = this.group(key, max);
      const why = await this.take(slots, deadline, signal);
      if (why !== undefined) {
        releaseAll();
        return { ok: false, denial: { limit, max, why, waitedMs: Date.now() - started } };
      }
      held.push(slots);
    }
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        releaseAll();
      },
    };
  }

  /** Calls in flight for a group key, for tests and metrics. */
  inFlight(kind: 'agent' | 'server' | 'tool', name: string, tool?: string): number {
    const key = kind === 'agent' ? `a:${name}` : kind === 'server' ? `s:${name}` : `t:${name}\u0000${tool ?? ''}`;
    return this.groups.get(key)?.active ?? 0;
  }

  private group(key: string, max: number): Slots {
    let slots = this.groups.get(key);
    if (slots === undefined) {
      slots = new Slots(max);
      this.groups.set(key, slots);
    }
    return slots;
  }

  private release(slots: Slots): void {
    slots.release();
    // Idle groups are dropped so that many agents or tools over time do not grow the map.
    if (slots.active === 0 && slots.queue.length === 0) {
      for (const [key, value] of this.groups) {
        if (value === slots) {
          this.groups.delete(key);
          break;
        }
      }
    }
  }

  private take(slots: Slots, deadline: number, signal: CancelSignal): Promise<ConcurrencyDenial['why'] | undefined> {
    if (slots.active < slots.max && slots.queue.length === 0) {
      slots.active += 1;
      return Promise.resolve(undefined);
    }
    const waitMs = deadline - Date.now();
    if (waitMs <= 0 || slots.queue.length >= this.config.maxQueue) return Promise.resolve(waitMs <= 0 ? 'wait_timeout' : 'queue_full');
    if (signal.aborted) return Promise.resolve('aborted');
    return new Promise((resolve) => {
      const settle = (why: ConcurrencyDenial['why'] | undefined): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(why);
      };
      // A released slot passes straight to the first waiter, so `active` stays the same.
      const waiter: Waiter = { grant: () => settle(undefined) };
      const leave = (why: ConcurrencyDenial['why']): void => {
        const index = slots.queue.indexOf(waiter);
        if (index >= 0) slots.queue.splice(index, 1);
        settle(why);
      };
      const onAbort = (): void => leave('aborted');
      const timer = setTimeout(() => leave('wait_timeout'), waitMs);
      signal.addEventListener('abort', onAbort, { once: true });
      slots.queue.push(waiter);
    });
  }
}
