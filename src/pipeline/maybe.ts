// A value now, or a promise of it. Code on the per-call path chains these so that a step that has
// nothing to wait for costs no promise and no microtask turn; only a step that really waits (a
// shared store, the upstream, an approver) makes the rest of the chain asynchronous.

export type MaybePromise<T> = T | Promise<T>;

export function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** `then(value)` now when the value is here, after it settles otherwise. */
export function chain<T, R>(value: MaybePromise<T>, then: (value: T) => MaybePromise<R>): MaybePromise<R> {
  return isPromise(value) ? value.then(then) : then(value);
}

/**
 * Runs `run` and passes its result (or what it threw, or the rejection) to `done`, then rethrows
 * or returns as `run` did: a `finally` that works the same for a value and for a promise.
 */
export function settle<T>(run: () => MaybePromise<T>, done: (failed: boolean) => void): MaybePromise<T> {
  let value: MaybePromise<T>;
  try {
    value = run();
  } catch (error) {
    done(true);
    throw error;
  }
  if (!isPromise(value)) {
    done(false);
    return value;
  }
  return value.then(
    (result) => {
      done(false);
      return result;
    },
    (error: unknown) => {
      done(true);
      throw error;
    },
  );
}
