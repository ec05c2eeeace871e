import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ErrorCode } from '../../src/pipeline/index.js';
import { OTHER_TOKEN, configYaml, fixture, httpClient, startGateway, stdioServer, tempDir, type RunningGateway } from '../helpers/gateway.js';
import { auditRecords, call } from './helpers.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function limitsServer(name: string, extra = ''): string {
  return stdioServer(name, fixture('limits-server'), [], extra);
}

describe('rate limits through the gateway: exact counts per scope, error data, audit', () => {
  let gw: RunningGateway;
  let alice: Client;
  let bob: Client;

  before(async () => {
    gw = await startGateway(
      configYaml(
        `${limitsServer('up')}${limitsServer('other')}`,
        `quotas:
  rates:
    - { name: echo-per-agent, scope: agentTool, match: { server: up, tool: echo }, points: 3, durationMs: 3600000, algorithm: slidingWindow }
    - { name: slow-tool, scope: tool, match: { tool: slow }, points: 1, burst: 2, durationMs: 3600000 }
    - { name: other-server, scope: server, match: { server: other }, points: 4, durationMs: 3600000, algorithm: slidingWindow }
    - { name: bob-agent, scope: agent, match: { agent: bob }, points: 5, durationMs: 3600000 }
`,
      ),
    );
    alice = await httpClient(gw.url);
    bob = await httpClient(gw.url, OTHER_TOKEN);
  });

  after(async () => {
    await alice?.close();
    await bob?.close();
    await gw?.stop();
  });

  test('agentTool: exactly N calls per agent, then RateLimited naming the limit and when to retry', async () => {
    const results = [];
    for (let index = 0; index < 5; index += 1) results.push(await call(alice, 'up.echo', { text: `n${index}` }));
    assert.deepEqual(results.map((result) => result.ok), [true, true, true, false, false]);
    const denied = results[3];
    assert.equal(denied?.code, ErrorCode.RateLimited);
    assert.equal(denied?.data?.['reason'], 'rate_limited');
    assert.equal(denied?.data?.['limit'], 'echo-per-agent');
    assert.equal(denied?.data?.['scope'], 'agentTool');
    const retry = Number(denied?.data?.['retryAfterMs']);
    assert.ok(retry > 0 && retry <= 3_600_000, `retryAfterMs ${retry} within the window`);
    assert.equal((await call(bob, 'up.echo', { text: 'bob' })).ok, true, 'another agent has its own counter');
    assert.equal((await call(alice, 'other.echo', { text: 'x' })).ok, true, 'the rule matches server up only');
  });

  test('tool scope is shared by all agents; burst is the bucket size', async () => {
    const first = await call(alice, 'up.slow', { ms: 1 });
    const second = await call(bob, 'up.slow', { ms: 1 });
    const third = await call(alice, 'up.slow', { ms: 1 });
    assert.deepEqual([first.ok, second.ok, third.ok], [true, true, false]);
    assert.equal(third.data?.['limit'], 'slow-tool');
    assert.equal(third.data?.['algorithm'], 'tokenBucket');
  });

  test('server scope counts every tool of the server; agent scope every call of the agent', async () => {
    // other.echo was called once by alice in the first test.
    const calls = [await call(bob, 'other.echo'), await call(alice, 'other.slow', { ms: 1 }), await call(bob, 'other.fail'), await call(alice, 'other.echo')];
    assert.deepEqual(calls.map((result) => result.data?.['reason'] ?? 'upstream'), ['upstream', 'upstream', 'upstream', 'rate_limited']);
    assert.equal(calls[3]?.data?.['limit'], 'other-server');
    // bob: up.echo, up.slow, other.echo, other.fail so far = 4 (the refused up.slow was alice's)
    assert.equal((await call(bob, 'up.set-flaky')).ok, true);
    const sixth = await call(bob, 'up.set-flaky');
    assert.equal(sixth.data?.['limit'], 'bob-agent');
  });

  test('each refusal has one audit record: deny, the reason, denied by limits', async () => {
    await gw.bastion.audit.flush();
    const denied = auditRecords(gw.bastion.audit.dir).filter((record) => record.kind === 'request' && record.denied_by === 'limits');
    assert.equal(denied.length, 5, JSON.stringify(denied));
    for (const record of denied) {
      assert.equal(record.decision, 'deny');
      assert.equal(record.reason, 'rate_limited');
      assert.equal(record.error_code, ErrorCode.RateLimited);
    }
  });
});

