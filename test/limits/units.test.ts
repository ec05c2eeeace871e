import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../../src/config/index.js';
import { configProblems } from '../helpers/config.js';
import { Breakers, type Transition } from '../../src/limits/breaker.js';
import { Concurrency } from '../../src/limits/concurrency.js';
import { ChainLimits } from '../../src/limits/chain.js';
import { CpuBudgets, cpuMeter } from '../../src/limits/cpu-budget.js';
import { globMatches, keyPart } from '../../src/limits/match.js';
import { RateLimits } from '../../src/limits/rate.js';
import { MemoryStore } from '../../src/limits/store/memory.js';
import { createLimits, type BreakerRule, type RateRule, type StoreAnswer, type TakeEntry, type TakeResult } from '../../src/limits/index.js';
import { silentLogger } from '../../src/observability/index.js';
import { CallContext, ErrorCode, failure, success } from '../../src/pipeline/index.js';

/** A clock the test moves by hand, so no assertion depends on how fast the machine is. */
function manualClock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
  let value = start;
  return { now: () => value, advance: (ms) => void (value += ms) };
}

describe('memory store algorithms (manual clock)', () => {
  const bucket = (key: string, capacity: number, points: number, durationMs: number): TakeEntry => ({ key, spec: { algorithm: 'tokenBucket', capacity, points, durationMs } });
  const window = (key: string, points: number, durationMs: number): TakeEntry => ({ key, spec: { algorithm: 'slidingWindow', points, durationMs } });

  test('token bucket: exactly `burst` at once, then one per refill interval, with the exact retry time', async () => {
    const clock = manualClock();
    const store = new MemoryStore(clock.now);
    const take = (): StoreAnswer<TakeResult> => store.take([bucket('k', 3, 1, 1000)]);
    const first = await Promise.all([1, 2, 3, 4].map(() => take()));
    assert.deepEqual(first.map((result) => result.allowed), [true, true, true, false]);
    assert.deepEqual(first[3], { allowed: false, refusedBy: 0, retryAfterMs: 1000 });
    clock.advance(400);
    assert.equal((await take()).retryAfterMs, 600, 'the retry hint counts down with the refill');
    clock.advance(600);
    assert.equal((await take()).allowed, true, 'one token refilled after a full interval');
    assert.equal((await take()).allowed, false);
    assert.equal((await store.take([bucket('other', 3, 1, 1000)])).allowed, true, 'keys are independent');
    await store.close();
  });

  test('sliding window: exactly N in any window of the duration, never 2N across a boundary', async () => {
    const clock = manualClock();
    const store = new MemoryStore(clock.now);
    const take = (): StoreAnswer<TakeResult> => store.take([window('w', 5, 1000)]);
    for (let index = 0; index < 5; index += 1) {
      assert.equal((await take()).allowed, true);
      clock.advance(100);
    }
    // t = 500: five calls at 0..400 are all inside the window.
    assert.deepEqual(await take(), { allowed: false, refusedBy: 0, retryAfterMs: 500 }, 'frees when the oldest call (t=0) leaves the window');
    clock.advance(500); // t = 1000: the call at t=0 has left, exactly one slot free
    assert.equal((await take()).allowed, true);
    assert.equal((await take()).allowed, false, 'a fixed window would have reset here and allowed 5 more');
    await store.close();
  });

  test('several rules: all or nothing, and the refusal names the rule that refused', async () => {
    const store = new MemoryStore(manualClock().now);
    const both = [window('wide', 10, 60_000), bucket('narrow', 2, 1, 60_000)];
    assert.equal((await store.take(both)).allowed, true);
    assert.equal((await store.take(both)).allowed, true);
    const refused = await store.take(both);
    assert.equal(refused.refusedBy, 1);
    for (let index = 0; index < 8; index += 1) assert.equal((await store.take([window('wide', 10, 60_000)])).allowed, true, `refused calls spent nothing under 'wide' (${index + 3} of 10)`);
    assert.equal((await store.take([window('wide', 10, 60_000)])).allowed, false);
    await store.close();
  });

  test('counters reset when their window ends; peek does not count', async () => {
    const clock = manualClock();
    const store = new MemoryStore(clock.now);
    assert.deepEqual(await store.add([{ key: 'c', amount: 30, windowMs: 1000 }]), [{ total: 30, resetMs: 1000 }]);
    clock.advance(250);
    assert.deepEqual(await store.add([{ key: 'c', amount: 12, windowMs: 1000 }, { key: 'd', amount: 1, windowMs: 5 }]), [{ total: 42, resetMs: 750 }, { total: 1, resetMs: 5 }]);
    assert.deepEqual(await store.peek(['c', 'absent']), [{ total: 42, resetMs: 750 }, { total: 0, resetMs: 0 }]);
    clock.advance(750);
    assert.deepEqual(await store.peek(['c']), [{ total: 0, resetMs: 0 }]);
    await store.close();
  });
});

