// The shared store for replicas: each operation is one Lua script, so check-and-count is atomic
// across every gateway using the same Redis, and the clock is Redis's own (TIME), so replicas
// with skewed clocks still agree on windows.
import { createHash, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { StoreUnavailableError, type AddEntry, type CounterValue, type LimitStore, type StoredCounter, type TakeEntry, type TakeResult } from './types.js';

const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// Every rule of a call in one script: decide for all keys first, then charge all of them, so a
// call refused by one rule costs nothing under the others. ARGV: 4 values per key
// (algorithm, points, durationMs, capacity), then a unique id for sliding-window members.
// Returns {allowed, refusedBy (1-based, 0 when allowed), retryAfterMs}.
const TAKE = `${NOW}
local n = #KEYS
local tokens = {}
for i = 1, n do
  local base = (i - 1) * 4
  local points = tonumber(ARGV[base + 2]) local dur = tonumber(ARGV[base + 3])
  if ARGV[base + 1] == 'tb' then
    local cap = tonumber(ARGV[base + 4]) local rate = points / dur
    local data = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
    local available = tonumber(data[1]) local ts = tonumber(data[2])
    if available == nil or ts == nil then available = cap ts = now end
    available = math.min(cap, available + math.max(0, now - ts) * rate)
    if available < 1 then return {0, i, math.ceil((1 - available) / rate)} end
    tokens[i] = available
  else
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - dur)
    if redis.call('ZCARD', KEYS[i]) >= points then
      local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
      return {0, i, math.max(1, tonumber(oldest[2]) + dur - now)}
    end
  end
end
for i = 1, n do
  local base = (i - 1) * 4
  local points = tonumber(ARGV[base + 2]) local dur = tonumber(ARGV[base + 3])
  if ARGV[base + 1] == 'tb' then
    local cap = tonumber(ARGV[base + 4])
    redis.call('HSET', KEYS[i], 'tokens', string.format('%.17g', tokens[i] - 1), 'ts', now)
    redis.call('PEXPIRE', KEYS[i], math.ceil(cap * dur / points) + 1000)
  else
    redis.call('ZADD', KEYS[i], now, ARGV[n * 4 + 1] .. ':' .. i)
    redis.call('PEXPIRE', KEYS[i], dur)
  end
end
return {1, 0, 0}`;

// ARGV: amount and windowMs per key. Returns {total1, resetMs1, total2, resetMs2, ...}.
const ADD = `local out = {}
for i = 1, #KEYS do
  local v = redis.call('INCRBY', KEYS[i], ARGV[2 * i - 1])
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 then redis.call('PEXPIRE', KEYS[i], ARGV[2 * i]) ttl = tonumber(ARGV[2 * i]) end
  out[2 * i - 1] = v out[2 * i] = ttl
end
return out`;

const PEEK = `local out = {}
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v then out[2 * i - 1] = tonumber(v) out[2 * i] = math.max(redis.call('PTTL', KEYS[i]), 0) else out[2 * i - 1] = 0 out[2 * i] = 0 end
end
return out`;

interface Script {
  text: string;
  sha: string;
}

function script(text: string): Script {
  return { text, sha: createHash('sha1').update(text).digest('hex') };
}

const SCRIPTS = { take: script(TAKE), add: script(ADD), peek: script(PEEK) };

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

  async take(entries: readonly TakeEntry[]): Promise<TakeResult> {
    if (entries.length === 0) return { allowed: true, refusedBy: -1, retryAfterMs: 0 };
    const args: Array<string | number> = [];
    for (const { spec } of entries) args.push(spec.algorithm === 'tokenBucket' ? 'tb' : 'sw', spec.points, spec.durationMs, spec.algorithm === 'tokenBucket' ? spec.capacity : 0);
    args.push(randomUUID());
    const reply = await this.run(SCRIPTS.take, entries.map((entry) => entry.key), args);
    return { allowed: reply[0] === 1, refusedBy: (reply[1] ?? 0) - 1, retryAfterMs: reply[2] ?? 0 };
  }

  async add(entries: readonly AddEntry[]): Promise<CounterValue[]> {
    if (entries.length === 0) return [];
    const reply = await this.run(SCRIPTS.add, entries.map((entry) => entry.key), entries.flatMap((entry) => [Math.round(entry.amount), entry.windowMs]));
    return pairs(reply);
  }

  async peek(keys: readonly string[]): Promise<CounterValue[]> {
    if (keys.length === 0) return [];
    return pairs(await this.run(SCRIPTS.peek, keys, []));
  }

  /** SCAN over this gateway's prefix (never KEYS, which blocks Redis), then each key's type, value and TTL in one pipeline. */
  async snapshot(limit: number): Promise<{ counters: StoredCounter[]; truncated: boolean }> {
    try {
      const keys: string[] = [];
      let cursor = '0';
      let rounds = 0;
      do {
        const [next, found] = await this.redis.scan(cursor, 'MATCH', `${escapeGlob(this.prefix)}*`, 'COUNT', 200);
        cursor = next;
        for (const key of found) if (!keys.includes(key)) keys.push(key);
        rounds += 1;
      } while (cursor !== '0' && keys.length <= limit && rounds < SNAPSHOT_SCAN_ROUNDS);
      const truncated = keys.length > limit || cursor !== '0';
      const chosen = keys.slice(0, limit);
      const types = await this.pipelined(chosen.map((key) => ['type', key]));
      const reads = chosen.map((key, index) => (types[index] === 'hash' ? ['hget', key, 'tokens'] : types[index] === 'zset' ? ['zcard', key] : ['get', key]));
      const values = await this.pipelined(reads);
      const ttls = await this.pipelined(chosen.map((key) => ['pttl', key]));
      const counters = chosen.flatMap((key, index): StoredCounter[] => {
        const type = types[index] === 'hash' ? 'tokenBucket' : types[index] === 'zset' ? 'slidingWindow' : types[index] === 'string' ? 'counter' : undefined;
        if (type === undefined) return [];
        return [{ key: key.slice(this.prefix.length), type, value: Number(values[index] ?? 0), ttlMs: Math.max(0, Number(ttls[index] ?? 0)) }];
      });
      return { counters, truncated };
    } catch (error) {
      throw new StoreUnavailableError(`the Redis limit store did not answer: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  private async pipelined(commands: string[][]): Promise<unknown[]> {
    if (commands.length === 0) return [];
    const replies = (await this.redis.pipeline(commands).exec()) ?? [];
    return replies.map(([error, value]) => {
      if (error !== null) throw error;
      return value;
    });
  }

  async close(): Promise<void> {
    this.redis.disconnect();
    return Promise.resolve();
  }

  private async run(used: Script, keys: readonly string[], args: Array<string | number>): Promise<number[]> {
    const fullKeys = keys.map((key) => this.prefix + key);
    try {
      let reply: unknown;
      try {
        reply = await this.redis.evalsha(used.sha, fullKeys.length, ...fullKeys, ...args);
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
        reply = await this.redis.eval(used.text, fullKeys.length, ...fullKeys, ...args);
      }
      if (!Array.isArray(reply) || !reply.every((item) => typeof item === 'number')) throw new Error(`unexpected reply ${JSON.stringify(reply)}`);
      return reply as number[];
    } catch (error) {
      throw new StoreUnavailableError(`the Redis limit store did not answer: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
}

/** SCAN calls per snapshot at most: a huge keyspace gives a truncated view, not a slow Redis. */
const SNAPSHOT_SCAN_ROUNDS = 50;

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (char) => `\\${char}`);
}

function pairs(reply: number[]): CounterValue[] {
  const values: CounterValue[] = [];
  for (let index = 0; index + 1 < reply.length; index += 2) values.push({ total: reply[index] as number, resetMs: reply[index + 1] as number });
  return values;
}
