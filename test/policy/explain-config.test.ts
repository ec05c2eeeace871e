import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASTION_BIN, tempDir } from '../helpers/gateway.js';

function explain(cwd: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BASTION_BIN, 'policy', 'explain', ...args], { cwd, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('policy explain --config decides from the same policy files, manifests and inline declarations as serve', () => {
  const work = tempDir('bastion-explain-');
  try {
    const notes = join(work.path, 'notes');
    mkdirSync(notes);
    writeFileSync(join(work.path, 'team.yaml'), `agents:\n  writer:\n    grants: ["exec:tools:[notes.read]", "read:filesystem:${notes}"]\n`);
    writeFileSync(
      join(work.path, 'bastion.yaml'),
      ['version: 1', 'policy:', '  files: [team.yaml]', 'servers:', '  notes:', '    transport: stdio', '    command: node', '    tools:', '      read:', '        scopes: ["read:filesystem:${path}"]'].join('\n'),
    );
    const inside = explain(work.path, '--config', 'bastion.yaml', '--agent', 'writer', '--tool', 'notes.read', '--args', JSON.stringify({ path: join(notes, 'a.txt') }));
    assert.equal(inside.status, 0, inside.stdout + inside.stderr);
    assert.match(inside.stdout, /decision: ALLOW/);
    const outside = explain(work.path, '--config', 'bastion.yaml', '--agent', 'writer', '--tool', 'notes.read', '--args', JSON.stringify({ path: '/etc/shadow' }));
    assert.equal(outside.status, 3);
    assert.match(outside.stdout, /not granted read:filesystem:\/etc\/shadow/);
    assert.match(outside.stdout, /config: servers\.notes\.tools\.read\.scopes/, 'the inline declaration from the config is the rule that applied');
  } finally {
    work.cleanup();
  }
});

test('policy explain with no files decides as the built-in demo gateway does', () => {
  const work = tempDir('bastion-explain-');
  try {
    const allowed = explain(work.path, '--agent', 'demo-agent', '--tool', 'everything.echo', '--args', '{"message":"hi"}');
    assert.equal(allowed.status, 0, allowed.stdout + allowed.stderr);
    const denied = explain(work.path, '--agent', 'demo-agent', '--tool', 'filesystem.read_text_file', '--args', '{"path":"/etc/passwd"}');
    assert.equal(denied.status, 3, denied.stdout + denied.stderr);
  } finally {
    work.cleanup();
  }
});
