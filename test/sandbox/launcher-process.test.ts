// Tests that need the launcher in its own process: killing the "gateway" outright, and running
// the launcher as an unprivileged user (the rootless deployment).
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { hostCgroupLayout } from '../../src/sandbox/cgroups.js';
import { serverUid } from '../../src/sandbox/host.js';

const LAUNCHER = fileURLToPath(new URL('./launch-hostile.js', import.meta.url));
const NOBODY = 65534;

interface Line {
  started?: boolean;
  hostUid?: number;
  cgroups?: boolean;
  warning?: string;
  tool?: string;
  outcome?: { ok: boolean; detail: string; [key: string]: unknown };
  done?: boolean;
}

/** Starts the stand-in gateway and collects its JSON lines until it reports `done`. */
function launch(request: object, asUser?: number): { child: ChildProcessWithoutNullStreams; lines: Promise<Line[]> } {
  const argv = [LAUNCHER, JSON.stringify(request)];
  const child =
    asUser === undefined
      ? spawn(process.execPath, argv, { stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn('/usr/bin/setpriv', ['--reuid', String(asUser), '--regid', String(asUser), '--clear-groups', '--inh-caps=-all', '--', process.execPath, ...argv], { stdio: ['pipe', 'pipe', 'pipe'], cwd: '/tmp' });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = new Promise<Line[]>((resolve, reject) => {
    const seen: Line[] = [];
    createInterface({ input: child.stdout }).on('line', (text) => {
      const line = JSON.parse(text) as Line;
      seen.push(line);
      if (line.done) resolve(seen);
    });
    child.once('exit', (code) => reject(new Error(`launcher exited ${String(code)} before finishing: ${stderr}`)));
  });
  return { child, lines };
}

function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker)) found.push(Number(pid));
    } catch {
      // Exited while scanning.
    }
  }
  return found;
}

async function waitUntil(condition: () => boolean, attempts = 100): Promise<boolean> {
  for (let i = 0; i < attempts; i += 1) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return condition();
}

test('a double-forked sleeper does not outlive the gateway (SIGKILL of the launcher)', async () => {
  const marker = `977.${String(process.pid).padStart(6, '0')}`;
  const { child, lines } = launch({ serverName: 'outliver', scopes: [], calls: [['outlive', { marker }]], hold: true });
  await lines;
  assert.ok(await waitUntil(() => processesWith(marker).length > 0), 'the sleeper never started (the test would prove nothing)');
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await gone;
  assert.ok(await waitUntil(() => processesWith(marker).length === 0), `still running: ${processesWith(marker).join(', ')}`);
  if (process.getuid?.() === 0) {
    // Nothing of that sandbox is left running (zombies wait for the host's init to reap them).
    const uid = serverUid('outliver');
    assert.ok(await waitUntil(() => liveProcessesOf(uid).length === 0), `left running as uid ${uid}: ${liveProcessesOf(uid).join(', ')}`);
  }
});

function liveProcessesOf(uid: number): number[] {
  const found: number[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      if (new RegExp(`^Uid:\\s+${uid}\\s`, 'm').test(status) && !/^State:\s+Z/m.test(status)) found.push(Number(pid));
    } catch {
      // Exited while scanning.
    }
  }
  return found;
}

const runningAsRoot = process.getuid?.() === 0;

