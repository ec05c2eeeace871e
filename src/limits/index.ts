// Rate limits, CPU budgets, concurrency, chain length and circuit breakers (docs/limits.md).
import { resolveValue } from '../config/index.js';
import type { Logger } from '../observability/index.js';
import type { Guard } from '../pipeline/index.js';
import { Breakers, type BreakerSharing, type Transition } from './breaker.js';
import { ChainLimits } from './chain.js';
import { Concurrency } from './concurrency.js';
import type { QuotasConfig } from './config.js';
import { CpuBudgets, type ResourceUsage } from './cpu-budget.js';
import { createLimitsGuard } from './guard.js';
import { RateLimits } from './rate.js';
import { FallbackStore } from './store/failover.js';
import { MemoryStore } from './store/memory.js';
import { RedisStore } from './store/redis.js';
import type { LimitStore } from './store/types.js';

export { quotasConfigSchema } from './config.js';
export type { QuotasConfig, RateRule, CpuBudgetRule, BreakerRule, ConcurrencyConfig, ChainConfig, StoreConfig, Selector } from './config.js';
export type { ResourceUsage } from './cpu-budget.js';
export type { BreakerState, BreakerSharing, SharedBreaker, Transition } from './breaker.js';
export type { LimitStore, StoreAnswer, TakeEntry, TakeResult, AddEntry, CounterValue, RateAlgorithmSpec } from './store/types.js';
export { StoreUnavailableError } from './store/types.js';
export { MemoryStore } from './store/memory.js';
export { RedisStore } from './store/redis.js';
export { LIMITS_GUARD_NAME } from './guard.js';

/** Audit event types the limits write (request denials are in the request records themselves). */
export const LimitsEvent = {
  BreakerTransition: 'limits.breaker',
  StoreState: 'limits.store',
  Unmeasured: 'limits.unmeasured',
} as const;

export interface LimitsOptions {
  config: QuotasConfig;
  /** Resolves `store.url` secrets against it. */
  baseDir: string;
  usage: ResourceUsage;
  logger: Logger;
  /** Audit events: breaker transitions and store outages. */
  onEvent: (event: string, info: Record<string, string | number | boolean>) => void;
  /** Replicas share breakers' open state through it (src/cluster); absent: breakers are per process. */
  breakerSharing?: BreakerSharing;
}

export interface Limits {
  guard: Guard;
  store: LimitStore;
  readonly breakers: Breakers;
  readonly concurrency: Concurrency;
  /** Waits for the shared store (Redis) to connect; resolves false when it did not within `timeoutMs`. */
  ready(timeoutMs: number): Promise<boolean>;
  /**
   * A config reload changed the rules (rates, cpuBudgets, chain, concurrency, breakers; not the
   * store): calls from now on meet the new ones. Counters in the store carry on; breakers and
   * concurrency slots start afresh only when their own rules changed.
   */
  reconfigure(config: QuotasConfig): void;
  close(): Promise<void>;
}

export function createLimits(options: LimitsOptions): Limits {
  const { logger, onEvent } = options;
  const { store, redis } = openStore(options);
  const newBreakers = (config: QuotasConfig): Breakers => new Breakers(config.breakers, (transition: Transition) => {
    const level = transition.to === 'open' ? 'warn' : 'info';
    logger[level]({ ...transition }, `circuit breaker '${transition.breaker}' for ${transition.target}: ${transition.from} -> ${transition.to} (${transition.cause})`);
    onEvent(LimitsEvent.BreakerTransition, { ...transition });
  }, Date.now, options.breakerSharing);
  let config = options.config;
  let breakers = newBreakers(config);
  let concurrency = new Concurrency(config.concurrency);
  let lastStoreWarning = 0;
  const build = (): Guard => createLimitsGuard({
    breakers,
    rates: new RateLimits(config.rates, store),
    cpuBudgets: new CpuBudgets(config.cpuBudgets, store),
    chain: new ChainLimits(config.chain, store),
    concurrency,
    usage: options.usage,
    concurrencyRetryMs: Math.max(100, config.concurrency.maxQueueMs),
    onStoreFailure: (error) => {
      // One line per few seconds: an outage under load would otherwise log once per call.
      const now = Date.now();
      if (now - lastStoreWarning < 5000) return;
      lastStoreWarning = now;
      logger.error({ err: error }, 'limit store unavailable: calls are refused (failClosed)');
    },
    onUnmeasured: (server) => {
      logger.warn({ server }, `CPU budgets and memory/runaway breakers cannot be enforced for server '${server}': its sandbox reports no CPU or memory figures (sandbox.backend: none, or no cgroups; see bastion doctor)`);
      onEvent(LimitsEvent.Unmeasured, { server });
    },
  });
  let current = build();
  // One guard object for the chain; the rules behind it can be swapped by a reload.
  const guard: Guard = { name: current.name, handle: (ctx, next) => current.handle(ctx, next) };
  return {
    guard,
    store,
    get breakers() {
      return breakers;
    },
    get concurrency() {
      return concurrency;
    },
    ready: async (timeoutMs) => {
      if (redis === undefined) return true;
      return redis.ready(timeoutMs).then(
        () => true,
        () => false,
      );
    },
    reconfigure: (next) => {
      if (JSON.stringify(next.breakers) !== JSON.stringify(config.breakers)) breakers = newBreakers(next);
      if (JSON.stringify(next.concurrency) !== JSON.stringify(config.concurrency)) concurrency = new Concurrency(next.concurrency);
      config = next;
      current = build();
    },
    close: () => store.close(),
  };
}

function openStore(options: LimitsOptions): { store: LimitStore; redis?: RedisStore } {
  const { config, logger, onEvent } = options;
  const { store } = config;
  if (store.kind === 'memory') return { store: new MemoryStore() };
  if (store.url === undefined) throw new Error('quotas.store.url is required for a redis store');
  const url = resolveValue(store.url, 'quotas.store.url', options.baseDir);
  const redis = new RedisStore({
    url,
    keyPrefix: store.keyPrefix,
    commandTimeoutMs: store.commandTimeoutMs,
    onState: (state, detail) => {
      if (state === 'down') logger.error({ detail, onFailure: store.onFailure }, 'lost the Redis limit store');
      else logger.info('connected to the Redis limit store');
      onEvent(LimitsEvent.StoreState, { state, detail, onFailure: store.onFailure });
    },
  });
  if (store.onFailure === 'failClosed') return { store: redis, redis };
  const fallback = new FallbackStore(redis, (active, detail) => {
    logger.warn({ detail }, active ? 'Redis limit store unavailable: counting locally in this process (fallbackLocal)' : 'Redis limit store back: shared counting resumes');
    onEvent(LimitsEvent.StoreState, { state: active ? 'fallback_local' : 'shared', detail });
  });
  return { store: fallback, redis };
}
