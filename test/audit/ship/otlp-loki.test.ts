import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, type TempDir } from '../../helpers/gateway.js';
import { anyValue, each, keyValue as attributesInto, type AttributeValue } from '../../helpers/otlp.js';
import { assertEverythingArrived, echoCalls, startShippingGateway } from './helpers.js';

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

/** A receiver that answers 503 to the first `failFirst` requests, then takes them. */
class Receiver {
  readonly bodies: Array<{ headers: IncomingMessage['headers']; body: Buffer }> = [];
  failFirst = 0;
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
        response.writeHead(this.path.includes('loki') ? 204 : 200, { 'content-type': 'application/x-protobuf' }).end();
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
});
