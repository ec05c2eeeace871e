// Rate limits: one counter per rule and scope value, checked in the order the rules are written.
import type { RateRule } from './config.js';
import { keyPart, selects, type CallSubject } from './match.js';
import { chain, type MaybePromise } from '../pipeline/index.js';
import type { LimitStore, TakeEntry, TakeResult } from './store/types.js';

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
   * Takes one point from every rule that applies, in one store round trip, all or nothing: a call
   * refused by one rule spends nothing under the others. The refusal names the first rule (in
   * config order) that refused.
   */
  take(subject: CallSubject): MaybePromise<RateDenial | undefined> {
    const matched = this.rules.filter(({ rule }) => selects(rule.match, subject));
    if (matched.length === 0) return undefined;
    const entries: TakeEntry[] = matched.map(({ rule, name }) => ({
      key: `rate:${keyPart(name)}:${scopeKey(rule.scope, subject)}`,
      spec: rule.algorithm === 'slidingWindow' ? { algorithm: 'slidingWindow', points: rule.points, durationMs: rule.durationMs } : { algorithm: 'tokenBucket', capacity: rule.burst ?? rule.points, points: rule.points, durationMs: rule.durationMs },
    }));
    return chain(this.store.take(entries), (result) => denial(matched, result));
  }
}

function denial(matched: readonly CompiledRule[], result: TakeResult): RateDenial | undefined {
  if (result.allowed) return undefined;
  const refused = matched[result.refusedBy];
  if (refused === undefined) throw new Error(`the limit store named rule ${result.refusedBy} of ${matched.length}`);
  const { rule, name } = refused;
  return { limit: name, scope: rule.scope, algorithm: rule.algorithm, points: rule.points, durationMs: rule.durationMs, retryAfterMs: result.retryAfterMs };
}

function scopeKey(scope: RateRule['scope'], subject: CallSubject): string {
  switch (scope) {
    case 'agent':
      return `a:${keyPart(subject.agent)}`;
    case 'token':
      return `k:${keyPart(subject.token ?? 'none')}`;
    case 'server':
      return `s:${keyPart(subject.server)}`;
    case 'tool':
      return `t:${keyPart(subject.server)}:${keyPart(subject.tool)}`;
    case 'agentTool':
      return `at:${keyPart(subject.agent)}:${keyPart(subject.server)}:${keyPart(subject.tool)}`;
  }
}
