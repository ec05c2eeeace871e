// Chain length: how many tool calls one task and one session may make, so that an agent stuck
// in a loop is cut off. Task counters live in the store, so a task spread over replicas is
// counted once.
import type { ChainConfig } from './config.js';
import { keyPart } from './match.js';
import { chain, type MaybePromise } from '../pipeline/index.js';
import type { LimitStore } from './store/types.js';

export interface ChainDenial {
  limit: 'perTask' | 'perSession';
  max: number;
  count: number;
  /** When the counter's window ends. */
  retryAfterMs: number;
}

export class ChainLimits {
  constructor(
    private readonly config: ChainConfig,
    private readonly store: LimitStore,
  ) {}

  /** Counts one tool call; refuses it when the task's or the session's count goes over. */
  count(sessionId: string, taskId: string | undefined): MaybePromise<ChainDenial | undefined> {
    const entries = [{ key: `chain:s:${keyPart(sessionId)}`, amount: 1, windowMs: this.config.ttlMs }];
    if (taskId !== undefined) entries.push({ key: `chain:t:${keyPart(taskId)}`, amount: 1, windowMs: this.config.ttlMs });
    return chain(this.store.add(entries), ([session, task]) => {
      if (session !== undefined && session.total > this.config.perSession) return { limit: 'perSession', max: this.config.perSession, count: session.total, retryAfterMs: session.resetMs };
      if (task !== undefined && task.total > this.config.perTask) return { limit: 'perTask', max: this.config.perTask, count: task.total, retryAfterMs: task.resetMs };
      return undefined;
    });
  }
}
