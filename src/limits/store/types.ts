// What the limiters need from wherever the counters live. Both stores implement the same
// semantics, so a rule gives the same answers on one process (memory) as across replicas (Redis).

/** The answer to "may one more call go?". */
export interface TakeResult {
  allowed: boolean;
  /** When a refused call could succeed, in milliseconds from now (0 when allowed). */
  retryAfterMs: number;
  /** Calls still allowed right now, after this one. */
  remaining: number;
}

/** A counter's value and how long until its window resets. */
export interface CounterValue {
  total: number;
  resetMs: number;
}

export interface TokenBucketSpec {
  /** Bucket size: calls allowed at once. */
  capacity: number;
  /** Refill: `points` tokens per `durationMs`. */
  points: number;
  durationMs: number;
}

export interface SlidingWindowSpec {
  points: number;
  durationMs: number;
}

export interface LimitStore {
  readonly kind: 'memory' | 'redis';
  tokenBucket(key: string, spec: TokenBucketSpec): Promise<TakeResult>;
  slidingWindow(key: string, spec: SlidingWindowSpec): Promise<TakeResult>;
  /** Adds `amount` to a counter whose window starts at its first addition and lasts `windowMs`. */
  add(key: string, amount: number, windowMs: number): Promise<CounterValue>;
  /** The counter's value without changing it (0 when absent). */
  peek(key: string): Promise<CounterValue>;
  close(): Promise<void>;
}

/** Thrown by a store that cannot answer; the guard turns it into the configured failure behaviour. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}