describe('concurrency and chain length through the gateway', () => {
  let gw: RunningGateway;

  before(async () => {
    gw = await startGateway(
      configYaml(
        limitsServer('up'),
        `quotas:
  concurrency: { perAgent: 10, perServer: 10, perTool: 2, maxQueueMs: 200, maxQueue: 1 }
  chain: { perTask: 3, perSession: 6 }
`,
      ),
    );
  });

  after(async () => gw?.stop());

  test('perTool in flight: the next call waits (bounded), one more is refused at once, a freed slot is reused', async () => {
    const client = await httpClient(gw.url);
    const cancel = new AbortController();
    const hanging = [0, 1].map(() => client.callTool({ name: 'up.hang', arguments: {} }, undefined, { signal: cancel.signal, timeout: 60_000 }).catch((error: unknown) => error));
    await new Promise<void>((resolve) => {
      const check = (): void => (gw.bastion.limits?.concurrency.inFlight('tool', 'up', 'hang') === 2 ? resolve() : void setTimeout(check, 10));
      check();
    });
    const [waited, refused] = await Promise.all([call(client, 'up.hang'), call(client, 'up.hang')]);
    const reasons = [waited, refused].map((result) => `${String(result.data?.['reason'])}:${String(result.data?.['why'])}`).sort();
    assert.deepEqual(reasons, ['concurrency_limit:queue_full', 'concurrency_limit:wait_timeout']);
    assert.equal(waited.code, ErrorCode.RateLimited);
    assert.equal(waited.data?.['limit'], 'perTool');
    assert.ok(Number(waited.data?.['retryAfterMs']) > 0);
    cancel.abort();
    await Promise.all(hanging);
    await new Promise<void>((resolve) => {
      const check = (): void => (gw.bastion.limits?.concurrency.inFlight('tool', 'up', 'hang') === 0 ? resolve() : void setTimeout(check, 10));
      check();
    });
    assert.equal((await call(client, 'up.echo')).ok, true, 'other tools were never limited by hang');
    await client.close();
  });

  test('chain: a task gets exactly perTask tool calls, a session exactly perSession', async () => {
    const client = await httpClient(gw.url);
    const task = [];
    for (let index = 0; index < 4; index += 1) task.push(await call(client, 'up.echo', {}, { taskId: 'loop-1' }));
    assert.deepEqual(task.map((result) => result.ok), [true, true, true, false]);
    assert.equal(task[3]?.data?.['reason'], 'chain_limit');
    assert.equal(task[3]?.data?.['limit'], 'perTask');
    assert.match(task[3]?.message ?? '', /loop-1/);
    assert.equal((await call(client, 'up.echo', {}, { taskId: 'loop-2' })).ok, true);
    assert.equal((await call(client, 'up.echo')).ok, true, 'call 6 of the session');
    const seventh = await call(client, 'up.echo');
    assert.equal(seventh.data?.['limit'], 'perSession');
    await client.close();
    const fresh = await httpClient(gw.url);
    assert.equal((await call(fresh, 'up.echo')).ok, true, 'a new session starts from zero');
    await fresh.close();
  });
});

