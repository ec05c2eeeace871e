// A pooled server's roots are the agent's filesystem grants, answered by the gateway: no one
// client of the agent decides them, and the client is never asked.
import assert from 'node:assert/strict';
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ListRootsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { firstText, fixture, startGateway, stdioServer, tempDir, type RunningGateway } from '../../helpers/gateway.js';
import { policyGatewayYaml } from '../../policy/helpers.js';

describe('roots of a pooled server', () => {
  const tmp = tempDir('bastion-pool-roots-');
  const root = realpathSync(tmp.path);
  let gw: RunningGateway;

  before(async () => {
    mkdirSync(join(root, 'granted'));
    writeFileSync(
      join(root, 'policy.yaml'),
      `version: 1
agents:
  reader:
    grants:
      - "exec:tools:[pool.roots]"
      - "read:filesystem:${join(root, 'granted')}"
      - "read:roots:[pool]"
  other:
    grants:
      - "exec:tools:[pool.roots]"
`,
    );
    gw = await startGateway(policyGatewayYaml({ agents: ['reader', 'other'], policyFile: join(root, 'policy.yaml'), servers: stdioServer('pool', fixture('pool-server'), [], '    tools:\n      roots: { scopes: [] }') }));
  });

  after(async () => {
    await gw?.stop();
    tmp.cleanup();
  });

  async function client(agent: string, asked: string[]): Promise<Client> {
    const connected = new Client({ name: 'roots', version: '1.0.0' }, { capabilities: { roots: {} } });
    connected.setRequestHandler(ListRootsRequestSchema, () => {
      asked.push(agent);
      return { roots: [{ uri: 'file:///', name: 'everything' }] };
    });
    await connected.connect(new StreamableHTTPClientTransport(new URL(gw.url), { requestInit: { headers: { Authorization: `Bearer ${agent}-token` } } }));
    return connected;
  }

  it('are the agent\'s grants, whatever its client would answer; an agent without roots grants is refused', async () => {
    const asked: string[] = [];
    const reader = await client('reader', asked);
    const other = await client('other', asked);
    try {
      const roots = JSON.parse(firstText(await reader.callTool({ name: 'pool.roots', arguments: {} }))) as { roots: Array<{ uri: string }> };
      assert.deepEqual(roots.roots.map((entry) => entry.uri), [`file://${join(root, 'granted')}`]);
      assert.match(firstText(await other.callTool({ name: 'pool.roots', arguments: {} })), /^error: denied by Bastion policy/);
      assert.deepEqual(asked, [], 'no client was asked');
    } finally {
      await Promise.all([reader.close(), other.close()]);
    }
  });
});
