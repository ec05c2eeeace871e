// What each isolation level shares: `shared` one process for every agent, `session` one per
// session (the behaviour before pools), and what a crash of a pooled process does to the calls
// of every session on it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { poolsFor } from '../../../src/gateway/pool/registry.js';
import { OTHER_TOKEN, TEST_TOKEN, configYaml, firstText, fixture, httpClient, startGateway, stdioServer, type RunningGateway } from '../../helpers/gateway.js';

async function pidOf(client: Client, server: string): Promise<number> {
  return (JSON.parse(firstText(await client.callTool({ name: `${server}.whoami`, arguments: {} }))) as { pid: number }).pid;
}

async function waitingOn(client: Client, server: string): Promise<string[]> {
  return JSON.parse(firstText(await client.callTool({ name: `${server}.waiting`, arguments: {} }))) as string[];
}

describe('isolation levels', () => {
  let gw: RunningGateway;
  const clients: Client[] = [];
  const connect = async (token: string): Promise<Client> => {
    const client = await httpClient(gw.url, token);
    clients.push(client);
    return client;
  };

  before(async () => {
    const script = fixture('pool-server');
    gw = await startGateway(
      configYaml(
        [
          stdioServer('shared', script, [], '    isolation: shared'),
          stdioServer('own', script, [], '    isolation: session'),
          stdioServer('agent', script, [], '    isolation: agent\n    pool: { maxProcesses: 2 }'),
        ].join('\n'),
        // Crashes in this file are deliberate: restart at once.
        'upstream: { restartBackoffMs: 10 }',
      ),
    );
  });

  after(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await gw.stop();
  });

  it('shared: every agent uses one process', async () => {
    const [alice, bob] = await Promise.all([connect(TEST_TOKEN), connect(OTHER_TOKEN)]);
    assert.equal(await pidOf(alice, 'shared'), await pidOf(bob, 'shared'));
    assert.equal(poolsFor(gw.gateway.runtime).list('shared').length, 1);
  });

  it('session: every session of one agent has a process of its own, as before pools', async () => {
    const [one, two] = await Promise.all([connect(TEST_TOKEN), connect(TEST_TOKEN)]);
    assert.notEqual(await pidOf(one, 'own'), await pidOf(two, 'own'));
    assert.equal(poolsFor(gw.gateway.runtime).list('own').length, 0, 'nothing pooled');
  });

  it('agent with maxProcesses 2: sessions of one agent spread over two processes, never one of another agent', async () => {
    const alice = await Promise.all([connect(TEST_TOKEN), connect(TEST_TOKEN), connect(TEST_TOKEN)]);
    const bob = await connect(OTHER_TOKEN);
    const alicePids = new Set(await Promise.all(alice.map((client) => pidOf(client, 'agent'))));
    const bobPid = await pidOf(bob, 'agent');
    assert.ok(alicePids.size >= 1 && alicePids.size <= 2, `alice's sessions use at most two processes (got ${alicePids.size})`);
    assert.ok(!alicePids.has(bobPid), 'bob never shares a process with alice');
    const processes = poolsFor(gw.gateway.runtime).list('agent');
    const byAgent = new Map<string | null, number>();
    for (const process of processes) byAgent.set(process.facts.agentId, (byAgent.get(process.facts.agentId) ?? 0) + 1);
    assert.ok((byAgent.get('alice') ?? 0) <= 2);
  });

  it('a crash fails the in-flight calls of every session on the process, and the next call restarts it', async () => {
    const [one, two] = await Promise.all([connect(TEST_TOKEN), connect(TEST_TOKEN)]);
    const before = await pidOf(one, 'shared');
    assert.equal(await pidOf(two, 'shared'), before);
    const waits = [one.callTool({ name: 'shared.wait', arguments: { tag: 'w1' } }), two.callTool({ name: 'shared.wait', arguments: { tag: 'w2' } })].map((call) =>
      call.then(
        (result) => (result.isError === true ? firstText(result) : 'answered'),
        (error: Error) => error.message,
      ),
    );
    let upstream: string[] = [];
    while (!(upstream.includes('w1') && upstream.includes('w2'))) upstream = await waitingOn(one, 'shared');
    const crash = await one.callTool({ name: 'shared.crash', arguments: {} }).then(
      () => 'answered',
      (error: Error) => error.message,
    );
    assert.match(crash, /stopped during the call/);
    for (const outcome of await Promise.all(waits)) assert.match(outcome, /stopped during the call/);
    const after = await pidOf(two, 'shared');
    assert.notEqual(after, before, 'a new process');
    assert.equal(await pidOf(one, 'shared'), after, 'still one process for both');
  });
});