describe('circuit breakers through the gateway, with an upstream that fails and hangs on demand', () => {
  let gw: RunningGateway;
  let client: Client;
  const OPEN_MS = 300;

  before(async () => {
    gw = await startGateway(
      configYaml(
        `${limitsServer('up')}${limitsServer('stuck', '    limits: { timeoutMs: 200 }\n')}${limitsServer('mixed')}`,
        `quotas:
  breakers:
    - { name: flaky-tool, scope: tool, match: { server: up, tool: flaky }, consecutiveFailures: 3, openMs: ${OPEN_MS}, halfOpenProbes: 1 }
    - { name: stuck-server, scope: server, match: { server: stuck }, consecutiveTimeouts: 2, openMs: 600000 }
    - { name: slow-calls, scope: tool, match: { server: up, tool: slow }, slowCallMs: 50, consecutiveFailures: 2, openMs: 600000 }
    - { name: mixed-rate, scope: server, match: { server: mixed }, errorRate: { threshold: 0.5, minCalls: 4, windowMs: 600000 }, openMs: 600000 }
`,
      ),
    );
    client = await httpClient(gw.url);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
  });

  test('closed -> open on consecutive failures; open fails fast; half-open probe success closes; a failed probe reopens', async () => {
    for (let index = 0; index < 3; index += 1) assert.equal((await call(client, 'up.flaky')).code, ErrorCode.InternalError, 'the upstream error passes through');
    const fast = await call(client, 'up.flaky');
    assert.equal(fast.code, ErrorCode.CircuitOpen);
    assert.equal(fast.data?.['reason'], 'circuit_open');
    assert.equal(fast.data?.['limit'], 'flaky-tool');
    assert.equal(fast.data?.['state'], 'open');
    assert.ok(Number(fast.data?.['retryAfterMs']) > 0 && Number(fast.data?.['retryAfterMs']) <= OPEN_MS);
    assert.equal((await call(client, 'up.echo')).ok, true, 'a tool breaker leaves the other tools alone');
    assert.equal((await call(client, 'up.set-flaky', { failing: false })).ok, true);
    await sleep(OPEN_MS + 20);
    assert.equal((await call(client, 'up.flaky')).ok, true, 'the probe went through and succeeded');
    assert.equal(gw.bastion.limits?.breakers.state('flaky-tool', 'up.flaky'), 'closed');
    assert.equal((await call(client, 'up.set-flaky', { failing: true })).ok, true);
    for (let index = 0; index < 3; index += 1) await call(client, 'up.flaky');
    await sleep(OPEN_MS + 20);
    assert.equal((await call(client, 'up.flaky')).code, ErrorCode.InternalError, 'the probe reached the upstream and failed');
    assert.equal((await call(client, 'up.flaky')).code, ErrorCode.CircuitOpen, 'open again at once');
  });

  test('consecutive timeouts open a server breaker for every tool of the server', async () => {
    assert.equal((await call(client, 'stuck.hang')).code, ErrorCode.RequestTimeout);
    assert.equal((await call(client, 'stuck.hang')).code, ErrorCode.RequestTimeout);
    const echo = await call(client, 'stuck.echo');
    assert.equal(echo.code, ErrorCode.CircuitOpen);
    assert.equal(echo.data?.['limit'], 'stuck-server');
  });

  test('slow calls count as failures; an error rate opens a server breaker once minCalls were made', async () => {
    assert.equal((await call(client, 'up.slow', { ms: 200 })).ok, true, 'a slow call still answers');
    assert.equal((await call(client, 'up.slow', { ms: 200 })).ok, true);
    assert.equal((await call(client, 'up.slow', { ms: 1 })).code, ErrorCode.CircuitOpen, 'two slow calls in a row opened it');
    const mixed = [await call(client, 'mixed.echo'), await call(client, 'mixed.fail'), await call(client, 'mixed.echo')];
    assert.deepEqual(mixed.map((result) => result.code ?? 'ok'), ['ok', ErrorCode.InternalError, 'ok'], '1 of 3 failed, below minCalls anyway');
    assert.equal((await call(client, 'mixed.fail')).code, ErrorCode.InternalError, '2 of 4: at the threshold');
    const open = await call(client, 'mixed.echo');
    assert.equal(open.code, ErrorCode.CircuitOpen);
    assert.equal(open.data?.['limit'], 'mixed-rate');
  });

  test('every transition is an audit event; fail-fast calls are audited as denials', async () => {
    await gw.bastion.audit.flush();
    const records = auditRecords(gw.bastion.audit.dir);
    const transitions = records.filter((record) => record.event === 'limits.breaker').map((record) => `${String(record.info?.['breaker'])}:${String(record.info?.['from'])}->${String(record.info?.['to'])}:${String(record.info?.['cause'])}`);
    assert.deepEqual(transitions, [
      'flaky-tool:closed->open:consecutive_failures',
      'flaky-tool:open->halfOpen:open_elapsed',
      'flaky-tool:halfOpen->closed:probes_succeeded',
      'flaky-tool:closed->open:consecutive_failures',
      'flaky-tool:open->halfOpen:open_elapsed',
      'flaky-tool:halfOpen->open:probe_failed',
      'stuck-server:closed->open:consecutive_timeouts',
      'slow-calls:closed->open:consecutive_failures',
      'mixed-rate:closed->open:error_rate',
    ]);
    const fastFails = records.filter((record) => record.kind === 'request' && record.reason === 'circuit_open');
    assert.equal(fastFails.length, 5);
    assert.ok(fastFails.every((record) => record.decision === 'deny' && record.error_code === ErrorCode.CircuitOpen));
  });
});

