import type { ValueOrSecret } from '../../config/types.js';

/** `observability.tracing` in bastion.yaml: OpenTelemetry traces over OTLP/HTTP (docs/observability.md). */
export interface TracingConfig {
  enabled: boolean;
  /** The OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces. */
  endpoint: string;
  /** Headers sent with each export (an API key, a tenant): values or secret references. */
  headers: Record<string, ValueOrSecret>;
  /** Fraction of requests traced, 0 to 1; a client's own sampled flag does not raise it. */
  sampleRatio: number;
  serviceName: string;
  /** One child span per guard (true) or one span event per guard on the request span (false). */
  guardSpans: boolean;
  /** How long one export may take before it is abandoned. */
  exportTimeoutMs: number;
}

const secretRef = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  maxProperties: 1,
  properties: { fromEnv: { type: 'string', minLength: 1 }, fromFile: { type: 'string', minLength: 1 } },
} as const;

export const tracingSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  description: 'OpenTelemetry traces: observability.tracing: { enabled: true, endpoint: http://127.0.0.1:4318/v1/traces }',
  properties: {
    enabled: { type: 'boolean', default: false, description: 'off by default; when off no OpenTelemetry module is loaded' },
    endpoint: { type: 'string', pattern: '^https?://', default: 'http://127.0.0.1:4318/v1/traces', description: 'the OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces' },
    headers: {
      type: 'object',
      default: {},
      propertyNames: { pattern: '^[A-Za-z0-9-]{1,64}$' },
      additionalProperties: { oneOf: [{ type: 'string' }, secretRef], description: 'a string, or { fromEnv: NAME } or { fromFile: PATH }' },
      description: 'headers for the collector, e.g. { authorization: { fromEnv: OTLP_TOKEN } }',
    },
    sampleRatio: { type: 'number', minimum: 0, maximum: 1, default: 1, description: 'the fraction of requests traced, e.g. 0.1' },
    serviceName: { type: 'string', minLength: 1, maxLength: 128, default: 'bastion', description: 'service.name of the exported spans' },
    guardSpans: { type: 'boolean', default: true, description: 'a child span per guard (true) or a span event per guard on the request span (false, cheaper)' },
    exportTimeoutMs: { type: 'integer', minimum: 100, maximum: 120000, default: 10000 },
  },
} as const;
