// Bastion as several replicas behind a load balancer (docs/replicas.md): the Redis link, and what
// the replicas share through it: breakers' open state, quarantines, spent requestStates.
import { resolveValue, type LoadedConfig } from '../config/index.js';
import type { Logger } from '../observability/index.js';
import type { BreakerSharing } from '../limits/index.js';
import type { RequestStateSealing } from '../gateway/session.js';
import { StateSealer } from '../gateway/stateless/sealed-state.js';
import { breakerSharing } from './breakers.js';
import { ClusterConnection, type ClusterState } from './connection.js';
import { SharedQuarantineStore } from './quarantine.js';
import { redisSpentLedger } from './request-states.js';

export { clusterConfigSchema, type ClusterConfig } from './config.js';
export { ClusterConnection, type ClusterState } from './connection.js';
export { SharedQuarantineStore } from './quarantine.js';

export const ClusterEvent = { State: 'cluster.redis' } as const;

export interface Cluster {
  replicaId: string;
  connection: ClusterConnection;
  breakers: BreakerSharing;
  quarantines: SharedQuarantineStore;
  requestStates: RequestStateSealing;
  close(): Promise<void>;
}

/** The Redis URL the cluster uses: cluster.redis, else the limit store's. */
function redisUrl(loaded: LoadedConfig): string {
  const { cluster, quotas } = loaded.config;
  if (cluster?.redis !== undefined) return resolveValue(cluster.redis, 'cluster.redis', loaded.baseDir);
  if (quotas.store.kind === 'redis' && quotas.store.url !== undefined) return resolveValue(quotas.store.url, 'quotas.store.url', loaded.baseDir);
  throw new Error(`${loaded.source}: cluster: needs a Redis the replicas share: set cluster.redis (redis://host:port) or quotas.store { kind: redis, url }`);
}

function sealKey(loaded: LoadedConfig): Buffer {
  const text = resolveValue(loaded.config.cluster!.sealKey, 'cluster.sealKey', loaded.baseDir).trim();
  if (!/^[0-9a-fA-F]{64}$/.test(text)) throw new Error(`${loaded.source}: cluster.sealKey must be 64 hex digits (32 bytes), the same on every replica; make one with: openssl rand -hex 32`);
  return Buffer.from(text, 'hex');
}

/** Opens the cluster link when the config has `cluster:`; undefined for a single gateway. */
export function openCluster(loaded: LoadedConfig, logger: Logger, record: (type: string, info: Record<string, string>) => void): Cluster | undefined {
  const config = loaded.config.cluster;
  if (config === undefined) return undefined;
  const key = sealKey(loaded);
  const connection = new ClusterConnection({
    url: redisUrl(loaded),
    replicaId: config.replicaId,
    keyPrefix: config.keyPrefix,
    commandTimeoutMs: config.commandTimeoutMs,
    onState: (state: ClusterState, detail) => {
      if (state === 'down') logger.error({ detail }, 'lost the cluster Redis: quarantine decisions are refused and approvals read as held until it is back');
      else logger.info({ replica: config.replicaId }, 'connected to the cluster Redis');
      record(ClusterEvent.State, { state, detail });
    },
  });
  const onError = (error: unknown): void => logger.warn({ err: error }, 'cluster Redis operation failed');
  return {
    replicaId: config.replicaId,
    connection,
    breakers: breakerSharing(connection, onError),
    quarantines: new SharedQuarantineStore(connection, onError),
    requestStates: { replicaId: config.replicaId, sealer: new StateSealer(key), ledger: redisSpentLedger(connection, onError) },
    close: () => connection.close(),
  };
}

/**
 * Only the quarantines of the cluster a config describes, for a process that is not a replica
 * (`bastion quarantine`, `bastion lock --check`): its decisions go to Redis and reach every
 * replica at once. undefined without `cluster:`. `close` waits for the writes made so far and
 * throws when one did not reach Redis.
 */
export function openSharedQuarantines(loaded: LoadedConfig, onError: (error: unknown) => void): { store: SharedQuarantineStore; close(): Promise<void> } | undefined {
  const config = loaded.config.cluster;
  if (config === undefined) return undefined;
  const connection = new ClusterConnection({ url: redisUrl(loaded), replicaId: `${config.replicaId}-cli-${process.pid}`, keyPrefix: config.keyPrefix, commandTimeoutMs: config.commandTimeoutMs });
  const store = new SharedQuarantineStore(connection, onError);
  return {
    store,
    close: async () => {
      try {
        await store.flush();
      } finally {
        await connection.close();
      }
    },
  };
}
