// The limits guard: circuit breakers, rate limits, CPU budgets, chain length and concurrency for
// every call that has a target (tools, prompts, resources). Cheapest and most final checks come
// first, so a call refused early spends nothing later: an open breaker costs no quota, and a
// call over its rate never waits for a concurrency slot.
import { CallCancellation, chain, ErrorCode, failure, isPromise, type CallContext, type Guard, type MaybePromise, type Next, type Outcome } from '../pipeline/index.js';
import type { Breaker, Breakers } from './breaker.js';
import type { ChainLimits } from './chain.js';
import type { Concurrency } from './concurrency.js';
import { cpuMeter, type CpuBudgets, type ResourceUsage } from './cpu-budget.js';
import type { CallSubject } from './match.js';
import type { RateLimits } from './rate.js';
import { StoreUnavailableError } from './store/types.js';

export const LIMITS_GUARD_NAME = 'limits';

export interface LimitsGuardParts {
  breakers: Breakers;
  rates: RateLimits;
  cpuBudgets: CpuBudgets;
  chain: ChainLimits;
  concurrency: Concurrency;
  usage: ResourceUsage;
  /** Retry hint for calls refused a concurrency slot. */
  concurrencyRetryMs: number;
  /** Logged when the store fails and calls are refused (failClosed). */
  onStoreFailure: (error: StoreUnavailableError) => void;
  /** A server has CPU budgets or resource breakers but the sandbox gives no figures for it (no cgroup, or no sandbox); called once per server. */
  onUnmeasured: (server: string) => void;
}

/** Upstream failures a breaker counts; denials by guards after this one are not the upstream's fault. */
const UPSTREAM_FAILURE_CODES = new Set<number>([ErrorCode.UpstreamUnavailable, ErrorCode.RequestTimeout, ErrorCode.InternalError, ErrorCode.OutputTooLarge]);

export function createLimitsGuard(parts: LimitsGuardParts): Guard {
  // Servers whose figures were looked at once: the answer lasts as long as the sandbox configuration.
  const figuresChecked = new Set<string>();
  return {
    name: LIMITS_GUARD_NAME,
    // Synchronous while nothing waits (the in-memory store, free slots): a promise per check per
    // call was most of the promises a call made; a shared store or a queued slot still waits.
    handle(ctx, next) {
      const server = ctx.target?.server;
      const tool = ctx.target?.name;
      if (server === undefined || tool === undefined) return next(ctx);
      const subject: CallSubject = { agent: ctx.identity?.agentId ?? 'anonymous', token: ctx.identity?.tokenFingerprint ?? 'none', server, tool };

      const breakers = parts.breakers.size === 0 ? [] : parts.breakers.applicable(subject);
      const admitted: Array<{ breaker: Breaker; probe: boolean }> = [];
      for (const breaker of breakers) {
        const memoryCap = breaker.rule.maxMemoryBytes;
        if (memoryCap !== undefined && breaker.state === 'closed') {
          const memory = parts.usage.memoryBytes(server);
          if (memory !== undefined && memory > memoryCap) breaker.trip('memory', `server '${server}' uses ${memory} bytes (limit ${memoryCap})`);
        }
        const admission = breaker.admit();
        if (!admission.ok) {
          for (const taken of admitted) taken.breaker.abandon(taken.probe);
          return deny(ctx, ErrorCode.CircuitOpen, 'circuit_open', `circuit breaker '${breaker.name}' for ${breaker.target} is ${admission.state === 'open' ? 'open' : 'half-open and probing'}; calls fail fast until it closes`, {
            limit: breaker.name,
            target: breaker.target,
            state: admission.state,
            retryAfterMs: Math.ceil(admission.retryAfterMs),
          });
        }
        admitted.push({ breaker, probe: admission.probe });
      }
      const call: LimitedCall = { parts, ctx, next, subject, server, breakers, admitted, budgets: parts.cpuBudgets.size === 0 ? [] : parts.cpuBudgets.applicable(subject), figuresChecked };
      let checked: MaybePromise<Outcome | undefined>;
      try {
        checked = checkQuotas(call);
      } catch (error) {
        return storeFailed(call, error);
      }
      if (isPromise(checked)) return checked.then((denied) => denied ?? admit(call), (error: unknown) => storeFailed(call, error));
      return checked ?? admit(call);
    },
  };
}

/** What the steps of one limited call share. */
interface LimitedCall {
  parts: LimitsGuardParts;
  ctx: CallContext;
  next: Next;
  subject: CallSubject;
  server: string;
  breakers: readonly Breaker[];
  admitted: Array<{ breaker: Breaker; probe: boolean }>;
  budgets: ReturnType<CpuBudgets['applicable']>;
  figuresChecked: Set<string>;
}

function abandon(call: LimitedCall): void {
  for (const taken of call.admitted) taken.breaker.abandon(taken.probe);
}

