// Breakers' open state across replicas: an open breaker is a Redis key that lives as long as the
// breaker stays open (so a replica that starts or reconnects later still sees it) plus a message
// on a channel (so the others open theirs now). Times travel as "milliseconds left", never as
// clock readings, so replicas with skewed clocks agree. Half-open probing stays per replica: each
// closes its breaker on its own probes' evidence.
import type { BreakerSharing, SharedBreaker } from '../limits/index.js';
import type { ClusterConnection } from './connection.js';

const CHANNEL = 'breakers';
const KEY_SPACE = 'breaker:';

interface OpenMessage {
  breaker: SharedBreaker;
  remainingMs: number;
  from: string;
}

function parse(text: string): OpenMessage | undefined {
  const value = JSON.parse(text) as Partial<OpenMessage>;
  const breaker = value.breaker;
  if (breaker === undefined || typeof breaker.key !== 'string' || typeof breaker.name !== 'string' || typeof breaker.target !== 'string') return undefined;
  if (typeof value.from !== 'string' || typeof value.remainingMs !== 'number' || !Number.isFinite(value.remainingMs)) return undefined;
  return { breaker: { key: breaker.key, name: breaker.name, target: breaker.target }, remainingMs: value.remainingMs, from: value.from };
}

export function breakerSharing(cluster: ClusterConnection, onError: (error: unknown) => void): BreakerSharing {
  const handlers = new Set<(breaker: SharedBreaker, remainingMs: number, from: string) => void>();
  const deliver = (message: OpenMessage): void => {
    if (message.from === cluster.replicaId) return;
    for (const handler of handlers) handler(message.breaker, message.remainingMs, message.from);
  };
  /** The breakers open now, read when the link comes up: opened while this replica was away. */
  const catchUp = async (): Promise<void> => {
    const pattern = `${cluster.key(KEY_SPACE)}*`;
    let cursor = '0';
    do {
      const [next, keys] = await cluster.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 200);
      cursor = next;
      for (const full of keys) {
        const [value, ttl] = await Promise.all([cluster.redis.get(full), cluster.redis.pttl(full)]);
        const stored = value === null ? undefined : parse(value);
        if (stored !== undefined && ttl > 0) deliver({ ...stored, remainingMs: ttl });
      }
    } while (cursor !== '0');
  };
  void cluster.subscribe(CHANNEL, (text) => {
    const message = parse(text);
    if (message !== undefined) deliver(message);
  }).catch(onError);
  cluster.onState((state) => {
    if (state === 'up') catchUp().catch(onError);
  });
  if (cluster.up) catchUp().catch(onError);
  return {
    opened: (breaker, openMs) => {
      // Best effort: with Redis down, this replica's breaker still protects this replica.
      const message = JSON.stringify({ breaker, remainingMs: openMs, from: cluster.replicaId } satisfies OpenMessage);
      const announce = async (): Promise<void> => {
        await cluster.redis.set(cluster.key(KEY_SPACE + breaker.key), message, 'PX', openMs);
        await cluster.publish(CHANNEL, message);
      };
      announce().catch(onError);
    },
    listen: (handler) => {
      handlers.add(handler);
    },
  };
}
