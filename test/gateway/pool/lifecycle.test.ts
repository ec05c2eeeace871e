// A pooled process's life after its start: stopped when idle for pool.idleSeconds (audited) and
// started again by the next call, the sessions untouched; and, after a policy reload that changes
// an agent's grants, drained (its call in flight finishes) and restarted with the new view.
import assert from 'node:assert/strict';
import { existsSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { TEST_TOKEN, configYaml, firstText, fixture, httpClient, startGateway, stdioServer, tempDir, type RunningGateway } from '../../helpers/gateway.js';
import { auditRecords, type LoggedRecord } from '../../helpers/audit.js';
import { agentDirectories, call, until, viewsGatewayYaml, viewsPolicy } from './views-helpers.js';

function recycled(gw: RunningGateway, reason: RegExp): LoggedRecord[] {
  return auditRecords(gw.bastion.audit.dir).filter((record) => record.event === 'upstream.recycled' && reason.test(JSON.stringify(record)));
}

describe('idle recycle', () => {
  let gw: RunningGateway;
  let client: Client;

  before(async () => {
    gw = await startGateway(configYaml(stdioServer('pool', fixture('pool-server'), [], '    isolation: agent\n    pool: { idleSeconds: 1 }')));
    client = await httpClient(gw.url, TEST_TOKEN);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
  });

  it('a process idle for idleSeconds is stopped and audited; the next call of the same session starts a new one', async () => {
    const whoami = async (): Promise<number> => (JSON.parse(firstText(await client.callTool({ name: 'pool.whoami', arguments: {} }))) as { pid: number }).pid;
    const first = await whoami();
    const [pooled] = gw.gateway.pools.list('pool');
    assert.ok(pooled !== undefined && pooled.pid !== undefined, 'running after the call');
    await until(() => pooled.pid === undefined, 'the idle process to stop');
    await until(() => recycled(gw, /idle for 1000 ms/).length === 1, 'the upstream.recycled record');
    const record = recycled(gw, /idle for 1000 ms/)[0];
    assert.equal(record?.info?.['agent_id'], 'alice');
    const second = await whoami();
    assert.notEqual(second, first, 'a new process');
    assert.equal(gw.gateway.pools.list('pool').length, 1, 'the same pool entry, restarted');
    assert.equal(gw.gateway.http?.sessionCount, 1, 'the session survived');
  });
});

describe('policy reload re-derives the views (bwrap)', () => {
  const tmp = tempDir('bastion-pool-reload-');
  const root = realpathSync(tmp.path);
  let gw: RunningGateway;
  let alice: Client;
  let bob: Client;

  before(async () => {
    agentDirectories(root, ['a', 'b', 'c']);
    writeFileSync(join(root, 'a', 'own.txt'), 'A-own');
    writeFileSync(join(root, 'c', 'new.txt'), 'C-new');
    writeFileSync(join(root, 'policy.yaml'), viewsPolicy(root, { alice: 'a', bob: 'b' }));
    gw = await startGateway(viewsGatewayYaml(root, ['alice', 'bob']));
    [alice, bob] = await Promise.all([httpClient(gw.url, 'alice-token'), httpClient(gw.url, 'bob-token')]);
  });

  after(async () => {
    await Promise.all([alice?.close(), bob?.close()]);
    await gw?.stop();
    tmp.cleanup();
  });

  it('SIGHUP with a new grant: the call in flight finishes, the next calls reach a process with the new view; another agent is untouched', async () => {
    assert.equal(await call(alice, 'exists', { path: join(root, 'c', 'new.txt') }), 'no', 'not granted yet');
    await call(bob, 'whoami', {});
    const processOf = (agent: string) => gw.gateway.pools.list('probe').find((process) => process.facts.agentId === agent);
    const [alicePid, bobPid] = [processOf('alice')?.pid, processOf('bob')?.pid];
    assert.ok(alicePid !== undefined && bobPid !== undefined);

    const out = join(root, 'a', 'read.txt');
    const inFlight = call(alice, 'read_later', { path: join(root, 'a', 'own.txt'), go: join(root, 'a', 'go'), out });
    await until(() => existsSync(`${out}.started`), 'the call to reach the server');

    writeFileSync(join(root, 'policy.yaml'), viewsPolicy(root, { alice: ['a', 'c'], bob: 'b' }));
    process.kill(process.pid, 'SIGHUP');
    await until(() => processOf('alice')?.draining !== undefined, 'the drain of alice\'s process');
    assert.equal(processOf('alice')?.pid, alicePid, 'still the old process while its call runs');
    // Routed during the drain: it waits, and runs on the restarted process.
    const duringDrain = call(alice, 'exists', { path: join(root, 'c', 'new.txt') });
    writeFileSync(join(root, 'a', 'go'), 'go');

    assert.equal(await inFlight, 'A-own', 'the call in flight finished on the old process');
    assert.equal(await duringDrain, 'yes', 'the new grant is in the new view');
    assert.notEqual(processOf('alice')?.pid, alicePid, 'alice has a new process');
    assert.equal(processOf('bob')?.pid, bobPid, "bob's grants did not change: same process");
    assert.equal(await call(bob, 'exists', { path: join(root, 'c', 'new.txt') }), 'no');
    await until(() => recycled(gw, /the policy changed the sandbox view/).length === 1, 'the upstream.recycled record');
  });
});
