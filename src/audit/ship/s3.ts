import { createHash } from 'node:crypto';
import type { PutObjectCommandInput, S3Client } from '@aws-sdk/client-s3';
import type { S3SinkConfig } from './config.js';
import { payloadOf } from './format.js';
import { InFlight } from './http.js';
import type { ShipItem } from './source.js';
import type { SinkTransport } from './transport.js';

/**
 * Objects in S3-compatible storage. A delivery's records become one object of JSON lines,
 *   <prefix><log id>/records/<first seq>-<last seq>-<hash of the last record>.jsonl
 * which always ends on a batch seal (the shipper reads only up to seals), so each object is a
 * sealed, verifiable piece of the chain; each checkpoint becomes
 *   <prefix><log id>/checkpoints/cp-<size>-<hash of the note>.txt
 * The hash in the name keeps a new chain after a tamper restart (same log id, same seqs) from
 * writing over the old chain's objects. With `objectLock`, every PUT carries Object Lock
 * retention headers; the bucket (Object Lock enabled, versioned) is what enforces them.
 * Credentials come from the AWS SDK's default chain (environment, shared files, instance role).
 */

export class S3Transport implements SinkTransport {
  readonly acknowledges = true;
  private readonly inFlight = new InFlight();
  // The SDK is loaded on first use: importing it eagerly cost every CLI command ~20% of its start-up.
  private readonly sdk = import('@aws-sdk/client-s3');
  private readonly client: Promise<S3Client>;

  constructor(private readonly config: S3SinkConfig, private readonly logId: string) {
    this.client = this.sdk.then(({ S3Client: Client }) => new Client({ region: config.region, forcePathStyle: config.forcePathStyle, ...(config.endpoint === undefined ? {} : { endpoint: config.endpoint }), maxAttempts: 1 }));
    // A failed load surfaces on the first delivery (which then fails); it must not be an unhandled rejection.
    this.client.catch(() => undefined);
  }

  async deliver(items: ShipItem[]): Promise<undefined> {
    const records = items.filter((item) => item.kind === 'record');
    const first = records[0];
    const last = records[records.length - 1];
    if (first !== undefined && last !== undefined) {
      const body = `${records.map((item) => payloadOf(item, this.config.format)).join('\n')}\n`;
      await this.put(`records/${seqName(first.seq)}-${seqName(last.seq)}-${last.record.hash.slice(0, 16)}.jsonl`, body, 'application/x-ndjson');
    }
    for (const item of items) {
      if (item.kind !== 'checkpoint') continue;
      await this.put(`checkpoints/cp-${seqName(item.size)}-${createHash('sha256').update(item.note).digest('hex').slice(0, 16)}.txt`, item.note, 'text/plain; charset=utf-8');
    }
  }

  private async put(name: string, body: string, contentType: string): Promise<void> {
    const input: PutObjectCommandInput = { Bucket: this.config.bucket, Key: `${this.config.prefix}${this.logId}/${name}`, Body: body, ContentType: contentType, ChecksumAlgorithm: 'SHA256' };
    const lock = this.config.objectLock;
    if (lock !== undefined) {
      input.ObjectLockMode = lock.mode;
      input.ObjectLockRetainUntilDate = new Date(Date.now() + lock.retainDays * 86_400_000);
    }
    const [client, { PutObjectCommand }] = await Promise.all([this.client, this.sdk]);
    await this.inFlight.run(this.config.timeoutSeconds, (signal) => client.send(new PutObjectCommand(input), { abortSignal: signal }));
  }

  reset(): void {
    // The SDK pools its own connections.
  }

  close(): Promise<void> {
    this.inFlight.abortAll();
    return this.client.then((client) => client.destroy(), () => undefined);
  }
}

/** Zero-padded, so object names sort in seq order. */
function seqName(seq: number): string {
  return String(seq).padStart(12, '0');
}
