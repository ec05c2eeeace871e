// A process serving one agent gets the intersection of what its server declares and what the
// agent is granted; a shared process only what every agent reaching it holds.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { planBwrap } from '../../src/sandbox/bwrap.js';
import { everyAgent, narrowScopes, type AgentSandboxGrants } from '../../src/sandbox/scopes.js';
import { resolveSandboxConfig } from '../../src/sandbox/index.js';
import { removeTree } from '../helpers/tmp.js';

const root = realpathSync(mkdtempSync(join(tmpdir(), 'bastion-narrow-')));
for (const dir of ['a/deep', 'b', 'c', 'outside']) mkdirSync(join(root, dir), { recursive: true });
symlinkSync(join(root, 'outside'), join(root, 'a', 'out-link'));
process.on('exit', () => removeTree(root));

const grants = (read: string[], write: string[] = [], connect: Array<[string, number]> = []): AgentSandboxGrants => ({
  read,
  write,
  mayConnect: (host, port) => connect.some(([h, p]) => (h === '*' || h === host) && p === port),
});

describe('narrowScopes', () => {
  const declared = [`read:filesystem:${root}`, `write:filesystem:${join(root, 'c')}`, 'write:network:api.example.com:443', 'write:network:8080'];

  it('binds only the granted directories below a declared one, and leaves the declared one empty', () => {
    const view = narrowScopes(declared, grants([join(root, 'a')]));
    assert.deepEqual(view.scopes, [`read:filesystem:${join(root, 'a')}`]);
    assert.deepEqual(view.hidden.sort(), [root, join(root, 'c')].sort());
  });

  it('is writable only where both the server declares and the agent is granted write', () => {
    const view = narrowScopes(declared, grants([], [join(root, 'a'), join(root, 'c')]));
    assert.deepEqual(view.scopes, [`read:filesystem:${join(root, 'a')}`, `write:filesystem:${join(root, 'c')}`]);
  });

  it('binds the whole declared path when a grant covers it, and nothing the server did not declare', () => {
    const view = narrowScopes([`read:filesystem:${join(root, 'a')}`], grants(['/', join(root, 'b')]));
    assert.deepEqual(view.scopes, [`read:filesystem:${join(root, 'a')}`]);
    assert.deepEqual(view.hidden, []);
  });

  it('a grant through a symlink that leads outside the declared path binds nothing', () => {
    const view = narrowScopes([`read:filesystem:${join(root, 'a')}`], grants([join(root, 'a', 'out-link')]));
    assert.deepEqual(view.scopes, []);
    assert.deepEqual(view.hidden, [join(root, 'a')]);
  });

  it('keeps a declared destination only when the agent may connect to it', () => {
    assert.deepEqual(narrowScopes(declared, grants([], [], [['api.example.com', 443]])).scopes, ['write:network:api.example.com:443']);
    assert.deepEqual(narrowScopes(declared, grants([], [], [['*', 8080]])).scopes, ['write:network:8080']);
    assert.deepEqual(narrowScopes(declared, grants([])).scopes, [], 'no grants: no paths, no egress');
  });

  it('several agents: only what every one of them holds', () => {
    const both = everyAgent([grants([join(root, 'a'), join(root, 'b')], [], [['api.example.com', 443]]), grants([join(root, 'a', 'deep'), join(root, 'b')])]);
    assert.deepEqual(narrowScopes(declared, both).scopes, [`read:filesystem:${join(root, 'a', 'deep')}`, `read:filesystem:${join(root, 'b')}`]);
    assert.deepEqual(narrowScopes(declared, everyAgent([])).scopes, [], 'no agent reaches it: nothing');
  });
});

describe('bwrap plan with hidden paths', () => {
  it('creates each hidden directory empty and read-only before the binds below it', () => {
    const view = narrowScopes([`read:filesystem:${root}`], grants([join(root, 'a')]));
    const plan = planBwrap({
      spec: { serverName: 'files', command: '/usr/bin/node', args: [], env: {}, packageDirs: [], scopes: view.scopes, hiddenPaths: view.hidden },
      config: resolveSandboxConfig({}),
      root: false,
      binaries: { bwrap: '/usr/bin/bwrap', prlimit: '/usr/bin/prlimit' },
    });
    const argv = plan.argv;
    const dir = argv.indexOf('--dir');
    assert.ok(dir > 0 && argv[dir + 1] === root && argv[dir - 2] === '--perms' && argv[dir - 1] === '0555');
    const bind = argv.findIndex((arg, index) => arg === '--ro-bind' && argv[index + 1] === join(root, 'a'));
    assert.ok(bind > dir, 'the granted directory is bound after (on top of) the empty one');
    assert.ok(!argv.some((arg, index) => arg.endsWith('bind') && argv[index + 1] === join(root, 'b')), "another agent's directory is not bound");
  });
});
