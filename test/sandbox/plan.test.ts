// Unit tests of the pure parts: scopes -> view, the bwrap argv, cgroup detection, OCI bundle,
// container flags, the broker's request parsing, config resolution and backend refusal.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sandboxViewFromScopes, egressAllowed } from '../../src/sandbox/scopes.js';
import { planBwrap, SANDBOX_EGRESS_SOCKET } from '../../src/sandbox/bwrap.js';
import { detectCgroups, ServerCgroup, listChildren, sweepStale } from '../../src/sandbox/cgroups.js';
import { spawnSync } from 'node:child_process';
import { ociBundleConfig, containerRunFlags } from '../../src/sandbox/oci.js';
import { parseConnect } from '../../src/sandbox/broker.js';
import { createSandbox, resolveSandboxConfig, serverUid, DEFAULT_SANDBOX_LIMITS } from '../../src/sandbox/index.js';
import type { SandboxSpec } from '../../src/sandbox/types.js';
import { removeTree } from '../helpers/tmp.js';

const tmp = mkdtempSync(join(tmpdir(), 'bastion-sandbox-plan-'));
const data = join(tmp, 'data');
const out = join(tmp, 'out');
mkdirSync(data);
mkdirSync(out);
symlinkSync(data, join(tmp, 'link-to-data'));
process.on('exit', () => removeTree(tmp));

const spec = (scopes: string[], extra: Partial<SandboxSpec> = {}): SandboxSpec => ({
  serverName: 'files',
  command: '/usr/bin/node',
  args: ['server.js', '--flag'],
  env: { API_TOKEN: 'secret-value' },
  packageDirs: [],
  scopes,
  ...extra,
});

/** The bwrap part of the argv (after the bwrap binary). */
function bwrapArgs(argv: string[]): string[] {
  return argv.slice(argv.indexOf('/usr/bin/bwrap') + 1);
}

/** Pairs like ['--ro-bind', src, dst] found in argv. */
function binds(argv: string[], flag: string): string[] {
  const found: string[] = [];
  argv.forEach((arg, i) => {
    if (arg === flag) found.push(argv[i + 2] as string);
  });
  return found;
}

describe('scopes to sandbox view', () => {
  test('read and write filesystem scopes become read-only and read-write binds, symlinks resolved', () => {
    const view = sandboxViewFromScopes([`read:filesystem:${join(tmp, 'link-to-data')}`, `write:filesystem:${out}`, 'exec:tools:[x]']);
    assert.deepEqual(view.paths, [
      { path: data, writable: false },
      { path: out, writable: true },
    ].sort((a, b) => a.path.length - b.path.length || a.path.localeCompare(b.path)));
  });

  test('a write grant wins over a read grant on the same path', () => {
    assert.deepEqual(sandboxViewFromScopes([`read:filesystem:${data}`, `write:filesystem:${data}`]).paths, [{ path: data, writable: true }]);
  });

  test('a scope naming a missing or relative path is an error, not a silent omission', () => {
    assert.throws(() => sandboxViewFromScopes([`read:filesystem:${join(tmp, 'missing')}`]), /does not exist/);
    assert.throws(() => sandboxViewFromScopes(['read:filesystem:relative/path']), /absolute path/);
  });

  test('network scopes: host:port, [v6]:port and port-only; read:network grants no egress', () => {
    const view = sandboxViewFromScopes(['write:network:API.example.com:443', 'write:network:[::1]:8080', 'write:network:53', 'read:network:evil.example:80']);
    assert.deepEqual(view.egress, [
      { host: 'api.example.com', port: 443 },
      { host: '::1', port: 8080 },
      { host: '*', port: 53 },
    ]);
    assert.equal(egressAllowed(view.egress, 'api.example.com', 443), true);
    assert.equal(egressAllowed(view.egress, 'api.example.com', 80), false);
    assert.equal(egressAllowed(view.egress, 'evil.example', 80), false);
    assert.equal(egressAllowed(view.egress, 'anything', 53), true);
    assert.throws(() => sandboxViewFromScopes(['write:network:host:99999']), /invalid port/);
  });
});

