// The `cluster:` section: what makes one Bastion process a replica among several behind a load
// balancer. Replicas share a Redis (limits already may; breakers' open state, quarantines and
// spent requestStates need it) and a sealing key for the opaque values they hand to clients.
import type { ValueOrSecret } from '../config/types.js';

export interface ClusterConfig {
  /** This replica's name: in every audit record (`replica`) and in the sealed requestStates it issues. */
  replicaId: string;
  /** redis://host:port/db (or a secret); defaults to quotas.store.url when the limit store is Redis. */
  redis?: ValueOrSecret;
  /** Prefix of every key and channel the cluster uses (not the limits': quotas.store.keyPrefix). */
  keyPrefix: string;
  /** 32 bytes as 64 hex digits, the same on every replica: seals requestStates (AES-256-GCM). */
  sealKey: ValueOrSecret;
  /** A Redis command slower than this counts as Redis being down. */
  commandTimeoutMs: number;
}

const secretRef = {
  oneOf: [
    { type: 'string', minLength: 1 },
    { type: 'object', required: ['fromEnv'], additionalProperties: false, properties: { fromEnv: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' } } },
    { type: 'object', required: ['fromFile'], additionalProperties: false, properties: { fromFile: { type: 'string', minLength: 1 } } },
  ],
} as const;

/** JSON Schema fragment for `cluster:` (absent: a single gateway, nothing shared). */
export const clusterConfigSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['replicaId', 'sealKey'],
  properties: {
    replicaId: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$', description: 'this replica\'s name, unique in the cluster, e.g. bastion-a' },
    redis: { ...secretRef, description: 'redis://127.0.0.1:6379, or { fromEnv: BASTION_REDIS_URL }; default: quotas.store.url' },
    keyPrefix: { type: 'string', pattern: '^[A-Za-z0-9:._-]{1,64}$', default: 'bastion:cluster:', description: 'a key prefix such as bastion:cluster:' },
    sealKey: { ...secretRef, description: 'the same 64 hex digits on every replica, best { fromFile: /run/secrets/bastion-seal-key } (openssl rand -hex 32)' },
    commandTimeoutMs: { type: 'integer', minimum: 50, maximum: 60_000, default: 500, description: 'milliseconds, e.g. 500' },
  },
} as const;
