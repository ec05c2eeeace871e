// CPU-time budgets per tool and per server over a window, from the sandbox's cgroup accounting.
// A call is refused while its scope's budget for the current window is spent; the CPU a call
// used is added when it ends.
import type { CpuBudgetRule } from './config.js';
import { keyPart, selects, type CallSubject } from './match.js';
import { chain, type MaybePromise } from '../pipeline/index.js';
import type { CounterValue, LimitStore } from './store/types.js';

/** Where CPU and memory figures come from (the gateway's SandboxRegistry). */
export interface ResourceUsage {
  /** Cumulative CPU of the server's live sandboxed processes, in ms; undefined when nothing can tell. */
  cpuTimeMs(server: string): number | undefined;
  memoryBytes(server: string): number | undefined;
}

export interface CpuDenial {
  limit: string;
  scope: CpuBudgetRule['scope'];
  cpuMs: number;
  usedMs: number;
  windowMs: number;
  retryAfterMs: number;
}

interface Applicable {
  rule: CpuBudgetRule;
  name: string;
  key: string;
}

export class CpuBudgets {
  private readonly rules: Array<{ rule: CpuBudgetRule; name: string }>;

  constructor(
    rules: readonly CpuBudgetRule[],
    private readonly store: LimitStore,
  ) {
    this.rules = rules.map((rule, index) => ({ rule, name: rule.name ?? `cpuBudgets[${index}]` }));
  }

  get size(): number {
    return this.rules.length;
  }

  applicable(subject: CallSubject): Applicable[] {
    return this.rules
      .filter(({ rule }) => selects(rule.match, subject))
      .map(({ rule, name }) => ({ rule, name, key: `cpu:${keyPart(name)}:${rule.scope === 'server' ? `s:${keyPart(subject.server)}` : `t:${keyPart(subject.server)}:${keyPart(subject.tool)}`}` }));
  }

  /** The first budget that is spent, if any. */
  check(applicable: readonly Applicable[]): MaybePromise<CpuDenial | undefined> {
    return chain(this.store.peek(applicable.map((entry) => entry.key)), (values) => spent(applicable, values));
  }

  charge(applicable: readonly Applicable[], cpuMs: number): MaybePromise<void> {
    if (cpuMs <= 0) return;
    return chain(this.store.add(applicable.map(({ rule, key }) => ({ key, amount: cpuMs, windowMs: rule.windowMs }))), () => undefined);
  }
}

function spent(applicable: readonly Applicable[], values: readonly CounterValue[]): CpuDenial | undefined {
  for (let index = 0; index < applicable.length; index += 1) {
    const { rule, name } = applicable[index] as Applicable;
    const used = values[index] ?? { total: 0, resetMs: 0 };
    if (used.total >= rule.cpuMs) {
      return { limit: name, scope: rule.scope, cpuMs: rule.cpuMs, usedMs: used.total, windowMs: rule.windowMs, retryAfterMs: Math.max(1, used.resetMs) };
    }
  }
  return undefined;
}

/**
 * Measures the CPU a server used while a call ran: the difference of its cumulative figure.
 * Processes that exit take their CPU with them, so a negative difference counts as zero; calls
 * running at the same time on one server are each charged the server's whole difference
 * (over-counting, never under-counting).
 */
export function cpuMeter(usage: ResourceUsage, server: string): () => number {
  const before = usage.cpuTimeMs(server);
  return () => {
    const after = usage.cpuTimeMs(server);
    if (after === undefined) return 0;
    return Math.max(0, Math.round(after - (before ?? 0)));
  };
}
