import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ListRootsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { filterRoots } from '../../src/policy/index.js';
import { firstText, referenceServer, startGateway, stdioServer, tempDir, type RunningGateway } from '../helpers/gateway.js';
import { policyGatewayYaml } from './helpers.js';

const FIXTURES = join(process.cwd(), 'test', 'policy', 'fixtures');

/**
 * The real filesystem server replaces its allowed directories with whatever roots the client
 * lists. A client (or a prompt-injected agent) that answers with wider roots than the agent's
 * grants would widen what the server itself enforces; the gateway narrows the answer first.
 */
describe("a client's roots/list answer is narrowed to the agent's grants", () => {
  const tmp = tempDir('bastion-policy-roots-');
  const root = realpathSync(tmp.path);
  let gw: RunningGateway;

  before(async () => {
    mkdirSync(join(root, 'allowed'), { recursive: true });
    mkdirSync(join(root, 'secret'));
    // isolation: session, so that the server asks this client (a pooled server is answered from the grants: test/gateway/pool/roots.test.ts).
    writeFileSync(
      join(root, 'policy.yaml'),
      `version: 1
agents:
  reader:
    grants:
      - "exec:tools:[filesystem.list_allowed_directories]"
      - "read:filesystem:${join(root, 'allowed')}"
      - "read:roots:[filesystem]"
`,
    );
    const yaml = policyGatewayYaml({ agents: ['reader'], policyFile: join(root, 'policy.yaml'), manifests: [join(FIXTURES, 'filesystem.manifest.yaml')], servers: stdioServer('filesystem', referenceServer('filesystem'), [join(root, 'allowed')], '    isolation: session') });
    gw = await startGateway(yaml);
  });

  after(async () => {
    await gw?.stop();
    tmp.cleanup();
  });

  test('an agent whose client lists / and the parent of its grant as roots: the server is given only the grant', async () => {
    const client = new Client({ name: 'wide-roots', version: '1.0.0' }, { capabilities: { roots: { listChanged: true } } });
    let asked = 0;
    client.setRequestHandler(ListRootsRequestSchema, async () => {
      asked += 1;
      return { roots: [{ uri: 'file:///', name: 'everything' }, { uri: `file://${root}`, name: 'parent' }, { uri: `file://${join(root, 'secret')}` }] };
    });
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.url), { requestInit: { headers: { Authorization: 'Bearer reader-token' } } }));
    let listed = '';
    for (let attempt = 0; attempt < 60 && asked === 0; attempt += 1) await new Promise((resolve) => setTimeout(resolve, 50));
    // The server applies the answer once it arrives; the listing then shows what it enforces.
    for (let attempt = 0; attempt < 20; attempt += 1) {
      listed = firstText(await client.callTool({ name: 'filesystem.list_allowed_directories', arguments: {} }));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(asked > 0, 'the server never asked for roots');
    const directories = listed.split('\n').slice(1).filter((line) => line !== '');
    assert.deepEqual(directories, [join(root, 'allowed')]);
    await client.close();
  });

  test('roots are intersected with the grants; malformed answers become an empty list', () => {
    const grants = [join(root, 'allowed')];
    assert.deepEqual(filterRoots({ roots: [{ uri: `file://${join(root, 'allowed')}/sub`, name: 'sub' }] }, grants).roots, [{ uri: `file://${join(root, 'allowed')}/sub`, name: 'sub' }]);
    assert.deepEqual(filterRoots({ roots: [{ uri: 'https://example.com/' }, { uri: `file://${root}/allowed/%2e%2e/secret` }, 'junk'] }, grants).roots, []);
    assert.deepEqual(filterRoots({ roots: 'not a list' }, grants).roots, []);
    assert.deepEqual(filterRoots(null, grants).roots, []);
  });
});
