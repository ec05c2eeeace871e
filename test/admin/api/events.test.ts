// The admin API's newer views against a running gateway with a real rug-pull server and SDK
// clients: the live stream carries the gateway's events (sessions, upstreams, quarantines,
// approvals, admin actions) with category and event filters; the sessions list labels stateful
// sessions and stateless contexts by transport; the quota view reads the counters from the
// limit store; a record's badge checks its seal and its checkpoint; curated names are recorded.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { callError, firstText, httpClient, type RunningGateway } from '../../helpers/gateway.js';
import { liftAttributes } from '../../helpers/tmp.js';
import { ALICE, APPROVER, VIEWER, api, openStream, startConsoleGateway, type StreamEvent } from './helpers.js';

const isEvent = (name: string, match: (info: Record<string, unknown>) => boolean = () => true) => (event: StreamEvent): boolean =>
  event.event === 'record' && event.data['kind'] === 'event' && event.data['event'] === name && match((event.data['info'] ?? {}) as Record<string, unknown>);

/** One stateless (2026-07-28) tools/call over HTTP, as a client of that revision sends it. */
async function statelessCall(url: string, name: string, args: Record<string, unknown>): Promise<number> {
  const params = { name, arguments: args, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'stateless-probe', version: '1' } } };
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${ALICE}`, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': name },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params }),
  });
  await response.text();
  return response.status;
}

describe('the admin API: events in the feed, sessions by transport, quota counters, record badge', () => {
  let running: RunningGateway;
  let admin: string;
  let cleanup: () => Promise<void>;
  let alice: Client;

  before(async () => {
    ({ running, admin, cleanup } = await startConsoleGateway({ rugpullAfter: 1, renameAdd: 'sum', extraYaml: ['audit: { checkpoint: { everyRecords: 5, everySeconds: 1 } }', 'quotas:', '  rates:', '    - { name: per-agent, scope: agent, points: 1000, durationMs: 60000 }'] }));
    alice = await httpClient(running.url, ALICE);
  });
  after(async () => {
    await alice?.close();
    await cleanup?.();
  });

  test('sessions opening and closing are in the stream, filtered by category; calls are not', async () => {
    const stream = await openStream(admin, VIEWER, '?category=sessions');
    try {
      const other = await httpClient(running.url, ALICE);
      const created = await stream.next(isEvent('session.created', (info) => info['agent'] === 'alice'));
      assert.equal((created.data['info'] as Record<string, unknown>)['transport'], 'http');
      assert.equal(typeof created.data['seq'], 'number');
      await other.callTool({ name: 'rugpull.echo', arguments: { message: 'between' } });
      await (other.transport as StreamableHTTPClientTransport).terminateSession(); // DELETE: the gateway ends the session
      await other.close();
      const closed = await stream.next(isEvent('session.closed', (info) => info['session_id'] === (created.data['info'] as Record<string, unknown>)['session_id']));
      assert.equal((closed.data['info'] as Record<string, unknown>)['agent'], 'alice');
      const stray = await Promise.race([stream.next((event) => event.event === 'record' && event.data['kind'] === 'request'), new Promise((resolve) => setTimeout(() => resolve('none'), 200))]);
      assert.equal(stray, 'none', 'a call record passed the sessions filter');
    } finally {
      stream.close();
    }
  });

  test('an upstream starting and a quarantine are events; event= filters by name or prefix', async () => {
    // backlog: the rug-pull server started with the first session, before this stream opened.
    const upstreams = await openStream(admin, VIEWER, '?category=upstreams&backlog=200');
    const quarantines = await openStream(admin, VIEWER, '?event=quarantine&backlog=200');
    try {
      const fresh = await httpClient(running.url, ALICE);
      const started = await upstreams.next(isEvent('upstream.start', (info) => info['server'] === 'rugpull'));
      assert.equal(started.data['event'], 'upstream.start');
      // The server rug-pulls after its first call (an earlier test made it): the definition is held.
      const refused = await callError(fresh, 'rugpull.get_weather', { city: 'Oslo' });
      assert.match(refused.message, /quarantine q-/);
      const held = await quarantines.next(isEvent('quarantine'));
      assert.equal((held.data['info'] as Record<string, unknown>)['server'], 'rugpull');
      await fresh.close();
    } finally {
      upstreams.close();
      quarantines.close();
    }
  });

  test('approvals and the admin action deciding them are events in the stream', async () => {
    const approvals = await openStream(admin, VIEWER, '?category=approvals,admin');
    try {
      const call = alice.callTool({ name: 'rugpull.sum', arguments: { a: 2, b: 2 } });
      const requested = await approvals.next(isEvent('approval.requested'));
      const info = requested.data['info'] as Record<string, unknown>;
      assert.equal(info['agent'], 'alice');
      assert.equal(info['tool'], 'add', 'the upstream name, as policy sees it');
      const listed = await api(admin, 'approvals', VIEWER);
      const pending = (listed.body['pending'] as Array<{ id: string; calledAs?: string; tool: string }>).find((item) => item.id === info['approval_id']);
      assert.equal(pending?.calledAs, 'sum', 'the approver sees the name the agent used');
      assert.equal((await api(admin, `approvals/${String(info['approval_id'])}/allow`, APPROVER, { body: { via: 'console' } })).status, 200);
      assert.equal(firstText(await call), '4');
      const decided = await approvals.next(isEvent('approval.decided'));
      assert.deepEqual({ verdict: (decided.data['info'] as Record<string, unknown>)['verdict'], by: (decided.data['info'] as Record<string, unknown>)['by'], via: (decided.data['info'] as Record<string, unknown>)['via'] }, { verdict: 'allowed', by: 'abe', via: 'console' });
      const action = await approvals.next(isEvent('admin.action'));
      assert.equal((action.data['info'] as Record<string, unknown>)['operator'], 'abe');
      assert.equal((action.data['info'] as Record<string, unknown>)['action'], 'approval.allow');
    } finally {
      approvals.close();
    }
  });

  test('an unknown category is refused with the ones that exist', async () => {
    const response = await fetch(`${admin}/api/v1/audit/stream?category=everything`, { headers: { Authorization: `Bearer ${VIEWER}` } });
    assert.equal(response.status, 400);
    assert.match(((await response.json()) as { error: string }).error, /unknown category everything: use calls, sessions, upstreams/);
  });

  test('a curated tool is recorded under the upstream name with the name the agent called', async () => {
    const stream = await openStream(admin, VIEWER, '?category=calls,approvals&agent=alice');
    try {
      const call = alice.callTool({ name: 'rugpull.sum', arguments: { a: 5, b: 5 } });
      const id = ((await stream.next(isEvent('approval.requested'))).data['info'] as Record<string, unknown>)['approval_id'];
      assert.equal((await api(admin, `approvals/${String(id)}/allow`, APPROVER, { body: {} })).status, 200);
      assert.equal(firstText(await call), '10');
      const record = await stream.next((event) => event.event === 'record' && event.data['tool_called_as'] === 'sum');
      assert.equal(record.data['tool'], 'add');
      assert.deepEqual(record.data['tools_invoked'], ['rugpull.add']);
    } finally {
      stream.close();
    }
  });

  test('sessions are labelled by transport and kind, stateless contexts included; viewer may read, no token may not', async () => {
    await alice.callTool({ name: 'rugpull.echo', arguments: { message: 'a call on the session' } });
    assert.equal(await statelessCall(running.url, 'rugpull.echo', { message: 'stateless' }), 200);
    const answer = await api(admin, 'sessions', VIEWER);
    const sessions = answer.body['sessions'] as Array<{ agent: string; transport: string; kind: string; calls: number; client: { name?: string } }>;
    assert.ok(sessions.some((session) => session.agent === 'alice' && session.transport === 'http' && session.kind === 'session' && session.calls > 0), JSON.stringify(sessions));
    const stateless = sessions.find((session) => session.kind === 'stateless');
    assert.equal(stateless?.transport, 'http');
    assert.equal(stateless?.agent, 'alice');
    assert.equal(stateless?.client.name, 'stateless-probe');
    assert.equal((await api(admin, 'sessions', undefined)).status, 401);
  });

  test('quota counters come from the limit store, not only the configured rules', async () => {
    await alice.callTool({ name: 'rugpull.echo', arguments: { message: 'counted' } });
    const quotas = await api(admin, 'quotas', VIEWER);
    const store = quotas.body['store'] as { kind: string; reachable: boolean; counters: Array<{ key: string; type: string; value: number; ttlMs: number }> };
    assert.equal(store.kind, 'memory');
    assert.equal(store.reachable, true);
    const bucket = store.counters.find((counter) => counter.key === 'rate:per-agent:a:alice');
    assert.ok(bucket !== undefined, JSON.stringify(store.counters));
    assert.equal(bucket.type, 'tokenBucket');
    assert.ok(bucket.value < 1000 && bucket.value >= 990, `tokens left ${bucket.value}`);
    assert.ok(bucket.ttlMs > 0);
    assert.equal((await api(admin, 'quotas', undefined)).status, 401);
  });

  test('a record\'s verification checks its hash link, its batch seal and the nearest signed checkpoint', async () => {
    const stream = await openStream(admin, VIEWER, '?category=calls&agent=alice');
    let seq: number;
    try {
      await alice.callTool({ name: 'rugpull.echo', arguments: { message: 'badge' } });
      seq = (await stream.next((event) => event.event === 'record' && (event.data['input'] as { message?: string } | undefined)?.message === 'badge')).data['seq'] as number;
    } finally {
      stream.close();
    }
    // everyRecords 5 / everySeconds 1: a checkpoint covering it is written soon; until then it is pending.
    let answer = await api(admin, `audit/records/${seq}`, VIEWER);
    for (let attempt = 0; attempt < 100 && (answer.body['checkpoint'] as { status: string }).status === 'pending'; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      await alice.callTool({ name: 'rugpull.echo', arguments: { message: 'filler' } });
      answer = await api(admin, `audit/records/${seq}`, VIEWER);
    }
    assert.deepEqual(answer.body['verification'], { hashValid: true, linked: true, previousSeq: seq - 1 });
    const seal = answer.body['seal'] as { status: string; sealSeq: number };
    assert.equal(seal.status, 'verified');
    assert.ok(seal.sealSeq > seq);
    const checkpoint = answer.body['checkpoint'] as { status: string; treeSize: number; index: number };
    assert.equal(checkpoint.status, 'verified', JSON.stringify(checkpoint));
    assert.ok(checkpoint.treeSize > seq);
    assert.ok(checkpoint.index >= 1);

    // An attacker edits the record on disk (same length, still valid JSON): the hash link and the
    // checkpoint's inclusion proof fail, each reported on its own. As root with the capability, the
    // active segment is append-only by default: the attacker here is one who can lift it.
    const segment = String(answer.body['segment']);
    const lines = readFileSync(segment, 'utf8').split('\n');
    const index = Number(answer.body['line']) - 1;
    assert.ok(lines[index]?.includes('"message":"badge"'));
    lines[index] = (lines[index] as string).replace('"message":"badge"', '"message":"BADGE"');
    liftAttributes(segment);
    writeFileSync(segment, lines.join('\n'));
    const tampered = await api(admin, `audit/records/${seq}`, VIEWER);
    assert.equal((tampered.body['verification'] as { hashValid: boolean }).hashValid, false);
    assert.match(String((tampered.body['verification'] as { problem: string }).problem), /changed after it was written/);
    assert.equal((tampered.body['checkpoint'] as { status: string }).status, 'failed');
  });
});
