// What the limiters need from wherever the counters live. Both stores implement the same
// semantics, so a rule gives the same answers on one process (memory) as across replicas (Redis),
// and each operation is one round trip however many rules apply.

export type RateAlgorithmSpec =
  /** Bucket of `capacity` tokens refilled at `points` per `durationMs`. */
  | { algorithm: 'tokenBucket'; capacity: number; points: number; durationMs: number }
  /** At most `points` admissions in any `durationMs`. */
  | { algorithm: 'slidingWindow'; points: number; durationMs: number };

export interface TakeEntry {
  key: string;
  spec: RateAlgorithmSpec;
}

/** The answer to "may one more call go?" for a set of rules, all or nothing. */
export interface TakeResult {
  allowed: boolean;
  /** Index into the entries of the first rule that refused (-1 when allowed). */
  refusedBy: number;
  /** When a refused call could succeed, in milliseconds from now (0 when allowed). */
  retryAfterMs: number;
}

export interface AddEntry {
  key: string;
  amount: number;
  /** The counter's window starts at its first addition and lasts this long. */
  windowMs: number;
}

/** A counter's value and how long until its window resets. */
export interface CounterValue {
  total: number;
  resetMs: number;
}

/** One counter as the store holds it now (the admin API's quota view). */
export interface StoredCounter {
  /** The key without the store's prefix: `rate:RULE:SCOPE`, `cpu:RULE:SCOPE`, `chain:s:SESSION`... */
  key: string;
  /** tokenBucket: tokens left at the last admission; slidingWindow: admissions recorded in the window; counter: its total. */
  type: 'tokenBucket' | 'slidingWindow' | 'counter';
  value: number;
  /** Until the store drops it (a bucket refilled, a window passed), in ms. */
  ttlMs: number;
}

/** The embedded store answers at once; a shared store answers with a promise. */
export type StoreAnswer<T> = T | Promise<T>;

export interface LimitStore {
  readonly kind: 'memory' | 'redis';
  /**
   * Admits one call against every entry, or none: when any entry refuses, no entry is charged,
   * so a call refused by one rule does not spend the caller's quota under the others.
   */
  take(entries: readonly TakeEntry[]): StoreAnswer<TakeResult>;
  /** Adds to counters and returns their new values, in order. */
  add(entries: readonly AddEntry[]): StoreAnswer<CounterValue[]>;
  /** Counter values without changing them (0 when absent), in order. */
  peek(keys: readonly string[]): StoreAnswer<CounterValue[]>;
  /** Up to `limit` live counters, for operators; `truncated` when there were more. */
  snapshot(limit: number): Promise<{ counters: StoredCounter[]; truncated: boolean }>;
  close(): Promise<void>;
}

/** Thrown by a store that cannot answer; the guard turns it into the configured failure behaviour. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}
