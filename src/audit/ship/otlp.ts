import type { ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import type { Resource } from '@opentelemetry/resources';
import type { OtlpSinkConfig } from './config.js';
import { payloadOf } from './format.js';
import { InFlight, postDelivery, type DeliveryAnswer } from './http.js';
import type { ShipItem } from './source.js';
import type { DeliveryReport, SinkTransport } from './transport.js';

/**
 * OTLP/HTTP logs (application/x-protobuf, an ExportLogsServiceRequest), serialized by the
 * OpenTelemetry JS project's own encoder. Each audit record is one LogRecord whose body is the
 * payload in the sink's format and whose attributes carry the log id, seq and hash, so a
 * collector can drop duplicates of an at-least-once delivery. A 2xx answer counts as received;
 * its ExportLogsServiceResponse may report a partial success (records the collector rejected for
 * good, which the OTLP specification forbids retrying): the shipper counts, logs and audits them.
 */

type LogRecordInput = Parameters<typeof ProtobufLogsSerializer.serializeRequest>[0][number];

// Loaded on the first delivery: a gateway without an OTLP sink loads no OpenTelemetry module
// (tracing off must cost nothing, and the test checks the require cache).
let encoder: Promise<{ serializer: typeof ProtobufLogsSerializer; resourceFromAttributes: typeof import('@opentelemetry/resources').resourceFromAttributes }> | undefined;
function loadEncoder(): NonNullable<typeof encoder> {
  encoder ??= Promise.all([import('@opentelemetry/otlp-transformer'), import('@opentelemetry/resources')]).then(([transformer, resources]) => ({ serializer: transformer.ProtobufLogsSerializer, resourceFromAttributes: resources.resourceFromAttributes }));
  return encoder;
}

/** OpenTelemetry SeverityNumber values. */
const SEVERITY = { info: 9, notice: 10, warn: 13, error: 17 } as const;
const SCOPE = { name: 'bastion.audit' };

export class OtlpLogsTransport implements SinkTransport {
  readonly acknowledges = true;
  private readonly inFlight = new InFlight();
  private resource: Resource | undefined;

  constructor(private readonly config: OtlpSinkConfig, private readonly logId: string) {}

  async deliver(items: ShipItem[]): Promise<DeliveryReport | undefined> {
    const { serializer, resourceFromAttributes } = await loadEncoder();
    this.resource ??= resourceFromAttributes({ 'service.name': 'bastion', 'bastion.audit.log_id': this.logId });
    const body = serializer.serializeRequest(items.map((item) => this.logRecord(item)));
    if (body === undefined) throw new Error('the OTLP logs serializer produced no request');
    const answer = await this.inFlight.run(this.config.timeoutSeconds, (signal) => postDelivery(this.config.url, { ...this.config.headers, 'content-type': 'application/x-protobuf' }, body, signal));
    return partialSuccess(answer, items.length, serializer);
  }

  private logRecord(item: ShipItem): LogRecordInput {
    const observed = hrTime(Date.now());
    const common = { resource: this.resource, instrumentationScope: SCOPE, hrTimeObserved: observed, droppedAttributesCount: 0, body: payloadOf(item, this.config.format) };
    if (item.kind === 'checkpoint') {
      return { ...common, hrTime: observed, severityNumber: SEVERITY.notice, severityText: 'NOTICE', eventName: 'bastion.audit.checkpoint', attributes: { 'bastion.audit.log_id': this.logId, 'bastion.audit.checkpoint.index': item.index, 'bastion.audit.checkpoint.size': item.size } } as unknown as LogRecordInput;
    }
    const { record } = item;
    const severity = record.decision === 'deny' ? { severityNumber: SEVERITY.warn, severityText: 'WARN' } : record.decision === 'error' ? { severityNumber: SEVERITY.error, severityText: 'ERROR' } : { severityNumber: SEVERITY.info, severityText: 'INFO' };
    const attributes: Record<string, string | number> = { 'bastion.audit.log_id': this.logId, 'bastion.audit.seq': item.seq, 'bastion.audit.hash': record.hash, 'bastion.audit.kind': record.kind };
    for (const [key, value] of [['mcp.server', record.server], ['mcp.tool.name', record.tool], ['mcp.method.name', record.method], ['bastion.agent', record.agent_id], ['bastion.decision', record.decision], ['bastion.event', record.event]] as const) {
      if (typeof value === 'string') attributes[key] = value;
    }
    return { ...common, hrTime: hrTime(Date.parse(record.ts)), ...severity, eventName: 'bastion.audit.record', attributes } as unknown as LogRecordInput;
  }

  reset(): void {
    // fetch pools its own connections.
  }

  close(): Promise<void> {
    this.inFlight.abortAll();
    return Promise.resolve();
  }
}

/**
 * The partial_success of a 2xx answer (protobuf, or JSON from a collector that answers so), or
 * nothing for a full success. A count above the records sent is capped at it. An answer that does
 * not decode still counts as received (HTTP 2xx): resending would duplicate every record.
 */
export function partialSuccess(answer: DeliveryAnswer, sent: number, serializer: Pick<typeof ProtobufLogsSerializer, 'deserializeResponse'>): DeliveryReport | undefined {
  if (answer.body.length === 0) return undefined;
  let rejected: unknown;
  let message: unknown;
  try {
    if (answer.contentType.includes('json')) {
      const parsed = JSON.parse(Buffer.from(answer.body).toString('utf8')) as { partialSuccess?: { rejectedLogRecords?: unknown; errorMessage?: unknown } };
      ({ rejectedLogRecords: rejected, errorMessage: message } = parsed.partialSuccess ?? {});
    } else {
      ({ rejectedLogRecords: rejected, errorMessage: message } = serializer.deserializeResponse(answer.body).partialSuccess ?? {});
    }
  } catch (error) {
    return { rejected: 0, message: `the collector's 2xx answer is not an ExportLogsServiceResponse (${(error as Error).message}); the delivery counts as received` };
  }
  const count = Number(rejected ?? 0);
  const text = typeof message === 'string' ? message.slice(0, 500) : '';
  const bounded = Number.isFinite(count) && count > 0 ? Math.min(Math.floor(count), sent) : 0;
  return bounded === 0 && text === '' ? undefined : { rejected: bounded, message: text };
}

function hrTime(ms: number): [number, number] {
  const safe = Number.isFinite(ms) ? ms : Date.now();
  return [Math.floor(safe / 1000), (safe % 1000) * 1_000_000];
}
