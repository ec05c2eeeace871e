// What the gvisor backend hands runsc, decided before anything runs: the flags, the seccomp rules
// as runsc can enforce them, the bundle of a networked server, and the cgroup Bastion makes for
// runsc (on the host's real cgroup hierarchy, so the kernel's own rules for removal apply).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, rmdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runscGlobalArgs, runscSeccompRules } from '../../src/sandbox/gvisor.js';
import { ociBundleConfig } from '../../src/sandbox/oci.js';
import { nameExit } from '../../src/sandbox/exit.js';
import { ERRNO, seccompPolicy, AF_INET } from '../../src/sandbox/seccomp.js';
import { hostCgroupLayout, ServerCgroup, sweepStale } from '../../src/sandbox/cgroups.js';
import { DEFAULT_SANDBOX_LIMITS } from '../../src/sandbox/index.js';
import type { SandboxSpec } from '../../src/sandbox/types.js';

const root = process.getuid?.() === 0;

type OciRule = ReturnType<typeof ociBundleConfig>['linux']['seccomp']['syscalls'][number];

/** Whether the profile refuses socket(family): libseccomp ORs rules and ANDs the comparisons in one. */
function refusesFamily(rules: OciRule[], family: number): boolean {
  return rules
    .filter((rule) => rule.names.includes('socket'))
    .some((rule) =>
      (rule.args ?? []).every((arg) => {
        if (arg.op === 'SCMP_CMP_EQ') return family === arg.value;
        if (arg.op === 'SCMP_CMP_LT') return family < arg.value;
        if (arg.op === 'SCMP_CMP_GT') return family > arg.value;
        return (family & arg.value) === arg.valueTwo;
      }),
    );
}

const spec = (scopes: string[]): SandboxSpec => ({ serverName: 'plan', command: '/usr/bin/true', args: ['x'], env: {}, packageDirs: [], scopes });

describe('runsc flags and seccomp rules', () => {
  test('runsc always gets --oci-seccomp (without it the bundle profile is ignored) and the network asked for', () => {
    assert.deepEqual(runscGlobalArgs('ptrace'), ['--network=none', '--host-uds=open', '--oci-seccomp', '--platform=ptrace']);
    assert.ok(runscGlobalArgs('ptrace', 'host').includes('--network=host'));
  });

  test('only the rule that relies on its errno (clone3 -> ENOSYS) is left to the sentry; the rest stay', () => {
    const rules = seccompPolicy({ allowInet: false });
    const kept = runscSeccompRules(rules);
    assert.deepEqual(rules.filter((rule) => !kept.includes(rule)).map((rule) => rule.name), ['clone3']);
    for (const name of ['unshare', 'setns', 'mount', 'ptrace', 'keyctl', 'bpf', 'io_uring_setup', 'clone', 'socket']) assert.ok(kept.some((rule) => rule.name === name), name);
    assert.ok(kept.every((rule) => rule.errno !== ERRNO.ENOSYS));
  });
});

describe('how a gVisor server ended', () => {
  test('an OOM kill counted in the cgroup names the end even when runsc reports an ordinary code', () => {
    assert.match(nameExit(2, null, true, 96 * 1024 * 1024, { oomEndsWithAnyCode: true })?.detail ?? '', /^killed by SIGKILL: out of memory \(the memory limit of 96 MiB was reached .*exit code 2\)$/);
    assert.equal(nameExit(137, null, true, 96 * 1024 * 1024, { oomEndsWithAnyCode: true })?.detail, "killed by SIGKILL: out of memory (the memory limit of 96 MiB was reached and the cgroup's OOM killer ended it)");
    // A clean exit stays clean; without an OOM kill a code is only a code; other backends keep to signals.
    assert.equal(nameExit(0, null, true, undefined, { oomEndsWithAnyCode: true }), undefined);
    assert.equal(nameExit(2, null, false, undefined, { oomEndsWithAnyCode: true }), undefined);
    assert.equal(nameExit(2, null, true), undefined);
  });
});

