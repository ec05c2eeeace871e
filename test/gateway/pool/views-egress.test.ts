// Egress follows the agent too: a server declares two destinations, each of two agents is granted
// one. Through a tool that declares no destination (so the gateway's policy passes any argument),
// each agent's pooled process reaches its own destination through the egress broker and is
// refused the other's (real bubblewrap, real broker, two listeners on 127.0.0.1).
import assert from 'node:assert/strict';
import { writeFileSync, realpathSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { firstText, fixture, httpClient, startGateway, stdioServer, tempDir, type RunningGateway } from '../../helpers/gateway.js';
import { policyGatewayYaml } from '../../policy/helpers.js';

interface Listener {
  server: Server;
  port: number;
  connections: number;
}

async function listen(): Promise<Listener> {
  const listener: Listener = { server: createServer(), port: 0, connections: 0 };
  listener.server.on('connection', (socket) => {
    listener.connections += 1;
    socket.end('hello-from-outside\n');
  });
  await new Promise<void>((resolve) => listener.server.listen(0, '127.0.0.1', resolve));
  const address = listener.server.address();
  listener.port = typeof address === 'object' && address !== null ? address.port : 0;
  return listener;
}

async function connectThroughProxy(client: Client, port: number): Promise<{ ok: boolean; detail: string }> {
  return JSON.parse(firstText(await client.callTool({ name: 'net.proxy_connect', arguments: { host: '127.0.0.1', port } }))) as { ok: boolean; detail: string };
}

describe('per-agent egress (bwrap)', () => {
  const tmp = tempDir('bastion-pool-egress-');
  const root = realpathSync(tmp.path);
  let gw: RunningGateway;
  let alice: Client;
  let bob: Client;
  let mine: Listener;
  let theirs: Listener;

  before(async () => {
    [mine, theirs] = await Promise.all([listen(), listen()]);
    const grant = (port: number): string => ['    grants:', '      - "exec:tools:[net.proxy_connect]"', `      - "write:network:127.0.0.1:${port}"`].join('\n');
    writeFileSync(join(root, 'policy.yaml'), `version: 1\nagents:\n  alice:\n${grant(mine.port)}\n  bob:\n${grant(theirs.port)}\n`);
    const server = stdioServer('net', fixture('hostile-server'), [], [
      `    scopes: ["write:network:127.0.0.1:${mine.port}", "write:network:127.0.0.1:${theirs.port}"]`,
      '    isolation: agent',
      '    tools:',
      '      proxy_connect: { scopes: [] }',
      '',
    ].join('\n'));
    gw = await startGateway(policyGatewayYaml({ agents: ['alice', 'bob'], policyFile: join(root, 'policy.yaml'), servers: server }).replace('sandbox: { backend: none }', 'sandbox: { backend: bwrap }'));
    [alice, bob] = await Promise.all([httpClient(gw.url, 'alice-token'), httpClient(gw.url, 'bob-token')]);
  });

  after(async () => {
    await Promise.all([alice?.close(), bob?.close()]);
    await gw?.stop();
    await Promise.all([mine, theirs].map((listener) => new Promise((resolve) => listener?.server.close(resolve))));
    tmp.cleanup();
  });

  it("each agent's process reaches its own destination and is refused the other agent's", async () => {
    const aliceOwn = await connectThroughProxy(alice, mine.port);
    assert.equal(aliceOwn.ok, true, aliceOwn.detail);
    const aliceOther = await connectThroughProxy(alice, theirs.port);
    assert.equal(aliceOther.ok, false);
    assert.match(aliceOther.detail, /proxy answered 403/);
    assert.equal(theirs.connections, 0, "nothing reached bob's destination from alice's process");
    const bobOwn = await connectThroughProxy(bob, theirs.port);
    assert.equal(bobOwn.ok, true, bobOwn.detail);
    assert.equal(theirs.connections, 1);
    assert.equal((await connectThroughProxy(bob, mine.port)).ok, false);
    assert.equal(mine.connections, 1, 'only alice reached hers');
  });
});
