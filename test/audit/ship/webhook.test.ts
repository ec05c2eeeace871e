import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { timingSafeEqual } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, webhookSignature } from '../../../src/audit/ship/index.js';
import { tempDir, type TempDir } from '../../helpers/gateway.js';
import { assertEverythingArrived, echoCalls, eventually, startShippingGateway } from './helpers.js';

const KEY = 'webhook-test-key-0123456789abcdef0123456789';
/** How far a delivery's timestamp may be from the receiver's clock. */
const REPLAY_WINDOW_SECONDS = 300;

/**
 * The receiving side of the webhook, as a collector would write it: checks the HMAC over
 * "<timestamp>.<body>" in constant time and the timestamp window, and can be told to fail.
 */
class Receiver {
  readonly lines: Array<{ seq?: number; payload: string }> = [];
  readonly refusedSignatures: string[] = [];
  deliveries = 0;
  failNext = 0;
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      void this.handle(request).then((status) => {
        response.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/ingest`;
  }

  private async handle(request: IncomingMessage): Promise<number> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const timestamp = String(request.headers[TIMESTAMP_HEADER] ?? '');
    const signature = Buffer.from(String(request.headers[SIGNATURE_HEADER] ?? ''));
    const expected = Buffer.from(webhookSignature(Buffer.from(KEY), timestamp, body));
    if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
      this.refusedSignatures.push(String(request.headers[DELIVERY_HEADER]));
      return 401;
    }
    if (Math.abs(Date.now() / 1000 - Number(timestamp)) > REPLAY_WINDOW_SECONDS) return 401;
    if (this.failNext > 0) {
      this.failNext -= 1;
      return 503;
    }
    this.deliveries += 1;
    for (const line of body.toString('utf8').split('\n')) {
      if (line === '') continue;
      const parsed = JSON.parse(line) as { seq?: number };
      this.lines.push({ seq: typeof parsed.seq === 'number' ? parsed.seq : undefined, payload: line });
    }
    return 204;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

describe('the webhook sink posts HMAC-signed JSON lines and retries until the receiver takes them', () => {
  let dir: TempDir;
  const receiver = new Receiver();
  before(async () => {
    dir = tempDir('bastion-ship-webhook-');
    await receiver.start();
  });
  after(async () => {
    await receiver.stop();
    dir.cleanup();
  });

  test('signed deliveries arrive whole; refused ones (HTTP 503) are retried; a Bastion restart resumes from the cursor', async () => {
    const base = join(dir.path, 'ok');
    mkdirSync(join(base, 'state'), { recursive: true });
    writeFileSync(join(base, 'state', 'webhook.key'), `${KEY}\n`);
    const sink = `    - { name: collector, type: webhook, url: '${receiver.url}', secret: { fromFile: webhook.key }, retryInitialMs: 20, retryMaxMs: 100 }\n`;
    receiver.failNext = 3;
    // With an admin listener configured (not started), so that the sink metrics exist.
    let gateway = await startShippingGateway(base, sink, '', 'listeners:\n  http:\n    host: 127.0.0.1\n    port: 0\n  admin:\n    port: 0');
    try {
      await echoCalls(gateway.url, 10, 'hook');
      const shipping = gateway.bastion.shipping ?? assert.fail('shipping did not start');
      await eventually(() => shipping.stats()[0]?.lagRecords === 0, 'the webhook sink to catch up');
      assert.equal(receiver.failNext, 0, 'the refused deliveries were retried');
      assert.ok((shipping.stats()[0]?.failures ?? 0) >= 3);
      const metrics = (await gateway.bastion.metrics?.registry.metrics()) ?? assert.fail('no metrics');
      assert.match(metrics, /^bastion_audit_ship_lag_records\{sink="collector",type="webhook"\} 0$/m);
      assert.match(metrics, /^bastion_audit_ship_failures\{sink="collector",type="webhook"\} [3-9]\d*$/m);
      const shipped = Number(/^bastion_audit_shipped_records\{sink="collector",type="webhook"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
      assert.ok(shipped >= 10, `shipped records are counted (${shipped})`);
    } finally {
      await gateway.bastion.close();
    }
    gateway = await startShippingGateway(base, sink);
    try {
      await echoCalls(gateway.url, 5, 'again');
    } finally {
      await gateway.bastion.close();
    }
    assertEverythingArrived(join(base, 'state', 'audit'), receiver.lines);
    assert.deepEqual(receiver.refusedSignatures, []);
  });

  test('a sink with the wrong key is refused by the receiver and ships nothing', async () => {
    const base = join(dir.path, 'wrong');
    mkdirSync(base, { recursive: true });
    const before = receiver.lines.length;
    process.env['SHIP_TEST_WRONG_KEY'] = 'not-the-receivers-key-at-all-0123456789';
    const sinks = `    - { name: forged, type: webhook, url: '${receiver.url}', secret: { fromEnv: SHIP_TEST_WRONG_KEY }, retryInitialMs: 20, retryMaxMs: 100 }\n`;
    const gateway = await startShippingGateway(base, sinks);
    try {
      const shipping = gateway.bastion.shipping ?? assert.fail('shipping did not start');
      await eventually(() => receiver.refusedSignatures.length > 0, 'a refused delivery');
      assert.equal(shipping.stats()[0]?.shipped, 0);
      assert.ok((shipping.stats()[0]?.lagRecords ?? 0) > 0, 'the records wait in the log');
    } finally {
      await gateway.bastion.close();
      delete process.env['SHIP_TEST_WRONG_KEY'];
    }
    assert.equal(receiver.lines.length, before);
  });
});