describe('the limits guard runs after policy: calls the policy denies spend no quota', () => {
  let gw: RunningGateway;
  const dir = tempDir('bastion-limits-policy-');

  before(async () => {
    writeFileSync(join(dir.path, 'policy.yaml'), 'version: 1\nagents:\n  alice:\n    grants: ["exec:tools:[up.echo]"]\n');
    gw = await startGateway(
      configYaml(
        limitsServer('up', '    tools:\n      echo: { scopes: [] }\n      fail: { scopes: [] }\n'),
        `policy:
  files: [${JSON.stringify(join(dir.path, 'policy.yaml'))}]
quotas:
  rates:
    - { name: alice-calls, scope: agent, points: 2, durationMs: 3600000, algorithm: slidingWindow }
`,
      ),
    );
  });

  after(async () => {
    await gw?.stop();
    dir.cleanup();
  });

  test('five policy denials, then exactly two allowed calls', async () => {
    const client = await httpClient(gw.url);
    for (let index = 0; index < 5; index += 1) assert.equal((await call(client, 'up.fail')).code, ErrorCode.Forbidden);
    const allowed = [await call(client, 'up.echo'), await call(client, 'up.echo'), await call(client, 'up.echo')];
    assert.deepEqual(allowed.map((result) => result.ok), [true, true, false]);
    assert.equal(allowed[2]?.data?.['limit'], 'alice-calls');
    await client.close();
  });
});

describe('CPU budgets on a server the sandbox cannot measure are reported, not silently ignored', () => {
  let gw: RunningGateway;

  before(async () => {
    // The test gateway runs servers with sandbox.backend: none, so there are no cgroup figures.
    gw = await startGateway(
      configYaml(
        `${limitsServer('bare')}${limitsServer('unbudgeted')}`,
        `quotas:
  cpuBudgets:
    - { name: bare-cpu, scope: server, match: { server: bare }, cpuMs: 1, windowMs: 3600000 }
`,
      ),
    );
  });

  after(async () => {
    await gw?.stop();
  });

  test('one limits.unmeasured audit event per server with a budget; calls still answer', async () => {
    const client = await httpClient(gw.url);
    const results = [await call(client, 'bare.echo'), await call(client, 'bare.echo'), await call(client, 'unbudgeted.echo')];
    assert.deepEqual(results.map((result) => result.ok), [true, true, true], 'an unmeasurable budget never fires, so it must not refuse either');
    await gw.bastion.audit.flush();
    const events = auditRecords(gw.bastion.audit.dir).filter((record) => record.event === 'limits.unmeasured');
    assert.deepEqual(
      events.map((record) => record.info?.['server']),
      ['bare'],
    );
    await client.close();
  });
});
