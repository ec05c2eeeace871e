// Several audit logs at once, for replicas: each replica keeps its own chained log (records carry
// its `replica` id), and mcp-auditctl verifies each and merges them by time for reading.
import type { AuditRecord } from '../audit/schema.js';

/** Commander collector for a repeatable `--log DIR`. */
export function collectLog(value: string, previous: string[] | string | undefined): string[] {
  return [...(Array.isArray(previous) ? previous : []), value];
}

export interface Located<T> {
  /** Index of the log among those given. */
  log: number;
  item: T;
}

/**
 * Merges several logs' records into one sequence ordered by `ts` (ISO times compare as strings);
 * records with the same time keep the order of the logs given, and each log's own order is kept
 * (a log is in time order already, so this is a k-way merge that reads each log once, lazily).
 */
export function* mergeByTime<T extends { record: AuditRecord }>(logs: ReadonlyArray<Iterable<T>>): Generator<Located<T>> {
  const iterators = logs.map((log) => log[Symbol.iterator]());
  const heads: Array<T | undefined> = iterators.map((iterator) => next(iterator));
  for (;;) {
    let best = -1;
    for (let index = 0; index < heads.length; index += 1) {
      const head = heads[index];
      if (head === undefined) continue;
      if (best === -1 || head.record.ts < (heads[best] as T).record.ts) best = index;
    }
    if (best === -1) return;
    yield { log: best, item: heads[best] as T };
    heads[best] = next(iterators[best] as Iterator<T>);
  }
}

function next<T>(iterator: Iterator<T>): T | undefined {
  const step = iterator.next();
  return step.done === true ? undefined : step.value;
}

/** The exit code for several logs verified: the worst finding wins (tampered, then unreadable, then an unsigned tail). */
export function worstExit(codes: readonly number[]): number {
  for (const code of [2, 5, 6, 7, 3, 4]) if (codes.includes(code)) return code;
  return 0;
}
