// The `quotas:` section of bastion.yaml: rate limits, CPU budgets, concurrency, chain length,
// circuit breakers and where the shared counters live. Types, defaults and the JSON Schema
// fragment the config module merges (docs/limits.md is the reference).

import type { ValueOrSecret } from '../config/types.js';

export type RateScope = 'agent' | 'token' | 'tool' | 'server' | 'agentTool';
export type RateAlgorithm = 'tokenBucket' | 'slidingWindow';

/** Which calls a rule applies to. Each field is a glob (`*` matches any run of characters); absent means any. */
export interface Selector {
  agent?: string;
  server?: string;
  tool?: string;
}

export interface RateRule {
  /** Named in the error (`data.limit`) and the audit record; defaults to `rates[N]`. */
  name?: string;
  scope: RateScope;
  match?: Selector;
  /** Sustained rate: `points` calls per `durationMs`. For slidingWindow, the exact cap in any window of that length. */
  points: number;
  durationMs: number;
  /** tokenBucket only: how many calls may come at once (bucket size); defaults to `points`. */
  burst?: number;
  algorithm: RateAlgorithm;
}

export interface CpuBudgetRule {
  name?: string;
  scope: 'tool' | 'server';
  match?: Selector;
  /** CPU milliseconds the server's sandboxed processes may use for this scope in one window. */
  cpuMs: number;
  windowMs: number;
}

export interface ConcurrencyConfig {
  perAgent: number;
  perServer: number;
  perTool: number;
  /** How long a call may wait for a free slot before it is refused. */
  maxQueueMs: number;
  /** How many calls may wait per slot group; more are refused at once. */
  maxQueue: number;
}

export interface ChainConfig {
  /** Tool calls one task (`_meta.taskId`) may make. */
  perTask: number;
  /** Tool calls one downstream session may make. */
  perSession: number;
  /** How long a task's counter lives after its first call. */
  ttlMs: number;
}

export interface BreakerRule {
  name?: string;
  scope: 'server' | 'tool';
  match?: Selector;
  /** Open after this many failures in a row (errors, timeouts and slow calls count). */
  consecutiveFailures?: number;
  /** Open after this many timeouts in a row. */
  consecutiveTimeouts?: number;
  /** Open when the failure ratio over the last `windowMs` reaches `threshold`, once `minCalls` were made. */
  errorRate?: { threshold: number; minCalls: number; windowMs: number };
  /** A call slower than this counts as a failure. */
  slowCallMs?: number;
  /** Open (and abort the calls in flight) when the server's sandbox uses more memory than this. */
  maxMemoryBytes?: number;
  /** Open (and abort the calls in flight) when one call makes the server use more CPU than this: a runaway. */
  maxCallCpuMs?: number;
  /** How long the breaker stays open before it lets probes through. */
  openMs: number;
  /** Successful probes in a row that close a half-open breaker. */
  halfOpenProbes: number;
  /** How often memory and CPU are sampled while calls are in flight. */
  sampleMs: number;
}

export interface StoreConfig {
  kind: 'memory' | 'redis';
  /** redis://host:port/db, inline or as { fromEnv } / { fromFile } (a URL with a password is a secret). */
  url?: ValueOrSecret;
  /** What a call meets when Redis cannot answer: refused (failClosed) or counted locally (fallbackLocal). */
  onFailure: 'failClosed' | 'fallbackLocal';
  keyPrefix: string;
  /** A Redis command slower than this counts as a failure. */
  commandTimeoutMs: number;
}

export interface QuotasConfig {
  enabled: boolean;
  store: StoreConfig;
  rates: RateRule[];
  cpuBudgets: CpuBudgetRule[];
  concurrency: ConcurrencyConfig;
  chain: ChainConfig;
  breakers: BreakerRule[];
}

const glob = { type: 'string', minLength: 1, maxLength: 256, description: "a name or a glob such as 'read_*'" };
const selector = {
  type: 'object',
  additionalProperties: false,
  properties: { agent: glob, server: glob, tool: glob },
  description: 'which calls the rule applies to, e.g. { server: files, tool: "read_*" }',
};
const name = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$', description: 'a short name such as agent-hourly' };
const positiveMs = (max: number, example: number): Record<string, unknown> => ({ type: 'integer', minimum: 1, maximum: max, description: `milliseconds, e.g. ${example}` });
const DAY = 86_400_000;

