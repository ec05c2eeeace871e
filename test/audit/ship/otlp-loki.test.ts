import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, type TempDir } from '../../helpers/gateway.js';
import { anyValue, each, keyValue as attributesInto, type AttributeValue } from '../../helpers/otlp.js';
import { ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import { partialSuccess } from '../../../src/audit/ship/otlp.js';
import { readRecords } from '../../../src/audit/reader.js';
import { assertEverythingArrived, echoCalls, eventually, startShippingGateway } from './helpers.js';

// No OpenTelemetry Collector and no Grafana Loki can be installed here (Debian's "loki" package
// is an unrelated genetics program, npm's "loki" a Storybook tool), so each test runs the
// receiving end itself on node:http and decodes what a collector or Loki would: the OTLP
// protobuf by the field numbers of opentelemetry-proto's collector/logs/v1 and logs/v1 messages
// (read with the OpenTelemetry JS project's own reader, as test/helpers/otlp.ts does for traces),
// and the documented JSON body of Loki's POST /loki/api/v1/push.

type Value = AttributeValue;
interface DecodedLog {
  severityNumber: number;
  severityText: string;
  eventName: string;
  body: string;
  attributes: Record<string, Value>;
  resource: Record<string, Value>;
}

/** ExportLogsServiceRequest { 1: ResourceLogs { 1: Resource { 1: attributes }, 2: ScopeLogs { 2: LogRecord } } }. */
function decodeLogsRequest(body: Uint8Array): DecodedLog[] {
  const logs: DecodedLog[] = [];
  each(body, (requestReader, requestField) => {
    if (requestField !== 1) return false;
    const resource: Record<string, Value> = {};
    const scopes: Uint8Array[] = [];
    each(requestReader.readBytes(), (reader, fieldNumber) => {
      if (fieldNumber === 1) each(reader.readBytes(), (inner, innerField) => (innerField === 1 ? (attributesInto(inner.readBytes(), resource), true) : false));
      else if (fieldNumber === 2) scopes.push(reader.readBytes());
      else return false;
      return true;
    });
    for (const scope of scopes) {
      each(scope, (scopeReader, scopeField) => {
        if (scopeField !== 2) return false;
        const log: DecodedLog = { severityNumber: 0, severityText: '', eventName: '', body: '', attributes: {}, resource };
        each(scopeReader.readBytes(), (reader, fieldNumber, wireType) => {
          if (fieldNumber === 2 && wireType === 0) log.severityNumber = reader.readVarint();
          else if (fieldNumber === 3) log.severityText = reader.readString();
          else if (fieldNumber === 5) log.body = String(anyValue(reader.readBytes()));
          else if (fieldNumber === 6) attributesInto(reader.readBytes(), log.attributes);
          else if (fieldNumber === 12) log.eventName = reader.readString();
          else return false;
          return true;
        });
        logs.push(log);
        return true;
      });
    }
    return true;
  });
  return logs;
}

/** A protobuf varint (the values here are small and non-negative). */
function varint(value: number): number[] {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  bytes.push(rest);
  return bytes;
}

/** ExportLogsServiceResponse { 1: ExportLogsPartialSuccess { 1: rejected_log_records, 2: error_message } }, as a collector writes it. */
function partialSuccessAnswer(rejected: number, message: string): Buffer {
  const text = Buffer.from(message, 'utf8');
  const inner = Buffer.from([0x08, ...varint(rejected), 0x12, ...varint(text.length), ...text]);
  return Buffer.from([0x0a, ...varint(inner.length), ...inner]);
}

/** A receiver that answers 503 to the first `failFirst` requests, then takes them. */
class Receiver {
  readonly bodies: Array<{ headers: IncomingMessage['headers']; body: Buffer }> = [];
  failFirst = 0;
  /** The body of a 200 answer to the nth delivery taken (0-based); empty when it gives none. */
  answer: (delivery: number) => Buffer = () => Buffer.alloc(0);
  refused = 0;
  url = '';
  private server: Server | undefined;

  constructor(private readonly path: string) {}

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        if (request.url !== this.path || request.method !== 'POST') return void response.writeHead(404).end();
        if (this.refused < this.failFirst) {
          this.refused += 1;
          return void response.writeHead(503).end('busy');
        }
        this.bodies.push({ headers: request.headers, body: Buffer.concat(chunks) });
        response.writeHead(this.path.includes('loki') ? 204 : 200, { 'content-type': 'application/x-protobuf' }).end(this.answer(this.bodies.length - 1));
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${this.path}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

interface LokiBody {
  streams: Array<{ stream: Record<string, string>; values: Array<[string, string]> }>;
}

describe('OTLP logs and Loki sinks ship every committed record through the durable cursor', () => {
  let dir: TempDir;
  const otlp = new Receiver('/v1/logs');
  const loki = new Receiver('/loki/api/v1/push');
  before(async () => {
    dir = tempDir('bastion-ship-otlp-loki-');
    await Promise.all([otlp.start(), loki.start()]);
  });
  after(async () => {
    await Promise.all([otlp.stop(), loki.stop()]);
    dir.cleanup();
  });

  test('records arrive whole (OTLP protobuf LogRecords, Loki streams labelled by server/agent/decision) after refused deliveries are retried', async () => {
    otlp.failFirst = 2;
    loki.failFirst = 2;
    const sinks = `    - { name: otel, type: otlp, url: '${otlp.url}', headers: { x-tenant: prod }, retryInitialMs: 20, retryMaxMs: 100 }\n    - { name: loki, type: loki, url: '${loki.url}', tenant: team-a, retryInitialMs: 20, retryMaxMs: 100 }\n`;
    mkdirSync(join(dir.path, 'state'), { recursive: true });
    const { bastion, url } = await startShippingGateway(dir.path, sinks);
    try {
      await echoCalls(url, 30, 'ship');
    } finally {
      await bastion.close();
    }
    const auditDir = join(dir.path, 'state', 'audit');
    assert.equal(otlp.refused, 2, 'the OTLP receiver refused two deliveries');
    assert.equal(loki.refused, 2);

    // OTLP: the body of each LogRecord is the stored line; checkpoints are events of their own.
    assert.ok(otlp.bodies.every((item) => item.headers['content-type'] === 'application/x-protobuf' && item.headers['x-tenant'] === 'prod'));
    const logs = otlp.bodies.flatMap((item) => decodeLogsRequest(item.body));
    const received = logs.map((log) => (log.eventName === 'bastion.audit.checkpoint' ? { payload: log.body } : { seq: Number(log.attributes['bastion.audit.seq']), payload: log.body }));
    const otlpOutcome = assertEverythingArrived(auditDir, received);
    assert.ok(otlpOutcome.records > 30);
    const call = logs.find((log) => log.attributes['mcp.tool.name'] === 'echo' && log.attributes['bastion.decision'] === 'allow');
    assert.ok(call, 'a tools/call record carries its tool and decision as attributes');
    assert.equal(call.severityText, 'INFO');
    assert.equal(call.attributes['mcp.server'], 'everything');
    assert.equal(call.resource['service.name'], 'bastion');
    assert.equal(call.attributes['bastion.audit.hash'], (JSON.parse(call.body) as { hash: string }).hash);

    // Loki: streams by label set, entries in the documented [ns timestamp, line] form.
    assert.ok(loki.bodies.every((item) => item.headers['x-scope-orgid'] === 'team-a' && item.headers['content-type'] === 'application/json'));
    const pushes = loki.bodies.map((item) => JSON.parse(item.body.toString('utf8')) as LokiBody);
    const lokiReceived: Array<{ seq?: number; payload: string }> = [];
    for (const push of pushes) {
      for (const stream of push.streams) {
        assert.equal(stream.stream['job'], 'bastion');
        for (const [nanos, line] of stream.values) {
          assert.match(nanos, /^\d{19}$/, 'a nanosecond timestamp as a string');
          if (stream.stream['kind'] === 'checkpoint') {
            lokiReceived.push({ payload: line });
            continue;
          }
          const record = JSON.parse(line) as { seq: number; server?: string; agent_id?: string; decision?: string };
          assert.equal(stream.stream['server'], record.server, 'the server label is the record\'s');
          assert.equal(stream.stream['decision'], record.decision);
          assert.equal(stream.stream['agent'], record.agent_id);
          lokiReceived.push({ seq: record.seq, payload: line });
        }
      }
    }
    assertEverythingArrived(auditDir, lokiReceived);
    assert.ok(pushes.some((push) => push.streams.some((stream) => stream.stream['server'] === 'everything' && stream.stream['decision'] === 'allow')));
  });

  test('an OTLP partial success is not retried: the rejected records are counted, logged and audited, and shipping goes on', async () => {
    const receiver = new Receiver('/v1/logs');
    receiver.answer = (delivery) => (delivery < 3 ? partialSuccessAnswer(2, 'log record attribute too long') : Buffer.alloc(0));
    await receiver.start();
    const base = join(dir.path, 'partial');
    mkdirSync(join(base, 'state'), { recursive: true });
    const { bastion, url } = await startShippingGateway(base, `    - { name: otel, type: otlp, url: '${receiver.url}', batchRecords: 10, retryInitialMs: 20, retryMaxMs: 100 }\n`);
    let stats;
    try {
      await echoCalls(url, 30, 'partial');
      await eventually(() => (bastion.shipping?.stats()[0]?.lagRecords ?? 1) === 0 && receiver.bodies.length >= 3, 'the sink to catch up');
      stats = bastion.shipping?.stats()[0];
    } finally {
      await bastion.close();
      await receiver.stop();
    }
    assert.equal(stats?.rejected, 6, 'three deliveries with 2 rejected records each');
    assert.equal(stats?.failures, 0, 'a partial success is a success: no failure, no backoff');
    const auditDir = join(base, 'state', 'audit');
    const logs = receiver.bodies.flatMap((item) => decodeLogsRequest(item.body));
    const received = logs.map((log) => (log.eventName === 'bastion.audit.checkpoint' ? { payload: log.body } : { seq: Number(log.attributes['bastion.audit.seq']), payload: log.body }));
    const outcome = assertEverythingArrived(auditDir, received);
    assert.equal(outcome.duplicates, 0, 'nothing was sent again: the specification forbids retrying a partial success');
    const rejectedRecords = [...readRecords(auditDir)].map((item) => item.record).filter((record) => record.event === 'audit.ship_rejected');
    assert.ok(rejectedRecords.length >= 1, 'the rejection is in the audit log');
    const first = rejectedRecords[0]?.info as { sink: string; rejected_records: number; from_seq: number; to_seq: number; messages: string[] };
    assert.equal(first.sink, 'otel');
    assert.ok(first.rejected_records >= 2);
    assert.ok(first.from_seq >= 0 && first.to_seq >= first.from_seq, 'the seq range of the delivery that held them');
    assert.deepEqual(first.messages, ['log record attribute too long']);
    assert.equal(rejectedRecords.reduce((sum, record) => sum + Number((record.info as { rejected_records: number }).rejected_records), 0), 6, 'summed per interval, all six are recorded by the time the log closes');
  });

  test('partialSuccess reads protobuf and JSON answers, caps a count above the records sent, and takes an undecodable 2xx answer as received', () => {
    const protobuf = { body: new Uint8Array(partialSuccessAnswer(3, 'quota')), contentType: 'application/x-protobuf' };
    assert.deepEqual(partialSuccess(protobuf, 10, ProtobufLogsSerializer), { rejected: 3, message: 'quota' });
    assert.deepEqual(partialSuccess(protobuf, 2, ProtobufLogsSerializer), { rejected: 2, message: 'quota' }, 'capped at the records sent');
    const json = { body: new Uint8Array(Buffer.from('{"partialSuccess":{"rejectedLogRecords":"4","errorMessage":"too old"}}')), contentType: 'application/json' };
    assert.deepEqual(partialSuccess(json, 10, ProtobufLogsSerializer), { rejected: 4, message: 'too old' });
    assert.equal(partialSuccess({ body: new Uint8Array(0), contentType: '' }, 10, ProtobufLogsSerializer), undefined, 'an empty answer is a full success');
    assert.equal(partialSuccess({ body: new Uint8Array(Buffer.from('{}')), contentType: 'application/json' }, 10, ProtobufLogsSerializer), undefined);
    const warningOnly = partialSuccess({ body: new Uint8Array(partialSuccessAnswer(0, 'use gzip')), contentType: 'application/x-protobuf' }, 10, ProtobufLogsSerializer);
    assert.deepEqual(warningOnly, { rejected: 0, message: 'use gzip' }, 'a message without rejections is a warning');
    const garbage = partialSuccess({ body: new Uint8Array([0x0a, 0xff]), contentType: 'application/x-protobuf' }, 10, ProtobufLogsSerializer);
    assert.equal(garbage?.rejected, 0);
    assert.match(garbage?.message ?? '', /not an ExportLogsServiceResponse.*counts as received/);
  });
});
