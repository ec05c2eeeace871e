import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ListRootsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { configYaml, firstText, fixture, httpClient, referenceServer, startGateway, stdioServer, tempDir, TEST_TOKEN, type RunningGateway } from '../helpers/gateway.js';

describe('server-to-client requests reach the client whose session they belong to', () => {
  let gw: RunningGateway;
  const rootA = tempDir('bastion-root-a-');
  const rootB = tempDir('bastion-root-b-');

  before(async () => {
    // No directory arguments: the filesystem server asks the client for its roots. isolation:
    // session gives each session its own process, whose roots are that session's client's (a
    // pooled server's roots are the agent's grants instead: test/gateway/pool/roots.test.ts).
    gw = await startGateway(configYaml(stdioServer('filesystem', referenceServer('filesystem'), [], '    isolation: session\n') + stdioServer('odd', fixture('misbehaving-server'))));
  });

  after(async () => {
    await gw?.stop();
    rootA.cleanup();
    rootB.cleanup();
  });

  async function clientWithRoot(path: string): Promise<Client> {
    const client = new Client({ name: 'roots-client', version: '1.0.0' }, { capabilities: { roots: { listChanged: true } } });
    client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [{ uri: `file://${path}`, name: 'workspace' }] }));
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.url), { requestInit: { headers: { Authorization: `Bearer ${TEST_TOKEN}` } } }));
    return client;
  }

  test('roots/list from an upstream is answered by its own client, never by another session', async () => {
    const [a, b] = await Promise.all([clientWithRoot(rootA.path), clientWithRoot(rootB.path)]);
    let seenA = '';
    let seenB = '';
    for (let attempt = 0; attempt < 40 && !(seenA.includes(rootA.path) && seenB.includes(rootB.path)); attempt += 1) {
      seenA = firstText(await a.callTool({ name: 'filesystem.list_allowed_directories', arguments: {} }));
      seenB = firstText(await b.callTool({ name: 'filesystem.list_allowed_directories', arguments: {} }));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.match(seenA, new RegExp(rootA.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.doesNotMatch(seenA, new RegExp(rootB.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.match(seenB, new RegExp(rootB.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    await Promise.all([a.close(), b.close()]);
  });

  test('an upstream that pages its tools/list is followed to the last page', async () => {
    const client = await httpClient(gw.url);
    const { tools } = await client.listTools();
    const odd = tools.filter((tool) => tool.name.startsWith('odd.')).map((tool) => tool.name);
    assert.deepEqual(odd.sort(), ['odd.cancelled', 'odd.crash', 'odd.echo', 'odd.flood', 'odd.garbage', 'odd.hang', 'odd.inject', 'odd.pid']);
    await client.close();
  });
});
