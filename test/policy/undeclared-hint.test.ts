import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { auditRecords } from '../helpers/audit.js';
import { spawnSync } from 'node:child_process';
import { BASTION_BIN, httpClient, referenceServer, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { policyGatewayYaml, tempDir } from './helpers.js';

describe('a server whose tools are all undeclared', () => {
  const files = tempDir('bastion-undeclared-');
  let gw: RunningGateway;

  before(async () => {
    const policyFile = files.write('policy.yaml', 'version: 1\nagents:\n  alice:\n    grants: ["exec:tools:[bare.*, declared.*]"]\n');
    const server = (name: string, tools: string): string => `  ${name}:\n    transport: stdio\n    command: ${JSON.stringify(process.execPath)}\n    args: [${JSON.stringify(referenceServer('everything'))}]\n    trust: unsigned\n${tools}`;
    gw = await startGateway(policyGatewayYaml({ agents: ['alice'], policyFile, servers: `${server('bare', '')}\n${server('declared', '    tools:\n      echo: { scopes: [] }\n')}` }));
  });

  after(async () => {
    await gw?.stop();
    files.cleanup();
  });

  test('is hidden from agents (fail closed), and the gateway says once, with the fix, why the list is empty', async () => {
    const client = await httpClient(gw.url, 'alice-token');
    try {
      const first = await client.listTools();
      assert.deepEqual(first.tools.map((tool) => tool.name), ['declared.echo'], 'only the declared tool is visible');
      await client.listTools();
    } finally {
      await client.close();
    }
    await gw.bastion.audit.flush();
    const hints = auditRecords(gw.bastion.audit.dir).filter((record) => record.event === 'server.tools_undeclared');
    assert.equal(hints.length, 1, 'one hint per server, not one per list');
    assert.equal(hints[0]?.info?.['server'], 'bare');
    assert.ok(Number(hints[0]?.info?.['tools']) > 5, 'it counts the tools the server offers');
    assert.match(String(hints[0]?.info?.['fix']), /servers\.bare\.tools .*manifest from-server --config bastion\.yaml --server bare/);
  });
});

test('bastion doctor --config names a server that declares no tools, with the command that drafts its manifest', () => {
  const files = tempDir('bastion-doctor-hint-');
  try {
    const policyFile = files.write('policy.yaml', 'version: 1\nagents: {}\n');
    const server = (name: string, tools: string): string => `  ${name}:\n    transport: stdio\n    command: ${JSON.stringify(process.execPath)}\n    args: ["server.js"]\n    trust: unsigned\n${tools}`;
    const config = files.write('bastion.yaml', policyGatewayYaml({ agents: ['alice'], policyFile, servers: `${server('bare', '')}\n${server('declared', '    tools:\n      echo: { scopes: [] }\n')}` }));
    const result = spawnSync(process.execPath, [BASTION_BIN, 'doctor', '--json', '--config', config], { encoding: 'utf8' });
    const report = JSON.parse(result.stdout) as { configHints: Array<{ control: string; detail: string }> };
    assert.deepEqual(report.configHints.map((hint) => hint.control), ['server:bare']);
    assert.match(report.configHints[0]?.detail ?? '', /hidden from agents.*manifest from-server --config .*bastion\.yaml --server bare/);
  } finally {
    files.cleanup();
  }
});
