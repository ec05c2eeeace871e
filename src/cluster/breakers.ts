// Breakers' open state across replicas: an open breaker is a Redis key that lives as long as the
// breaker stays open (so a replica that starts or reconnects later still sees it) plus a message
// on a channel (so the others open theirs now). Times travel as "milliseconds left", never as
// clock readings, so replicas with skewed clocks agree. Half-open probing stays per replica: each
// closes its breaker on its own probes' evidence.
import type { BreakerSharing } from '../limits/index.js';
import type { ClusterConnection } from './connection.js';

const CHANNEL = 'breakers';
const KEY_SPACE = 'breaker:';

interface OpenMessage {
  key: string;
  remainingMs: number;
  from: string;
}

function parse(text: string): OpenMessage | undefined {
  const value = JSON.parse(text) as Partial<OpenMessage>;
  if (typeof value.key !== 'string' || typeof value.from !== 'string' || typeof value.remainingMs !== 'number' || !Number.isFinite(value.remainingMs)) return undefined;
  return { key: value.key, remainingMs: value.remainingMs, from: value.from };
}

export function breakerSharing(cluster: ClusterConnection, onError: (error: unknown) => void): BreakerSharing {
  const handlers = new Set<(key: string, remainingMs: number, from: string) => void>();
  const deliver = (message: OpenMessage): void => {
    if (message.from === cluster.replicaId) return;
    for (const handler of handlers) handler(message.key, message.remainingMs, message.from);
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
        if (value === null || ttl <= 0) continue;
        deliver({ key: full.slice(cluster.key(KEY_SPACE).length), remainingMs: ttl, from: value });
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
    opened: (key, openMs) => {
      // Best effort: with Redis down, this replica's breaker still protects this replica.
      const announce = async (): Promise<void> => {
        await cluster.redis.set(cluster.key(KEY_SPACE + key), cluster.replicaId, 'PX', openMs);
        await cluster.publish(CHANNEL, JSON.stringify({ key, remainingMs: openMs, from: cluster.replicaId } satisfies OpenMessage));
      };
      announce().catch(onError);
    },
    listen: (handler) => {
      handlers.add(handler);
    },
  };
}
