import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { AARCH64_SYSCALLS, X86_64_SYSCALLS } from '../../src/sandbox/syscalls.js';
import { seccompPolicy } from '../../src/sandbox/seccomp.js';

function resolve(arch: string, name: string): Promise<number> {
  return new Promise((done, fail) => {
    execFile('scmp_sys_resolver', ['-a', arch, name], { encoding: 'utf8' }, (error, stdout) => (error ? fail(error) : done(Number(stdout.trim()))));
  });
}

/** Checks the whole table against libseccomp, a few resolver processes at a time. */
async function mismatches(arch: string, table: Readonly<Record<string, number>>): Promise<string[]> {
  const entries = Object.entries(table);
  const wrong: string[] = [];
  for (let i = 0; i < entries.length; i += 16) {
    await Promise.all(
      entries.slice(i, i + 16).map(async ([name, nr]) => {
        const expected = await resolve(arch, name);
        if (expected !== nr) wrong.push(`${name}: table ${nr}, libseccomp ${expected}`);
      }),
    );
  }
  return wrong;
}

test('every x86_64 syscall number matches libseccomp (scmp_sys_resolver)', async () => {
  assert.ok(Object.keys(X86_64_SYSCALLS).length > 300);
  assert.deepEqual(await mismatches('x86_64', X86_64_SYSCALLS), []);
});

test('every aarch64 syscall number matches libseccomp (scmp_sys_resolver)', async () => {
  assert.ok(Object.keys(AARCH64_SYSCALLS).length > 250);
  assert.deepEqual(await mismatches('aarch64', AARCH64_SYSCALLS), []);
});

test('every syscall the policy names exists in at least one table (no typo silently skipped)', () => {
  for (const rule of seccompPolicy({ allowInet: true })) {
    assert.ok(rule.name in X86_64_SYSCALLS || rule.name in AARCH64_SYSCALLS, rule.name);
  }
});

test('the syscalls the filter inspects by argument exist on both architectures', () => {
  for (const name of ['clone', 'clone3', 'socket', 'ioctl', 'personality', 'mount', 'unshare', 'ptrace', 'bpf', 'keyctl']) {
    assert.equal(typeof X86_64_SYSCALLS[name], 'number', `x86_64 ${name}`);
    assert.equal(typeof AARCH64_SYSCALLS[name], 'number', `aarch64 ${name}`);
  }
});
