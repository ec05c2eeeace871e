// requestStates across replicas: sealed with the cluster's key (any replica opens them) and spent
// with SET NX in Redis (one use, whichever replica the retry reaches). When another replica serves
// a retry, it tells the replica holding the call on a channel, and that one cancels its copy.
import type { SpentLedger } from '../gateway/stateless/sealed-state.js';
import { tokenDigest } from '../gateway/stateless/sealed-state.js';
import type { ClusterConnection } from './connection.js';

const CHANNEL = 'request-states';
const SPENT = 'spent:';

export function redisSpentLedger(cluster: ClusterConnection, onError: (error: unknown) => void): SpentLedger {
  const handlers = new Set<(handle: string) => void>();
  void cluster.subscribe(CHANNEL, (text) => {
    const message = JSON.parse(text) as { replica?: unknown; handle?: unknown };
    if (message.replica !== cluster.replicaId || typeof message.handle !== 'string') return;
    for (const handler of handlers) handler(message.handle);
  }).catch(onError);
  return {
    spend: async (token, ttlMs) => {
      // Throws while Redis is away: the caller refuses the retry (a replay could not be ruled out).
      const set = await cluster.redis.set(cluster.key(SPENT + tokenDigest(token)), cluster.replicaId, 'PX', Math.max(1000, Math.ceil(ttlMs) + 1000), 'NX');
      return set === 'OK';
    },
    takenOver: (replica, handle) => {
      cluster.publish(CHANNEL, JSON.stringify({ replica, handle })).catch(onError);
    },
    onTakenOver: (handler) => {
      handlers.add(handler);
    },
  };
}
