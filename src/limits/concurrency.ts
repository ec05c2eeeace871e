// In-flight limits per agent, server and tool, with a bounded wait for a free slot. Counted in
// this process: a replica's in-flight calls are its own (docs/limits.md says why).
import { isPromise, type CancelSignal, type MaybePromise } from '../pipeline/index.js';
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

/** One call's progress through its groups. */
interface Claim {
  started: number;
  deadline: number;
  signal: CancelSignal;
  held: Slots[];
}

export type Acquired = { ok: true; release: () => void } | { ok: false; denial: ConcurrencyDenial };

export class Concurrency {
  private readonly groups = new Map<string, Slots>();

  constructor(private readonly config: ConcurrencyConfig) {}

  /**
   * Takes a slot in the agent's, the server's and the tool's group, in that order (one order, so
   * no deadlock). Answers at once when every slot is free; a promise only when a call must queue.
   */
  acquire(subject: CallSubject, signal: CancelSignal): MaybePromise<Acquired> {
    const started = Date.now();
    const claim: Claim = { started, deadline: started + this.config.maxQueueMs, signal, held: [] };
    return this.claimFrom(0, [
      ['perAgent', `a:${subject.agent}`, this.config.perAgent],
      ['perServer', `s:${subject.server}`, this.config.perServer],
      ['perTool', `t:${subject.server}\u0000${subject.tool}`, this.config.perTool],
    ], claim);
  }

  private claimFrom(first: number, wanted: ReadonlyArray<[ConcurrencyLimit, string, number]>, claim: Claim): MaybePromise<Acquired> {
    for (let index = first; index < wanted.length; index += 1) {
      const [limit, key, max] = wanted[index] as [ConcurrencyLimit, string, number];
      const slots = this.group(key, max);
      const why = this.take(slots, claim.deadline, claim.signal);
      if (isPromise(why)) {
        return why.then((waited) => {
          if (waited !== undefined) return this.refuse(claim, limit, max, waited);
          claim.held.push(slots);
          return this.claimFrom(index + 1, wanted, claim);
        });
      }
      if (why !== undefined) return this.refuse(claim, limit, max, why);
      claim.held.push(slots);
    }
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.releaseAll(claim);
      },
    };
  }

  private refuse(claim: Claim, limit: ConcurrencyLimit, max: number, why: ConcurrencyDenial['why']): Acquired {
    this.releaseAll(claim);
    return { ok: false, denial: { limit, max, why, waitedMs: Date.now() - claim.started } };
  }

  private releaseAll(claim: Claim): void {
    for (const slots of claim.held.splice(0).reverse()) this.release(slots);
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

  /** undefined when the slot is taken, the reason when refused, a promise of either when the call queues. */
  private take(slots: Slots, deadline: number, signal: CancelSignal): MaybePromise<ConcurrencyDenial['why'] | undefined> {
    if (slots.active < slots.max && slots.queue.length === 0) {
      slots.active += 1;
      return undefined;
    }
    const waitMs = deadline - Date.now();
    if (waitMs <= 0 || slots.queue.length >= this.config.maxQueue) return waitMs <= 0 ? 'wait_timeout' : 'queue_full';
    if (signal.aborted) return 'aborted';
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