describe('rate rules, chain and CPU budgets over the store', () => {
  const subject = { agent: 'alice', server: 'files', tool: 'read_file' };

  test('each scope has its own counter; selectors choose the rules; the first refusing rule is named', async () => {
    const clock = manualClock();
    const store = new MemoryStore(clock.now);
    const rules: RateRule[] = [
      { name: 'per-agent', scope: 'agent', points: 3, durationMs: 60_000, algorithm: 'slidingWindow' },
      { name: 'writes', scope: 'agentTool', match: { tool: 'write_*' }, points: 1, durationMs: 60_000, algorithm: 'tokenBucket' },
    ];
    const rates = new RateLimits(rules, store);
    assert.equal(await rates.take(subject), undefined);
    assert.equal(await rates.take({ ...subject, tool: 'write_file' }), undefined);
    const writeDenied = await rates.take({ ...subject, tool: 'write_file' });
    assert.equal(writeDenied?.limit, 'writes');
    assert.equal(await rates.take({ ...subject, agent: 'bob', tool: 'write_file' }), undefined, 'agentTool counts per agent');
    assert.equal(await rates.take(subject), undefined, 'the call the writes rule refused spent nothing under per-agent');
    const agentDenied = await rates.take(subject);
    assert.equal(agentDenied?.limit, 'per-agent', 'the fourth call alice made that passed every other rule');
    assert.equal(agentDenied?.retryAfterMs, 60_000);
    await store.close();
  });

  test('token scope: two credentials of one agent are two counters', async () => {
    const store = new MemoryStore();
    const rates = new RateLimits([{ name: 'per-token', scope: 'token', points: 1, durationMs: 60_000, algorithm: 'slidingWindow' }], store);
    assert.equal(await rates.take({ ...subject, token: 'sha256:aaaa' }), undefined);
    assert.equal(await rates.take({ ...subject, token: 'sha256:bbbb' }), undefined, 'the same agent with another token');
    assert.equal((await rates.take({ ...subject, token: 'sha256:aaaa' }))?.limit, 'per-token');
    await store.close();
  });

  test('chain: perTask and perSession cut off at exactly the configured count', async () => {
    const store = new MemoryStore();
    const chain = new ChainLimits({ perTask: 3, perSession: 5, ttlMs: 60_000 }, store);
    const results = [];
    for (let index = 0; index < 4; index += 1) results.push(await chain.count('s1', 'task-a'));
    assert.deepEqual(results.map((result) => result?.limit), [undefined, undefined, undefined, 'perTask']);
    assert.equal(await chain.count('s1', 'task-b'), undefined);
    assert.equal((await chain.count('s1', undefined))?.limit, 'perSession', 'the sixth call of the session');
    await store.close();
  });

  test('CPU budgets: charged from the usage difference, refused once spent, freed when the window ends', async () => {
    const clock = manualClock();
    const store = new MemoryStore(clock.now);
    const budgets = new CpuBudgets([{ name: 'tool-cpu', scope: 'tool', cpuMs: 100, windowMs: 10_000 }], store);
    let cumulative = 500;
    const usage = { cpuTimeMs: () => cumulative, memoryBytes: () => undefined };
    const applicable = budgets.applicable(subject);
    const meter = cpuMeter(usage, 'files');
    cumulative += 60;
    await budgets.charge(applicable, meter());
    assert.equal(await budgets.check(applicable), undefined, '60 of 100 ms');
    const second = cpuMeter(usage, 'files');
    cumulative += 45;
    await budgets.charge(applicable, second());
    const denied = await budgets.check(applicable);
    assert.equal(denied?.usedMs, 105);
    assert.equal(denied?.retryAfterMs, 10_000);
    assert.equal(await budgets.check(budgets.applicable({ ...subject, tool: 'other' })), undefined, 'another tool has its own budget');
    const shrinking = cpuMeter(usage, 'files');
    cumulative = 10; // the process exited and a new one started
    assert.equal(shrinking(), 0, 'a process that exits never gives CPU back');
    clock.advance(10_000);
    assert.equal(await budgets.check(applicable), undefined, 'the next window is free');
    await store.close();
  });

  test('globs match whole names; key parts cannot collide', () => {
    assert.equal(globMatches('read_*', 'read_file'), true);
    assert.equal(globMatches('read_*', 'xread_file'), false);
    assert.equal(globMatches('a.b', 'aXb'), false, 'dots are literal');
    assert.notEqual(`${keyPart('a:b')}:${keyPart('c')}`, `${keyPart('a')}:${keyPart('b:c')}`);
  });
});

