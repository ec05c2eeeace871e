import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ConfigError, loadConfigText } from '../../src/config/index.js';
import { Namespace } from '../../src/gateway/index.js';
import { auditRecords } from '../helpers/audit.js';
import { configYaml, firstText, httpClient, referenceServer, startGateway, stdioServer, tempDir, type RunningGateway } from '../helpers/gateway.js';

describe('Namespace: public names and routing', () => {
  const prefixed = new Namespace(['files', 'memory']);
  const mixed = new Namespace(['files', 'memory', 'plain'], 'plain');

  test('every server prefixed: names split at the first separator', () => {
    assert.equal(prefixed.publicName('files', 'read'), 'files.read');
    assert.deepEqual(prefixed.splitName('files.read.v2'), { server: 'files', name: 'read.v2' });
    assert.deepEqual(prefixed.splitUri('memory+file:///a+b'), { server: 'memory', name: 'file:///a+b' });
    assert.equal(prefixed.splitName('read'), undefined, 'no server, no route');
    assert.equal(prefixed.splitName('.read'), undefined);
    assert.equal(prefixed.splitName(42), undefined);
  });

  test('an unprefixed server owns every name that does not start with another server\'s prefix', () => {
    assert.equal(mixed.publicName('plain', 'echo'), 'echo');
    assert.equal(mixed.publicUri('plain', 'test://x'), 'test://x');
    assert.deepEqual(mixed.splitName('echo'), { server: 'plain', name: 'echo' });
    assert.deepEqual(mixed.splitName('files.read'), { server: 'files', name: 'read' });
    assert.deepEqual(mixed.splitName('unknown.tool'), { server: 'plain', name: 'unknown.tool' }, 'a dotted name of its own');
    assert.deepEqual(mixed.splitName('plain.echo'), { server: 'plain', name: 'plain.echo' }, 'its own name is never a prefix');
    assert.deepEqual(mixed.splitUri('test://static/1'), { server: 'plain', name: 'test://static/1' });
    assert.deepEqual(mixed.splitUri('memory+test://1'), { server: 'memory', name: 'test://1' });
    assert.equal(mixed.splitName(''), undefined);
  });

  test('its names that would route elsewhere are shadowed; other servers never are', () => {
    assert.equal(mixed.shadowed('plain', 'files.read', '.'), true);
    assert.equal(mixed.shadowed('plain', 'echo', '.'), false);
    assert.equal(mixed.shadowed('plain', 'memory+x', '+'), true);
    assert.equal(mixed.shadowed('files', 'memory.read', '.'), false);
  });

  test('result URIs are rewritten only for prefixed servers', () => {
    const result = { content: [{ type: 'resource', resource: { uri: 'test://a', text: 'x' } }] };
    assert.deepEqual(mixed.prefixResourceUris('plain', result), result);
    assert.deepEqual(mixed.prefixResourceUris('files', result), { content: [{ type: 'resource', resource: { uri: 'files+test://a', text: 'x' } }] });
  });
});

describe('config: namespaced: false', () => {
  test('at most one server may keep its own names; the error names the second one and its line', () => {
    const text = `version: 1
servers:
  a: { transport: stdio, command: node, namespaced: false }
  b:
    transport: stdio
    command: node
    namespaced: false
`;
    assert.throws(
      () => loadConfigText(text, 'bastion.yaml', '/tmp'),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        const [problem] = error.problems;
        assert.equal(error.problems.length, 1);
        assert.equal(problem?.field, 'servers.b.namespaced');
        assert.equal(problem?.line, 7);
        assert.match(problem?.message ?? '', /'a' already does/);
        return true;
      },
    );
    assert.equal(loadConfigText(text.replace(/\n {4}namespaced: false\n/, '\n'), 'bastion.yaml', '/tmp').config.servers['a']?.namespaced, false);
  });
});

describe('an unprefixed reference server next to a prefixed one, through the gateway', () => {
  let gw: RunningGateway;
  let client: Client;
  const files = tempDir('bastion-ns-');

  before(async () => {
    writeFileSync(join(files.path, 'memory.jsonl'), '');
    gw = await startGateway(
      configYaml(
        stdioServer('everything', referenceServer('everything'), ['stdio'], '    namespaced: false\n') +
          stdioServer('memory', referenceServer('memory'), [], `    env:\n      MEMORY_FILE_PATH: ${JSON.stringify(join(files.path, 'memory.jsonl'))}\n`),
      ),
    );
    client = await httpClient(gw.url);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
    files.cleanup();
  });

  test('lists the unprefixed server\'s tools under their own names and the other server\'s with its prefix', async () => {
    const names = (await client.listTools()).tools.map((tool) => tool.name);
    assert.ok(names.includes('echo'), `echo in ${names.join(', ')}`);
    assert.ok(names.includes('memory.read_graph'));
    assert.ok(!names.some((name) => name.startsWith('everything.')));
  });

  test('calls route by name: bare names to the unprefixed server, prefixed names to theirs', async () => {
    assert.equal(firstText(await client.callTool({ name: 'echo', arguments: { message: 'bare' } })), 'Echo: bare');
    const graph = await client.callTool({ name: 'memory.read_graph', arguments: {} });
    assert.match(firstText(graph), /entities/);
    await assert.rejects(client.callTool({ name: 'no_such_tool', arguments: {} }), /unknown tool/);
  });

  test('resources keep their own URIs and read back through the gateway', async () => {
    const { resources } = await client.listResources();
    const first = resources[0];
    assert.ok(first !== undefined && !first.uri.startsWith('everything+'), `uri ${String(first?.uri)}`);
    const read = await client.readResource({ uri: first.uri });
    assert.equal(read.contents[0]?.uri, first.uri);
  });

  test('the audit record still names the real server and tool', async () => {
    await gw.bastion.audit.flush();
    const records = auditRecords(gw.bastion.audit.dir);
    const echo = records.find((record) => record.kind === 'request' && record.tool === 'echo' && record.decision === 'allow');
    assert.equal(echo?.server, 'everything');
  });
});
