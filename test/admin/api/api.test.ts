// The admin API against a running gateway with a real rug-pull server and official SDK clients:
// every endpoint, role enforcement, CSRF checks, and human approval of calls (allow, deny,
// deadline, withdrawn) with the decision in the call's audit record.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { BASTION_BIN, callError, firstText, httpClient, type RunningGateway } from '../../helpers/gateway.js';
import { ADMIN, ALICE, APPROVER, BOB, VIEWER, api, isRecordOf, openStream, startConsoleGateway, type StreamEvent } from './helpers.js';

const run = promisify(execFile);
const pendingFor = (tool: string, agent: string) => (event: StreamEvent): boolean => event.event === 'approval' && event.data['tool'] === tool && event.data['agent'] === agent;

describe('the admin API', () => {
  let running: RunningGateway;
  let admin: string;
  let cleanup: () => Promise<void>;
  let alice: Client;
  let bob: Client;
  let stream: Awaited<ReturnType<typeof openStream>>;

  before(async () => {
    ({ running, admin, cleanup } = await startConsoleGateway({ rugpullAfter: 1000 }));
    alice = await httpClient(running.url, ALICE);
    bob = await httpClient(running.url, BOB);
    stream = await openStream(admin, VIEWER);
  });
  after(async () => {
    stream.close();
    await alice.close();
    await bob.close();
    await cleanup();
  });

  test('every endpoint needs an operator token; an agent token opens nothing', async () => {
    for (const path of ['whoami', 'audit', 'sessions', 'upstreams', 'quotas', 'quarantines', 'approvals', 'findings']) {
      assert.equal((await api(admin, path, undefined)).status, 401, path);
      assert.equal((await api(admin, path, ALICE)).status, 401, path);
      assert.equal((await api(admin, path, VIEWER)).status, 200, path);
    }
    const who = await api(admin, 'whoami', APPROVER);
    assert.deepEqual(who.body, { operator: 'abe', role: 'approver', may: { approve: true, admin: false } });
    assert.equal((await api(admin, 'nothing', VIEWER)).status, 404);
    assert.equal((await api(admin, 'whoami', VIEWER, { method: 'DELETE' })).status, 405);
    assert.equal((await api(admin, 'whoami', VIEWER)).headers.get('cache-control'), 'no-store');
  });

  test('the live stream shows a call once its record is committed, filtered by agent', async () => {
    const filtered = await openStream(admin, VIEWER, '?agent=alice&method=tools/call');
    try {
      assert.equal(firstText(await alice.callTool({ name: 'rugpull.echo', arguments: { message: 'hello' } })), 'hello');
      await callError(bob, 'rugpull.echo', { message: 'not granted' });
      const seen = await filtered.next(isRecordOf('rugpull.echo'));
      assert.equal(seen.data['agent_id'], 'alice');
      assert.equal(seen.data['decision'], 'allow');
      assert.equal(typeof seen.data['seq'], 'number');
      assert.match(String(seen.data['hash']), /^[0-9a-f]{64}$/);
      const denied = await stream.next(isRecordOf('rugpull.echo', 'bob'));
      assert.equal(denied.data['decision'], 'deny');
      assert.equal(denied.data['denied_by'], 'policy');
    } finally {
      filtered.close();
    }
  });

  test('audit query filters, pages newest first, and a record comes with its verified chain position', async () => {
    for (let i = 0; i < 3; i += 1) await alice.callTool({ name: 'rugpull.echo', arguments: { message: `page ${i}` } });
    await stream.next((event) => isRecordOf('rugpull.echo', 'alice')(event) && (event.data['input'] as { message?: string } | undefined)?.message === 'page 2');
    const first = await api(admin, 'audit?agent=alice&method=tools/call&limit=2', VIEWER);
    assert.equal(first.status, 200);
    const records = first.body['records'] as Array<{ seq: number; agent_id: string; method: string }>;
    assert.equal(records.length, 2);
    assert.ok(records.every((record) => record.agent_id === 'alice' && record.method === 'tools/call'));
    assert.ok((records[0] as { seq: number }).seq > (records[1] as { seq: number }).seq, 'newest first');
    const next = first.body['next'] as number;
    const second = await api(admin, `audit?agent=alice&method=tools/call&limit=2&before=${next}`, VIEWER);
    const older = second.body['records'] as Array<{ seq: number }>;
    assert.ok(older.length > 0 && older.every((record) => record.seq < next));
    const denials = await api(admin, 'audit?decision=deny&kind=request', VIEWER);
    assert.ok((denials.body['records'] as Array<{ agent_id: string }>).some((record) => record.agent_id === 'bob'));
    assert.equal((await api(admin, 'audit?since=yesterday', VIEWER)).status, 400);
    assert.equal((await api(admin, 'audit?limit=100000', VIEWER)).status, 400);
    assert.equal((await api(admin, 'audit?until=2000-01-01T00:00:00Z', VIEWER)).body['records'] instanceof Array, true);
    assert.deepEqual((await api(admin, 'audit?until=2000-01-01T00:00:00Z', VIEWER)).body['records'], []);

    const one = await api(admin, `audit/records/${(records[0] as { seq: number }).seq}`, VIEWER);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body['verification'], { hashValid: true, linked: true, previousSeq: (records[0] as { seq: number }).seq - 1 });
    assert.equal((await api(admin, 'audit/records/99999999', VIEWER)).status, 404);
  });

  test('sessions and agents, upstreams with health, quotas', async () => {
    const sessions = await api(admin, 'sessions', VIEWER);
    const list = sessions.body['sessions'] as Array<{ agent: string; calls: number }>;
    assert.ok(list.some((session) => session.agent === 'alice' && session.calls > 0));
    assert.deepEqual(sessions.body['agents'], [
      { agent: 'alice', sessions: 1, hasPolicy: true },
      { agent: 'bob', sessions: 1, hasPolicy: true },
    ]);
    const upstreams = await api(admin, 'upstreams', VIEWER);
    assert.deepEqual(upstreams.body['servers'], [{ name: 'rugpull', transport: 'stdio', admission: { ok: true, trust: 'unsigned' }, minCertificationLevel: 0 }]);
    const health = upstreams.body['health'] as Array<{ server: string; state: string; starts: number }>;
    assert.equal(health[0]?.state, 'up');
    assert.ok((health[0]?.starts ?? 0) >= 1);
    const quotas = await api(admin, 'quotas', VIEWER);
    assert.equal(quotas.body['enabled'], true);
    assert.deepEqual(quotas.body['inFlightPerServer'], { rugpull: 0 });
  });

  test('explain answers for a hypothetical call with the rules and the approval it needs, file and line included', async () => {
    const explained = await api(admin, 'explain', VIEWER, { body: { agent: 'alice', tool: 'rugpull.add', arguments: { a: 1, b: 2 } } });
    assert.equal(explained.status, 200, JSON.stringify(explained.body));
    const decision = explained.body['decision'] as { allow: boolean; rules: Array<{ source?: string }> };
    assert.equal(decision.allow, true);
    const approval = explained.body['approval'] as { timeoutSeconds: number; source: string };
    assert.equal(approval.timeoutSeconds, 30);
    assert.match(approval.source, /policy\.yaml:7$/);
    const denied = await api(admin, 'explain', VIEWER, { body: { agent: 'bob', tool: 'rugpull.echo' } });
    assert.equal((denied.body['decision'] as { allow: boolean; reason: string }).reason, 'tool_not_granted');
    assert.equal(denied.body['approval'], null);
    const bad = await api(admin, 'explain', VIEWER, { body: { agent: 'alice', tool: 'no-dot' } });
    assert.equal(bad.status, 400);
    assert.match(String(bad.body['error']), /body\.tool/);
    assert.equal((await api(admin, 'explain', VIEWER, { body: { agent: 'alice', tool: 'rugpull.add', extra: 1 } })).status, 400);
  });

  test('CSRF: actions need a JSON content type, the same origin and a bearer header; bodies are capped and validated', async () => {
    const path = 'approvals/a-0000000000000000/allow';
    assert.equal((await api(admin, path, APPROVER, { rawBody: 'via=console', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } })).status, 415);
    assert.equal((await api(admin, path, APPROVER, { rawBody: '{}', headers: { 'Content-Type': 'text/plain' } })).status, 415);
    const cross = await api(admin, path, APPROVER, { body: {}, headers: { Origin: 'https://evil.example' } });
    assert.equal(cross.status, 403);
    assert.match(String(cross.body['error']), /cross-origin/);
    assert.equal((await api(admin, path, APPROVER, { body: {}, headers: { 'Sec-Fetch-Site': 'cross-site' } })).status, 403);
    assert.equal((await api(admin, path, undefined, { body: {} })).status, 401, 'no token, no action (a cookie could not stand in for it)');
    assert.equal((await api(admin, path, APPROVER, { rawBody: '{not json', headers: { 'Content-Type': 'application/json' } })).status, 400);
    assert.equal((await api(admin, path, APPROVER, { rawBody: JSON.stringify({ via: 'x'.repeat(70_000) }), headers: { 'Content-Type': 'application/json' } })).status, 413);
    assert.equal((await api(admin, path, APPROVER, { body: { via: 'carrier-pigeon' } })).status, 400);
    const sameOrigin = await api(admin, path, APPROVER, { body: {}, headers: { Origin: admin } });
    assert.equal(sameOrigin.status, 404, 'past the CSRF checks: no such approval');
  });

  test('a call that needs approval waits; an approver allows it; the record names who and how long', async () => {
    const call = alice.callTool({ name: 'rugpull.add', arguments: { a: 2, b: 3 } });
    const pending = await stream.next(pendingFor('add', 'alice'));
    const id = String(pending.data['id']);
    assert.match(id, /^a-[0-9a-f]{16}$/);
    assert.deepEqual(pending.data['arguments'], { a: 2, b: 3 });
    const listed = await api(admin, 'approvals', VIEWER);
    assert.deepEqual((listed.body['pending'] as Array<{ id: string }>).map((item) => item.id), [id]);
    const refused = await api(admin, `approvals/${id}/allow`, VIEWER, { body: {} });
    assert.equal(refused.status, 403, 'a viewer cannot approve');
    const allowed = await api(admin, `approvals/${id}/allow`, APPROVER, { body: { via: 'console' } });
    assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
    assert.equal(firstText(await call), '5');
    const record = await stream.next(isRecordOf('rugpull.add', 'alice'));
    assert.equal(record.data['decision'], 'allow');
    assert.equal(record.data['approval'], 'allowed');
    assert.equal(record.data['approval_id'], id);
    assert.equal(record.data['approval_by'], 'abe');
    assert.equal(record.data['approval_via'], 'console');
    assert.equal(typeof record.data['approval_wait_ms'], 'number');
    assert.equal((await api(admin, `approvals/${id}/deny`, ADMIN, { body: {} })).status, 404, 'decided already');
    const actions = await api(admin, 'audit?kind=event&event=admin.action&limit=100', VIEWER);
    const logged = (actions.body['records'] as Array<{ info: { operator: string; action: string; target: string; outcome: string } }>).map((item) => item.info);
    assert.ok(logged.some((info) => info.operator === 'abe' && info.action === 'approval.allow' && info.target === id && info.outcome === 'allowed'));
    assert.ok(logged.some((info) => info.operator === 'vera' && info.action === 'approval.allow' && info.target === id && info.outcome === 'refused'), 'the refused attempt is audited too');
  });

  test('a denied call fails with the approval reason; the deadline denies (fail closed); a cancelled call is withdrawn', async () => {
    const denied = callError(alice, 'rugpull.add', { a: 1, b: 1 });
    const pending = await stream.next(pendingFor('add', 'alice'));
    const deny = await api(admin, `approvals/${String(pending.data['id'])}/deny`, ADMIN, { body: {} });
    assert.equal(deny.status, 200, JSON.stringify({ deny: deny.body, pending: pending.data }));
    assert.match((await denied).message, /an approver denied this call/);
    assert.equal((await stream.next(isRecordOf('rugpull.add', 'alice'))).data['approval'], 'denied');

    const expired = await callError(bob, 'rugpull.add', { a: 1, b: 1 });
    assert.match(expired.message, /before its deadline/);
    const expiredRecord = await stream.next(isRecordOf('rugpull.add', 'bob'));
    assert.equal(expiredRecord.data['approval'], 'expired');
    assert.equal(expiredRecord.data['approval_via'], 'deadline');
    assert.equal(expiredRecord.data['reason'], 'approval_expired');

    const controller = new AbortController();
    const cancelled = alice.callTool({ name: 'rugpull.add', arguments: { a: 4, b: 4 } }, undefined, { signal: controller.signal }).catch((error: Error) => error);
    await stream.next(pendingFor('add', 'alice'));
    controller.abort();
    await cancelled;
    const withdrawn = await stream.next((event) => event.event === 'approval-decided' && (event.data['outcome'] as { verdict?: string } | undefined)?.verdict === 'withdrawn');
    assert.equal((withdrawn.data['outcome'] as { via: string }).via, 'client');
    assert.deepEqual((await api(admin, 'approvals', VIEWER)).body['pending'], []);
    const record = await stream.next(isRecordOf('rugpull.add', 'alice'));
    assert.equal(record.data['approval'], 'withdrawn');
  });

  test('bastion approve list and allow talk to the admin API with an operator token from the environment', async () => {
    const call = alice.callTool({ name: 'rugpull.add', arguments: { a: 20, b: 22 } });
    const pending = await stream.next(pendingFor('add', 'alice'));
    const id = String(pending.data['id']);
    const env = { ...process.env, BASTION_OPERATOR_TOKEN: APPROVER };
    const listed = await run(process.execPath, [BASTION_BIN, 'approve', 'list', '--url', admin], { env });
    assert.match(listed.stdout, new RegExp(`^${id}  alice  rugpull\\.add  until .*\\{"a":20,"b":22\\}`, 'm'));
    const viewer = await run(process.execPath, [BASTION_BIN, 'approve', 'allow', id, '--url', admin], { env: { ...process.env, BASTION_OPERATOR_TOKEN: VIEWER } }).catch((error: { code: number; stderr: string }) => error);
    assert.equal((viewer as { code: number }).code, 1);
    assert.match((viewer as { stderr: string }).stderr, /403: operator 'vera' has role viewer/);
    const allowed = await run(process.execPath, [BASTION_BIN, 'approve', 'allow', id, '--url', admin], { env });
    assert.match(allowed.stdout, new RegExp(`allowed ${id} \\(alice rugpull\\.add\\) as abe`));
    assert.equal(firstText(await call), '42');
    assert.equal((await stream.next(isRecordOf('rugpull.add', 'alice'))).data['approval_via'], 'cli');
  });
});
