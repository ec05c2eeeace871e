import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { MemoryStore, RedisStore, StoreUnavailableError } from '../../src/limits/index.js';
import { ErrorCode } from '../../src/pipeline/index.js';
import { BASTION_BIN, OTHER_TOKEN, configYaml, fixture, httpClient, startGateway, stdioServer, tempDir, type RunningGateway, type TempDir } from '../helpers/gateway.js';
import { auditRecords, call, until } from './helpers.js';
import { startRedis, type RunningRedis } from './redis-helpers.js';

function quotasYaml(url: string, onFailure: string, rules: string, extra = ''): string {
  return `quotas:
  store: { kind: redis, url: ${url}, onFailure: ${onFailure}, keyPrefix: "test:${Math.random().toString(36).slice(2)}:" }
  rates:
${rules}
${extra}`;
}

describe('the Redis store runs the same algorithms atomically on a real redis-server', () => {
  let redis: RunningRedis;
  let store: RedisStore;

  before(async () => {
    redis = await startRedis();
    store = new RedisStore({ url: redis.url, keyPrefix: 'unit:', commandTimeoutMs: 2000 });
    await store.ready(5000);
  });

  after(async () => {
    await store?.close();
    await redis?.kill();
  });

  test('snapshot: the counters as Redis holds them, by SCAN over this prefix only, the same shape as the memory store', async () => {
    const foreign = new RedisStore({ url: redis.url, keyPrefix: 'other-gateway:', commandTimeoutMs: 2000 });
    const memory = new MemoryStore();
    try {
      await foreign.ready(5000);
      await foreign.add([{ key: 'snap:foreign', amount: 9, windowMs: 60_000 }]);
      for (const target of [store, memory]) {
        await target.take([{ key: 'snap:bucket', spec: { algorithm: 'tokenBucket', capacity: 10, points: 10, durationMs: 60_000 } }]);
        await target.take([{ key: 'snap:bucket', spec: { algorithm: 'tokenBucket', capacity: 10, points: 10, durationMs: 60_000 } }]);
        await target.take([{ key: 'snap:window', spec: { algorithm: 'slidingWindow', points: 5, durationMs: 60_000 } }]);
        await target.add([{ key: 'snap:cpu', amount: 250, windowMs: 60_000 }]);
        const { counters, truncated } = await target.snapshot(500);
        assert.equal(truncated, false);
        const mine = Object.fromEntries(counters.filter((counter) => counter.key.startsWith('snap:')).map((counter) => [counter.key, { type: counter.type, value: Math.round(counter.value * 100) / 100 }]));
        assert.deepEqual(mine, { 'snap:bucket': { type: 'tokenBucket', value: 8 }, 'snap:window': { type: 'slidingWindow', value: 1 }, 'snap:cpu': { type: 'counter', value: 250 } }, target.kind);
        assert.ok(counters.every((counter) => counter.ttlMs > 0 && counter.ttlMs <= 61_000), JSON.stringify(counters));
        const limited = await target.snapshot(1);
        assert.equal(limited.counters.length, 1);
        assert.equal(limited.truncated, true);
      }
    } finally {
      await foreign.close();
      await memory.close();
    }
  });

  test('sliding window and token bucket allow exactly N of many concurrent takes', async () => {
    const window = await Promise.all(Array.from({ length: 40 }, () => store.take([{ key: 'w', spec: { algorithm: 'slidingWindow', points: 7, durationMs: 3_600_000 } }])));
    assert.equal(window.filter((result) => result.allowed).length, 7);
    const refused = window.find((result) => !result.allowed);
    assert.ok(refused !== undefined && refused.retryAfterMs > 3_500_000 && refused.retryAfterMs <= 3_600_000, `retry ${String(refused?.retryAfterMs)}`);
    assert.equal(refused.refusedBy, 0);
    const bucket = await Promise.all(Array.from({ length: 40 }, () => store.take([{ key: 'b', spec: { algorithm: 'tokenBucket', capacity: 4, points: 1, durationMs: 3_600_000 } }])));
    assert.equal(bucket.filter((result) => result.allowed).length, 4);
  });

  test('several rules in one script: all or nothing, the refusing rule named', async () => {
    const wide = { key: 'wide', spec: { algorithm: 'slidingWindow', points: 10, durationMs: 3_600_000 } } as const;
    const narrow = { key: 'narrow', spec: { algorithm: 'tokenBucket', capacity: 2, points: 1, durationMs: 3_600_000 } } as const;
    const results = [];
    for (let index = 0; index < 5; index += 1) results.push(await store.take([wide, narrow]));
    assert.deepEqual(results.map((result) => result.refusedBy), [-1, -1, 1, 1, 1]);
    const rest = await Promise.all(Array.from({ length: 12 }, () => store.take([wide])));
    assert.equal(rest.filter((result) => result.allowed).length, 8, 'the three refused calls spent nothing under the wide rule');
  });

  test('counters add up and expire with their window', async () => {
    const [first] = await store.add([{ key: 'c', amount: 5, windowMs: 3_600_000 }]);
    assert.equal(first?.total, 5);
    const [second, other] = await store.add([{ key: 'c', amount: 7, windowMs: 3_600_000 }, { key: 'd', amount: 1, windowMs: 3_600_000 }]);
    assert.equal(second?.total, 12);
    assert.equal(other?.total, 1);
    assert.ok(second !== undefined && second.resetMs > 0 && second.resetMs <= 3_600_000);
    const [peeked, absent] = await store.peek(['c', 'absent']);
    assert.equal(peeked?.total, 12);
    assert.deepEqual(absent, { total: 0, resetMs: 0 });
  });

  test('a stopped server makes every operation fail with StoreUnavailableError (no queueing)', async () => {
    const outage = await startRedis();
    const doomed = new RedisStore({ url: outage.url, keyPrefix: 'x:', commandTimeoutMs: 500 });
    await doomed.ready(5000);
    await outage.kill();
    await assert.rejects(doomed.take([{ key: 'k', spec: { algorithm: 'slidingWindow', points: 1, durationMs: 1000 } }]), StoreUnavailableError);
    await assert.rejects(doomed.add([{ key: 'k', amount: 1, windowMs: 1000 }]), StoreUnavailableError);
    await doomed.close();
  });
});

