// Bastion as two replicas behind a real HAProxy (the shipped deploy/haproxy/haproxy.cfg) with a
// real Redis, all started here on OS-chosen loopback ports. A 2026-07-28 client needs no affinity;
// a 2025-11-25 client is routed by its Mcp-Session-Id. Rate limits, breakers and quarantines are
// shared; kill -9 of a replica costs the stateless client only its in-flight calls, and the old
// client a clean error before it initializes again. mcp-auditctl then verifies and merges both logs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client as ClientV2, StreamableHTTPClientTransport as HttpTransportV2 } from '@modelcontextprotocol/client';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { hashToken } from '../../src/auth/index.js';
import { ErrorCode } from '../../src/pipeline/index.js';
import { auditRecords, type LoggedRecord } from '../helpers/audit.js';
import { callError, firstText, fixture, httpClient, stdioServer, tempDir, TEST_TOKEN, type TempDir } from '../helpers/gateway.js';
import { startRedis, type RunningRedis } from '../limits/redis-helpers.js';
import { eventually, freePort, startBalancer, startReplica, stopReplica, type Balancer, type Replica } from '../helpers/replicas.js';

const AUDITCTL = fileURLToPath(new URL('../../src/cli/auditctl.js', import.meta.url));
const APPROVER = 'operator-approver-token-for-replicas-0123';
const SEAL_KEY = randomBytes(32).toString('hex');

interface Logged extends LoggedRecord {
  replica?: string;
  session_id?: string;
  protocol_version?: string;
  ts: string;
}

function replicaConfig(id: string, redisUrl: string, ports: { http: number; admin: number; balancer: number }): string {
  const limits = (name: string): string => stdioServer(name, fixture('limits-server'));
  return [
    'version: 1',
    `stateDir: state-${id}`,
    'listeners:',
    // Behind a balancer the Host header names the balancer: it must be allowed (DNS rebinding protection).
    `  http: { host: 127.0.0.1, port: ${ports.http}, allowedHosts: ["127.0.0.1:${ports.balancer}", "127.0.0.1:${ports.http}"] }`,
    '  admin:',
    `    port: ${ports.admin}`,
    '    tokens:',
    `      - { operator: abe, role: approver, sha256: ${hashToken(APPROVER)} }`,
    'auth:',
    '  apiTokens:',
    `    - { agent: alice, sha256: ${hashToken(TEST_TOKEN)} }`,
    'policy: { enforce: false }',
    'sandbox: { backend: none }',
    'integrity: { relistIntervalSeconds: 0 }',
    'cluster:',
    `  replicaId: ${id}`,
    `  sealKey: ${SEAL_KEY}`,
    'quotas:',
    `  store: { kind: redis, url: ${JSON.stringify(redisUrl)} }`,
    '  rates:',
    '    - { name: capped-echo, scope: agentTool, match: { server: capped, tool: echo }, points: 4, durationMs: 3600000, algorithm: slidingWindow }',
    '  breakers:',
    '    - { name: fail-tool, scope: tool, match: { server: up, tool: fail }, consecutiveFailures: 3, openMs: 600000 }',
    'servers:',
    limits('up') + limits('capped') + stdioServer('input', fixture('input-server')) + stdioServer('rug', fixture('script-description-server'), ['1']),
  ].join('\n');
}

function pinnedClient(name: string, capabilities: Record<string, unknown> = {}): ClientV2 {
  return new ClientV2({ name, version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } }, capabilities });
}