/** Rate, CPU budget and chain length, in that order: a denial, or undefined when all pass. */
function checkQuotas(call: LimitedCall): MaybePromise<Outcome | undefined> {
  const { parts, ctx, subject, budgets } = call;
  return chain(parts.rates.size === 0 ? undefined : parts.rates.take(subject), (rate) => {
    if (rate !== undefined) {
      abandon(call);
      return deny(ctx, ErrorCode.RateLimited, 'rate_limited', `rate limit '${rate.limit}' exceeded: ${rate.points} calls per ${rate.durationMs} ms per ${rate.scope}; retry in ${rate.retryAfterMs} ms`, { ...rate });
    }
    return chain(budgets.length === 0 ? undefined : parts.cpuBudgets.check(budgets), (cpu) => {
      if (cpu !== undefined) {
        abandon(call);
        return deny(ctx, ErrorCode.RateLimited, 'cpu_budget_exhausted', `CPU budget '${cpu.limit}' spent: ${cpu.usedMs} of ${cpu.cpuMs} ms in a ${cpu.windowMs} ms window for this ${cpu.scope}; retry in ${cpu.retryAfterMs} ms`, { ...cpu });
      }
      if (ctx.method !== 'tools/call') return undefined;
      return chain(parts.chain.count(ctx.session.sessionId, ctx.taskId), (length) => {
        if (length === undefined) return undefined;
        abandon(call);
        const what = length.limit === 'perTask' ? `task '${ctx.taskId ?? ''}'` : 'this session';
        return deny(ctx, ErrorCode.RateLimited, 'chain_limit', `chain length limit reached: ${what} may make ${length.max} tool calls; a runaway agent loop is cut off here`, { ...length });
      });
    });
  });
}

function storeFailed(call: LimitedCall, error: unknown): Outcome {
  abandon(call);
  if (!(error instanceof StoreUnavailableError)) throw error;
  call.parts.onStoreFailure(error);
  return deny(call.ctx, ErrorCode.RateLimited, 'limits_unavailable', 'the shared limit store is unavailable, so the call was refused (quotas.store.onFailure: failClosed)', { limit: 'store', retryAfterMs: 1000 });
}

function admit(call: LimitedCall): MaybePromise<Outcome> {
  const { parts, ctx } = call;
  return chain(parts.concurrency.acquire(call.subject, ctx.signal), (slot) => {
    if (slot.ok) return runLimited(call, slot.release);
    abandon(call);
    const { denial } = slot;
    return deny(ctx, ErrorCode.RateLimited, 'concurrency_limit', `too many calls in flight (${denial.limit}: ${denial.max}); ${denial.why === 'queue_full' ? 'the wait queue is full' : `no slot came free within ${denial.waitedMs} ms`}`, {
      ...denial,
      retryAfterMs: parts.concurrencyRetryMs,
    });
  });
}

/** Runs the rest of the chain holding the slot; releases it and records the result with the breakers however the call ends. */
function runLimited(call: LimitedCall, release: () => void): MaybePromise<Outcome> {
  const { parts, ctx, admitted, server, breakers, budgets } = call;
  const meter = budgets.length > 0 || breakers.some((breaker) => breaker.rule.maxCallCpuMs !== undefined) ? cpuMeter(parts.usage, server) : undefined;
  let run: WatchedRun | undefined;
  const failed = (error: unknown): never => {
    // A half-open breaker must get its probe back, or it would refuse every call from now on.
    for (const taken of admitted) taken.breaker.record({ failed: true, timedOut: false, durationMs: ctx.elapsedMs() }, taken.probe);
    release();
    run?.stop();
    throw error;
  };
  let outcome: MaybePromise<Outcome>;
  try {
    // Inside the try: the rest of the chain may throw synchronously, and the slot must still be released.
    run = runWatched(ctx, call.next, admitted.map((taken) => taken.breaker), parts.usage, server, meter);
    outcome = run.outcome;
  } catch (error) {
    return failed(error);
  }
  const watched = run;
  const finish = (settled: Outcome): MaybePromise<Outcome> => {
    release();
    watched.stop();
    return completed(call, settled, meter);
  };
  return isPromise(outcome) ? outcome.then(finish, failed) : finish(outcome);
}