interface ServeProcess {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** `bastion serve --config FILE` as its own process, HTTP on port 0; the URL comes from its log. */
async function serve(dir: TempDir, name: string, yaml: string, env: Record<string, string>): Promise<ServeProcess> {
  const home = join(dir.path, name);
  mkdirSync(home, { recursive: true });
  const path = join(home, 'bastion.yaml');
  writeFileSync(path, yaml);
  const child = spawn(process.execPath, [BASTION_BIN, 'serve', '--config', path], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env, BASTION_LOG_LEVEL: 'info' } });
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
      log += `${line}\n`;
      const match = /"url":"([^"]+)"/.exec(line);
      if (match?.[1] !== undefined) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`bastion serve exited with ${String(code)}:\n${log}`)));
  });
  return {
    url,
    child,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

describe('two gateway processes sharing one redis-server hold the limits together', () => {
  const dir = tempDir('bastion-limits-redis-');
  let redis: RunningRedis;
  let gatewayA: ServeProcess;
  let gatewayB: ServeProcess;
  let clients: Client[] = [];

  before(async () => {
    redis = await startRedis();
    const yaml = configYaml(
      stdioServer('up', fixture('limits-server')),
      quotasYaml(
        '{ fromEnv: LIMITS_TEST_REDIS_URL }',
        'failClosed',
        `    - { name: echo-hourly, scope: agent, match: { tool: echo }, points: 5, durationMs: 3600000, algorithm: slidingWindow }
    - { name: slow-burst, scope: tool, match: { tool: slow }, points: 1, burst: 7, durationMs: 3600000, algorithm: tokenBucket }`,
        '  chain: { perTask: 3, perSession: 1000 }\n',
      ).replace('keyPrefix: "test:', 'keyPrefix: "shared:'),
    );
    // Both replicas get the same file (and so the same key prefix).
    const env = { LIMITS_TEST_REDIS_URL: redis.url };
    [gatewayA, gatewayB] = await Promise.all([serve(dir, 'a', yaml, env), serve(dir, 'b', yaml, env)]);
    clients = await Promise.all([httpClient(gatewayA.url), httpClient(gatewayB.url), httpClient(gatewayA.url, OTHER_TOKEN)]);
  });

  after(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all([gatewayA?.stop(), gatewayB?.stop()]);
    await redis?.kill();
    dir.cleanup();
  });

  test('sliding window: a limit of 5 allows exactly 5 calls in the window, alternating between the replicas', async () => {
    const [viaA, viaB] = clients as [Client, Client];
    const results = [];
    for (let index = 0; index < 10; index += 1) results.push(await call(index % 2 === 0 ? viaA : viaB, 'up.echo', { text: String(index) }));
    assert.equal(results.filter((result) => result.ok).length, 5);
    assert.deepEqual(results.map((result) => result.ok), [true, true, true, true, true, false, false, false, false, false]);
    const denied = results[5];
    assert.equal(denied?.code, ErrorCode.RateLimited);
    assert.equal(denied?.data?.['limit'], 'echo-hourly');
    assert.ok(Number(denied?.data?.['retryAfterMs']) > 0);
    assert.equal((await call(clients[2] as Client, 'up.echo')).ok, true, 'bob has his own counter on replica A');
  });

  test('token bucket: 30 concurrent calls spread over both replicas, exactly burst (7) pass', async () => {
    const results = await Promise.all(Array.from({ length: 30 }, (_, index) => call(clients[index % 3] as Client, 'up.slow', { ms: 1 })));
    assert.equal(results.filter((result) => result.ok).length, 7);
    assert.ok(results.filter((result) => !result.ok).every((result) => result.data?.['limit'] === 'slow-burst'));
  });

  test('chain length per task is counted across replicas', async () => {
    const results = [];
    for (let index = 0; index < 5; index += 1) results.push(await call(clients[index % 2] as Client, 'up.slow', { ms: 1 }, { taskId: 'shared-task' }).then((result) => (result.ok ? 'ok' : String(result.data?.['reason']))));
    // The slow-burst bucket is empty after the previous test: calls a rate limit refuses never reach the chain count.
    assert.ok(results.every((result) => result === 'rate_limited'));
    const chain = [];
    for (let index = 0; index < 5; index += 1) chain.push(await call(clients[index % 2] as Client, 'up.set-flaky', {}, { taskId: 'shared-task' }).then((result) => (result.ok ? 'ok' : String(result.data?.['limit']))));
    assert.deepEqual(chain, ['ok', 'ok', 'ok', 'perTask', 'perTask']);
  });
});

