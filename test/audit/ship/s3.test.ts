import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { tempDir, type TempDir } from '../../helpers/gateway.js';
import { assertEverythingArrived, echoCalls, startShippingGateway } from './helpers.js';

// The S3-compatible store is s3rver from npm (a filesystem-backed S3 API). It accepts the Object
// Lock headers but does not enforce them (its object-lock API answers NotImplemented), so this
// test checks that every PUT carries them; that a locked object cannot be deleted or overwritten
// before its date is a guarantee only a real store with Object Lock gives (AWS S3, MinIO, Ceph).
const require = createRequire(import.meta.url);
type Handler = (request: IncomingMessage, response: ServerResponse) => void;
const S3rver = require('s3rver') as new (options: { directory: string; silent: boolean }) => { callback(): Handler };

const BUCKET = 'audit-archive';
const PREFIX = 'bastion/test/';

describe('the s3 sink stores sealed record batches and checkpoints as objects with Object Lock retention', () => {
  let dir: TempDir;
  let server: Server;
  let endpoint = '';
  const puts: Array<{ url: string; headers: IncomingMessage['headers'] }> = [];
  let refuseObjectPuts = 0;
  const environment = { id: process.env['AWS_ACCESS_KEY_ID'], secret: process.env['AWS_SECRET_ACCESS_KEY'] };
  before(async () => {
    dir = tempDir('bastion-ship-s3-');
    const store = new S3rver({ directory: join(dir.path, 's3'), silent: true }).callback();
    // In front of the store: counts and refuses PUTs, as an outage of the store would.
    server = createServer((request, response) => {
      if (request.method === 'PUT' && request.url?.startsWith(`/${BUCKET}/${PREFIX}`) === true) {
        if (refuseObjectPuts > 0) {
          refuseObjectPuts -= 1;
          request.resume();
          return void response.writeHead(503, { 'content-type': 'application/xml' }).end('<Error><Code>SlowDown</Code><Message>busy</Message></Error>');
        }
        puts.push({ url: request.url, headers: request.headers });
      }
      store(request, response);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // s3rver's own account.
    process.env['AWS_ACCESS_KEY_ID'] = 'S3RVER';
    process.env['AWS_SECRET_ACCESS_KEY'] = 'S3RVER';
  });
  after(async () => {
    process.env['AWS_ACCESS_KEY_ID'] = environment.id;
    process.env['AWS_SECRET_ACCESS_KEY'] = environment.secret;
    if (environment.id === undefined) delete process.env['AWS_ACCESS_KEY_ID'];
    if (environment.secret === undefined) delete process.env['AWS_SECRET_ACCESS_KEY'];
    await new Promise<void>((resolve) => server.close(() => resolve()));
    dir.cleanup();
  });

  test('every committed record and checkpoint is in the bucket after refused PUTs are retried; each PUT carries the retention headers', async () => {
    const client = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true });
    try {
      await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
      refuseObjectPuts = 2;
      const base = join(dir.path, 'gateway');
      mkdirSync(join(base, 'state'), { recursive: true });
      const sink = `    - { name: archive, type: s3, bucket: ${BUCKET}, prefix: ${PREFIX}, endpoint: '${endpoint}', forcePathStyle: true, batchRecords: 20, objectLock: { mode: COMPLIANCE, retainDays: 30 }, retryInitialMs: 20, retryMaxMs: 100 }\n`;
      const { bastion, url } = await startShippingGateway(base, sink);
      try {
        await echoCalls(url, 30, 's3');
      } finally {
        await bastion.close();
      }
      assert.equal(refuseObjectPuts, 0, 'the refused PUTs happened and were retried');

      const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: PREFIX }));
      const keys = (listed.Contents ?? []).map((object) => object.Key ?? '');
      const received: Array<{ seq?: number; payload: string }> = [];
      for (const key of keys) {
        const text = (await (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body?.transformToString('utf8')) ?? '';
        const checkpoint = /\/checkpoints\/cp-(\d{12})-[0-9a-f]{16}\.txt$/.exec(key);
        if (checkpoint !== null) {
          received.push({ payload: JSON.stringify({ checkpoint: { size: Number(checkpoint[1]), note: text } }) });
          continue;
        }
        assert.match(key, /\/records\/\d{12}-\d{12}-[0-9a-f]{16}\.jsonl$/);
        const lines = text.split('\n').filter((line) => line !== '');
        const records = lines.map((line) => JSON.parse(line) as { seq: number; event?: string });
        assert.equal(records[records.length - 1]?.event, 'audit.seal', `${key} ends on a batch seal`);
        lines.forEach((line, index) => received.push({ seq: records[index]?.seq ?? -1, payload: line }));
      }
      const outcome = assertEverythingArrived(join(base, 'state', 'audit'), received);
      assert.ok(outcome.records > 30);
      assert.ok(puts.length >= keys.length);
      for (const put of puts) {
        assert.equal(put.headers['x-amz-object-lock-mode'], 'COMPLIANCE', put.url);
        const until = Date.parse(String(put.headers['x-amz-object-lock-retain-until-date']));
        const days = (until - Date.now()) / 86_400_000;
        assert.ok(days > 29 && days <= 30, `retained for 30 days (${days.toFixed(3)})`);
        assert.ok(typeof put.headers['x-amz-checksum-sha256'] === 'string' || typeof put.headers['content-md5'] === 'string', 'an integrity checksum, which Object Lock PUTs require');
      }
    } finally {
      client.destroy();
    }
  });
});