describe('circuit breaker state machine (manual clock)', () => {
  const ok = { failed: false, timedOut: false, durationMs: 5 };
  const bad = { failed: true, timedOut: false, durationMs: 5 };
  const rule = (extra: Partial<BreakerRule>): BreakerRule => ({ scope: 'server', openMs: 1000, halfOpenProbes: 2, sampleMs: 100, ...extra });

  function setup(extra: Partial<BreakerRule>): { clock: ReturnType<typeof manualClock>; transitions: Transition[]; breaker: ReturnType<Breakers['applicable']>[number] } {
    const clock = manualClock();
    const transitions: Transition[] = [];
    const breakers = new Breakers([rule({ name: 'b', ...extra })], (transition) => transitions.push(transition), clock.now);
    const breaker = breakers.applicable({ agent: 'a', server: 'up', tool: 't' })[0];
    assert.ok(breaker !== undefined);
    return { clock, transitions, breaker };
  }

  test('closed -> open after N consecutive failures; a success resets the count', () => {
    const { transitions, breaker } = setup({ consecutiveFailures: 3 });
    for (const result of [bad, bad, ok, bad, bad]) breaker.record(result, false);
    assert.equal(breaker.state, 'closed');
    breaker.record(bad, false);
    assert.equal(breaker.state, 'open');
    assert.deepEqual(transitions.map((t) => [t.from, t.to, t.cause]), [['closed', 'open', 'consecutive_failures']]);
  });

  test('open fails fast until openMs, then half-open admits only the probes; all probes succeeding closes it', () => {
    const { clock, transitions, breaker } = setup({ consecutiveFailures: 1 });
    breaker.record(bad, false);
    const refused = breaker.admit();
    assert.deepEqual(refused, { ok: false, retryAfterMs: 1000, state: 'open' });
    clock.advance(999);
    assert.equal(breaker.admit().ok, false);
    clock.advance(1);
    assert.deepEqual(breaker.admit(), { ok: true, probe: true });
    assert.deepEqual(breaker.admit(), { ok: true, probe: true });
    assert.equal(breaker.admit().ok, false, 'a third concurrent probe is refused (halfOpenProbes: 2)');
    breaker.record(ok, true);
    assert.equal(breaker.state, 'halfOpen', 'one of two probes succeeded');
    breaker.record(ok, true);
    assert.equal(breaker.state, 'closed');
    assert.deepEqual(transitions.map((t) => `${t.from}->${t.to}:${t.cause}`), ['closed->open:consecutive_failures', 'open->halfOpen:open_elapsed', 'halfOpen->closed:probes_succeeded']);
  });

  test('a failed probe opens it again for another openMs', () => {
    const { clock, transitions, breaker } = setup({ consecutiveFailures: 1 });
    breaker.record(bad, false);
    clock.advance(1000);
    assert.equal(breaker.admit().ok, true);
    breaker.record({ failed: false, timedOut: true, durationMs: 5 }, true);
    assert.equal(breaker.state, 'open');
    assert.equal(transitions.at(-1)?.cause, 'probe_failed');
    assert.deepEqual(breaker.admit(), { ok: false, retryAfterMs: 1000, state: 'open' });
  });

  test('timeouts, slow calls and error rate each open it', () => {
    const timeouts = setup({ consecutiveTimeouts: 2, consecutiveFailures: 10 });
    timeouts.breaker.record({ failed: false, timedOut: true, durationMs: 5 }, false);
    timeouts.breaker.record({ failed: false, timedOut: true, durationMs: 5 }, false);
    assert.equal(timeouts.transitions[0]?.cause, 'consecutive_timeouts');

    const slow = setup({ slowCallMs: 100, consecutiveFailures: 2 });
    slow.breaker.record({ failed: false, timedOut: false, durationMs: 101 }, false);
    slow.breaker.record({ failed: false, timedOut: false, durationMs: 100 }, false);
    assert.equal(slow.breaker.state, 'closed', 'exactly slowCallMs is not slow, and it reset the run');
    slow.breaker.record({ failed: false, timedOut: false, durationMs: 500 }, false);
    slow.breaker.record({ failed: false, timedOut: false, durationMs: 500 }, false);
    assert.equal(slow.breaker.state, 'open');

    const rate = setup({ errorRate: { threshold: 0.5, minCalls: 4, windowMs: 10_000 } });
    for (const result of [bad, ok, bad]) rate.breaker.record(result, false);
    assert.equal(rate.breaker.state, 'closed', 'fewer than minCalls');
    rate.clock.advance(10_000);
    rate.breaker.record(ok, false);
    assert.equal(rate.breaker.state, 'closed', 'the three earlier calls left the window');
    for (const result of [ok, bad, bad]) rate.breaker.record(result, false);
    assert.equal(rate.breaker.state, 'open', '2 of 4 failed');
    assert.equal(rate.transitions[0]?.cause, 'error_rate');
  });

  test('a memory or runaway trip aborts the calls in flight; a failure-count trip does not', () => {
    const { breaker } = setup({ consecutiveFailures: 1, maxMemoryBytes: 1_048_576 });
    const aborted: string[] = [];
    const unwatch = breaker.watch((reason) => aborted.push(reason));
    breaker.record(bad, false);
    assert.equal(aborted.length, 0, "a failure-count trip aborts nothing");
    const memory = setup({ maxMemoryBytes: 1_048_576 });
    const stop = memory.breaker.watch((reason) => aborted.push(reason));
    memory.breaker.trip('memory', 'too big');
    assert.equal(aborted.length, 1);
    assert.match(aborted[0] ?? '', /memory/);
    stop();
    unwatch();
  });
});