describe('the launcher running as an unprivileged user (uid 65534)', { skip: !runningAsRoot ? 'already unprivileged: the whole suite is this case' : false }, () => {
  // Root hands uid 65534 a delegated cgroup subtree, as systemd Delegate=yes would.
  const layout = hostCgroupLayout();
  const delegated = `/bastion-delegated-${process.pid}`;
  const delegatedDirs: string[] = [];
  if (layout.version === 1) {
    for (const root of new Set(Object.values(layout.v1Roots))) {
      const dir = join(root, delegated);
      mkdirSync(dir, { recursive: true });
      chownSync(dir, NOBODY, NOBODY);
      chownSync(join(dir, 'cgroup.procs'), NOBODY, NOBODY);
      delegatedDirs.push(dir);
    }
  }

  after(() => {
    for (const dir of delegatedDirs) {
      for (const child of existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()) : []) rmdirSync(join(dir, child.name));
      if (existsSync(dir)) rmdirSync(dir);
    }
  });

  const calls: Array<[string, Record<string, unknown>]> = [
    ['whoami', {}],
    ['read_file', { path: '/etc/shadow' }],
    ['mount', {}],
    ['unshare', {}],
    ['keyctl', {}],
    ['bpf', {}],
    ['ptrace', {}],
    ['list_dir', { path: '/root' }],
    ['tcp_connect', { host: '127.0.0.1', port: 22 }],
    ['list_processes', {}],
    ['fork_bomb', { max: 300 }],
  ];

  function assertContained(lines: Line[]): Map<string, NonNullable<Line['outcome']>> {
    const outcomes = new Map(lines.filter((l) => l.tool).map((l) => [l.tool as string, l.outcome as NonNullable<Line['outcome']>]));
    const who = outcomes.get('whoami');
    assert.equal(who?.['uid'], NOBODY);
    assert.equal(who?.['capEff'], '0000000000000000');
    assert.equal(who?.['seccomp'], '2');
    for (const tool of ['read_file', 'mount', 'unshare', 'keyctl', 'bpf', 'ptrace', 'list_dir', 'tcp_connect']) assert.equal(outcomes.get(tool)?.ok, false, `${tool}: ${outcomes.get(tool)?.detail}`);
    // No network scope: the seccomp filter refuses AF_INET sockets outright.
    assert.match(outcomes.get('tcp_connect')?.detail ?? '', /EAFNOSUPPORT/);
    assert.ok((outcomes.get('list_processes')?.['processes'] as string[]).length < 8);
    assert.match(outcomes.get('fork_bomb')?.detail ?? '', /EAGAIN/);
    return outcomes;
  }

  test('with a delegated cgroup: every attack is contained and limits are enforced by the cgroup', { skip: layout.version !== 1 ? 'cgroup v1 delegation is what this host offers' : false }, async () => {
    const { lines } = launch({ serverName: 'rootless', scopes: [], calls, hold: false, cgroupParent: delegated }, NOBODY);
    const seen = await lines;
    assert.equal(seen.find((l) => l.started)?.cgroups, true);
    assert.equal(seen.find((l) => l.started)?.hostUid, NOBODY);
    const outcomes = assertContained(seen);
    assert.ok((outcomes.get('fork_bomb')?.['started'] as number) < 64);
  });

  test('with sandbox.cgroups "require" and no cgroup access, the server is refused, not started', async () => {
    const { lines } = launch({ serverName: 'rootless-strict', scopes: [], calls, hold: false, cgroups: 'require' }, NOBODY);
    await assert.rejects(lines, /sandbox.cgroups is "require"/);
  });

  test('a network grant without root: the relay only, with a warning that says why; a plain connect() to the granted port is never made', async () => {
    let connections = 0;
    const listener = createServer((socket) => {
      connections += 1;
      socket.end('hello-from-outside\n');
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const port = (listener.address() as AddressInfo).port;
    try {
      const calls: Array<[string, Record<string, unknown>]> = [['tcp_connect', { host: '127.0.0.1', port }], ['proxy_connect', { host: '127.0.0.1', port }]];
      const { lines } = launch({ serverName: 'rootless-net', scopes: [`write:network:127.0.0.1:${port}`], calls, hold: false }, NOBODY);
      const seen = await lines;
      assert.ok(seen.some((l) => l.warning?.includes('transparent egress needs Bastion to run as root') && l.warning.includes('HTTPS_PROXY only')), JSON.stringify(seen.filter((l) => l.warning)));
      const outcomes = new Map(seen.filter((l) => l.tool).map((l) => [l.tool as string, l.outcome]));
      assert.equal(outcomes.get('tcp_connect')?.ok, false, outcomes.get('tcp_connect')?.detail);
      assert.equal(outcomes.get('proxy_connect')?.ok, true, outcomes.get('proxy_connect')?.detail);
      assert.equal(connections, 1, 'only the proxied connection arrived');
    } finally {
      listener.close();
    }
  });

  test('a network grant without root and transparentEgress "require": the server is refused, with the reason', async () => {
    const { lines } = launch({ serverName: 'rootless-net-strict', scopes: ['write:network:127.0.0.1:9'], calls: [], hold: false, transparentEgress: 'require' }, NOBODY);
    await assert.rejects(lines, /transparent egress needs Bastion to run as root.*sandbox\.transparentEgress is "require"/s);
  });

  test('without cgroup access: still contained by namespaces, seccomp and rlimits, and the degradation is reported', async () => {
    const { lines } = launch({ serverName: 'rootless-nocg', scopes: [], calls, hold: false }, NOBODY);
    const seen = await lines;
    assert.equal(seen.find((l) => l.started)?.cgroups, false);
    assert.ok(seen.some((l) => l.warning?.includes('cgroups unavailable')), 'no warning about the missing cgroups');
    assertContained(seen);
  });
});
