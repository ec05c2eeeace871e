import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './helpers.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'bastion.js');
const FIXTURES = join(process.cwd(), 'test', 'policy', 'fixtures');

function bastion(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('bastion policy', () => {
  const tmp = tempDir('bastion-policy-cli-');
  after(() => tmp.cleanup());

  test('check accepts the filesystem fixtures', () => {
    const result = bastion('policy', 'check', join(FIXTURES, 'filesystem.policy.yaml'), join(FIXTURES, 'filesystem.manifest.yaml'));
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /OK: 1 policy file\(s\) \(3 agent\(s\), 2 role\(s\)\), 1 manifest\(s\) \(14 declared tool\(s\)\)/);
  });

  test('check reports errors with file, line and field and exits non-zero', () => {
    const policy = tmp.write('bad.yaml', 'agents:\n  alice:\n    roles: [ghost]\n    grants:\n      - "read:filesystem:/srv"\n      - "exec:database:users"\n');
    const manifest = tmp.write('bad-manifest.json', '{\n  "name": "db",\n  "tools": [\n    { "name": "query", "scopes": ["read:filesystem:${path"] }\n  ]\n}\n');
    const result = bastion('policy', 'check', policy, manifest);
    assert.equal(result.status, 2);
    assert.ok(result.stderr.includes(`${policy}:6:9: agents.alice.grants.1: unknown resource kind 'database'`), result.stderr);
    assert.ok(result.stderr.includes(`${policy}:3:13: agents.alice.roles.0: unknown role 'ghost'`), result.stderr);
    assert.ok(result.stderr.includes(`${manifest}:4:35: tools.0.scopes.0: 'read:filesystem:\${path': unclosed`), result.stderr);
  });

  test('check warns about risky grants: write on /, network to any host, every tool', () => {
    const policy = tmp.write('risky.yaml', 'agents:\n  root-ish:\n    grants: ["write:filesystem:/", "write:network:*:443", "exec:tools:*"]\n');
    const result = bastion('policy', 'check', policy);
    assert.equal(result.status, 0);
    assert.match(result.stderr, /risky grant 'write:filesystem:\/': write access to the whole filesystem/);
    assert.match(result.stderr, /risky grant 'write:network:\*:443': network access to any host/);
    assert.match(result.stderr, /risky grant 'exec:tools:\*': may call every tool of every server/);
    assert.match(result.stdout, /3 warning\(s\)/);
  });

  test('check warns when a policy grants a tool the server manifest does not declare', () => {
    const policy = tmp.write('typo.yaml', 'agents:\n  a:\n    grants: ["exec:tools:[filesystem.read_text_file, filesystem.read_txt_file]"]\n');
    const result = bastion('policy', 'check', policy, join(FIXTURES, 'filesystem.manifest.yaml'));
    assert.equal(result.status, 0);
    assert.ok(result.stderr.includes(`${policy}:3: agent a: grants filesystem.read_txt_file, which the server's manifest does not declare`), result.stderr);
    assert.ok(!result.stderr.includes('read_text_file,'));
  });

  test('explain prints the decision and every rule that led to it', () => {
    const allowed = join(tmp.dir, 'allowed');
    mkdirSync(allowed);
    const policy = tmp.write('policy.yaml', readFileSync(join(FIXTURES, 'filesystem.policy.yaml'), 'utf8').replaceAll('/tmp/bastion-policy-e2e', tmp.dir));
    const common = ['--policy', policy, '--manifest', join(FIXTURES, 'filesystem.manifest.yaml')];
    const allow = bastion('policy', 'explain', '--agent', 'reader', '--tool', 'filesystem.read_text_file', '--args', JSON.stringify({ path: `${allowed}/a.txt` }), ...common);
    assert.equal(allow.status, 0, allow.stderr);
    assert.match(allow.stdout, /^decision: ALLOW/);
    assert.match(allow.stdout, /\+ exec:tools:filesystem\.read_text_file {2}covered by exec:tools:\[.*\] \(role fs-reader, .*policy\.yaml:8\)/);
    assert.ok(allow.stdout.includes(`+ read:filesystem:${allowed}/a.txt  [declared read:filesystem:\${path}]  covered by read:filesystem:${allowed} (role fs-reader`));
    const deny = bastion('policy', 'explain', '--agent', 'reader', '--tool', 'filesystem.read_text_file', '--args', JSON.stringify({ path: `${allowed}/../secret` }), ...common);
    assert.equal(deny.status, 3);
    assert.match(deny.stdout, /^decision: DENY \(scope_not_granted\)/);
    assert.ok(deny.stdout.includes(`- read:filesystem:${tmp.dir}/secret`));
  });

  test('explain refuses bad input clearly', () => {
    assert.match(bastion('policy', 'explain', '--agent', 'a', '--tool', 'notnamespaced', '--policy', join(FIXTURES, 'filesystem.policy.yaml')).stderr, /--tool must be SERVER\.TOOL/);
    assert.match(bastion('policy', 'explain', '--agent', 'a', '--tool', 's.t', '--args', '{nope', '--policy', join(FIXTURES, 'filesystem.policy.yaml')).stderr, /--args is not valid JSON/);
  });
});
