// The part of an agent's policy a sandbox enforces: its directories by action (where they really
// are), its destinations, and which agents a shared server's view must satisfy.
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { agentsReaching, compilePolicy, sandboxGrants, type PolicyEvaluator } from '../../src/policy/index.js';
import { tempDir } from './helpers.js';

describe('sandbox grants from a policy', () => {
  const tmp = tempDir('bastion-sandbox-grants-');
  after(() => tmp.cleanup());
  mkdirSync(join(tmp.dir, 'data'));
  mkdirSync(join(tmp.dir, 'out'));
  symlinkSync(join(tmp.dir, 'data'), join(tmp.dir, 'data-link'));
  const file = tmp.write('policy.yaml', `version: 1
roles:
  writer:
    grants: ["write:filesystem:${join(tmp.dir, 'out')}"]
agents:
  alice:
    roles: [writer]
    grants:
      - "exec:tools:[files.read]"
      - "read:filesystem:${join(tmp.dir, 'data-link')}"
      - "write:network:api.example.com:[443, 8000-8100]"
  bob:
    grants: ["exec:tools:read", "read:network:*.example.org"]
  carol:
    grants: ["read:resources:file:///docs/*"]
  dave:
    grants: ["exec:tools:other.read", "read:filesystem:*"]
`);
  const compiled = compilePolicy({ policyFiles: [file] });
  assert.ok(compiled.ok);
  const policy: PolicyEvaluator = compiled.evaluator;

  it('directories by action, roles included, at their real location', () => {
    const alice = sandboxGrants(policy, 'alice');
    assert.deepEqual(alice.read, [join(tmp.dir, 'data')], 'the link resolved');
    assert.deepEqual(alice.write, [join(tmp.dir, 'out')], "from the agent's role");
    assert.deepEqual(sandboxGrants(policy, 'dave').read, ['/'], '* is every path');
  });

  it('destinations: hosts, port lists and ranges, suffixes; a port-only question needs every host', () => {
    const alice = sandboxGrants(policy, 'alice');
    assert.equal(alice.mayConnect('api.example.com', 443), true);
    assert.equal(alice.mayConnect('api.example.com', 8050), true);
    assert.equal(alice.mayConnect('api.example.com', 80), false);
    assert.equal(alice.mayConnect('evil.example', 443), false);
    assert.equal(alice.mayConnect('*', 443), false, 'one host on 443 is not every host on 443');
    const bob = sandboxGrants(policy, 'bob');
    assert.equal(bob.mayConnect('cdn.example.org', 443), true, 'read:network counts: the broker treats it as outbound');
    assert.equal(bob.mayConnect('example.org', 443), false, 'a suffix is below the name, not the name');
  });

  it('an unknown agent, or none, has nothing', () => {
    for (const agent of ['mallory', undefined]) {
      const grants = sandboxGrants(policy, agent);
      assert.deepEqual([grants.read, grants.write, grants.mayConnect('api.example.com', 443)], [[], [], false]);
    }
  });

  it('the agents reaching a server: a tool grant naming it or any server, or any resource grant', () => {
    assert.deepEqual(agentsReaching(policy, 'files').sort(), ['alice', 'bob', 'carol']);
    assert.deepEqual(agentsReaching(policy, 'other').sort(), ['bob', 'carol', 'dave']);
  });
});
