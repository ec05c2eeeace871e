import type { LokiSinkConfig } from './config.js';
import { payloadOf } from './format.js';
import { InFlight, postDelivery } from './http.js';
import type { ShipItem } from './source.js';
import type { SinkTransport } from './transport.js';

/**
 * The Loki push API (POST /loki/api/v1/push, JSON): one stream per label set, labelled by job,
 * log id, kind, server, agent and decision, so LogQL can select `{decision="deny"}`. Loki drops
 * an entry identical to one it has (same stream, timestamp and line), so the duplicates of an
 * at-least-once delivery cost nothing. A 2xx answer counts as received.
 */

export interface LokiPush {
  streams: Array<{ stream: Record<string, string>; values: Array<[string, string]> }>;
}

/** Label values are free text in Loki; unbounded ones (tools, sessions) stay in the line, not in labels. */
export function lokiPush(items: readonly ShipItem[], format: LokiSinkConfig['format'], logId: string, nowMs = Date.now()): LokiPush {
  const streams = new Map<string, LokiPush['streams'][number]>();
  for (const item of items) {
    const labels: Record<string, string> = { job: 'bastion', log_id: logId, kind: item.kind === 'checkpoint' ? 'checkpoint' : item.record.kind };
    let timestampMs = nowMs;
    if (item.kind === 'record') {
      const { record } = item;
      if (record.server !== undefined) labels['server'] = record.server;
      if (record.agent_id !== undefined) labels['agent'] = record.agent_id;
      if (record.decision !== undefined) labels['decision'] = record.decision;
      timestampMs = Date.parse(record.ts) || nowMs;
    }
    const key = JSON.stringify(labels);
    let stream = streams.get(key);
    if (stream === undefined) {
      stream = { stream: labels, values: [] };
      streams.set(key, stream);
    }
    // Nanoseconds as a decimal string; the seq keeps records of one millisecond apart and in order.
    const nanos = BigInt(timestampMs) * 1_000_000n + BigInt(item.kind === 'record' ? item.seq % 1_000_000 : 0);
    stream.values.push([nanos.toString(), payloadOf(item, format)]);
  }
  return { streams: [...streams.values()] };
}

export class LokiTransport implements SinkTransport {
  readonly acknowledges = true;
  private readonly inFlight = new InFlight();

  constructor(private readonly config: LokiSinkConfig, private readonly logId: string) {}

  async deliver(items: ShipItem[]): Promise<undefined> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.config.tenant !== undefined) headers['x-scope-orgid'] = this.config.tenant;
    await this.inFlight.run(this.config.timeoutSeconds, (signal) => postDelivery(this.config.url, headers, JSON.stringify(lokiPush(items, this.config.format, this.logId)), signal));
  }

  reset(): void {
    // fetch pools its own connections.
  }

  close(): Promise<void> {
    this.inFlight.abortAll();
    return Promise.resolve();
  }
}
