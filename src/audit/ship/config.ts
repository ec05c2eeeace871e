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

export type SinkConfig = SyslogSinkConfig | WebhookSinkConfig;

export const SINK_DEFAULTS = { format: 'bastion', batchRecords: 500, retryInitialMs: 500, retryMaxMs: 30_000, facility: 10, appName: 'bastion', confirmEveryRecords: 5000, timeoutSeconds: 10 } as const;

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
    type: { enum: ['syslog', 'webhook'], description: "'syslog' (RFC 5424 over TCP or TLS) or 'webhook' (JSON lines over HTTP POST, HMAC-signed)" },
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
    url: { type: 'string', pattern: '^https?://', description: 'the webhook URL, e.g. https://collector.example.com/bastion' },
    secret,
    timeoutSeconds: { type: 'integer', minimum: 1, maximum: 600, default: SINK_DEFAULTS.timeoutSeconds, description: 'seconds a webhook delivery may take, e.g. 10' },
  },
  allOf: [
    { if: { properties: { type: { const: 'syslog' } } }, then: { required: ['host', 'port'] } },
    { if: { properties: { type: { const: 'webhook' } } }, then: { required: ['url', 'secret'] } },
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