describe('the bundle of a networked gVisor server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-gvisor-plan-'));
  const relay = join(dir, 'relay.js');
  const resolv = join(dir, 'resolv.conf');
  const socket = join(dir, 'egress.sock');
  const options = { relayScript: relay, resolvConf: resolv, seccompRules: runscSeccompRules };

  test('behind the relay: relay first in argv, proxy variables, relay, socket and resolv.conf bound, AF_INET allowed', () => {
    const config = ociBundleConfig(spec(['write:network:api.example.com:443']), DEFAULT_SANDBOX_LIMITS, 61234, socket, options);
    assert.deepEqual(config.process.args.slice(1), ['/run/bastion/relay.mjs', '/run/bastion/egress.sock', '3128', '--', '/usr/bin/true', 'x']);
    assert.ok(config.process.env.includes('HTTPS_PROXY=http://127.0.0.1:3128'));
    const source = (destination: string): string | undefined => config.mounts.find((m) => m.destination === destination)?.source;
    assert.equal(source('/run/bastion/relay.mjs'), relay);
    assert.equal(source('/run/bastion/egress.sock'), socket);
    assert.equal(source('/etc/resolv.conf'), resolv);
    assert.equal(refusesFamily(config.linux.seccomp.syscalls, AF_INET), false);
    assert.equal(refusesFamily(config.linux.seccomp.syscalls, 16), true, 'AF_NETLINK stays refused');
    assert.ok(!config.linux.seccomp.syscalls.some((rule) => rule.names.includes('clone3')));
  });

  test('a server without network scopes gets no relay, no proxy and AF_UNIX only, even with the options', () => {
    const config = ociBundleConfig(spec([]), DEFAULT_SANDBOX_LIMITS, 61234, undefined, options);
    assert.deepEqual(config.process.args, ['/usr/bin/true', 'x']);
    assert.ok(!config.process.env.some((entry) => entry.startsWith('HTTPS_PROXY=')));
    assert.ok(!config.mounts.some((m) => m.destination === '/etc/resolv.conf'));
    assert.equal(refusesFamily(config.linux.seccomp.syscalls, AF_INET), true);
    assert.equal(refusesFamily(config.linux.seccomp.syscalls, 1), false, 'AF_UNIX stays open');
  });

  test("transparent egress (inheritNetwork): the runtime's namespace, no user namespace, the server as its host uid", () => {
    const config = ociBundleConfig(spec(['write:network:api.example.com:443']), DEFAULT_SANDBOX_LIMITS, 61234, socket, { ...options, inheritNetwork: true });
    assert.deepEqual(config.linux.namespaces.map((n) => n.type).sort(), ['cgroup', 'ipc', 'mount', 'pid', 'uts']);
    assert.equal(config.linux.uidMappings, undefined);
    assert.deepEqual(config.process.user, { uid: 61234, gid: 61234, additionalGids: [] });
    assert.deepEqual(config.process.capabilities.effective, []);
    assert.equal(config.process.noNewPrivileges, true);
  });

  test('cleanup', () => rmSync(dir, { recursive: true, force: true }));
});

describe('the cgroup Bastion makes for runsc', { skip: !root && 'needs root (writes the host cgroup tree)' }, () => {
  const layout = hostCgroupLayout();
  const limits = { memoryBytes: 64 * 1024 * 1024, pids: 32, cpus: 1 };

  test('a runtime child named relative to Bastion\'s own cgroups; remove() takes child and parent', async () => {
    const outer = ServerCgroup.create(layout, 'plan-gvisor', limits);
    const inner = outer.createChild('runtime');
    assert.match(inner.runtimePath ?? '', /^bastion-plan-gvisor-\d+-[a-z0-9]+\/runtime$/);
    const memoryRoot = layout.version === 1 ? layout.v1.memory : layout.v2?.dir;
    assert.ok(memoryRoot);
    const innerDir = join(memoryRoot, inner.runtimePath ?? '');
    assert.ok(existsSync(innerDir), innerDir);
    await outer.remove();
    assert.ok(!existsSync(innerDir));
    assert.ok(!existsSync(join(memoryRoot, (inner.runtimePath ?? '').split('/')[0] ?? '')));
  });

  test('with sandbox.cgroupParent the runtime path is absolute from the hierarchy root', async () => {
    const outer = ServerCgroup.create(layout, 'plan-parent', limits, '/bastion-plan-parent-test');
    try {
      assert.match(outer.createChild('runtime').runtimePath ?? '', /^\/bastion-plan-parent-test\/bastion-plan-parent-\d+-[a-z0-9]+\/runtime$/);
    } finally {
      await outer.remove();
      const roots = layout.version === 1 ? Object.values(layout.v1Roots) : [layout.v2?.mountPoint ?? ''];
      for (const dir of new Set(roots)) {
        try {
          rmdirSync(join(dir, 'bastion-plan-parent-test'));
        } catch {
          // Not created in that hierarchy.
        }
      }
    }
  });

  test('a stale group with a runtime child (a Bastion killed while gVisor ran) is swept, child first', () => {
    const parent = layout.version === 1 ? layout.v1.memory : layout.v2?.dir;
    assert.ok(parent);
    const deadPid = spawnSync('/usr/bin/true').pid as number;
    const stale = join(parent, `bastion-stale-${deadPid}-abc1`);
    mkdirSync(join(stale, 'runtime'), { recursive: true });
    sweepStale(parent);
    assert.ok(!existsSync(stale));
  });
});
