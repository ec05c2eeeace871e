// The pre-start access check: a server's uid must reach its code and grants, or the start is
// refused with the path, the directory that refused and the fix (instead of bwrap dying at setup).
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { modeAccessProblem, accessProblems } from '../../src/sandbox/access.js';
import { createSandbox } from '../../src/sandbox/index.js';
import { connectClient, FIXTURE_PACKAGE_DIRS, hostileServer } from './helpers.js';
import { removeTree } from '../helpers/tmp.js';

const root = process.getuid?.() === 0;
const UID = 61_999;

describe('what a server uid can reach', () => {
  const base = mkdtempSync(join(tmpdir(), 'bastion-access-'));
  after(() => removeTree(base));
  chmodSync(base, 0o755);

  test('a world-readable file under traversable directories is fine', () => {
    const dir = join(base, 'open');
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'server.js'), '', { mode: 0o644 });
    chmodSync(join(dir, 'server.js'), 0o644);
    assert.equal(modeAccessProblem(join(dir, 'server.js'), UID, 'read'), undefined);
  });

  test('a private directory on the way names that directory, its mode and the uid', () => {
    const dir = join(base, 'private');
    mkdirSync(join(dir, 'inner'), { recursive: true });
    chmodSync(dir, 0o700);
    writeFileSync(join(dir, 'inner', 'server.js'), '');
    const problem = modeAccessProblem(join(dir, 'inner', 'server.js'), UID, 'read');
    assert.match(problem ?? '', new RegExp(`directory ${dir} \\(mode 0700, owner \\d+\\) cannot be traversed by uid ${UID}`));
  });

  test('an unreadable file is named; a directory also needs search permission', () => {
    const dir = join(base, 'modes');
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'secret.js'), '');
    chmodSync(join(dir, 'secret.js'), 0o600);
    assert.match(modeAccessProblem(join(dir, 'secret.js'), UID, 'read') ?? '', /secret\.js \(mode 0600, owner \d+\) cannot be read by uid 61999/);
    const listOnly = join(dir, 'list-only');
    mkdirSync(listOnly);
    chmodSync(listOnly, 0o754);
    assert.match(modeAccessProblem(listOnly, UID, 'read') ?? '', /cannot be read/);
  });

  test('the owner bits apply to the owning uid, and write needs the write bit', { skip: !root && 'chown needs root' }, () => {
    const dir = join(base, 'owned');
    mkdirSync(dir);
    chmodSync(dir, 0o700);
    chownSync(dir, UID, UID);
    assert.equal(modeAccessProblem(dir, UID, 'write'), undefined);
    assert.match(modeAccessProblem(dir, UID + 1, 'write') ?? '', /cannot be written by uid 62000/);
  });

  test('a missing path is reported as missing', () => {
    assert.match(modeAccessProblem(join(base, 'nope'), UID, 'read') ?? '', /does not exist/);
  });

  test('accessProblems asks the kernel before refusing, and says what to change', { skip: !root && 'runs setpriv as root' }, () => {
    const dir = join(base, 'private-code');
    mkdirSync(dir);
    chmodSync(dir, 0o700);
    const problems = accessProblems([{ path: dir, want: 'read', role: "the server's code" }], UID, '/usr/bin/setpriv');
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /^the server's code: .* cannot be read by uid 61999; make it and its parent directories readable by other users \(chmod o\+rX\)/);
  });
});

describe('a server whose code its uid cannot read', { skip: !root && 'only root moves servers to another uid' }, () => {
  const base = mkdtempSync(join(tmpdir(), 'bastion-access-spawn-'));
  after(() => removeTree(base));

  test('is refused before anything is spawned, naming the directory and the fix', async () => {
    // A copy of the fixture server in a directory made as under umask 077.
    const code = join(base, 'code');
    mkdirSync(code);
    chmodSync(base, 0o755);
    chmodSync(code, 0o700);
    const script = join(code, 'server.mjs');
    writeFileSync(script, `import ${JSON.stringify(pathToFileURL(hostileServer()).href)};\n`);
    const backend = createSandbox({ backend: 'bwrap' });
    await assert.rejects(
      backend.spawn({ serverName: 'private-code', command: process.execPath, args: [script], env: {}, packageDirs: [...FIXTURE_PACKAGE_DIRS, code], scopes: [] }),
      (error: Error) => {
        assert.match(error.message, /sandbox: cannot start private-code as uid \d+: the server's code: \S+\/code \(mode 0700, owner \d+\) cannot be read/);
        assert.match(error.message, /chmod o\+rX/);
        return true;
      },
    );
  });

  test('starts once the directory is opened up', async () => {
    const code = join(base, 'code');
    chmodSync(code, 0o755);
    chmodSync(join(code, 'server.mjs'), 0o644);
    const backend = createSandbox({ backend: 'bwrap' });
    const handle = await backend.spawn({ serverName: 'private-code', command: process.execPath, args: [join(code, 'server.mjs')], env: { HOSTILE: '1' }, packageDirs: [...FIXTURE_PACKAGE_DIRS, code], scopes: [] });
    try {
      const client = await connectClient(handle.child);
      const tools = await client.listTools();
      assert.ok(tools.tools.length > 0);
      await client.close();
    } finally {
      await handle.dispose();
    }
  });
});
