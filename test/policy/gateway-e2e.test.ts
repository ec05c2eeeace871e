import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { serverUid } from '../../src/sandbox/index.js';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { hashToken } from '../../src/auth/index.js';
import { firstText, httpClient, referenceServer, startGateway, stdioServer, tempDir, type RunningGateway } from '../helpers/gateway.js';

const FIXTURES = fileURLToPath(new URL('../../../test/policy/fixtures/', import.meta.url));

/** Calls a tool and returns the error message, or undefined if the call succeeded. */
async function denial(client: Client, name: string, args: Record<string, unknown>): Promise<string | undefined> {
  return client.callTool({ name, arguments: args }).then(
    (result) => (result.isError === true ? `tool error: ${firstText(result)}` : undefined),
    (error: Error) => error.message,
  );
}

describe('least privilege through the gateway, with the real filesystem server', () => {
  const tmp = tempDir('bastion-policy-gw-');
  const root = realpathSync(tmp.path);
  let gw: RunningGateway;
  let reader: Client;
  let writer: Client;
  let bystander: Client;

  before(async () => {
    chmodSync(root, 0o755);
    mkdirSync(join(root, 'allowed', 'out'), { recursive: true });
    // The server runs sandboxed as its own uid: the directory it may write is handed to it.
    if (process.getuid?.() === 0) chownSync(join(root, 'allowed', 'out'), serverUid('filesystem'), serverUid('filesystem'));
    mkdirSync(join(root, 'secret'));
    writeFileSync(join(root, 'allowed', 'notes.txt'), 'allowed content\n');
    writeFileSync(join(root, 'secret', 'key.txt'), 'TOP SECRET\n');
    symlinkSync(join(root, 'secret'), join(root, 'allowed', 'escape'));
    // Stored decomposed (cafe + U+0301); the server matches the composed spelling to it.
    symlinkSync(join(root, 'secret'), join(root, 'allowed', 'cafe\u0301'));
    const policy = readFileSync(join(FIXTURES, 'filesystem.policy.yaml'), 'utf8').replaceAll('/tmp/bastion-policy-e2e', root);
    writeFileSync(join(root, 'policy.yaml'), policy);
    const yaml = `version: 1
stateDir: state
listeners:
  http: { host: 127.0.0.1, port: 0 }
auth:
  apiTokens:
    - { agent: reader, sha256: ${hashToken('reader-token')} }
    - { agent: writer, sha256: ${hashToken('writer-token')} }
    - { agent: bystander, sha256: ${hashToken('bystander-token')} }
    - { agent: stranger, sha256: ${hashToken('stranger-token')} }
policy:
  files: [${JSON.stringify(join(root, 'policy.yaml'))}]
  manifests: [${JSON.stringify(join(FIXTURES, 'filesystem.manifest.yaml'))}]
sandbox: { backend: bwrap }
servers:
${stdioServer('filesystem', referenceServer('filesystem'), [root], `    scopes: [${JSON.stringify(`read:filesystem:${root}`)}, ${JSON.stringify(`write:filesystem:${join(root, 'allowed', 'out')}`)}]\n`)}`;
    gw = await startGateway(yaml);
    [reader, writer, bystander] = await Promise.all([httpClient(gw.url, 'reader-token'), httpClient(gw.url, 'writer-token'), httpClient(gw.url, 'bystander-token')]);
  });

  after(async () => {
    await Promise.all([reader?.close(), writer?.close(), bystander?.close()]);
    await gw?.stop();
    tmp.cleanup();
  });

  test('an agent granted read on a directory reads inside it', async () => {
    const result = await reader.callTool({ name: 'filesystem.read_text_file', arguments: { path: join(root, 'allowed', 'notes.txt') } });
    assert.match(firstText(result), /allowed content/);
  });

  const attacks: Array<[string, (root: string) => string]> = [
    ['a sibling directory by absolute path', (r) => join(r, 'secret', 'key.txt')],
    ['a path that climbs out with ..', (r) => `${r}/allowed/../secret/key.txt`],
    ['a symlink inside the grant that points out of it', (r) => join(r, 'allowed', 'escape', 'key.txt')],
    ['the NFC spelling of an NFD-named symlink that points out of the grant', (r) => join(r, 'allowed', 'caf\u00e9', 'key.txt')],
    ['a percent-encoded traversal', (r) => `${r}/allowed/%2e%2e/secret/key.txt`],
    ['a case variant of the granted directory', (r) => join(r, 'ALLOWED', 'notes.txt')],
    ['a prefix look-alike of the granted directory', (r) => `${r}/allowed-not/notes.txt`],
    ['a NUL byte', (r) => `${r}/allowed/notes.txt\u0000.png`],
    ['a relative path', () => 'allowed/notes.txt'],
    ['/etc/passwd', () => '/etc/passwd'],
  ];
  for (const [name, path] of attacks) {
    test(`reading ${name} is denied by policy before the server sees it`, async () => {
      const message = await denial(reader, 'filesystem.read_text_file', { path: path(root) });
      assert.ok(message !== undefined, 'the call was allowed');
      assert.match(message, /denied by policy/);
    });
  }

  test('write needs its own grant: the reader may not write, the writer may write only in its directory', async () => {
    assert.match((await denial(reader, 'filesystem.write_file', { path: join(root, 'allowed', 'out', 'x.txt'), content: 'x' })) ?? '', /denied by policy/);
    assert.equal(await denial(writer, 'filesystem.write_file', { path: join(root, 'allowed', 'out', 'x.txt'), content: 'x' }), undefined);
    assert.match((await denial(writer, 'filesystem.write_file', { path: join(root, 'allowed', 'notes.txt'), content: 'overwrite' })) ?? '', /denied by policy/);
    assert.equal(readFileSync(join(root, 'allowed', 'notes.txt'), 'utf8'), 'allowed content\n');
  });

  test('a move is checked on both ends', async () => {
    writeFileSync(join(root, 'allowed', 'out', 'm.txt'), 'm');
    const message = await denial(writer, 'filesystem.move_file', { source: join(root, 'allowed', 'out', 'm.txt'), destination: join(root, 'secret', 'm.txt') });
    assert.match(message ?? '', /denied by policy/);
  });

  test('tools/list shows each agent only the tools it may call', async () => {
    const readerTools = (await reader.listTools()).tools.map((tool) => tool.name);
    assert.ok(readerTools.includes('filesystem.read_text_file'));
    assert.ok(!readerTools.includes('filesystem.write_file'));
    const writerTools = (await writer.listTools()).tools.map((tool) => tool.name);
    assert.ok(writerTools.includes('filesystem.write_file'));
    assert.deepEqual((await bystander.listTools()).tools, []);
  });

  test('an agent with no policy is denied everything, with the reason', async () => {
    const stranger = await httpClient(gw.url, 'stranger-token');
    assert.deepEqual((await stranger.listTools()).tools, []);
    assert.match((await denial(stranger, 'filesystem.list_allowed_directories', {})) ?? '', /denied by policy/);
    await stranger.close();
  });

  test('every denial is in the audit log with its reason', async () => {
    await gw.bastion.audit.flush();
    const segments = join(gw.bastion.audit.dir, 'segments');
    const lines = readdirSync(segments).filter((file) => file.endsWith('.jsonl')).map((file) => readFileSync(join(segments, file), 'utf8')).join('');
    assert.match(lines, /"decision":"deny"/);
    assert.match(lines, /"denied_by":"policy"/);
  });
});

