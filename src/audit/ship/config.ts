/** The `audit.sinks:` list of bastion.yaml: where the committed audit log is shipped while the gateway runs. */

export type ShipFormat = 'bastion' | 'ocsf' | 'ecs';

export type SecretSource = { fromEnv: string } | { fromFile: string };

interface SinkCommon {
  /** Names the sink in metrics and its cursor file: unique, [a-z0-9_-]. */
  name: string;
  format: ShipFormat;
  /** Records read from the log per delivery. */
  batchRecords: number;
  /** First retry delay after a failed delivery, doubled per failure up to retryMaxMs, with jitter. */
  retryInitialMs: number;
  retryMaxMs: number;
}

export interface SyslogSinkConfig extends SinkCommon {
  type: 'syslog';
  host: string;
  port: number;
  /** Absent: plain TCP (RFC 6587 octet counting). Present: TLS (RFC 5425). */
  tls?: { caFile: string; certFile?: string; keyFile?: string; serverName?: string };
  /** Syslog facility number 0..23 (default 10, authpriv: security/authorization messages). */
  facility: number;
  appName: string;
  /**
   * Plain syslog has no acknowledgement: the cursor advances only after a clean close of the
   * connection, in which the receiver read everything sent. This many records at most are sent
   * between two such closes.
   */
  confirmEveryRecords: number;
}

export interface WebhookSinkConfig extends SinkCommon {
  type: 'webhook';
  url: string;
  /** The HMAC-SHA256 key. */
  secret: SecretSource;
  timeoutSeconds: number;
}

export interface OtlpSinkConfig extends SinkCommon {
  type: 'otlp';
  /** The OTLP/HTTP logs endpoint, e.g. http://collector:4318/v1/logs. */
  url: string;
  /** Extra request headers (routing, tenant); the key of a secret header comes from the environment. */
  headers: Record<string, string>;
  timeoutSeconds: number;
}

export interface LokiSinkConfig extends SinkCommon {
  type: 'loki';
  /** The push endpoint, e.g. http://loki:3100/loki/api/v1/push. */
  url: string;
  /** X-Scope-OrgID of a multi-tenant Loki. */
  tenant?: string;
  timeoutSeconds: number;
}

export interface S3SinkConfig extends SinkCommon {
  type: 's3';
  bucket: string;
  /** Key prefix, e.g. bastion/prod/. */
  prefix: string;
  region: string;
  /** An S3-compatible endpoint (MinIO, Ceph, ...); absent: AWS. */
  endpoint?: string;
  forcePathStyle: boolean;
  /** Object Lock retention sent with every object: the bucket must have Object Lock enabled. */
  objectLock?: { mode: 'GOVERNANCE' | 'COMPLIANCE'; retainDays: number };
  timeoutSeconds: number;
}

export type SinkConfig = SyslogSinkConfig | WebhookSinkConfig | OtlpSinkConfig | LokiSinkConfig | S3SinkConfig;

export const SINK_DEFAULTS = { format: 'bastion', batchRecords: 500, retryInitialMs: 500, retryMaxMs: 30_000, facility: 10, appName: 'bastion', confirmEveryRecords: 5000, timeoutSeconds: 10, headers: {}, prefix: '', region: 'us-east-1', forcePathStyle: false } as const;

const secret = {
  oneOf: [
    { type: 'object', required: ['fromEnv'], additionalProperties: false, properties: { fromEnv: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'the name of an environment variable holding the HMAC key' } } },
    { type: 'object', required: ['fromFile'], additionalProperties: false, properties: { fromFile: { type: 'string', minLength: 1, description: 'a file holding the HMAC key, relative to stateDir' } } },
  ],
  description: '{ fromEnv: BASTION_WEBHOOK_KEY } or { fromFile: /run/secrets/webhook-key }',
};

