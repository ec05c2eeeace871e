import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { WebhookSinkConfig } from './config.js';
import { payloadOf } from './format.js';
import { InFlight } from './http.js';
import type { ShipItem } from './source.js';
import type { SinkTransport } from './transport.js';

/**
 * JSON lines over HTTP POST. The receiver authenticates a delivery by
 *   X-Bastion-Signature: sha256=<hex HMAC-SHA256(key, "<X-Bastion-Timestamp>.<body>")>
 * and rejects a timestamp too far from its clock (a replayed delivery). X-Bastion-Delivery names
 * the records (log id and seq range), so a receiver can drop a delivery it already has: delivery
 * is at least once (log id:first-last seq:first 16 hex of the last record's hash, so that a new
 * chain after a tamper restart is not taken for a duplicate). Only a 2xx answer counts as received.
 */

export const SIGNATURE_HEADER = 'x-bastion-signature';
export const TIMESTAMP_HEADER = 'x-bastion-timestamp';
export const DELIVERY_HEADER = 'x-bastion-delivery';

export function webhookSignature(key: Buffer, timestamp: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', key).update(`${timestamp}.`).update(body).digest('hex')}`;
}

/** The key the config names, read once at start: a missing key refuses the start. */
export function loadWebhookKey(config: WebhookSinkConfig, env: NodeJS.ProcessEnv = process.env): Buffer {
  const where = `audit.sinks '${config.name}' secret`;
  let text: string;
  if ('fromEnv' in config.secret) {
    text = env[config.secret.fromEnv] ?? '';
    if (text === '') throw new Error(`${where}: environment variable ${config.secret.fromEnv} is not set (export the webhook HMAC key before starting Bastion)`);
  } else {
    try {
      text = readFileSync(config.secret.fromFile, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw new Error(`${where}: cannot read ${config.secret.fromFile} (${(error as Error).message})`, { cause: error });
    }
  }
  if (Buffer.byteLength(text) < 16) throw new Error(`${where}: the key has fewer than 16 bytes: use at least 32 random bytes (openssl rand -hex 32)`);
  return Buffer.from(text, 'utf8');
}

export class WebhookTransport implements SinkTransport {
  readonly acknowledges = true;
  private readonly inFlight = new InFlight();

  constructor(private readonly config: WebhookSinkConfig, private readonly key: Buffer, private readonly logId: string) {}

  async deliver(items: ShipItem[]): Promise<undefined> {
    const body = `${items.map((item) => payloadOf(item, this.config.format)).join('\n')}\n`;
    const timestamp = String(Math.floor(Date.now() / 1000));
    const records = items.filter((item) => item.kind === 'record');
    const last = records[records.length - 1];
    // The last record's hash tells a new chain (a tamper restart reuses log id and seqs) from a duplicate.
    const delivery = last === undefined ? `${this.logId}:checkpoints` : `${this.logId}:${records[0]?.seq ?? 0}-${last.seq}:${last.record.hash.slice(0, 16)}`;
    await this.inFlight.run(this.config.timeoutSeconds, (signal) => this.post(body, timestamp, delivery, signal));
  }

  private async post(body: string, timestamp: string, delivery: string, signal: AbortSignal): Promise<void> {
    const response = await fetch(this.config.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson', [TIMESTAMP_HEADER]: timestamp, [SIGNATURE_HEADER]: webhookSignature(this.key, timestamp, body), [DELIVERY_HEADER]: delivery, 'x-bastion-sink': this.config.name },
      body,
      signal,
      redirect: 'error',
    });
    // The body is not needed, but must be read for the connection to be reused.
    await response.arrayBuffer().catch(() => undefined);
    if (response.status < 200 || response.status > 299) throw new Error(`webhook ${this.config.url} answered HTTP ${response.status}`);
  }

  reset(): void {
    // Nothing to drop: fetch pools its own connections.
  }

  close(): Promise<void> {
    this.inFlight.abortAll();
    return Promise.resolve();
  }
}