describe('server-to-client requests are a policy decision', () => {
  let gw: RunningGateway;
  const tmp = tempDir('bastion-policy-sampling-');

  before(async () => {
    writeFileSync(join(tmp.path, 'policy.yaml'), `version: 1
agents:
  allowed:
    grants: ["exec:tools:*", "exec:sampling:[everything]"]
  refused:
    grants: ["exec:tools:*"]
`);
    const yaml = `version: 1
stateDir: state
listeners:
  http: { host: 127.0.0.1, port: 0 }
auth:
  apiTokens:
    - { agent: allowed, sha256: ${hashToken('allowed-token')} }
    - { agent: refused, sha256: ${hashToken('refused-token')} }
policy:
  files: [${JSON.stringify(join(tmp.path, 'policy.yaml'))}]
sandbox: { backend: none }
servers:
${stdioServer('everything', referenceServer('everything'), ['stdio'], '    tools:\n      trigger-sampling-request: { scopes: [] }\n')}`;
    gw = await startGateway(yaml);
  });

  after(async () => {
    await gw?.stop();
    tmp.cleanup();
  });

  for (const [agent, expectSampled] of [['allowed', true], ['refused', false]] as const) {
    test(`a server may ask ${agent === 'allowed' ? 'an agent that granted it' : 'an agent that did not grant it'} for sampling: ${expectSampled ? 'relayed' : 'refused'}`, async () => {
      const client = await httpClient(gw.url, `${agent}-token`, { sampling: {} });
      let asked = false;
      client.setRequestHandler(CreateMessageRequestSchema, async () => {
        asked = true;
        return { role: 'assistant', content: { type: 'text', text: 'sampled' }, model: 'm', stopReason: 'endTurn' };
      });
      const result = await client.callTool({ name: 'everything.trigger-sampling-request', arguments: { prompt: 'hi', maxTokens: 5 } }).then(JSON.stringify, (error: Error) => error.message);
      assert.equal(asked, expectSampled);
      if (!expectSampled) assert.match(result, /denied by Bastion policy|denied/i);
      await client.close();
    });
  }
});
