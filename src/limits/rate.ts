// Rate limits: one counter per rule and scope value, checked in the order the rules are written.
import type { RateRule } from './config.js';
import { keyPart, selects, type CallSubject } from './match.js';
import type { LimitStore, TakeResult } from './store/types.js';

export interface RateDenial {
  limit: string;
  scope: RateRule['scope'];
  algorithm: RateRule['algorithm'];
  points: number;
  durationMs: number;
  retryAfterMs: number;
}

interface CompiledRule {
  rule: RateRule;
  name: string;
}

export class RateLimits {
  private readonly rules: CompiledRule[];

  constructor(
    rules: readonly RateRule[],
    private readonly store: LimitStore,
  ) {
    this.rules = rules.map((rule, index) => ({ rule, name: rule.name ?? `rates[${index}]` }));
  }

  get size(): number {
    return this.rules.length;
  }

  /**
   * Takes one point from every rule that applies, stopping at the first that refuses. Points
   * taken from earlier rules are not given back: a refused call still spent the caller's effort,
   * and giving back would need a second round trip to Redis per call.
   */
  async take(subject: CallSubject): Promise<RateDenial | undefined> {
    for (const { rule, name } of this.rules) {
      if (!selects(rule.match, subject)) continue;
      const key = `rate:${keyPart(name)}:${scopeKey(rule.scope, subject)}`;
      const result: TakeResult =
        rule.algorithm === 'slidingWindow'
          ? await this.store.slidingWindow(key, { points: rule.points, durationMs: rule.durationMs })
          : await this.store.tokenBucket(key, { capacity: rule.burst ?? rule.points, points: rule.points, durationMs: rule.durationMs });
      if (!result.allowed) {
        return { limit: name, scope: rule.scope, algorithm: rule.algorithm, points: rule.points, durationMs: rule.durationMs, retryAfterMs: result.retryAfterMs };
      }
    }
    return undefined;
  }
}

function scopeKey(scope: RateRule['scope'], subject: CallSubject): string {
  switch (scope) {
    case 'agent':
      return `a:${keyPart(subject.agent)}`;
    case 'server':
      return `s:${keyPart(subject.server)}`;
    case 'tool':
      return `t:${keyPart(subject.server)}:${keyPart(subject.tool)}`;
    case 'agentTool':
      return `at:${keyPart(subject.agent)}:${keyPart(subject.server)}:${keyPart(subject.tool)}`;
  }
}
