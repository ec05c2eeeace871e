// The embedded store: the same algorithms as the Redis scripts, in this process's memory.
import type { AddEntry, CounterValue, LimitStore, StoredCounter, TakeEntry, TakeResult } from './types.js';

interface Bucket {
  tokens: number;
  ts: number;
  expiresAt: number;
}

interface Window {
  /** Admission times, oldest first. */
  times: number[];
  expiresAt: number;
}

interface Counter {
  total: number;
  expiresAt: number;
}

const SWEEP_MS = 60_000;

export class MemoryStore implements LimitStore {
  readonly kind = 'memory' as const;
  private readonly buckets = new Map<string, Bucket>();
  private readonly windows = new Map<string, Window>();
  private readonly counters = new Map<string, Counter>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now) {
    // Expired entries are dropped in bulk so that one-off keys (task ids) cannot grow the maps forever.
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  // Answers synchronously: the callers chain the value without a promise per operation.
  take(entries: readonly TakeEntry[]): TakeResult {
    const now = this.now();
    const tokens: number[] = [];
    // First decide for every entry, then charge all of them: all or nothing, as the Redis script.
    for (let index = 0; index < entries.length; index += 1) {
      const { key, spec } = entries[index] as TakeEntry;
      if (spec.algorithm === 'tokenBucket') {
        const rate = spec.points / spec.durationMs;
        const found = this.buckets.get(key);
        const available = found === undefined || found.expiresAt <= now ? spec.capacity : Math.min(spec.capacity, found.tokens + Math.max(0, now - found.ts) * rate);
        if (available < 1) return { allowed: false, refusedBy: index, retryAfterMs: Math.ceil((1 - available) / rate) };
        tokens[index] = available;
      } else {
        const window = this.windows.get(key);
        if (window === undefined) continue;
        const cutoff = now - spec.durationMs;
        let drop = 0;
        while (drop < window.times.length && (window.times[drop] as number) <= cutoff) drop += 1;
        if (drop > 0) window.times.splice(0, drop);
        if (window.times.length >= spec.points) return { allowed: false, refusedBy: index, retryAfterMs: Math.max(1, (window.times[0] as number) + spec.durationMs - now) };
      }
    }
    for (let index = 0; index < entries.length; index += 1) {
      const { key, spec } = entries[index] as TakeEntry;
      if (spec.algorithm === 'tokenBucket') {
        const rate = spec.points / spec.durationMs;
        this.buckets.set(key, { tokens: (tokens[index] as number) - 1, ts: now, expiresAt: now + Math.ceil(spec.capacity / rate) + 1000 });
      } else {
        let window = this.windows.get(key);
        if (window === undefined) {
          window = { times: [], expiresAt: 0 };
          this.windows.set(key, window);
        }
        window.times.push(now);
        window.expiresAt = now + spec.durationMs;
      }
    }
    return { allowed: true, refusedBy: -1, retryAfterMs: 0 };
  }

  add(entries: readonly AddEntry[]): CounterValue[] {
    const now = this.now();
    return entries.map(({ key, amount, windowMs }) => {
      let counter = this.counters.get(key);
      if (counter === undefined || counter.expiresAt <= now) {
        counter = { total: 0, expiresAt: now + windowMs };
        this.counters.set(key, counter);
      }
      counter.total += amount;
      return { total: counter.total, resetMs: counter.expiresAt - now };
    });
  }

  peek(keys: readonly string[]): CounterValue[] {
    const now = this.now();
    return keys.map((key) => {
      const counter = this.counters.get(key);
      return counter === undefined || counter.expiresAt <= now ? { total: 0, resetMs: 0 } : { total: counter.total, resetMs: counter.expiresAt - now };
    });
  }

  snapshot(limit: number): Promise<{ counters: StoredCounter[]; truncated: boolean }> {
    const now = this.now();
    const counters: StoredCounter[] = [];
    const live = <T extends { expiresAt: number }>(map: Map<string, T>, type: StoredCounter['type'], value: (entry: T) => number): boolean => {
      for (const [key, entry] of map) {
        if (entry.expiresAt <= now) continue;
        if (counters.length >= limit) return true;
        counters.push({ key, type, value: value(entry), ttlMs: entry.expiresAt - now });
      }
      return false;
    };
    const truncated = live(this.buckets, 'tokenBucket', (bucket) => bucket.tokens) || live(this.windows, 'slidingWindow', (window) => window.times.length) || live(this.counters, 'counter', (counter) => counter.total);
    return Promise.resolve({ counters, truncated });
  }

  close(): Promise<void> {
    clearInterval(this.sweeper);
    return Promise.resolve();
  }

  private sweep(): void {
    const now = this.now();
    for (const map of [this.buckets, this.windows, this.counters] as Array<Map<string, { expiresAt: number }>>) {
      for (const [key, entry] of map) if (entry.expiresAt <= now) map.delete(key);
    }
  }
}
