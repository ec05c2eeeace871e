import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { CallContext, ErrorCode, success, type Identity, type Outcome } from '../../src/pipeline/index.js';
import { createListFilter, createPolicyGuard, createServerRequestPolicy, PolicyStore } from '../../src/policy/index.js';
import { tempDir } from './helpers.js';

const tmp = tempDir('bastion-policy-guard-');
after(() => tmp.cleanup());
const store = PolicyStore.open({
  policyFiles: [tmp.write('p.yaml', `agents:\n  alice:\n    grants: ["exec:tools:fs.read", "read:filesystem:${tmp.dir}", "exec:prompts:fs.hello", "read:resources:memo://ok", "exec:elicitation:fs"]\n`)],
  declarations: { fs: { tools: { read: { scopes: ['read:filesystem:${path}'] }, write: { scopes: [] } }, prompts: {} } },
  logger: pino({ level: 'silent' }),
});
const guard = createPolicyGuard(store);
const identity = (agentId: string): Identity => ({ agentId, tokenFingerprint: 'fp:test', method: 'api-token' });

function context(method: string, params: Record<string, unknown>, target: { server: string; name: string } | undefined, who: Identity | null = identity('alice')): CallContext {
  const ctx = new CallContext({
    requestId: 1,
    method,
    params,
    session: { sessionId: 's', transport: 'stdio', protocolVersion: undefined },
    identity: who ?? undefined,
    requestBytes: 10,
    limits: { timeoutMs: 1000, maxOutputBytes: 1 << 20, maxRequestBytes: 1 << 20 },
    signal: new AbortController().signal,
  });
  ctx.target = target;
  return ctx;
}

async function run(ctx: CallContext): Promise<{ outcome: Outcome; reached: boolean }> {
  let reached = false;
  const outcome = await guard.handle(ctx, async () => {
    reached = true;
    return success({ content: [] });
  });
  return { outcome, reached };
}