describe('Redis failures during a run: failClosed refuses, fallbackLocal counts locally, both recover', () => {
  let redis: RunningRedis;
  let closed: RunningGateway;
  let fallback: RunningGateway;
  let closedClient: Client;
  let fallbackClient: Client;

  before(async () => {
    redis = await startRedis();
    const rule = '    - { name: echo-minute, scope: agent, points: 3, durationMs: 3600000, algorithm: slidingWindow }';
    closed = await startGateway(configYaml(stdioServer('up', fixture('limits-server')), quotasYaml(redis.url, 'failClosed', rule)));
    fallback = await startGateway(configYaml(stdioServer('up', fixture('limits-server')), quotasYaml(redis.url, 'fallbackLocal', rule)));
    closedClient = await httpClient(closed.url);
    fallbackClient = await httpClient(fallback.url);
  });

  after(async () => {
    await closedClient?.close();
    await fallbackClient?.close();
    await closed?.stop();
    await fallback?.stop();
    await redis?.kill();
  });

  test('stopping Redis mid-run', async () => {
    assert.equal((await call(closedClient, 'up.echo')).ok, true);
    assert.equal((await call(fallbackClient, 'up.echo')).ok, true, 'fallback gateway: 1 of 3 counted in Redis');
    await redis.kill();

    const refused = await call(closedClient, 'up.echo');
    assert.equal(refused.code, ErrorCode.RateLimited);
    assert.equal(refused.data?.['reason'], 'limits_unavailable');
    assert.ok(Number(refused.data?.['retryAfterMs']) > 0);

    // The local count starts from zero: three more pass, the fourth is refused by the same rule.
    const local = [];
    for (let index = 0; index < 4; index += 1) local.push(await call(fallbackClient, 'up.echo'));
    assert.deepEqual(local.map((result) => result.ok), [true, true, true, false]);
    assert.equal(local[3]?.data?.['limit'], 'echo-minute');

    await redis.restart();
    await until(async () => (await call(closedClient, 'up.echo')).ok);
    // The local window is full for an hour, so a call that passes now was counted in Redis again
    // (which restarted empty: it had no persistence).
    await until(async () => (await call(fallbackClient, 'up.echo')).ok);

    await closed.bastion.audit.flush();
    const denied = auditRecords(closed.bastion.audit.dir).filter((record) => record.kind === 'request' && record.reason === 'limits_unavailable');
    assert.ok(denied.length >= 1 && denied.every((record) => record.decision === 'deny' && record.denied_by === 'limits'));
    await fallback.bastion.audit.flush();
    const states = auditRecords(fallback.bastion.audit.dir).filter((record) => record.event === 'limits.store').map((record) => String(record.info?.['state']));
    assert.deepEqual(states.filter((state) => state === 'fallback_local' || state === 'shared'), ['fallback_local', 'shared'], states.join(','));
  });
});