/** After the call: the breakers' record, the one-time figures check, and the CPU charge. */
function completed(call: LimitedCall, outcome: Outcome, meter: (() => number) | undefined): MaybePromise<Outcome> {
  const { parts, ctx, admitted, server, breakers, budgets, figuresChecked } = call;
  const result = {
    failed: !outcome.ok && ctx.audit.decision !== 'deny' && (ctx.audit.upstreamDurationMs !== undefined || UPSTREAM_FAILURE_CODES.has(outcome.error.code)),
    timedOut: ctx.audit.timedOut === true,
    durationMs: ctx.elapsedMs(),
  };
  for (const taken of admitted) taken.breaker.record(result, taken.probe);
  // Checked once, after a call that reached the server's process: before its first start there are no figures either.
  if (outcome.ok && !figuresChecked.has(server) && (meter !== undefined || breakers.some((breaker) => breaker.rule.maxMemoryBytes !== undefined))) {
    figuresChecked.add(server);
    if (parts.usage.cpuTimeMs(server) === undefined) parts.onUnmeasured(server);
  }
  if (meter === undefined || budgets.length === 0) return outcome;
  const chargeFailed = (error: unknown): Outcome => {
    if (!(error instanceof StoreUnavailableError)) throw error;
    parts.onStoreFailure(error);
    return outcome;
  };
  try {
    const charged = parts.cpuBudgets.charge(budgets, meter());
    return isPromise(charged) ? charged.then(() => outcome, chargeFailed) : outcome;
  } catch (error) {
    return chargeFailed(error);
  }
}

interface WatchedRun {
  outcome: Outcome | Promise<Outcome>;
  stop(): void;
}

/**
 * Runs the rest of the chain with a signal the breakers can abort. While the call is in flight,
 * breakers with memory or runaway triggers sample the sandbox; when one opens, the call is
 * cancelled upstream and the client gets CircuitOpen at once.
 */
function runWatched(ctx: CallContext, next: Next, all: readonly Breaker[], usage: ResourceUsage, server: string, meter: (() => number) | undefined): WatchedRun {
  // Only memory and runaway trips abort calls in flight; other breakers need no watching, and
  // skipping it keeps the common path free of extra signals and timers.
  const breakers = all.filter((breaker) => breaker.rule.maxMemoryBytes !== undefined || breaker.rule.maxCallCpuMs !== undefined);
  if (breakers.length === 0) return { outcome: next(ctx), stop: () => undefined };
  const cancellation = new CallCancellation();
  const outer = ctx.signal;
  const follow = (): void => cancellation.abort(outer.reason);
  if (outer.aborted) follow();
  else outer.addEventListener('abort', follow, { once: true });
  ctx.signal = cancellation;
  let abortWith: ((outcome: Outcome) => void) | undefined;
  const aborted = new Promise<Outcome>((resolve) => {
    abortWith = resolve;
  });
  const abort = (reason: string): void => {
    if (cancellation.aborted) return;
    ctx.audit.decision = 'deny';
    ctx.audit.reason = 'circuit_open';
    ctx.audit.deniedBy = LIMITS_GUARD_NAME;
    cancellation.abort(new Error(reason));
    abortWith?.(failure(ErrorCode.CircuitOpen, `${reason}; the call was aborted`, { reason: 'circuit_open', aborted: true }));
  };
  const unwatch = breakers.map((breaker) => breaker.watch(abort));
  const sampled = breakers.filter((breaker) => breaker.rule.maxMemoryBytes !== undefined || (breaker.rule.maxCallCpuMs !== undefined && meter !== undefined));
  let timer: NodeJS.Timeout | undefined;
  if (sampled.length > 0) {
    const every = Math.min(...sampled.map((breaker) => breaker.rule.sampleMs));
    timer = setInterval(() => {
      const memory = usage.memoryBytes(server);
      const cpu = meter?.();
      for (const breaker of sampled) {
        const { maxMemoryBytes, maxCallCpuMs } = breaker.rule;
        if (maxMemoryBytes !== undefined && memory !== undefined && memory > maxMemoryBytes) breaker.trip('memory', `server '${server}' uses ${memory} bytes (limit ${maxMemoryBytes})`);
        else if (maxCallCpuMs !== undefined && cpu !== undefined && cpu > maxCallCpuMs) breaker.trip('runaway', `one call used ${cpu} ms of CPU on '${server}' (limit ${maxCallCpuMs})`);
      }
    }, every);
    timer.unref();
  }
  let inner: Promise<Outcome>;
  try {
    inner = Promise.resolve(next(ctx));
  } catch (error) {
    inner = Promise.reject(error as Error);
  }
  // Once aborted, the inner call still settles (the upstream connection answers the cancel); its result is dropped.
  inner.catch(() => undefined);
  return {
    outcome: Promise.race([inner, aborted]),
    stop: () => {
      outer.removeEventListener('abort', follow);
      if (timer !== undefined) clearInterval(timer);
      for (const off of unwatch) off();
    },
  };
}

function deny(ctx: CallContext, code: number, reason: string, message: string, data: Record<string, unknown>): Outcome {
  ctx.audit.decision = 'deny';
  ctx.audit.reason = reason;
  ctx.audit.deniedBy = LIMITS_GUARD_NAME;
  return failure(code, message, { reason, ...data });
}