describe('concurrency slots', () => {
  const subject = { agent: 'alice', server: 'up', tool: 'slow' };
  const never = new AbortController().signal;

  test('at most perTool in flight; the next waits and gets the slot a release frees', async () => {
    const limiter = new Concurrency({ perAgent: 10, perServer: 10, perTool: 2, maxQueueMs: 60_000, maxQueue: 5 });
    const first = limiter.acquire(subject, never);
    const second = limiter.acquire(subject, never);
    assert.ok(!(first instanceof Promise) && !(second instanceof Promise), 'free slots are taken without waiting');
    assert.ok(first.ok && second.ok);
    let thirdDone = false;
    const queued = limiter.acquire(subject, never);
    assert.ok(queued instanceof Promise, 'only a call that must wait gets a promise');
    const third = Promise.resolve(queued).then((result) => {
      thirdDone = true;
      return result;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(thirdDone, false, 'the third call waits');
    assert.equal(limiter.inFlight('tool', 'up', 'slow'), 2);
    first.release();
    const granted = await third;
    assert.equal(granted.ok, true);
    assert.equal(limiter.inFlight('tool', 'up', 'slow'), 2, 'the slot passed straight to the waiter');
    if (granted.ok) granted.release();
    if (second.ok) second.release();
    assert.equal(limiter.inFlight('tool', 'up', 'slow'), 0);
    assert.equal(limiter.inFlight('agent', 'alice'), 0, 'agent slots are released too');
  });

  test('a full queue refuses at once; maxQueueMs 0 never waits; a refused call holds no slot', async () => {
    const limiter = new Concurrency({ perAgent: 1, perServer: 10, perTool: 10, maxQueueMs: 60_000, maxQueue: 0 });
    const held = await limiter.acquire(subject, never);
    const refused = await limiter.acquire(subject, never);
    assert.equal(refused.ok, false);
    if (!refused.ok) assert.deepEqual([refused.denial.limit, refused.denial.why], ['perAgent', 'queue_full']);
    if (held.ok) held.release();
    const noWait = new Concurrency({ perAgent: 10, perServer: 10, perTool: 1, maxQueueMs: 0, maxQueue: 5 });
    const one = await noWait.acquire(subject, never);
    const two = await noWait.acquire(subject, never);
    assert.equal(two.ok, false);
    if (!two.ok) assert.deepEqual([two.denial.limit, two.denial.why], ['perTool', 'wait_timeout']);
    assert.equal(noWait.inFlight('agent', 'alice'), 1, 'the agent and server slots taken before the tool refused were given back');
    if (one.ok) one.release();
  });

  test('a waiting call leaves the queue when its request is cancelled', async () => {
    const limiter = new Concurrency({ perAgent: 1, perServer: 10, perTool: 10, maxQueueMs: 60_000, maxQueue: 5 });
    const held = await limiter.acquire(subject, never);
    const cancel = new AbortController();
    const waiting = limiter.acquire(subject, cancel.signal);
    cancel.abort();
    const result = await waiting;
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.denial.why, 'aborted');
    if (held.ok) held.release();
    assert.equal(limiter.inFlight('agent', 'alice'), 0);
  });
});

describe('quotas config errors name the file, line, field and the fix', () => {
  const base = (quotas: string): string => `version: 1
servers:
  up: { transport: stdio, command: node }
quotas:
${quotas}`;
  const problems = configProblems;

  test('a misspelt field gets a suggestion at its line', () => {
    const [problem] = problems(base('  rates:\n    - scope: agent\n      points: 10\n      durationMs: 1000\n      algoritm: slidingWindow\n'));
    assert.equal(problem?.file, 'bastion.yaml');
    assert.equal(problem?.line, 9);
    assert.equal(problem?.field, 'quotas.rates.0.algoritm');
    assert.match(problem?.fix ?? '', /did you mean 'algorithm'/);
  });

  test('a bad enum value lists the choices', () => {
    const [problem] = problems(base('  rates:\n    - { scope: user, points: 10, durationMs: 1000 }\n'));
    assert.equal(problem?.line, 6);
    assert.equal(problem?.field, 'quotas.rates.0.scope');
    assert.match(problem?.message ?? '', /"agent", "token", "tool", "server", "agentTool"/);
  });

  test('burst with a sliding window, a redis store without url, an inline Redis password and a breaker with no trigger', () => {
    const found = problems(
      base(`  store: { kind: redis }
  rates:
    - { scope: agent, points: 10, durationMs: 1000, algorithm: slidingWindow, burst: 5 }
  breakers:
    - { scope: server, openMs: 1000 }
`),
    );
    const byField = new Map(found.map((problem) => [problem.field, problem]));
    assert.equal(byField.get('quotas.store.url')?.line, 5);
    assert.match(byField.get('quotas.store.url')?.fix ?? '', /fromEnv/);
    assert.equal(byField.get('quotas.rates.0.burst')?.line, 7);
    assert.match(byField.get('quotas.rates.0.burst')?.fix ?? '', /tokenBucket/);
    assert.equal(byField.get('quotas.breakers.0')?.line, 9);
    const [inline] = problems(base('  store: { kind: redis, url: "redis://:hunter2@127.0.0.1:6379" }\n'));
    assert.equal(inline?.field, 'quotas.store.url');
    assert.match(inline?.fix ?? '', /fromFile/);
  });

  test('defaults: memory store, failClosed, safe concurrency and chain limits, no breakers', () => {
    const { config } = loadConfigText(base('  {}\n'), 'bastion.yaml', '/tmp');
    assert.equal(config.quotas.enabled, true);
    assert.deepEqual(config.quotas.store, { kind: 'memory', onFailure: 'failClosed', keyPrefix: 'bastion:limits:', commandTimeoutMs: 500 });
    assert.deepEqual(config.quotas.concurrency, { perAgent: 32, perServer: 64, perTool: 32, maxQueueMs: 5000, maxQueue: 256 });
    assert.equal(config.quotas.chain.perTask, 1000);
    assert.deepEqual(config.quotas.breakers, []);
  });
});

describe('the limits guard itself', () => {
  const never = new AbortController().signal;
  function ctx(): CallContext {
    const context = new CallContext({
      requestId: 1,
      method: 'tools/call',
      params: { name: 'up.t', arguments: {} },
      session: { sessionId: 's', transport: 'http', protocolVersion: '2025-06-18' },
      identity: { agentId: 'alice', tokenFingerprint: 'fp', method: 'api-token' },
      requestBytes: 10,
      limits: { timeoutMs: 1000, maxOutputBytes: 4096, maxRequestBytes: 4096 },
      signal: never,
    });
    context.target = { server: 'up', name: 't' };
    return context;
  }

  test('a call that throws gives its half-open probe back (the breaker does not wedge)', async () => {
    const { config } = loadConfigText('version: 1\nservers:\n  up: { transport: stdio, command: node }\nquotas:\n  breakers:\n    - { scope: server, consecutiveFailures: 1, openMs: 1, halfOpenProbes: 1 }\n', 'bastion.yaml', '/tmp');
    const limits = createLimits({ config: config.quotas, baseDir: '/tmp', usage: { cpuTimeMs: () => undefined, memoryBytes: () => undefined }, logger: silentLogger(), onEvent: () => undefined });
    const wait = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));
    const down = await limits.guard.handle(ctx(), () => Promise.resolve(failure(ErrorCode.UpstreamUnavailable, 'down')));
    assert.equal(down.ok, false);
    assert.equal(limits.breakers.state('breakers[0]', 'up'), 'open');
    await wait();
    await assert.rejects(async () => limits.guard.handle(ctx(), () => Promise.reject(new Error('boom'))), /boom/);
    assert.equal(limits.breakers.state('breakers[0]', 'up'), 'open', 'the failed probe opened it again');
    await wait();
    const healed = await limits.guard.handle(ctx(), () => Promise.resolve(success({})));
    assert.equal(healed.ok, true, 'a new probe was admitted');
    assert.equal(limits.breakers.state('breakers[0]', 'up'), 'closed');
    assert.equal(limits.concurrency.inFlight('agent', 'alice'), 0, 'every slot was released');
    await limits.close();
  });
  test('with the in-memory store and free slots the guard answers without a promise, and still counts', () => {
    const { config } = loadConfigText('version: 1\nservers:\n  up: { transport: stdio, command: node }\nquotas:\n  rates:\n    - { scope: agent, points: 2, durationMs: 60000 }\n  chain: { perSession: 5 }\n', 'bastion.yaml', '/tmp');
    const limits = createLimits({ config: config.quotas, baseDir: '/tmp', usage: { cpuTimeMs: () => undefined, memoryBytes: () => undefined }, logger: silentLogger(), onEvent: () => undefined });
    const answers = [1, 2, 3].map(() => limits.guard.handle(ctx(), () => success({})));
    assert.ok(answers.every((answer) => !(answer instanceof Promise)), 'no answer is a promise');
    assert.deepEqual(answers.map((answer) => (answer as { ok: boolean }).ok), [true, true, false], 'the third call is over the rate');
    assert.equal(limits.concurrency.inFlight('agent', 'alice'), 0, 'every slot was released');
    void limits.close();
  });

  test('a synchronous throw from the rest of the chain releases the slot and rethrows', () => {
    const { config } = loadConfigText('version: 1\nservers:\n  up: { transport: stdio, command: node }\n', 'bastion.yaml', '/tmp');
    const limits = createLimits({ config: config.quotas, baseDir: '/tmp', usage: { cpuTimeMs: () => undefined, memoryBytes: () => undefined }, logger: silentLogger(), onEvent: () => undefined });
    assert.throws(() => limits.guard.handle(ctx(), () => {
      throw new Error('sync boom');
    }), /sync boom/);
    assert.equal(limits.concurrency.inFlight('agent', 'alice'), 0);
    void limits.close();
  });
});
