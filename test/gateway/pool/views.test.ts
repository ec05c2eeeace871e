// At isolation agent a pooled process's sandbox binds only its agent's grants. Two agents with
// different directories on one server: each process sees its own directory and nothing of the
// other's, even through a tool that declares no path, and even when a directory the gateway has
// just checked is swapped for a symlink to the other agent's directory (real bubblewrap).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { httpClient, startGateway, tempDir, type RunningGateway } from '../../helpers/gateway.js';
import { agentDirectories, call, until, viewsGatewayYaml, viewsPolicy } from './views-helpers.js';

describe('per-agent sandbox views (bwrap)', () => {
  const tmp = tempDir('bastion-pool-views-');
  const root = realpathSync(tmp.path);
  let gw: RunningGateway;
  let alice: Client;
  let bob: Client;

  before(async () => {
    agentDirectories(root, ['a', 'b']);
    writeFileSync(join(root, 'a', 'own.txt'), 'A-own');
    writeFileSync(join(root, 'b', 'file.txt'), 'B-secret');
    writeFileSync(join(root, 'policy.yaml'), viewsPolicy(root, { alice: 'a', bob: 'b' }));
    gw = await startGateway(viewsGatewayYaml(root, ['alice', 'bob']));
    [alice, bob] = await Promise.all([httpClient(gw.url, 'alice-token'), httpClient(gw.url, 'bob-token')]);
  });

  after(async () => {
    await Promise.all([alice?.close(), bob?.close()]);
    await gw?.stop();
    tmp.cleanup();
  });

  it("an agent's process does not see the other agent's directory, even through a tool that declares no path", async () => {
    await Promise.all([call(alice, 'whoami', {}), call(bob, 'whoami', {})]);
    const processes = gw.gateway.pools.list('probe');
    assert.deepEqual(processes.map((process) => process.facts.agentId).sort(), ['alice', 'bob'], 'one process per agent');
    assert.notEqual(processes[0]?.pid, processes[1]?.pid);
    assert.equal(await call(alice, 'exists', { path: join(root, 'a', 'own.txt') }), 'yes');
    assert.equal(await call(alice, 'exists', { path: join(root, 'b', 'file.txt') }), 'no');
    assert.equal(await call(alice, 'exists', { path: join(root, 'b') }), 'no');
    assert.equal(await call(bob, 'exists', { path: join(root, 'b', 'file.txt') }), 'yes', 'bob sees his own');
    assert.equal(await call(bob, 'exists', { path: join(root, 'a', 'own.txt') }), 'no');
  });

  it("a directory swapped for a symlink to the other agent's directory after the check leads nowhere in the sandbox", async () => {
    mkdirSync(join(root, 'a', 'd'));
    writeFileSync(join(root, 'a', 'd', 'file.txt'), 'A-file');
    const out = join(root, 'a', 'leak.txt');
    const pending = call(alice, 'read_later', { path: join(root, 'a', 'd', 'file.txt'), go: join(root, 'a', 'go'), out });
    // The call passed the gateway's checks and reached the server: now swap the directory.
    await until(() => existsSync(`${out}.started`), 'the call to reach the server');
    rmSync(join(root, 'a', 'd'), { recursive: true });
    symlinkSync(join(root, 'b'), join(root, 'a', 'd'));
    writeFileSync(join(root, 'a', 'go'), 'go');
    const answer = await pending;
    await until(() => existsSync(out), 'the server to record what it read');
    const read = readFileSync(out, 'utf8');
    assert.match(read, /^error: ENOENT/, `the server found nothing behind the link (it read: ${read})`);
    assert.doesNotMatch(answer, /B-secret/);
  });

  it('the other agent, through the same tool, reads its own file', async () => {
    writeFileSync(join(root, 'b', 'go'), 'go');
    assert.equal(await call(bob, 'read_later', { path: join(root, 'b', 'file.txt'), go: join(root, 'b', 'go'), out: join(root, 'b', 'read.txt') }), 'B-secret');
  });
});

describe('a shared process binds only what every agent reaching it holds (bwrap)', () => {
  const tmp = tempDir('bastion-pool-views-shared-');
  const root = realpathSync(tmp.path);
  let gw: RunningGateway;
  let alice: Client;
  let bob: Client;

  before(async () => {
    agentDirectories(root, ['a', 'b']);
    writeFileSync(join(root, 'a', 'common.txt'), 'both may read');
    writeFileSync(join(root, 'b', 'bob-only.txt'), 'only bob may read');
    writeFileSync(join(root, 'policy.yaml'), viewsPolicy(root, { alice: 'a', bob: ['a', 'b'] }));
    gw = await startGateway(viewsGatewayYaml(root, ['alice', 'bob'], '', 'shared'));
    [alice, bob] = await Promise.all([httpClient(gw.url, 'alice-token'), httpClient(gw.url, 'bob-token')]);
  });

  after(async () => {
    await Promise.all([alice?.close(), bob?.close()]);
    await gw?.stop();
    tmp.cleanup();
  });

  it("one process; the directory both hold is there; bob's own is not, since alice must not get through it what only bob holds", async () => {
    assert.equal(await call(alice, 'exists', { path: join(root, 'a', 'common.txt') }), 'yes');
    assert.equal(await call(bob, 'exists', { path: join(root, 'a', 'common.txt') }), 'yes');
    assert.equal(await call(bob, 'exists', { path: join(root, 'b', 'bob-only.txt') }), 'no');
    assert.equal(gw.gateway.pools.list('probe').length, 1);
  });
});
