import type { Guard } from '../../pipeline/index.js';
import type { Logger } from '../log.js';
import type { TracingConfig } from './config.js';

export { tracingSchema, type TracingConfig } from './config.js';
export { remoteTraceContext, validTraceparent, type RemoteTraceContext } from './w3c.js';

/** Traces for the guard chain: the outermost guard, and how to flush and stop export. */
export interface Tracing {
  /** The guard that opens the request's SERVER span; placed outermost (src/app/bastion.ts). */
  guard(): Guard;
  /** Exports every span ended so far. */
  flush(): Promise<void>;
  /** Flushes, then stops exporting. */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  config: TracingConfig;
  /** observability.tracing.headers with secret references resolved. */
  headers: Record<string, string>;
  version: string;
  logger: Logger;
}

/**
 * Loads the OpenTelemetry implementation. Only called when tracing is enabled: the import is
 * dynamic, so a gateway with tracing off never loads an OpenTelemetry module.
 */
export async function createTracing(options: TracingOptions): Promise<Tracing> {
  const { OtelTracing } = await import('./otel.js');
  return new OtelTracing(options);
}
