import { join } from 'node:path';
import type { AuditWriter } from '../log.js';
import type { SinkConfig } from './config.js';
import { RejectionAudit } from './rejections.js';
import { Shipper, type Rejection, type SinkStats } from './shipper.js';
import { AuditEvent } from '../schema.js';
import { SyslogTransport } from './syslog.js';
import type { SinkTransport } from './transport.js';
import { loadWebhookKey, WebhookTransport } from './webhook.js';
import { LokiTransport } from './loki.js';
import { OtlpLogsTransport } from './otlp.js';
import { S3Transport } from './s3.js';

/** Live shipping of the committed audit log to syslog, webhook, OTLP logs, Loki and S3 sinks. See docs/audit.md, "Shipping". */

export { resolveSinks, sinksSchema, SINK_DEFAULTS } from './config.js';
export type { ShipFormat, SinkConfig, SyslogSinkConfig, WebhookSinkConfig, OtlpSinkConfig, LokiSinkConfig, S3SinkConfig } from './config.js';
export { lokiPush, type LokiPush } from './loki.js';
export type { Rejection, SinkStats } from './shipper.js';
export { webhookSignature, SIGNATURE_HEADER, TIMESTAMP_HEADER, DELIVERY_HEADER } from './webhook.js';
export { octetFrame, syslogMessage } from './syslog.js';

export interface ShippingLogger {
  warn(object: object, message: string): void;
  info(object: object, message: string): void;
}

export interface Shipping {
  stats(): SinkStats[];
  /** Writes the audit records it holds back (rejections summed over an interval); called before the log closes. */
  recordPending(): void;
  /** Ships what is committed for up to deadlineMs, then stops every sink. */
  stop(deadlineMs?: number): Promise<void>;
}

export interface ShippingOptions {
  sinks: readonly SinkConfig[];
  audit: AuditWriter;
  /** Cursor files go here, one per sink. */
  cursorDir: string;
  logger: ShippingLogger;
  pollMs?: number;
  /** Least time between two audit.ship_rejected records of one sink (tests shorten it). */
  rejectionAuditMs?: number;
}

const DEFAULT_POLL_MS = 1000;
const DEFAULT_STOP_MS = 3000;

/** Starts one shipper per sink; throws (the gateway refuses to start) when a sink's files or key are missing. */
export function startShipping(options: ShippingOptions): Shipping {
  const { audit, logger } = options;
  const logId = audit.metadata.logId;
  const rejections = new RejectionAudit((info) => audit.event(AuditEvent.ShipRejected, info), (error) => logger.warn({ err: error }, 'could not record rejected audit records in the audit log'), options.rejectionAuditMs);
  const onRejected = (rejection: Rejection): void => {
    const { sink, rejected, message, fromSeq, toSeq } = rejection;
    if (rejected > 0) logger.warn({ sink, rejected, from_seq: fromSeq, to_seq: toSeq, receiver_message: message }, 'the audit sink accepted a delivery but rejected some of its records for good (partial success): they are not sent to it again, and stay in the local log');
    else logger.warn({ sink, receiver_message: message }, 'the audit sink accepted a delivery with a warning');
    rejections.record(rejection);
  };
  const shippers = options.sinks.map(
    (sink) =>
      new Shipper({
        sink,
        transport: transportFor(sink, logId),
        logDir: audit.dir,
        logId,
        cursorDir: options.cursorDir,
        logSize: () => audit.size,
        pollMs: options.pollMs ?? DEFAULT_POLL_MS,
        onError: (error, name) => logger.warn({ err: error, sink: name }, 'audit sink delivery failed; retrying with backoff (records wait in the log)'),
        onRecovered: (name) => logger.info({ sink: name }, 'audit sink delivers again'),
        onWarning: (message, name) => logger.warn({ sink: name }, message),
        onRejected,
      }),
  );
  const unsubscribe = audit.onCommit(() => {
    for (const shipper of shippers) shipper.notify();
  });
  for (const shipper of shippers) shipper.start();
  return {
    stats: () => shippers.map((shipper) => shipper.snapshot()),
    recordPending: () => rejections.flushAll(),
    stop: async (deadlineMs = DEFAULT_STOP_MS) => {
      unsubscribe();
      rejections.flushAll();
      await Promise.all(shippers.map((shipper) => shipper.stop(deadlineMs)));
    },
  };
}

function transportFor(sink: SinkConfig, logId: string): SinkTransport {
  switch (sink.type) {
    case 'syslog':
      return new SyslogTransport(sink, logId);
    case 'webhook':
      return new WebhookTransport(sink, loadWebhookKey(sink), logId);
    case 'otlp':
      return new OtlpLogsTransport(sink, logId);
    case 'loki':
      return new LokiTransport(sink, logId);
    case 's3':
      return new S3Transport(sink, logId);
  }
}

/** Cursor files live in <stateDir>/audit-ship/. */
export function cursorDirOf(stateDir: string): string {
  return join(stateDir, 'audit-ship');
}
