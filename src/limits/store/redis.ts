// The shared store for replicas: each operation is one Lua script, so check-and-count is atomic
// across every gateway using the same Redis, and the clock is Redis's own (TIME), so replicas
// with skewed clocks still agree on windows.
import { createHash, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { StoreUnavailableError, type CounterValue, type LimitStore, type SlidingWindowSpec, type TakeResult, type TokenBucketSpec } from './types.js';

const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// Returns {allowed, retryAfterMs, remaining}. Tokens are fractional, stored as strings.
const TOKEN_BUCKET = `${NOW}
local cap = tonumber(ARGV[1]) local rate = tonumber(ARGV[2]) / tonumber(ARGV[3])
local data = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(data[1]) local ts = tonumber(data[2])
if tokens == nil or ts == nil then tokens = cap ts = now end
tokens = math.min(cap, tokens + math.max(0, now - ts) * rate)
local allowed = 0 local retry = 0
if tokens >= 1 then tokens = tokens - 1 allowed = 1 else retry = math.ceil((1 - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(cap / rate) + 1000)
return {allowed, retry, math.floor(tokens)}`;

// An exact sliding log: one sorted-set member per admitted call, scored by its time.
const SLIDING_WINDOW = `${NOW}
local limit = tonumber(ARGV[1]) local dur = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - dur)
local n = redis.call('ZCARD', KEYS[1])
if n < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], dur)
  return {1, 0, limit - n - 1}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, math.max(1, tonumber(oldest[2]) + dur - now), 0}`;

const ADD = `local v = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) ttl = tonumber(ARGV[2]) end
return {v, ttl}`;

const PEEK = `local v = redis.call('GET', KEYS[1])
if not v then return {0, 0} end
local ttl = redis.call('PTTL', KEYS[1])
return {tonumber(v), math.max(ttl, 0)}`;

interface Script {
  text: string;
  sha: string;
}

function script(text: string): Script {
  return { text, sha: createHash('sha1').update(text).digest('hex') };
}

const SCRIPTS = { tokenBucket: script(TOKEN_BUCKET), slidingWindow: script(SLIDING_WINDOW), add: script(ADD), peek: script(PEEK) };

export interface RedisStoreOptions {
  url: string;
  keyPrefix: string;
  commandTimeoutMs: number;
  /** Called on connection state changes, for logs and the audit log. */
  onState?: (state: 'ready' | 'down', detail: string) => void;
}

export class RedisStore implements LimitStore {
  readonly kind = 'redis' as const;
  private readonly redis: Redis;
  private readonly prefix: string;

  constructor(options: RedisStoreOptions) {
    this.prefix = options.keyPrefix;
    this.redis = new Redis(options.url, {
      // Commands must fail at once while disconnected, not queue up: the guard decides what a
      // call meets (failClosed or fallbackLocal), and a queue would hold calls for minutes.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs,
      connectTimeout: Math.max(1000, options.commandTimeoutMs),
      retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 6), 2000),
      lazyConnect: false,
    });
    let up = false;
    this.redis.on('ready', () => {
      up = true;
      options.onState?.('ready', 'connected');
    });
    this.redis.on('error', (error: Error) => {
      if (!up) return;
      up = false;
      options.onState?.('down', error.message);
    });
    this.redis.on('close', () => {
      if (!up) return;
      up = false;
      options.onState?.('down', 'connection closed');
    });
  }

  /** Resolves once connected, or rejects after `timeoutMs`. */
  async ready(timeoutMs: number): Promise<void> {
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.redis.off('ready', done);
        reject(new StoreUnavailableError(`Redis did not become ready within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.redis.once('ready', done);
    });
  }

  async tokenBucket(key: string, spec: TokenBucketSpec): Promise<TakeResult> {
    return toTake(await this.run(SCRIPTS.tokenBucket, key, [spec.capacity, spec.points, spec.durationMs]));
  }

  async slidingWindow(key: string, spec: SlidingWindowSpec): Promise<TakeResult> {
    return toTake(await this.run(SCRIPTS.slidingWindow, key, [spec.points, spec.durationMs, randomUUID()]));
  }

  async add(key: string, amount: number, windowMs: number): Promise<CounterValue> {
    return toCounter(await this.run(SCRIPTS.add, key, [Math.round(amount), windowMs]));
  }

  async peek(key: string): Promise<CounterValue> {
    return toCounter(await this.run(SCRIPTS.peek, key, []));
  }

  async close(): Promise<void> {
    this.redis.disconnect();
    return Promise.resolve();
  }

  private async run(used: Script, key: string, args: Array<string | number>): Promise<number[]> {
    const fullKey = this.prefix + key;
    try {
      let reply: unknown;
      try {
        reply = await this.redis.evalsha(used.sha, 1, fullKey, ...args);
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
        reply = await this.redis.eval(used.text, 1, fullKey, ...args);
      }
      if (!Array.isArray(reply) || !reply.every((item) => typeof item === 'number')) throw new Error(`unexpected reply ${JSON.stringify(reply)}`);
      return reply as number[];
    } catch (error) {
      throw new StoreUnavailableError(`the Redis limit store did not answer: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
}

function toTake(reply: number[]): TakeResult {
  return { allowed: reply[0] === 1, retryAfterMs: reply[1] ?? 0, remaining: reply[2] ?? 0 };
}

function toCounter(reply: number[]): CounterValue {
  return { total: reply[0] ?? 0, resetMs: reply[1] ?? 0 };
}
