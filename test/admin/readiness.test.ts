import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { configYaml, fixture, httpClient, startGateway, stdioServer, type RunningGateway } from '../helpers/gateway.js';
import { startRedis, type RunningRedis } from '../limits/redis-helpers.js';
import { removeTree } from '../helpers/tmp.js';

interface Readiness {
  status: number;
  failed: string[];
  checks: { name: string; ok: boolean; detail: string }[];
}

async function readyz(admin: string): Promise<Readiness> {
  const response = await fetch(`${admin}/readyz`);
  const body = (await response.json()) as { failed: string[]; checks: Readiness['checks'] };
  return { status: response.status, failed: body.failed, checks: body.checks };
}

function detail(readiness: Readiness, name: string): string {
  return readiness.checks.find((check) => check.name === name)?.detail ?? '';
}

const ADMIN = 'listeners:\n  http:\n    host: 127.0.0.1\n    port: 0\n  admin:\n    port: 0\n    metrics: { public: true }';

describe('/readyz: admitted upstreams, circuit breakers and the Redis limit store', () => {
  let redis: RunningRedis;
  let running: RunningGateway;
  let admin: string;
  let client: Client;

  before(async () => {
    redis = await startRedis();
    // `broken` is a server whose process exits at once: node cannot find its script.
    const servers = stdioServer('up', fixture('limits-server')) + stdioServer('broken', join(tmpdir(), 'bastion-no-such-server-script.js'));
    const quotas = `quotas:\n  store: { kind: redis, url: ${redis.url}, keyPrefix: "readyz:${process.pid}:" }\n  breakers:\n    - { name: up-breaker, scope: server, match: { server: up }, consecutiveFailures: 2, openMs: 600000 }\nupstream: { restartBackoffMs: 60000, maxBackoffMs: 600000 }`;
    running = await startGateway(configYaml(servers, quotas, ADMIN));
    admin = (await running.bastion.startAdmin()) ?? assert.fail('no admin listener');
  });
  after(async () => {
    await client?.close();
    await running?.stop();
    await redis?.kill();
  });

  test('ready while no session has needed an upstream yet', async () => {
    const readiness = await readyz(admin);
    assert.equal(readiness.status, 200, JSON.stringify(readiness));
    assert.deepEqual(readiness.failed, []);
    assert.match(detail(readiness, 'upstreams'), /not started yet/);
  });

  test('a server whose last start failed makes the gateway not ready, and the body names it', async () => {
    client = await httpClient(running.url);
    const readiness = await readyz(admin);
    assert.equal(readiness.status, 503);
    assert.deepEqual(readiness.failed, ['upstreams']);
    assert.match(detail(readiness, 'upstreams'), /broken: last start failed \(1 in a row\)/);
    assert.doesNotMatch(detail(readiness, 'upstreams'), /up:/, 'the server that started is not blamed');
  });

  test('an open circuit breaker on a server is named', async () => {
    for (let index = 0; index < 2; index += 1) await client.callTool({ name: 'up.fail', arguments: {} }).catch(() => undefined);
    assert.equal(running.bastion.limits?.breakers.state('up-breaker', 'up'), 'open');
    const readiness = await readyz(admin);
    assert.equal(readiness.status, 503);
    assert.match(detail(readiness, 'upstreams'), /up: circuit breaker 'up-breaker' open for up/);
  });

  test('an unreachable Redis limit store fails limit-store; it passes again once Redis is back', async () => {
    assert.equal((await readyz(admin)).checks.find((check) => check.name === 'limit-store')?.ok, true);
    await redis.kill();
    const down = await readyz(admin);
    assert.ok(down.failed.includes('limit-store'), JSON.stringify(down));
    assert.match(detail(down, 'limit-store'), /Redis limit store does not answer/);
    await redis.restart();
    let back = await readyz(admin);
    // The client reconnects with backoff: ask until it has (each probe waits up to 500 ms for an answer).
    for (let attempt = 0; attempt < 40 && !back.checks.some((check) => check.name === 'limit-store' && check.ok); attempt += 1) back = await readyz(admin);
    assert.equal(back.checks.find((check) => check.name === 'limit-store')?.ok, true, JSON.stringify(back));
  });
});

describe('/readyz: an audit log that cannot be written', () => {
  let mountPoint: string;
  let running: RunningGateway;
  let admin: string;

  before(async () => {
    // A real full disk: a 4 MiB tmpfs for the state directory, filled after the gateway started.
    mountPoint = mkdtempSync(join(tmpdir(), 'bastion-readyz-'));
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountPoint], { encoding: 'utf8' });
    assert.equal(mounted.status, 0, `mounting a tmpfs needs root: ${mounted.stderr}`);
    mkdirSync(join(mountPoint, 'state'));
    const yaml = configYaml(stdioServer('up', fixture('limits-server')), '', ADMIN).replace('stateDir: state', `stateDir: ${join(mountPoint, 'state')}`);
    running = await startGateway(yaml);
    admin = (await running.bastion.startAdmin()) ?? assert.fail('no admin listener');
  });
  after(async () => {
    await running?.stop().catch(() => undefined);
    spawnSync('umount', [mountPoint]);
    removeTree(mountPoint);
  });

  test('once a write fails for lack of space, audit fails and the body says why', async () => {
    assert.equal((await readyz(admin)).status, 200);
    const { bavail, bsize } = statfsSync(mountPoint);
    writeFileSync(join(mountPoint, 'filler'), Buffer.alloc(Number(bavail) * Number(bsize)));
    const client = await httpClient(running.url).catch(() => undefined);
    await client?.callTool({ name: 'up.echo', arguments: {} }).catch(() => undefined);
    await client?.close().catch(() => undefined);
    const readiness = await readyz(admin);
    assert.equal(readiness.status, 503, JSON.stringify(readiness));
    assert.deepEqual(readiness.failed, ['audit']);
    assert.match(detail(readiness, 'audit'), /the audit log failed: .*ENOSPC/);
  });
});
