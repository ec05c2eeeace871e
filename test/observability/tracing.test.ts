import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEST_TOKEN, configYaml, firstText, fixture, httpClient, referenceServer, startGateway, stdioServer, tempDir, type RunningGateway } from '../helpers/gateway.js';
import { auditRecords } from '../helpers/audit.js';
import { CallCancellation, CallContext, ErrorCode, compose, failure, type Guard } from '../../src/pipeline/index.js';
import { createTracing } from '../../src/observability/tracing/index.js';
import { silentLogger } from '../../src/observability/index.js';
import { startOtlpReceiver, type DecodedSpan, type OtlpReceiver } from '../helpers/otlp.js';

// The OTLP receiver is in-test (test/helpers/otlp.ts): no OpenTelemetry Collector package is
// available here. Everything else is real: the SDK client, the gateway, the reference server
// `everything`, and an SDK server that reports the `_meta` it received.

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const SERVER = 2;
const CLIENT = 3;
const INTERNAL = 1;

describe('OpenTelemetry traces of the guard chain, exported over OTLP/HTTP protobuf', () => {
  let receiver: OtlpReceiver;
  let running: RunningGateway;
  let client: Client;

  before(async () => {
    receiver = await startOtlpReceiver();
    const servers = stdioServer('everything', referenceServer('everything'), ['stdio']) + stdioServer('recorder', fixture('meta-recorder-server'));
    running = await startGateway(configYaml(servers, `observability:\n  tracing: { enabled: true, endpoint: ${receiver.url}, serviceName: bastion-test }`));
    client = await httpClient(running.url);
  });
  after(async () => {
    await client.close();
    await running.stop();
    await receiver.close();
  });

  /** Flushes the gateway's spans and returns those of the trace whose SERVER span satisfies `pick`. */
  async function traceOf(pick: (span: DecodedSpan) => boolean): Promise<{ root: DecodedSpan; spans: DecodedSpan[] }> {
    await running.bastion.tracing?.flush();
    await receiver.waitFor((spans) => spans.some((span) => span.kind === SERVER && pick(span)));
    const root = receiver.spans.find((span) => span.kind === SERVER && pick(span)) ?? assert.fail('no server span');
    return { root, spans: receiver.spans.filter((span) => span.traceId === root.traceId) };
  }

  test('a tools/call is one SERVER span, a child span per guard in chain order, and a CLIENT span for the upstream call', async () => {
    const traceparent = `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`;
    const result = await client.callTool({ name: 'everything.echo', arguments: { message: 'traced' }, _meta: { traceparent } });
    assert.equal(firstText(result), 'Echo: traced');
    const { root, spans } = await traceOf((span) => span.attributes['gen_ai.tool.name'] === 'echo');
    assert.equal(root.traceId, CLIENT_TRACE, "the client's trace is continued");
    assert.equal(root.parentSpanId, CLIENT_SPAN, "the request span's parent is the client's span");
    assert.equal(root.name, 'tools/call echo');
    assert.equal(root.resource['service.name'], 'bastion-test');
    assert.equal(root.attributes['mcp.method.name'], 'tools/call');
    assert.equal(root.attributes['gen_ai.operation.name'], 'execute_tool');
    assert.equal(root.attributes['bastion.agent.id'], 'alice');
    assert.equal(root.attributes['bastion.server'], 'everything');
    assert.equal(root.attributes['bastion.decision'], 'allow');
    assert.equal(root.attributes['network.transport'], 'tcp');
    assert.match(String(root.attributes['mcp.session.id']), /^[A-Za-z0-9_-]{43}$/);
    assert.equal(typeof root.attributes['jsonrpc.request.id'], 'string');
    assert.notEqual(root.statusCode, 2);

    // Guards nest: each one's span is the child of the guard outside it, in the order of docs/pipeline.md.
    const guards: DecodedSpan[] = [];
    let parent = root;
    for (;;) {
      const child = spans.find((span) => span.parentSpanId === parent.spanId && span.kind === INTERNAL);
      if (child === undefined) break;
      guards.push(child);
      parent = child;
    }
    const names = guards.map((span) => span.attributes['bastion.guard.name']);
    assert.deepEqual(names.slice(0, 5), ['audit', 'authn', 'request-size', 'route', 'limits']);
    assert.equal(names.at(-1), 'validate');
    assert.ok(guards.every((span) => span.attributes['bastion.guard.decision'] === 'pass'), 'every guard passed the call on');
    const upstream = spans.filter((span) => span.kind === CLIENT);
    assert.equal(upstream.length, 1);
    assert.equal(upstream[0]?.parentSpanId, parent.spanId, 'the upstream call is the child of the innermost guard');
    assert.equal(upstream[0]?.name, 'tools/call echo');
    assert.equal(upstream[0]?.attributes['bastion.server'], 'everything');
    assert.deepEqual(receiver.contentTypes.filter((type) => type !== 'application/x-protobuf'), [], 'exports are OTLP protobuf');
  });

  test("the upstream receives the gateway's CLIENT span in _meta.traceparent, not the client's own, and the audit record has the trace id", async () => {
    const ownTrace = '5bf92f3577b34da6a3ce929d0e0e4737';
    const traceparent = `00-${ownTrace}-${CLIENT_SPAN}-01`;
    const result = await client.callTool({ name: 'recorder.received_meta', arguments: {}, _meta: { traceparent, tracestate: 'vendor=opaque' } });
    const meta = JSON.parse(firstText(result)) as Record<string, unknown>;
    const { root, spans } = await traceOf((span) => span.attributes['gen_ai.tool.name'] === 'received_meta');
    const upstream = spans.find((span) => span.kind === CLIENT) ?? assert.fail('no CLIENT span');
    assert.equal(root.traceId, ownTrace);
    assert.equal(meta['traceparent'], `00-${ownTrace}-${upstream.spanId}-01`);
    assert.equal(meta['tracestate'], 'vendor=opaque', 'a well-formed tracestate travels with the trace (W3C), checked by the OpenTelemetry parser');
    const record = auditRecords(join(running.dir.path, 'state', 'audit'))
      .map((entry) => entry as unknown as Record<string, unknown>)
      .find((entry) => entry['kind'] === 'request' && entry['tool'] === 'received_meta');
    assert.equal(record?.['trace_id'], root.traceId);
    assert.equal(record?.['tracestate'], undefined);
  });

  test('a malformed traceparent is not continued: the request starts a new root trace (and still runs)', async () => {
    for (const garbage of ['00-XYZ-00f067aa0ba902b7-01', `00-${'0'.repeat(32)}-${CLIENT_SPAN}-01`, `ff-${CLIENT_TRACE}-${CLIENT_SPAN}-01`, `00-${CLIENT_TRACE.toUpperCase()}-${CLIENT_SPAN}-01`, `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01-extra`]) {
      const message = `garbage ${garbage}`;
      assert.equal(firstText(await client.callTool({ name: 'everything.echo', arguments: { message }, _meta: { traceparent: garbage, tracestate: 'evil=1' } })), `Echo: ${message}`);
    }
    await running.bastion.tracing?.flush();
    const roots = receiver.spans.filter((span) => span.kind === SERVER && span.attributes['gen_ai.tool.name'] === 'echo' && span.traceId !== CLIENT_TRACE);
    assert.ok(roots.length >= 5, `five new roots, got ${roots.length}`);
    for (const root of roots) {
      assert.equal(root.parentSpanId, '', 'a new root has no parent');
      assert.equal(root.traceState, '', 'no tracestate is taken over from a request whose traceparent was refused');
    }
  });

  test('the HTTP traceparent header is used when _meta carries none', async () => {
    const headerTrace = 'a'.repeat(31) + 'b';
    const headerSpan = 'c'.repeat(15) + 'd';
    const traced = new Client({ name: 'header-client', version: '1.0.0' });
    await traced.connect(new StreamableHTTPClientTransport(new URL(running.url), { requestInit: { headers: { Authorization: `Bearer ${TEST_TOKEN}`, traceparent: `00-${headerTrace}-${headerSpan}-01` } } }));
    try {
      await traced.callTool({ name: 'everything.echo', arguments: { message: 'header' } });
    } finally {
      await traced.close();
    }
    const { root } = await traceOf((span) => span.traceId === headerTrace && span.attributes['mcp.method.name'] === 'tools/call');
    assert.equal(root.parentSpanId, headerSpan);
  });

  test('a denied call: the deciding guard says deny, the request span is an error with the reason code', async () => {
    await assert.rejects(client.callTool({ name: 'nosuchserver.tool', arguments: {} }));
    const { root, spans } = await traceOf((span) => span.attributes['bastion.reason'] === 'unknown_target');
    assert.equal(root.statusCode, 2);
    assert.equal(root.attributes['rpc.response.status_code'], '-32602');
    assert.equal(root.attributes['error.type'], '-32602');
    const route = spans.find((span) => span.attributes['bastion.guard.name'] === 'route') ?? assert.fail('no route span');
    assert.equal(route.attributes['bastion.guard.decision'], 'deny');
    assert.equal(spans.filter((span) => span.kind === CLIENT).length, 0, 'nothing reached an upstream');
  });
});