describe('bwrap argv', () => {
  const binaries = { bwrap: '/usr/bin/bwrap', prlimit: '/usr/bin/prlimit', setpriv: '/usr/bin/setpriv' };
  const config = resolveSandboxConfig({});

  test('as root: prlimit, then setpriv to the per-server uid with no caps, then bwrap with every namespace', () => {
    const plan = planBwrap({ spec: spec([]), config, root: true, binaries });
    assert.equal(plan.file, '/usr/bin/prlimit');
    const uid = serverUid('files');
    const setpriv = plan.argv.indexOf('/usr/bin/setpriv');
    assert.ok(setpriv > 0 && setpriv < plan.argv.indexOf('/usr/bin/bwrap'));
    assert.deepEqual(plan.argv.slice(setpriv + 1, setpriv + 10), ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--']);
    const args = bwrapArgs(plan.argv);
    for (const flag of ['--unshare-user', '--unshare-ipc', '--unshare-pid', '--unshare-net', '--unshare-uts', '--unshare-cgroup', '--die-with-parent', '--new-session', '--disable-userns']) assert.ok(args.includes(flag), flag);
    assert.deepEqual(args.slice(args.indexOf('--cap-drop'), args.indexOf('--cap-drop') + 2), ['--cap-drop', 'ALL']);
    assert.deepEqual(args.slice(-4), ['--', '/usr/bin/node', 'server.js', '--flag']);
    assert.equal(plan.uid, uid);
  });

  test('in a prepared egress namespace: the chain runs under its launcher and bwrap makes no network namespace of its own', () => {
    const prefix = ['/usr/bin/nsenter', '--net=/run/netns/bastion-1-00', '--'];
    const plan = planBwrap({ spec: spec([]), config, root: true, binaries, netnsPrefix: prefix });
    assert.equal(plan.file, '/usr/bin/nsenter');
    assert.deepEqual(plan.argv.slice(0, 3), ['--net=/run/netns/bastion-1-00', '--', '/usr/bin/prlimit']);
    const args = bwrapArgs(plan.argv);
    assert.equal(args.includes('--unshare-net'), false);
    for (const flag of ['--unshare-user', '--unshare-ipc', '--unshare-pid', '--unshare-uts', '--unshare-cgroup']) assert.ok(args.includes(flag), flag);
  });

  test('not root: no setpriv, the server keeps the caller uid', () => {
    const plan = planBwrap({ spec: spec([]), config, root: false, binaries });
    assert.equal(plan.argv.includes('/usr/bin/setpriv'), false);
    assert.equal(plan.uid, undefined);
  });

  test('per-server uids differ and stay in the configured range', () => {
    const uids = ['a', 'b', 'c', 'filesystem', 'memory'].map((name) => serverUid(name));
    assert.equal(new Set(uids).size, uids.length);
    for (const uid of uids) assert.ok(uid >= 61000 && uid < 62000);
  });

  test('RLIMIT_NPROC holds every copy of the server that may run at once under its one uid', () => {
    const one = planBwrap({ spec: spec([], { limits: { pids: 50 } }), config, root: true, binaries });
    assert.ok(one.argv.includes('--nproc=66:66'), 'one copy: pids plus a margin');
    const many = planBwrap({ spec: spec([], { limits: { pids: 50 }, instances: 65 }), config, root: true, binaries });
    assert.ok(many.argv.includes(`--nproc=${50 * 65 + 16}:${50 * 65 + 16}`), 'one per session: the kernel counts them together');
  });

  test('rlimits are set hard and soft from the limits', () => {
    const plan = planBwrap({ spec: spec([], { limits: { cpuSeconds: 7, openFiles: 99 } }), config, root: false, binaries });
    assert.ok(plan.argv.includes('--cpu=7:7'));
    assert.ok(plan.argv.includes('--nofile=99:99'));
    assert.ok(plan.argv.includes(`--fsize=${DEFAULT_SANDBOX_LIMITS.fileSizeBytes}:${DEFAULT_SANDBOX_LIMITS.fileSizeBytes}`));
  });

  test('system dirs read-only, a bounded private /tmp, and only the declared paths bound', () => {
    const plan = planBwrap({ spec: spec([`read:filesystem:${data}`, `write:filesystem:${out}`], { packageDirs: [tmp] }), config, root: false, binaries });
    const args = bwrapArgs(plan.argv);
    assert.ok(binds(args, '--ro-bind').includes('/usr'));
    assert.ok(binds(args, '--ro-bind').includes(data));
    assert.ok(binds(args, '--ro-bind').includes(tmp));
    assert.deepEqual(binds(args, '--bind'), [out]);
    const size = args.indexOf('--size');
    assert.deepEqual(args.slice(size, size + 4), ['--size', String(DEFAULT_SANDBOX_LIMITS.tmpBytes), '--tmpfs', '/tmp']);
    assert.ok(!args.includes('/etc') && !binds(args, '--ro-bind').includes('/'));
    // bwrap applies mounts in order: a host path under /tmp bound before the tmpfs would vanish.
    const tmpfs = args.indexOf('--tmpfs');
    args.forEach((arg, index) => {
      if ((arg === '--ro-bind' || arg === '--bind') && (args[index + 2] ?? '').startsWith('/tmp/')) assert.ok(index > tmpfs, `${args[index + 2]} is bound before the private /tmp`);
    });
  });

  test('environment values (secrets) never appear in argv, which every local user can read', () => {
    const plan = planBwrap({ spec: spec([]), config, root: true, binaries });
    assert.ok(!plan.argv.some((arg) => arg.includes('secret-value')));
    assert.equal(plan.env['API_TOKEN'], 'secret-value');
    assert.equal(plan.env['HOME'], '/tmp');
  });

  test('no network scope: no broker socket, no proxy env, and a filter that allows AF_UNIX only', () => {
    const plan = planBwrap({ spec: spec([]), config, root: false, binaries });
    assert.ok(!plan.argv.includes(SANDBOX_EGRESS_SOCKET));
    assert.equal(plan.env['HTTPS_PROXY'], undefined);
  });

  test('a network scope binds the broker socket and runs the server behind the relay with proxy env', () => {
    const plan = planBwrap({ spec: spec(['write:network:example.com:443']), config, root: false, binaries, egressSocket: '/tmp/x/egress.sock', relayScript: '/opt/relay.js' });
    const args = bwrapArgs(plan.argv);
    assert.ok(binds(args, '--ro-bind').includes(SANDBOX_EGRESS_SOCKET));
    assert.equal(plan.env['HTTPS_PROXY'], 'http://127.0.0.1:3128');
    const tail = args.slice(args.lastIndexOf('--') - 0);
    assert.ok(args.includes('/run/bastion/relay.mjs'));
    assert.deepEqual(tail.slice(-3), ['/usr/bin/node', 'server.js', '--flag']);
    assert.ok(plan.seccomp.length > 0);
  });

  test('root without setpriv refuses instead of running the server as root', () => {
    assert.throws(() => planBwrap({ spec: spec([]), config, root: true, binaries: { bwrap: '/usr/bin/bwrap', prlimit: '/usr/bin/prlimit' } }), /setpriv/);
  });
});

describe('cgroup detection', () => {
  const v1Mountinfo = [
    '30 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
    '31 25 0:27 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
    '32 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct',
    '33 25 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
  ].join('\n');

  test('v1: each controller found in its own tree, including co-mounted cpu,cpuacct', () => {
    const layout = detectCgroups('4:memory:/svc/bastion\n8:pids:/svc\n2:cpu,cpuacct:/\n0::/', v1Mountinfo, () => []);
    assert.equal(layout.version, 1);
    assert.equal(layout.v1.memory, '/sys/fs/cgroup/memory/svc/bastion');
    assert.equal(layout.v1.pids, '/sys/fs/cgroup/pids/svc');
    assert.equal(layout.v1.cpu, '/sys/fs/cgroup/cpu,cpuacct');
    assert.equal(layout.v1.cpuacct, '/sys/fs/cgroup/cpu,cpuacct');
  });

  test('v2-only host: the unified cgroup and its available controllers', () => {
    const mountinfo = '25 1 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate';
    const layout = detectCgroups('0::/system.slice/bastion.service\n', mountinfo, (dir) => (dir === '/sys/fs/cgroup/system.slice/bastion.service' ? ['cpu', 'memory', 'pids'] : undefined));
    assert.equal(layout.version, 2);
    assert.deepEqual(layout.v2, { dir: '/sys/fs/cgroup/system.slice/bastion.service', controllers: ['cpu', 'memory', 'pids'], mountPoint: '/sys/fs/cgroup' });
  });

  test('a container whose cgroup root is bind-mounted: paths are taken relative to the mount root', () => {
    const mountinfo = '40 30 0:26 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory';
    const layout = detectCgroups('4:memory:/docker/abc\n', mountinfo, () => []);
    assert.equal(layout.v1.memory, '/sys/fs/cgroup/memory');
  });

  test('a group the host refuses half-way is removed, not left with some controllers and not others', () => {
    const memory = join(tmp, 'cg-memory');
    mkdirSync(memory);
    const notADirectory = join(tmp, 'cg-pids-file');
    writeFileSync(notADirectory, '');
    const layout = { version: 1 as const, v1: { memory, pids: notADirectory }, v1Roots: {} };
    assert.throws(() => ServerCgroup.create(layout, 'half', { memoryBytes: 1 << 26, pids: 10, cpus: 1 }), /ENOTDIR/);
    assert.deepEqual(listChildren(memory), []);
  });

  test("groups left by a dead Bastion are swept; a live gateway's groups are left alone", () => {
    const parent = join(tmp, 'cg-sweep');
    mkdirSync(parent);
    const deadPid = spawnSync('/usr/bin/true').pid as number;
    for (const name of [`bastion-old-${deadPid}-abc1`, `bastion-mine-${process.pid}-abc2`, `bastion-live-${process.ppid}-abc3`, 'unrelated-1-x']) mkdirSync(join(parent, name));
    sweepStale(parent);
    assert.deepEqual(listChildren(parent).sort(), [`bastion-live-${process.ppid}-abc3`, `bastion-mine-${process.pid}-abc2`].sort());
  });

  test('no controllers anywhere: version none (the backend degrades or refuses per config)', () => {
    const layout = detectCgroups('0::/\n', '25 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw', () => []);
    assert.equal(layout.version, 'none');
  });
});

describe('OCI bundle and container flags', () => {
  const limits = { ...DEFAULT_SANDBOX_LIMITS, pids: 33 };

  test('config.json: all namespaces, one-uid mapping, no capabilities, noNewPrivileges, read-only root, seccomp', () => {
    const config = ociBundleConfig(spec([`read:filesystem:${data}`, `write:filesystem:${out}`]), limits, 61234);
    assert.deepEqual(config.linux.namespaces.map((n) => n.type).sort(), ['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts']);
    assert.deepEqual(config.linux.uidMappings, [{ containerID: 0, hostID: 61234, size: 1 }]);
    assert.deepEqual(config.linux.gidMappings, [{ containerID: 0, hostID: 61234, size: 1 }]);
    assert.equal(config.process.user.uid, 0);
    assert.equal(config.process.noNewPrivileges, true);
    assert.deepEqual(config.process.capabilities.bounding, []);
    assert.equal(config.root.readonly, true);
    assert.equal(config.linux.resources.pids.limit, 33);
    assert.ok(config.linux.seccomp.syscalls.some((s) => s.names.includes('ptrace')));
    const mount = (dest: string): string[] | undefined => config.mounts.find((m) => m.destination === dest)?.options;
    assert.ok(mount(data)?.includes('ro'));
    assert.ok(mount(out)?.includes('rw'));
    assert.ok(mount('/usr')?.includes('ro'));
    assert.ok(mount('/tmp')?.includes(`size=${limits.tmpBytes}`));
    assert.ok(config.process.env.includes('API_TOKEN=secret-value'));
  });

  test('docker/podman flags: read-only, no caps, no-new-privileges, no network, user, pids, memory, cpus', () => {
    const flags = containerRunFlags({ image: 'ghcr.io/acme/tool@sha256:abc', spec: spec([`read:filesystem:${data}`]), limits, uid: 61234, seccompProfilePath: '/etc/bastion/seccomp.json' });
    const joined = flags.join(' ');
    for (const expected of ['--read-only', '--cap-drop ALL', '--security-opt no-new-privileges', '--security-opt seccomp=/etc/bastion/seccomp.json', '--network none', '--user 61234:61234', '--pids-limit 33', `--memory ${limits.memoryBytes}`, '--cpus 1']) {
      assert.ok(joined.includes(expected), expected);
    }
    assert.ok(joined.includes(`type=bind,source=${data},target=${data},readonly`));
    assert.equal(flags.indexOf('ghcr.io/acme/tool@sha256:abc'), flags.length - 3);
  });
});

describe('egress broker request parsing', () => {
  test('only CONNECT host:port HTTP/1.x is accepted', () => {
    assert.deepEqual(parseConnect('CONNECT Example.com:443 HTTP/1.1\r\nHost: x'), { host: 'example.com', port: 443 });
    assert.deepEqual(parseConnect('CONNECT [::1]:8443 HTTP/1.0'), { host: '::1', port: 8443 });
    for (const bad of ['GET http://example.com/ HTTP/1.1', 'CONNECT example.com HTTP/1.1', 'CONNECT example.com:0 HTTP/1.1', 'CONNECT example.com:70000 HTTP/1.1', 'CONNECT a b:1 HTTP/1.1', 'CONNECT user@host:22 HTTP/1.1']) {
      assert.equal(parseConnect(bad), undefined, bad);
    }
  });
});

describe('backend selection and refusal', () => {
  test('per-server config overrides global fields and merges limits', () => {
    const config = resolveSandboxConfig({ backend: 'bwrap', limits: { pids: 10 } }, { limits: { memoryBytes: 1 << 26 } });
    assert.equal(config.limits.pids, 10);
    assert.equal(config.limits.memoryBytes, 1 << 26);
    assert.equal(config.limits.cpuSeconds, DEFAULT_SANDBOX_LIMITS.cpuSeconds);
  });

  test('the oci backend refuses to start a server when its runtime is missing (never runs it unconfined)', async () => {
    const backend = createSandbox({ backend: 'oci', oci: { runtime: 'no-such-runtime-xyz', bundleDir: tmp } });
    await assert.rejects(backend.spawn(spec([])), /OCI runtime "no-such-runtime-xyz" is not installed.*refusing to run unconfined/);
  });

  test('the none backend is explicit and warns at every start', async () => {
    const handle = await createSandbox({ backend: 'none' }).spawn(spec([], { command: '/usr/bin/true', args: [] }));
    try {
      assert.equal(handle.backend, 'none');
      assert.match(handle.warnings[0] ?? '', /WITHOUT a sandbox/);
    } finally {
      await handle.dispose();
    }
  });
});
