// The embedded store: the same algorithms as the Redis scripts, in this process's memory.
import type { CounterValue, LimitStore, SlidingWindowSpec, TakeResult, TokenBucketSpec } from './types.js';

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

  tokenBucket(key: string, spec: TokenBucketSpec): Promise<TakeResult> {
    const now = this.now();
    const rate = spec.points / spec.durationMs;
    const found = this.buckets.get(key);
    let tokens = found === undefined || found.expiresAt <= now ? spec.capacity : Math.min(spec.capacity, found.tokens + (now - found.ts) * rate);
    let result: TakeResult;
    if (tokens >= 1) {
      tokens -= 1;
      result = { allowed: true, retryAfterMs: 0, remaining: Math.floor(tokens) };
    } else {
      result = { allowed: false, retryAfterMs: Math.ceil((1 - tokens) / rate), remaining: 0 };
    }
    this.buckets.set(key, { tokens, ts: now, expiresAt: now + Math.ceil(spec.capacity / rate) + 1000 });
    return Promise.resolve(result);
  }

  slidingWindow(key: string, spec: SlidingWindowSpec): Promise<TakeResult> {
    const now = this.now();
    let window = this.windows.get(key);
    if (window === undefined) {
      window = { times: [], expiresAt: 0 };
      this.windows.set(key, window);
    }
    const cutoff = now - spec.durationMs;
    let drop = 0;
    while (drop < window.times.length && (window.times[drop] as number) <= cutoff) drop += 1;
    if (drop > 0) window.times.splice(0, drop);
    if (window.times.length < spec.points) {
      window.times.push(now);
      window.expiresAt = now + spec.durationMs;
      return Promise.resolve({ allowed: true, retryAfterMs: 0, remaining: spec.points - window.times.length });
    }
    const oldest = window.times[0] as number;
    return Promise.resolve({ allowed: false, retryAfterMs: Math.max(1, oldest + spec.durationMs - now), remaining: 0 });
  }

  add(key: string, amount: number, windowMs: number): Promise<CounterValue> {
    const now = this.now();
    let counter = this.counters.get(key);
    if (counter === undefined || counter.expiresAt <= now) {
      counter = { total: 0, expiresAt: now + windowMs };
      this.counters.set(key, counter);
    }
    counter.total += amount;
    return Promise.resolve({ total: counter.total, resetMs: counter.expiresAt - now });
  }

  peek(key: string): Promise<CounterValue> {
    const now = this.now();
    const counter = this.counters.get(key);
    if (counter === undefined || counter.expiresAt <= now) return Promise.resolve({ total: 0, resetMs: 0 });
    return Promise.resolve({ total: counter.total, resetMs: counter.expiresAt - now });
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