function v2Transport(url: string): HttpTransportV2 {
  return new HttpTransportV2(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${TEST_TOKEN}` } } });
}

async function adminApi(admin: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${admin}/api/v1/${path}`, { method: body === undefined ? 'GET' : 'POST', headers: { Authorization: `Bearer ${APPROVER}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('two Bastion replicas behind HAProxy with a shared Redis', () => {
  let dir: TempDir;
  let redis: RunningRedis;
  const replicas: Record<string, Replica> = {};
  const admins: Record<string, string> = {};
  let lb: Balancer;
  let v2: ClientV2;
  let v1: Client;
  let v1Transport: StreamableHTTPClientTransport;
  const logOf = (id: string): Logged[] => auditRecords(join(dir.path, `state-${id}`, 'audit')) as Logged[];

  before(async () => {
    dir = tempDir('bastion-replicas-');
    redis = await startRedis();
    const balancer = await freePort();
    for (const id of ['a', 'b']) {
      const ports = { http: await freePort(), admin: await freePort(), balancer };
      admins[id] = `http://127.0.0.1:${ports.admin}`;
      const path = join(dir.path, `bastion-${id}.yaml`);
      writeFileSync(path, replicaConfig(id, redis.url, ports));
      replicas[id] = await startReplica(id, path);
    }
    lb = await startBalancer(dir.path, balancer, { a: replicas['a']!.address, b: replicas['b']!.address }, '/mcp');
    await lb.waitFor(['bastion-a', 'bastion-b']);
    v2 = pinnedClient('stateless', { sampling: {}, elicitation: {} });
    v2.setRequestHandler('sampling/createMessage', async () => ({ model: 'test-model', role: 'assistant', content: { type: 'text', text: 'sunny' } }));
    v2.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { ok: true } }));
    await v2.connect(v2Transport(lb.url));
    const { Client: ClientV1 } = await import('@modelcontextprotocol/sdk/client/index.js');
    v1 = new ClientV1({ name: 'stateful', version: '1.0.0' });
    v1Transport = new StreamableHTTPClientTransport(new URL(lb.url), { requestInit: { headers: { Authorization: `Bearer ${TEST_TOKEN}` } } });
    await v1.connect(v1Transport);
  });

  after(async () => {
    await v2?.close().catch(() => undefined);
    await v1?.close().catch(() => undefined);
    await lb?.stop();
    for (const replica of Object.values(replicas)) await stopReplica(replica);
    await redis?.kill();
    dir?.cleanup();
  });

  test('both clients are served through the balancer; stateless requests spread over both replicas, the session stays on one', async () => {
    assert.equal(v2.getNegotiatedProtocolVersion(), '2026-07-28');
    for (let index = 0; index < 6; index += 1) assert.equal(firstText(await v2.callTool({ name: 'up.echo', arguments: { text: `v2-${index}` } })), `v2-${index}`);
    for (let index = 0; index < 3; index += 1) assert.equal(firstText(await v1.callTool({ name: 'up.echo', arguments: { text: `v1-${index}` } })), `v1-${index}`);
    const calls = [...logOf('a'), ...logOf('b')].filter((record) => record.kind === 'request' && record.method === 'tools/call' && record.tool === 'echo' && record.server === 'up');
    const stateless = calls.filter((record) => record.protocol_version === '2026-07-28');
    assert.equal(stateless.length, 6);
    assert.deepEqual(new Set(stateless.map((record) => record.replica)), new Set(['a', 'b']), 'stateless calls reached both replicas');
    const session = calls.filter((record) => record.session_id === v1Transport.sessionId);
    assert.equal(session.length, 3);
    assert.equal(new Set(session.map((record) => record.replica)).size, 1, 'the stateful session stayed on one replica');
    for (const id of ['a', 'b']) assert.ok(logOf(id).every((record) => record.replica === id), `every record of replica ${id} names it`);
  });

  test('input_required rounds complete wherever the retry lands: another replica re-issues the call with the answers', async () => {
    for (let index = 0; index < 4; index += 1) {
      assert.equal(firstText(await v2.callTool({ name: 'input.ask', arguments: { topic: `weather-${index}` } })), 'model:sunny;user:accept:{"ok":true}');
    }
    const reissued = [...logOf('a'), ...logOf('b')].filter((record) => record.event === 'stateless.request_state_reissued');
    assert.ok(reissued.length > 0, 'some retry reached the replica that did not hold the call');
    for (const record of reissued) assert.notEqual(record.info?.['from_replica'], record.replica);
  });

  test('a rate limit counts the calls of every replica', async () => {
    for (let index = 0; index < 4; index += 1) assert.equal(firstText(await v2.callTool({ name: 'capped.echo', arguments: { text: `c${index}` } })), `c${index}`);
    const refused = await v2.callTool({ name: 'capped.echo', arguments: { text: 'one too many' } }).then(() => undefined, (error: { code?: number }) => error);
    assert.equal(refused?.code, ErrorCode.RateLimited);
    const allowed = [...logOf('a'), ...logOf('b')].filter((record) => record.server === 'capped' && record.decision === 'allow');
    assert.equal(allowed.length, 4);
    assert.deepEqual(new Set(allowed.map((record) => record.replica)), new Set(['a', 'b']), 'the 4 allowed calls were spread over both replicas');
  });

  test('a breaker opened on one replica is open on the other, which never saw a failure', async () => {
    const onA = await httpClient(replicas['a']!.url);
    const onB = await httpClient(replicas['b']!.url);
    for (let index = 0; index < 3; index += 1) assert.equal((await callError(onA, 'up.fail') as Error & { code?: number }).code, ErrorCode.InternalError);
    assert.equal((await callError(onA, 'up.fail') as Error & { code?: number }).code, ErrorCode.CircuitOpen);
    await eventually('replica b to open its breaker', () => logOf('b').find((record) => record.event === 'limits.breaker' && record.info?.['to'] === 'open'));
    const opened = logOf('b').find((record) => record.event === 'limits.breaker' && record.info?.['to'] === 'open');
    assert.equal(opened?.info?.['cause'], 'replica');
    assert.match(String(opened?.info?.['detail']), /opened by replica a/);
    const fast = (await callError(onB, 'up.fail')) as Error & { code?: number; data?: Record<string, unknown> };
    assert.equal(fast.code, ErrorCode.CircuitOpen);
    assert.ok(!logOf('b').some((record) => record.tool === 'fail' && record.decision === 'error'), 'no call of up.fail reached the upstream on b');
    await Promise.all([onA.close(), onB.close()]);
  });

  test('a quarantine held on one replica is seen on the other; an approval there releases it on the first', async () => {
    const onA = await httpClient(replicas['a']!.url);
    assert.equal(firstText(await onA.callTool({ name: 'rug.echo', arguments: { message: 'turn' } })), 'turn');
    const refused = await callError(onA, 'rug.get_weather', { city: 'Oslo' });
    const id = /quarantine (q-[0-9a-f]{16})/.exec(refused.message)?.[1] ?? assert.fail(refused.message);
    const seen = await eventually('replica b to list the quarantine', async () => {
      const list = await adminApi(admins['b']!, 'quarantines?status=held');
      return (list.body['quarantines'] as Array<{ id: string }>).find((record) => record.id === id);
    });
    assert.equal(seen.id, id);
    const approved = await adminApi(admins['b']!, `quarantines/${id}/approve`, {});
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const answer = await eventually('the approval to reach replica a', () => onA.callTool({ name: 'rug.get_weather', arguments: { city: 'Bergen' } }).then((result) => result, () => undefined));
    assert.match(firstText(answer), /Bergen/);
    assert.equal((await adminApi(admins['a']!, `quarantines/${id}`)).body['status'], 'approved');
    await onA.close();
  });

  test('kill -9 of a replica: the stateless client loses only its in-flight call; the old client gets a clean error and initializes again', async () => {
    const holder = [...logOf('a'), ...logOf('b')].find((record) => record.session_id === v1Transport.sessionId)?.replica ?? assert.fail('no record of the stateful session');
    const victim = replicas[holder]!;
    const survivor = holder === 'a' ? 'b' : 'a';
    // Two slow calls: round robin puts one on each replica; the victim's is in flight when it dies.
    const inFlight = [0, 1].map((index) => v2.callTool({ name: 'up.slow', arguments: { ms: 3000, index } }));
    // The calls take 3 s upstream; half a second is ample for both to reach their replica.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await stopReplica(victim, 'SIGKILL');
    const settled = await Promise.allSettled(inFlight);
    assert.ok(settled.some((outcome) => outcome.status === 'fulfilled'), 'the call on the surviving replica completed');
    await lb.waitFor([`bastion-${survivor}`], [`bastion-${holder}`]);
    for (let index = 0; index < 6; index += 1) assert.equal(firstText(await v2.callTool({ name: 'up.echo', arguments: { text: `after-${index}` } })), `after-${index}`);
    const lost = await v1.callTool({ name: 'up.echo', arguments: { text: 'lost' } }).then(() => undefined, (error: Error) => error);
    assert.ok(lost instanceof Error, 'the stateful session died with its replica');
    assert.match(lost.message, /session not found|404/i);
    const again = await httpClient(lb.url);
    assert.equal(firstText(await again.callTool({ name: 'up.echo', arguments: { text: 'reinitialized' } })), 'reinitialized');
    await again.close();
    assert.ok(logOf(survivor).some((record) => record.method === 'tools/call' && record.session_id !== undefined && record.session_id !== v1Transport.sessionId && record.replica === survivor));
  });

  test('with Redis down, quarantine state fails closed: an approval reads as held and no decision is taken; back with Redis, the approval holds again', async () => {
    const live = Object.values(replicas).find((replica) => replica.child.exitCode === null && replica.child.signalCode === null) ?? assert.fail('no live replica');
    const client = await httpClient(live.url);
    // Its upstream makes the approved change now if it had not yet (the fixture changes after one call).
    await client.callTool({ name: 'rug.echo', arguments: { message: 'turn' } });
    assert.match(firstText(await client.callTool({ name: 'rug.get_weather', arguments: { city: 'Oslo' } })), /Oslo/, 'approved before the outage');
    await redis.kill();
    const held = await eventually('the approval to read as held', () => client.callTool({ name: 'rug.get_weather', arguments: { city: 'Oslo' } }).then(() => undefined, (error: Error) => error));
    assert.match(held.message, /is not available: .*\(quarantine q-[0-9a-f]{16}\)/);
    const id = /(q-[0-9a-f]{16})/.exec(held.message)?.[1] ?? '';
    const refused = await adminApi(admins[live.id]!, `quarantines/${id}/reject`, {});
    assert.equal(refused.status, 409);
    assert.match(String(refused.body['error']), /Redis does not answer/);
    await redis.restart();
    const back = await eventually('the approval to hold again', () => client.callTool({ name: 'rug.get_weather', arguments: { city: 'Bergen' } }).then((result) => result, () => undefined));
    assert.match(firstText(back), /Bergen/);
    await client.close();
  });

  test('mcp-auditctl verifies each replica log and merges them by time', () => {
    const logs = ['a', 'b'].flatMap((id) => ['--log', join(dir.path, `state-${id}`, 'audit')]);
    const verify = spawnSync(process.execPath, [AUDITCTL, ...logs, 'verify', '--allow-unsigned-tail'], { encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    assert.equal((verify.stdout.match(/^clean: /gm) ?? []).length, 2, verify.stdout);
    const query = spawnSync(process.execPath, [AUDITCTL, ...logs, 'query', '--format', 'jsonl'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    assert.equal(query.status, 0, query.stderr);
    const merged = query.stdout.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Logged);
    assert.deepEqual(new Set(merged.map((record) => record.replica)), new Set(['a', 'b']));
    assert.equal(merged.length, logOf('a').length + logOf('b').length - [...logOf('a'), ...logOf('b')].filter((record) => record.event === 'audit.seal').length);
    for (let index = 1; index < merged.length; index += 1) assert.ok(merged[index - 1]!.ts <= merged[index]!.ts, `record ${index} is out of time order`);
    const table = spawnSync(process.execPath, [AUDITCTL, ...logs, 'query', '--tool', 'echo', '--server', 'capped'], { encoding: 'utf8' });
    assert.match(table.stdout.split('\n')[0] ?? '', /^ts\s+replica\s+seq/);
  });
});