describe('tracing off costs nothing', () => {
  /** The OpenTelemetry packages a gateway process loads while serving one call. */
  async function loadedPackages(extra: string): Promise<string[]> {
    const dir = tempDir();
    try {
      const file = join(dir.path, 'bastion.yaml');
      writeFileSync(file, configYaml(stdioServer('everything', referenceServer('everything'), ['stdio']), extra));
      // Asynchronous, so that this process's OTLP receiver answers the child's exports meanwhile.
      const probe = spawn(process.execPath, [fileURLToPath(new URL('../fixtures/tracing-probe.js', import.meta.url)), file], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      probe.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
      probe.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      const [code] = (await once(probe, 'exit')) as [number | null];
      assert.equal(code, 0, stderr);
      return JSON.parse(stdout.trim().split('\n').at(-1) ?? '[]') as string[];
    } finally {
      dir.cleanup();
    }
  }

  test('with tracing off no OpenTelemetry SDK, exporter or propagator module is loaded (and with it on they are)', async () => {
    const receiver = await startOtlpReceiver();
    try {
      const off = await loadedPackages('');
      assert.deepEqual(off.filter((name) => name !== '@opentelemetry/api'), [], `loaded with tracing off: ${off.join(', ')}`);
      const on = await loadedPackages(`observability:\n  tracing: { enabled: true, endpoint: ${receiver.url} }`);
      for (const name of ['@opentelemetry/sdk-trace-base', '@opentelemetry/exporter-trace-otlp-proto', '@opentelemetry/core']) assert.ok(on.includes(name), `${name} is loaded with tracing on: ${on.join(', ')}`);
    } finally {
      await receiver.close();
    }
  });
});

describe('guardSpans: false records the guards as span events on the request span', () => {
  test('one event per guard with its decision, no guard spans', async () => {
    const receiver = await startOtlpReceiver();
    const tracing = await createTracing({
      config: { enabled: true, endpoint: receiver.url, headers: {}, sampleRatio: 1, serviceName: 'events-test', guardSpans: false, exportTimeoutMs: 5000 },
      headers: {},
      version: '0.0.0-test',
      logger: silentLogger(),
    });
    try {
      const pass: Guard = { name: 'authn', handle: (ctx, next) => next(ctx) };
      const deny: Guard = { name: 'policy', handle: () => Promise.resolve(failure(ErrorCode.Forbidden, 'no', { reason: 'missing_scope' })) };
      const chain = compose([tracing.guard(), pass, deny], () => assert.fail('the policy guard denies before dispatch'));
      const ctx = new CallContext({ requestId: 7, method: 'tools/call', params: { name: 'x.y' }, session: { sessionId: 's1', transport: 'stdio', protocolVersion: '2025-06-18' }, identity: { agentId: 'alice', tokenFingerprint: 'f', method: 'stdio' }, requestBytes: 1, limits: { timeoutMs: 1000, maxOutputBytes: 1000, maxRequestBytes: 1000 }, signal: new CallCancellation() });
      const outcome = await chain(ctx);
      assert.equal(outcome.ok, false);
      await tracing.flush();
      await receiver.waitFor((spans) => spans.length > 0);
      assert.equal(receiver.spans.length, 1, 'only the request span');
      const [root] = receiver.spans;
      assert.equal(root?.kind, SERVER);
      assert.equal(root?.attributes['network.transport'], 'pipe');
      assert.equal(root?.attributes['bastion.reason'], 'missing_scope');
      assert.deepEqual(root?.events.map((event) => [event.name, event.attributes['bastion.guard.name'], event.attributes['bastion.guard.decision']]), [['bastion.guard', 'authn', 'pass'], ['bastion.guard', 'policy', 'deny']]);
      assert.equal(ctx.trace?.traceId, root?.traceId);
    } finally {
      await tracing.shutdown();
      await receiver.close();
    }
  });
});