export const quotasConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: true, description: 'true (default) or false (no rate limits, budgets, concurrency or chain limits, breakers; warned at start)' },
    store: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        kind: { enum: ['memory', 'redis'], default: 'memory', description: "'memory' (default, one process) or 'redis' (shared by replicas; needs url)" },
        url: {
          oneOf: [
            { type: 'string', pattern: '^rediss?://' },
            { type: 'object', required: ['fromEnv'], additionalProperties: false, properties: { fromEnv: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' } } },
            { type: 'object', required: ['fromFile'], additionalProperties: false, properties: { fromFile: { type: 'string', minLength: 1 } } },
          ],
          description: 'redis://127.0.0.1:6379, or { fromEnv: BASTION_REDIS_URL } or { fromFile: /run/secrets/redis-url }',
        },
        onFailure: { enum: ['failClosed', 'fallbackLocal'], default: 'failClosed', description: "'failClosed' (default: refuse calls while Redis is down) or 'fallbackLocal' (count in this process meanwhile)" },
        keyPrefix: { type: 'string', pattern: '^[A-Za-z0-9:._-]{1,64}$', default: 'bastion:limits:', description: 'a key prefix such as bastion:limits:' },
        commandTimeoutMs: { ...positiveMs(60_000, 500), default: 500 },
      },
    },
    rates: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        required: ['scope', 'points', 'durationMs'],
        additionalProperties: false,
        properties: {
          name,
          scope: { enum: ['agent', 'token', 'tool', 'server', 'agentTool'], description: "'agent', 'token' (one counter per client credential), 'tool', 'server' or 'agentTool' (one counter per agent and tool)" },
          match: selector,
          points: { type: 'integer', minimum: 1, maximum: 10_000_000, description: 'calls allowed per durationMs, e.g. 100' },
          durationMs: positiveMs(31 * DAY, 3_600_000),
          burst: { type: 'integer', minimum: 1, maximum: 10_000_000, description: 'tokenBucket only: calls allowed at once, e.g. 20' },
          algorithm: { enum: ['tokenBucket', 'slidingWindow'], default: 'tokenBucket', description: "'tokenBucket' (default; burst + sustained rate) or 'slidingWindow' (exactly points in any durationMs)" },
        },
      },
    },
    cpuBudgets: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        required: ['scope', 'cpuMs', 'windowMs'],
        additionalProperties: false,
        properties: {
          name,
          scope: { enum: ['tool', 'server'], description: "'tool' or 'server'" },
          match: selector,
          cpuMs: { type: 'integer', minimum: 1, maximum: 100 * DAY, description: 'CPU milliseconds per window, e.g. 60000' },
          windowMs: positiveMs(31 * DAY, 3_600_000),
        },
      },
    },
    concurrency: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        perAgent: { type: 'integer', minimum: 1, maximum: 100_000, default: 32, description: 'calls one agent may have in flight, e.g. 32' },
        perServer: { type: 'integer', minimum: 1, maximum: 100_000, default: 64, description: 'calls in flight to one server, e.g. 64' },
        perTool: { type: 'integer', minimum: 1, maximum: 100_000, default: 32, description: 'calls in flight to one tool, e.g. 32' },
        maxQueueMs: { type: 'integer', minimum: 0, maximum: 600_000, default: 5_000, description: 'milliseconds a call may wait for a slot (0: refuse at once), e.g. 5000' },
        maxQueue: { type: 'integer', minimum: 0, maximum: 100_000, default: 256, description: 'calls that may wait for one slot group, e.g. 256' },
      },
    },
    chain: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        perTask: { type: 'integer', minimum: 1, maximum: 10_000_000, default: 1_000, description: 'tool calls per task id, e.g. 1000' },
        perSession: { type: 'integer', minimum: 1, maximum: 100_000_000, default: 100_000, description: 'tool calls per downstream session, e.g. 100000' },
        ttlMs: { ...positiveMs(31 * DAY, DAY), default: DAY },
      },
    },
    breakers: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        required: ['scope'],
        additionalProperties: false,
        properties: {
          name,
          scope: { enum: ['server', 'tool'], description: "'server' or 'tool'" },
          match: selector,
          consecutiveFailures: { type: 'integer', minimum: 1, maximum: 100_000, description: 'failures in a row that open the breaker, e.g. 5' },
          consecutiveTimeouts: { type: 'integer', minimum: 1, maximum: 100_000, description: 'timeouts in a row that open the breaker, e.g. 3' },
          errorRate: {
            type: 'object',
            required: ['threshold'],
            additionalProperties: false,
            properties: {
              threshold: { type: 'number', exclusiveMinimum: 0, maximum: 1, description: 'a failure ratio such as 0.5' },
              minCalls: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 10, description: 'calls needed before the ratio counts, e.g. 10' },
              windowMs: { ...positiveMs(DAY, 60_000), default: 60_000 },
            },
          },
          slowCallMs: positiveMs(3_600_000, 10_000),
          maxMemoryBytes: { type: 'integer', minimum: 1_048_576, maximum: 1_099_511_627_776, description: 'bytes, e.g. 536870912' },
          maxCallCpuMs: { type: 'integer', minimum: 1, maximum: DAY, description: 'CPU milliseconds one call may cost, e.g. 10000' },
          openMs: { ...positiveMs(DAY, 30_000), default: 30_000 },
          halfOpenProbes: { type: 'integer', minimum: 1, maximum: 1_000, default: 1, description: 'successful probes that close the breaker, e.g. 1' },
          sampleMs: { type: 'integer', minimum: 10, maximum: 60_000, default: 250, description: 'milliseconds between memory/CPU samples, e.g. 250' },
        },
      },
    },
  },
} as const;
