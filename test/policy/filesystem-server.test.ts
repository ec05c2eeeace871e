import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { compilePolicy, type PolicyEvaluator } from '../../src/policy/index.js';
import { tempDir } from './helpers.js';

const FIXTURES = join(process.cwd(), 'test', 'policy', 'fixtures');
const SERVER = join(process.cwd(), 'node_modules', '@modelcontextprotocol', 'server-filesystem', 'dist', 'index.js');

/**
 * The real filesystem server is started with the WHOLE temp directory allowed; the policy grants
 * only granted/. Each attack below is one the server itself would serve, so the policy is what
 * stops it. (The gateway end-to-end test puts the same check in the request path.)
 */
describe('policy in front of the real filesystem server', () => {
  const tmp = tempDir('bastion-policy-fs-');
  let client: Client;
  let policy: PolicyEvaluator;
  let granted = '';

  before(async () => {
    granted = join(tmp.dir, 'allowed');
    mkdirSync(join(granted, 'out'), { recursive: true });
    mkdirSync(join(tmp.dir, 'secret'));
    writeFileSync(join(granted, 'notes.txt'), 'public notes');
    writeFileSync(join(tmp.dir, 'secret', 'key.txt'), 'SECRET-KEY');
    writeFileSync(join(tmp.dir, 'allowed-evil.txt'), 'SECRET-SIBLING');
    symlinkSync(join(tmp.dir, 'secret'), join(granted, 'escape'));
    const text = readFileSync(join(FIXTURES, 'filesystem.policy.yaml'), 'utf8').replaceAll('/tmp/bastion-policy-e2e', tmp.dir);
    const compiled = compilePolicy({ policyFiles: [tmp.write('policy.yaml', text)], manifestFiles: [join(FIXTURES, 'filesystem.manifest.yaml')] });
    assert.ok(compiled.ok);
    policy = compiled.evaluator;
    client = new Client({ name: 'bastion-policy-test', version: '1.0.0' });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [SERVER, tmp.dir], stderr: 'ignore' }));
  });

  after(async () => {
    await client.close();
    tmp.cleanup();
  });

  async function serverText(tool: string, args: Record<string, unknown>): Promise<string> {
    const result = (await client.callTool({ name: tool, arguments: args })) as { content?: Array<{ type: string; text?: string }> };
    return (result.content ?? []).map((item) => item.text ?? '').join('');
  }

  test('the reader reads inside the granted directory through the real server', async () => {
    const args = { path: join(granted, 'notes.txt') };
    assert.equal(policy.decideTool('reader', 'filesystem', 'read_text_file', args).allow, true);
    assert.equal(await serverText('read_text_file', args), 'public notes');
  });

  const attacks: Array<[string, (root: string) => Record<string, unknown>]> = [
    ['.. out of the granted directory', (root) => ({ path: `${root}/allowed/../secret/key.txt` })],
    ['a symlink pointing out of the granted directory', (root) => ({ path: `${root}/allowed/escape/key.txt` })],
    ['an absolute path to another directory', (root) => ({ path: `${root}/secret/key.txt` })],
    ['a sibling that shares the granted prefix', (root) => ({ path: `${root}/allowed-evil.txt` })],
  ];

  for (const [name, argsFor] of attacks) {
    test(`${name} is denied, though the server alone would serve it`, async () => {
      const args = argsFor(tmp.dir);
      const decision = policy.decideTool('reader', 'filesystem', 'read_text_file', args);
      assert.equal(decision.allow, false);
      assert.equal(decision.reason, 'scope_not_granted');
      assert.match(await serverText('read_text_file', args), /SECRET/);
    });
  }

  test('encoded, case and NUL tricks are refused before any server sees them', () => {
    const attempts = [`${granted}/%2e%2e/secret/key.txt`, `${tmp.dir}/ALLOWED/notes.txt`, `${granted}/notes.txt\u0000../secret/key.txt`, 'allowed/../secret/key.txt'];
    assert.deepEqual(
      attempts.map((path) => policy.decideTool('reader', 'filesystem', 'read_text_file', { path }).allow),
      [false, false, false, false],
    );
  });

  test('an NFC name that the server matches to an NFD symlink out of the grant is denied (read)', async () => {
    // The entry is stored decomposed (cafe + U+0301); the agent asks for the composed spelling.
    symlinkSync(join(tmp.dir, 'secret'), join(granted, 'cafe\u0301'));
    const args = { path: join(granted, 'caf\u00e9', 'key.txt') };
    const decision = policy.decideTool('reader', 'filesystem', 'read_text_file', args);
    assert.equal(decision.allow, false);
    assert.equal(decision.reason, 'scope_not_granted');
    assert.match(await serverText('read_text_file', args), /SECRET-KEY/);
  });

  test('an NFC name that the server matches to an NFD symlink out of the grant is denied (write)', async () => {
    symlinkSync(join(tmp.dir, 'secret'), join(granted, 'out', 're\u0301sume\u0301'));
    const args = { path: join(granted, 'out', 'r\u00e9sum\u00e9', 'planted.txt'), content: 'planted' };
    const decision = policy.decideTool('writer', 'filesystem', 'write_file', args);
    assert.equal(decision.allow, false);
    assert.equal(decision.reason, 'scope_not_granted');
    await serverText('write_file', args);
    assert.equal(readFileSync(join(tmp.dir, 'secret', 'planted.txt'), 'utf8'), 'planted');
  });

  test('an ASCII name that the server matches to a Kelvin-sign symlink out of the grant is denied', async () => {
    // U+212A KELVIN SIGN normalizes (NFC) to the ASCII letter K.
    symlinkSync(join(tmp.dir, 'secret'), join(granted, '\u212Aeys'));
    const args = { path: join(granted, 'Keys', 'key.txt') };
    assert.equal(policy.decideTool('reader', 'filesystem', 'read_text_file', args).reason, 'scope_not_granted');
    assert.match(await serverText('read_text_file', args), /SECRET-KEY/);
  });

  test('a name that exists in two normalization forms is refused as ambiguous', () => {
    writeFileSync(join(granted, 'na\u00efve.txt'), 'composed');
    symlinkSync(join(tmp.dir, 'secret', 'key.txt'), join(granted, 'nai\u0308ve.txt'));
    const decision = policy.decideTool('reader', 'filesystem', 'read_text_file', { path: join(granted, 'na\u00efve.txt') });
    assert.equal(decision.reason, 'path_unicode_ambiguous');
  });

  test('a write through a dangling symlink that points out of the grant is refused', async () => {
    symlinkSync(join(tmp.dir, 'secret', 'created-by-link.txt'), join(granted, 'out', 'dangling.txt'));
    const args = { path: join(granted, 'out', 'dangling.txt'), content: 'x' };
    assert.equal(policy.decideTool('writer', 'filesystem', 'write_file', args).reason, 'path_dangling_symlink');
    // A dangling link inside the grant is refused as well: nothing the agent asked for exists.
    symlinkSync(join(granted, 'out', 'not-there'), join(granted, 'out', 'dangling-inside'));
    assert.equal(policy.decideTool('writer', 'filesystem', 'write_file', { path: join(granted, 'out', 'dangling-inside'), content: 'x' }).reason, 'path_dangling_symlink');
  });

  test('a list of paths is denied when any one is outside', async () => {
    const args = { paths: [join(granted, 'notes.txt'), join(tmp.dir, 'secret', 'key.txt')] };
    assert.equal(policy.decideTool('reader', 'filesystem', 'read_multiple_files', args).reason, 'scope_not_granted');
    assert.match(await serverText('read_multiple_files', args), /SECRET-KEY/);
  });

  test('the writer may write under out/ and the file appears there', async () => {
    const args = { path: join(granted, 'out', 'result.txt'), content: 'written' };
    assert.equal(policy.decideTool('writer', 'filesystem', 'write_file', args).allow, true);
    await serverText('write_file', args);
    assert.equal(readFileSync(join(granted, 'out', 'result.txt'), 'utf8'), 'written');
    assert.equal(policy.decideTool('writer', 'filesystem', 'write_file', { path: join(granted, 'escape', 'planted.txt'), content: 'x' }).allow, false);
  });

  test('the tools the server lists are filtered per agent', async () => {
    const { tools } = await client.listTools();
    const visible = (agent: string) => tools.filter((tool) => policy.toolVisible(agent, 'filesystem', tool.name)).map((tool) => tool.name).sort();
    assert.ok(tools.length >= 14);
    assert.deepEqual(visible('bystander'), []);
    assert.ok(visible('reader').includes('read_text_file') && !visible('reader').includes('write_file'));
    assert.ok(visible('writer').includes('write_file'));
  });
});