describe('policy guard', () => {
  test('an allowed tools/call reaches the upstream', async () => {
    const { outcome, reached } = await run(context('tools/call', { name: 'fs.read', arguments: { path: `${tmp.dir}/a` } }, { server: 'fs', name: 'read' }));
    assert.equal(outcome.ok, true);
    assert.equal(reached, true);
  });

  test('a denied tools/call never reaches the upstream; the error and audit facts carry the reason', async () => {
    const ctx = context('tools/call', { name: 'fs.read', arguments: { path: '/etc/shadow' } }, { server: 'fs', name: 'read' });
    const { outcome, reached } = await run(ctx);
    assert.equal(reached, false);
    assert.ok(!outcome.ok);
    assert.equal(outcome.error.code, ErrorCode.Forbidden);
    assert.match(outcome.error.message, /not granted read:filesystem:\/etc\/shadow/);
    assert.deepEqual(outcome.error.data, { reason: 'scope_not_granted', requirement: 'read:filesystem:/etc/shadow' });
    assert.deepEqual([ctx.audit.decision, ctx.audit.reason, ctx.audit.deniedBy], ['deny', 'scope_not_granted', 'policy']);
  });

  test('a call whose target was not resolved, or without identity, is denied', async () => {
    assert.equal((await run(context('tools/call', { name: 'fs.read' }, undefined))).reached, false);
    const anonymous = await run(context('tools/call', { name: 'fs.read', arguments: { path: `${tmp.dir}/a` } }, { server: 'fs', name: 'read' }, null));
    assert.ok(!anonymous.outcome.ok && (anonymous.outcome.error.data as { reason: string }).reason === 'unauthenticated');
  });

  test('arguments that are not an object bind nothing and the call is denied', async () => {
    const { reached } = await run(context('tools/call', { name: 'fs.read', arguments: [`${tmp.dir}/a`] }, { server: 'fs', name: 'read' }));
    assert.equal(reached, false);
  });

  test('prompts/get and resources/read are checked too; other methods pass', async () => {
    assert.equal((await run(context('prompts/get', { name: 'fs.hello' }, { server: 'fs', name: 'hello' }))).reached, true);
    assert.equal((await run(context('prompts/get', { name: 'fs.other' }, { server: 'fs', name: 'other' }))).reached, false);
    assert.equal((await run(context('resources/read', { uri: 'memo://ok' }, { server: 'fs', name: 'memo://ok' }))).reached, true);
    assert.equal((await run(context('resources/read', { uri: 'memo://no' }, { server: 'fs', name: 'memo://no' }))).reached, false);
    assert.equal((await run(context('ping', {}, undefined))).reached, true);
  });

  test('the list filter hides tools the agent may not call', () => {
    const filter = createListFilter(store);
    const items = [{ name: 'read', description: 'reads' }, { name: 'write', description: 'writes' }];
    assert.deepEqual(filter(identity('alice'), 'fs', 'tools', items), [items[0]]);
    assert.deepEqual(filter(identity('mallory'), 'fs', 'tools', items), []);
    assert.deepEqual(filter(undefined, 'fs', 'tools', items), []);
    assert.deepEqual(filter(identity('alice'), 'fs', 'resources', [{ uri: 'memo://ok' }, { uri: 'memo://no' }]), [{ uri: 'memo://ok' }]);
  });

  test('a frozen list is filtered once per agent and policy version: a reload that changes grants changes what the next session sees', () => {
    const file = tmp.write('reload.yaml', 'agents:\n  alice:\n    grants: ["exec:tools:fs.read"]\n  bob:\n    grants: []\n');
    const reloadable = PolicyStore.open({ policyFiles: [file], declarations: { fs: { tools: { read: { scopes: [] }, write: { scopes: [] } }, prompts: {} } }, logger: pino({ level: 'silent' }) });
    const filter = createListFilter(reloadable);
    const items = Object.freeze([Object.freeze({ name: 'read' }), Object.freeze({ name: 'write' })]) as Array<{ name: string }>;
    const first = filter(identity('alice'), 'fs', 'tools', items);
    assert.deepEqual(first, [{ name: 'read' }]);
    assert.equal(filter(identity('alice'), 'fs', 'tools', items), first, 'the second session of the agent reuses the filtered list');
    assert.deepEqual(filter(identity('bob'), 'fs', 'tools', items), [], 'another agent never gets the first agent\'s list');
    assert.ok(Object.isFrozen(first));
    tmp.write('reload.yaml', 'agents:\n  alice:\n    grants: ["exec:tools:fs.write"]\n  bob:\n    grants: ["exec:tools:fs.read"]\n');
    assert.equal(reloadable.reload('test').ok, true);
    assert.deepEqual(filter(identity('alice'), 'fs', 'tools', items), [{ name: 'write' }]);
    assert.deepEqual(filter(identity('bob'), 'fs', 'tools', items), [{ name: 'read' }]);
    // A list that is not frozen (anyone could change it) is filtered each time.
    const open = [{ name: 'read' }];
    assert.notEqual(filter(identity('bob'), 'fs', 'tools', open), filter(identity('bob'), 'fs', 'tools', open));
    reloadable.close();
  });

  test('the store filters lists and answers server-request questions directly', () => {
    const items = [{ name: 'read' }, { name: 'write' }, { name: 42 }];
    assert.deepEqual(store.filterTools('alice', 'fs', items), [{ name: 'read' }]);
    assert.deepEqual(store.filterPrompts('alice', 'fs', [{ name: 'hello' }, { name: 'bye' }]), [{ name: 'hello' }]);
    assert.deepEqual(store.filterResourceTemplates('alice', 'fs', [{ uriTemplate: 'memo://{id}' }, { uriTemplate: 'db://{t}' }]), [{ uriTemplate: 'memo://{id}' }]);
    assert.equal(store.mayServerRequest('alice', 'fs', 'elicitation').allow, true);
    assert.equal(store.mayServerRequest('alice', 'fs', 'roots').reason, 'server_request_not_granted');
  });

  test('the server-request policy allows only granted servers and kinds', () => {
    const policy = createServerRequestPolicy(store);
    assert.equal(policy(identity('alice'), 'fs', 'elicitation/create'), undefined);
    assert.match(policy(identity('alice'), 'fs', 'sampling/createMessage') ?? '', /may not send sampling/);
    assert.match(policy(identity('alice'), 'other', 'elicitation/create') ?? '', /may not send elicitation/);
    assert.notEqual(policy(identity('alice'), 'fs', 'something/else'), undefined);
  });
});
