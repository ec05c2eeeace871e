import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfigText, resolveValue, SecretError } from '../../src/config/index.js';
import { configProblems } from '../helpers/config.js';
import { BASTION_BIN, tempDir } from '../helpers/gateway.js';

const problems = configProblems;

describe('config errors name the file, line, field and the fix', () => {
  test('a misspelt field is located and a correction suggested', () => {
    const [problem] = problems('version: 1\nservers:\n  fs:\n    transport: stdio\n    command: node\n    argz: [x]\n');
    assert.equal(problem?.line, 6);
    assert.equal(problem?.field, 'servers.fs.argz');
    assert.match(problem?.fix ?? '', /did you mean 'args'/);
  });

  test('a missing required field says what to add', () => {
    const found = problems('version: 1\nservers:\n  fs:\n    transport: stdio\n');
    assert.ok(found.some((problem) => problem.field === 'servers.fs.command' && /add command/.test(problem.fix ?? '')));
  });

  test('a wrong type points at the value', () => {
    const [problem] = problems('version: 1\nlimits:\n  timeoutMs: soon\nservers:\n  a: { transport: stdio, command: x }\n');
    assert.equal(problem?.line, 3);
    assert.equal(problem?.field, 'limits.timeoutMs');
  });

  test('a server name that could break namespacing is refused', () => {
    const found = problems('version: 1\nservers:\n  my.server: { transport: stdio, command: x }\n');
    assert.ok(found.some((problem) => problem.field === 'servers.my.server' && /invalid name/.test(problem.message)));
  });

  test('a credential written inline in upstream headers is refused with the secret-reference fix', () => {
    const [problem] = problems('version: 1\nservers:\n  remote:\n    transport: http\n    url: https://mcp.example.com/mcp\n    headers:\n      Authorization: Bearer sk-live-123\n');
    assert.equal(problem?.field, 'servers.remote.headers.Authorization');
    assert.match(problem?.fix ?? '', /fromEnv/);
  });

  test('YAML syntax errors carry a position', () => {
    const [problem] = problems('version: 1\nservers: [\n');
    assert.ok(problem?.line !== undefined);
    assert.match(problem?.message ?? '', /syntax error/);
  });

  test('JSON configs are accepted and safe defaults are filled in', () => {
    const loaded = loadConfigText(JSON.stringify({ version: 1, servers: { a: { transport: 'stdio', command: 'node' } } }), 'bastion.json', '/tmp');
    assert.equal(loaded.config.limits.timeoutMs, 30_000);
    assert.equal(loaded.config.limits.maxOutputBytes, 4 * 1024 * 1024);
    assert.equal(loaded.config.limits.maxRequestBytes, 1024 * 1024);
  });

  test('secrets come from the environment or a file, and a missing one fails closed', () => {
    const dir = tempDir();
    writeFileSync(join(dir.path, 'token'), 's3cret\n');
    assert.equal(resolveValue({ fromFile: 'token' }, 'x', dir.path), 's3cret');
    assert.equal(resolveValue({ fromEnv: 'BASTION_TEST_SECRET' }, 'x', dir.path, { BASTION_TEST_SECRET: 'abc' }), 'abc');
    assert.throws(() => resolveValue({ fromEnv: 'BASTION_TEST_MISSING' }, 'servers.a.env.KEY', dir.path, {}), SecretError);
    dir.cleanup();
  });

  test('bastion config check exits 2 and prints file:line for a bad file, 0 for a good one', () => {
    const dir = tempDir();
    const bad = join(dir.path, 'bad.yaml');
    writeFileSync(bad, 'version: 1\nservers:\n  a:\n    transport: stdio\n    comand: node\n');
    const failed = spawnSync(process.execPath, [BASTION_BIN, 'config', 'check', bad], { encoding: 'utf8' });
    assert.equal(failed.status, 2);
    assert.match(failed.stderr, new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:5: servers\\.a\\.comand: unknown field`));
    const good = join(dir.path, 'good.yaml');
    writeFileSync(good, 'version: 1\nservers:\n  a: { transport: stdio, command: node }\n');
    const passed = spawnSync(process.execPath, [BASTION_BIN, 'config', 'check', good], { encoding: 'utf8' });
    assert.equal(passed.status, 0, passed.stderr);
    dir.cleanup();
  });
});