/** JSON Schema of one sink; the type decides which settings are required. */
const sinkSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'type'],
  properties: {
    name: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,39}$', description: 'a unique sink name of lower-case letters, digits, - and _, e.g. siem' },
    type: { enum: ['syslog', 'webhook', 'otlp', 'loki', 's3'], description: "'syslog' (RFC 5424 over TCP or TLS), 'webhook' (JSON lines over HTTP POST, HMAC-signed), 'otlp' (OTLP/HTTP protobuf logs), 'loki' (Loki push API) or 's3' (objects in S3-compatible storage, with Object Lock retention)" },
    format: { enum: ['bastion', 'ocsf', 'ecs'], default: SINK_DEFAULTS.format, description: "'bastion' (the records as written, verifiable), 'ocsf' or 'ecs'" },
    batchRecords: { type: 'integer', minimum: 1, maximum: 100_000, default: SINK_DEFAULTS.batchRecords, description: 'records per delivery, e.g. 500' },
    retryInitialMs: { type: 'integer', minimum: 10, maximum: 600_000, default: SINK_DEFAULTS.retryInitialMs, description: 'first retry delay in milliseconds, e.g. 500' },
    retryMaxMs: { type: 'integer', minimum: 10, maximum: 3_600_000, default: SINK_DEFAULTS.retryMaxMs, description: 'longest retry delay in milliseconds, e.g. 30000' },
    host: { type: 'string', minLength: 1, description: 'the syslog receiver, e.g. siem.example.com' },
    port: { type: 'integer', minimum: 1, maximum: 65_535, description: 'the syslog receiver port, e.g. 6514 (TLS) or 601 (TCP)' },
    tls: {
      type: 'object',
      additionalProperties: false,
      required: ['caFile'],
      properties: {
        caFile: { type: 'string', minLength: 1, description: 'PEM file of the CA that signed the receiver certificate, relative to stateDir' },
        certFile: { type: 'string', minLength: 1, description: 'client certificate PEM for mutual TLS' },
        keyFile: { type: 'string', minLength: 1, description: 'client key PEM for mutual TLS' },
        serverName: { type: 'string', minLength: 1, description: 'the name the receiver certificate must carry, when it is not host' },
      },
    },
    facility: { type: 'integer', minimum: 0, maximum: 23, default: SINK_DEFAULTS.facility, description: 'syslog facility 0..23, e.g. 10 (authpriv)' },
    appName: { type: 'string', pattern: '^[!-~]{1,48}$', default: SINK_DEFAULTS.appName, description: 'RFC 5424 APP-NAME, printable ASCII without spaces, e.g. bastion' },
    confirmEveryRecords: { type: 'integer', minimum: 1, maximum: 1_000_000, default: SINK_DEFAULTS.confirmEveryRecords, description: 'syslog: records sent at most before the connection is closed cleanly to confirm them, e.g. 5000' },
    url: { type: 'string', pattern: '^https?://', description: 'the webhook, OTLP logs or Loki push URL, e.g. https://collector.example.com/bastion, http://collector:4318/v1/logs, http://loki:3100/loki/api/v1/push' },
    headers: { type: 'object', additionalProperties: { type: 'string' }, default: {}, description: 'otlp: extra request headers, e.g. { x-tenant: prod }' },
    tenant: { type: 'string', pattern: '^[!-~]{1,150}$', description: 'loki: the X-Scope-OrgID tenant, e.g. prod' },
    bucket: { type: 'string', pattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$', description: 's3: the bucket name, e.g. audit-archive' },
    prefix: { type: 'string', pattern: '^[!-~]{0,200}$', default: SINK_DEFAULTS.prefix, description: 's3: key prefix, e.g. bastion/prod/' },
    region: { type: 'string', pattern: '^[a-z0-9-]{1,40}$', default: SINK_DEFAULTS.region, description: 's3: region, e.g. eu-west-1' },
    endpoint: { type: 'string', pattern: '^https?://', description: 's3: an S3-compatible endpoint, e.g. https://minio.example.com:9000 (absent: AWS)' },
    forcePathStyle: { type: 'boolean', default: SINK_DEFAULTS.forcePathStyle, description: 's3: path-style URLs (most S3-compatible stores need true)' },
    objectLock: {
      type: 'object',
      additionalProperties: false,
      required: ['mode', 'retainDays'],
      properties: {
        mode: { enum: ['GOVERNANCE', 'COMPLIANCE'], description: "'COMPLIANCE' (no one can shorten or delete) or 'GOVERNANCE' (users with s3:BypassGovernanceRetention can)" },
        retainDays: { type: 'integer', minimum: 1, maximum: 36_500, description: 'days each object is locked, e.g. 365' },
      },
      description: 's3: Object Lock retention on every object, e.g. { mode: COMPLIANCE, retainDays: 365 }',
    },
    secret,
    timeoutSeconds: { type: 'integer', minimum: 1, maximum: 600, default: SINK_DEFAULTS.timeoutSeconds, description: 'seconds a webhook, otlp, loki or s3 delivery may take, e.g. 10' },
  },
  allOf: [
    { if: { properties: { type: { const: 'syslog' } } }, then: { required: ['host', 'port'] } },
    { if: { properties: { type: { const: 'webhook' } } }, then: { required: ['url', 'secret'] } },
    { if: { properties: { type: { enum: ['otlp', 'loki'] } } }, then: { required: ['url'] } },
    { if: { properties: { type: { const: 's3' } } }, then: { required: ['bucket'] } },
  ],
} as const;

export const sinksSchema = {
  type: 'array',
  default: [],
  items: sinkSchema,
  description: 'sinks that receive every committed audit record and checkpoint, e.g. [{ name: siem, type: syslog, host: 127.0.0.1, port: 6514, tls: { caFile: ca.pem } }]',
} as const;

/** Fills per-sink defaults (ajv already did, for a loaded config) and checks that names are unique. */
export function resolveSinks(sinks: ReadonlyArray<Partial<SinkConfig>> | undefined): SinkConfig[] {
  const resolved = (sinks ?? []).map((sink) => ({ ...SINK_DEFAULTS, ...sink }) as SinkConfig);
  const seen = new Set<string>();
  for (const sink of resolved) {
    if (seen.has(sink.name)) throw new Error(`audit.sinks: two sinks are named '${sink.name}': give each a unique name (it names its cursor file and metrics)`);
    seen.add(sink.name);
  }
  return resolved;
}
