// A hostile MCP server, started through the bwrap backend exactly as the gateway starts servers,
// tries one escape or exhaustion per test. Each test asserts the attempt was contained, that the
// server (and so the gateway's link to it) still answers, and what the sandbox reported.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createSandbox, serverUid, type EgressEvent, type LimitEvent, type SandboxHandle } from '../../src/sandbox/index.js';
import { attempt, connectClient, FIXTURE_PACKAGE_DIRS, hostileServer } from './helpers.js';
import { removeTree } from '../helpers/tmp.js';

const root = process.getuid?.() === 0;

interface Started {
  handle: SandboxHandle;
  client: Client;
  egress: EgressEvent[];
  limits: LimitEvent[];
}

async function startHostile(name: string, scopes: string[], limits: Record<string, number> = {}): Promise<Started> {
  const backend = createSandbox({ limits: { memoryBytes: 256 * 1024 * 1024, pids: 48, ...limits } });
  const handle = await backend.spawn({ serverName: name, command: process.execPath, args: [hostileServer()], env: { HOSTILE: '1' }, packageDirs: FIXTURE_PACKAGE_DIRS, scopes });
  const egress: EgressEvent[] = [];
  const limitEvents: LimitEvent[] = [];
  handle.events.on('egress', (event) => egress.push(event));
  handle.events.on('limit', (event) => limitEvents.push(event));
  const client = await connectClient(handle.child);
  return { handle, client, egress, limits: limitEvents };
}

describe('a hostile server in the bwrap sandbox', () => {
  const base = mkdtempSync(join(tmpdir(), 'bastion-sandbox-test-'));
  const readable = join(base, 'granted-read');
  const writable = join(base, 'granted-write');
  const sibling = join(base, 'sibling-server');
  const outside = join(base, 'not-granted');
  let listener: Server;
  let listenerPort = 0;
  let ungrantedPort = 0;
  let listenerConnections = 0;
  let hostile: Started;

  before(async () => {
    // mkdtemp makes 0700; the server's uid needs to traverse to its granted directories (the
    // sandbox never adds host permissions, it only takes away).
    chmodSync(base, 0o711);
    for (const dir of [readable, writable, sibling, outside]) mkdirSync(dir);
    writeFileSync(join(readable, 'notes.txt'), 'granted content');
    writeFileSync(join(sibling, 'secret.txt'), 'the sibling server token');
    writeFileSync(join(outside, 'secret.txt'), 'not for the sandbox');
    // The server runs as its own uid: the operator gives that uid the write-granted directory.
    if (root) chownSync(writable, serverUid('hostile'), serverUid('hostile'));
    listener = createServer((socket) => {
      listenerConnections += 1;
      socket.end('hello-from-outside\n');
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    listenerPort = (listener.address() as { port: number }).port;
    const other = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    ungrantedPort = (other.address() as { port: number }).port;
    other.close();
    hostile = await startHostile('hostile', [`read:filesystem:${readable}`, `write:filesystem:${writable}`, `write:network:127.0.0.1:${listenerPort}`]);
  });

  after(async () => {
    await hostile?.client.close().catch(() => {});
    await hostile?.handle.dispose();
    listener?.close();
    removeTree(base);
  });

  /** After every attack the server must still answer: the link the gateway holds is intact. */
  async function stillAnswers(): Promise<void> {
    const who = await attempt(hostile.client, 'whoami');
    assert.equal(who.ok, true);
  }

  test('runs as a dedicated unprivileged uid with no capabilities, no_new_privs and a seccomp filter', async () => {
    const who = await attempt(hostile.client, 'whoami');
    if (root) {
      assert.equal(who['uid'], serverUid('hostile'));
      assert.equal(hostile.handle.uid, serverUid('hostile'));
    }
    assert.notEqual(who['uid'], 0);
    assert.equal(who['capEff'], '0000000000000000');
    assert.equal(who['capBnd'], '0000000000000000');
    assert.equal(who['noNewPrivs'], '1');
    assert.equal(who['seccomp'], '2');
    assert.equal(who['hostname'], 'sandbox');
  });

  test('reading /etc/shadow fails: it is not in the sandbox view', async () => {
    const outcome = await attempt(hostile.client, 'read_file', { path: '/etc/shadow' });
    assert.equal(outcome.ok, false);
    assert.match(outcome.detail, /ENOENT/);
  });

  test("root's ~/.ssh is not visible", async () => {
    for (const path of ['/root/.ssh/id_ed25519', '/root/.ssh/authorized_keys']) {
      const outcome = await attempt(hostile.client, 'read_file', { path });
      assert.equal(outcome.ok, false);
      assert.match(outcome.detail, /ENOENT/);
    }
    assert.equal((await attempt(hostile.client, 'list_dir', { path: '/root' })).ok, false);
  });

  test("a sibling server's files are not visible", async () => {
    const outcome = await attempt(hostile.client, 'read_file', { path: join(sibling, 'secret.txt') });
    assert.equal(outcome.ok, false);
    assert.match(outcome.detail, /ENOENT/);
  });

  test('paths outside the declared scopes are not visible (host home, source tree, the gateway state)', async () => {
    for (const path of [join(outside, 'secret.txt'), '/home', '/work/main/src', '/etc/hostname', '/var']) {
      const outcome = await attempt(hostile.client, path === '/home' || path === '/var' ? 'list_dir' : 'read_file', { path });
      assert.equal(outcome.ok, false, path);
    }
    const etc = await attempt(hostile.client, 'list_dir', { path: '/etc' });
    assert.ok(!etc.detail.split(',').includes('shadow') && !etc.detail.split(',').includes('passwd'), etc.detail);
  });

  test('a read:filesystem scope is readable but writing to it fails with EROFS', async () => {
    assert.equal((await attempt(hostile.client, 'read_file', { path: join(readable, 'notes.txt') })).detail, 'granted content');
    const outcome = await attempt(hostile.client, 'write_file', { path: join(readable, 'notes.txt'), text: 'tampered' });
    assert.equal(outcome.ok, false);
    assert.match(outcome.detail, /EROFS/);
    assert.equal(readFileSync(join(readable, 'notes.txt'), 'utf8'), 'granted content');
  });

  test('the system view and the server package are read-only', async () => {
    for (const path of ['/usr/bin/evil', join(FIXTURE_PACKAGE_DIRS[1] as string, 'planted.js')]) {
      const outcome = await attempt(hostile.client, 'write_file', { path, text: 'x' });
      assert.equal(outcome.ok, false, path);
      assert.match(outcome.detail, /EROFS|EACCES/);
    }
  });

  test('a write:filesystem scope is writable and the write lands on the host', async () => {
    const outcome = await attempt(hostile.client, 'write_file', { path: join(writable, 'out.txt'), text: 'result' });
    assert.equal(outcome.ok, true, outcome.detail);
    assert.equal(readFileSync(join(writable, 'out.txt'), 'utf8'), 'result');
  });

  test('a direct TCP connection to an ungranted port on the host loopback never reaches it (transparent egress refuses)', async () => {
    const before = listenerConnections;
    let reached = 0;
    const other = createServer((socket) => {
      reached += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => other.listen(ungrantedPort, '127.0.0.1', resolve));
    try {
      // The in-sandbox relay accepts every connection and the broker then refuses it (reset
      // before any byte flows), so connect() itself may succeed: what matters is where it went.
      const refused = new Promise<void>((resolve) => {
        const onEgress = (e: EgressEvent): void => {
          if (e.allowed || e.port !== ungrantedPort || e.via !== 'transparent') return;
          hostile.handle.events.off('egress', onEgress);
          resolve();
        };
        hostile.handle.events.on('egress', onEgress);
      });
      await attempt(hostile.client, 'tcp_connect', { host: '127.0.0.1', port: ungrantedPort });
      await refused;
      assert.equal(reached, 0);
      assert.equal(listenerConnections, before);
    } finally {
      other.close();
    }
  });

  test("the host's abstract unix sockets (D-Bus, X11, container runtimes) are out of reach", async () => {
    const name = `bastion-test-abstract-${process.pid}`;
    let accepted = 0;
    const abstract = createServer((socket) => {
      accepted += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => abstract.listen(`\0${name}`, resolve));
    try {
      const outcome = await attempt(hostile.client, 'unix_connect', { path: `@${name}` });
      assert.equal(outcome.ok, false);
      assert.match(outcome.detail, /ECONNREFUSED|ENOENT/);
      assert.equal(accepted, 0);
    } finally {
      abstract.close();
    }
  });

  test('the granted destination is reachable through the egress broker, and the connection is reported', async () => {
    const before = listenerConnections;
    const outcome = await attempt(hostile.client, 'broker_connect', { host: '127.0.0.1', port: listenerPort });
    assert.equal(outcome.ok, true, outcome.detail);
    assert.equal(listenerConnections, before + 1);
    assert.ok(hostile.egress.some((e) => e.allowed && e.port === listenerPort && e.reason === 'connected' && e.server === 'hostile'));
  });

  test('the granted destination is reachable through HTTPS_PROXY (the in-sandbox relay to the broker)', async () => {
    const outcome = await attempt(hostile.client, 'proxy_connect', { host: '127.0.0.1', port: listenerPort });
    assert.equal(outcome.ok, true, outcome.detail);
  });

  test('an ungranted destination is refused by the broker with 403 and reported as denied', async () => {
    for (const [host, port] of [['127.0.0.1', ungrantedPort], ['localhost', listenerPort], ['169.254.169.254', 80]] as const) {
      const outcome = await attempt(hostile.client, 'broker_connect', { host, port });
      assert.equal(outcome['status'], 403, `${host}:${port}`);
      assert.ok(hostile.egress.some((e) => !e.allowed && e.host === host && e.port === port), `${host}:${port} not reported`);
    }
  });

  test('a fork bomb stops at the process limit and the server keeps answering', async () => {
    const outcome = await attempt(hostile.client, 'fork_bomb', { max: 500 });
    assert.equal(outcome.ok, false);
    assert.match(outcome.detail, /EAGAIN/);
    assert.ok((outcome['started'] as number) < 48);
    await stillAnswers();
    if (hostile.handle.cpuTimeMs() !== undefined) {
      await new Promise((resolve) => setTimeout(resolve, 400));
      assert.ok(hostile.limits.some((e) => e.kind === 'pids'), JSON.stringify(hostile.limits));
    }
  });

  test('unbounded allocation is killed at the memory limit; the server survives and the limit hit is reported', async () => {
    const outcome = await attempt(hostile.client, 'allocate');
    assert.equal(outcome.ok, false);
    assert.equal(outcome['signal'], 'SIGKILL');
    await stillAnswers();
    if (hostile.handle.memoryBytes() !== undefined) {
      await new Promise((resolve) => setTimeout(resolve, 400));
      assert.ok(hostile.limits.some((e) => e.kind === 'memory'), JSON.stringify(hostile.limits));
      assert.ok((hostile.handle.memoryBytes() as number) < 256 * 1024 * 1024);
    }
  });

  test('ptrace is refused', async () => {
    const outcome = await attempt(hostile.client, 'ptrace');
    assert.equal(outcome.ok, false);
    assert.match(outcome.detail, /Operation not permitted/);
  });

  test('mount is refused', async () => {
    const outcome = await attempt(hostile.client, 'mount');
    assert.equal(outcome.ok, false);
    assert.notEqual(outcome['status'], 0);
  });

  test('unshare (a new user namespace) is refused', async () => {
    const outcome = await attempt(hostile.client, 'unshare');
    assert.equal(outcome.ok, false);
    assert.match(outcome.detail, /Operation not permitted/);
  });

  test('bpf() is refused with EPERM', async () => {
    const outcome = await attempt(hostile.client, 'bpf');
    assert.equal(outcome.ok, false);
    assert.equal(outcome.detail, '-1 1');
  });

  test('keyctl() is refused with EPERM (it would succeed without the filter)', async () => {
    const outcome = await attempt(hostile.client, 'keyctl');
    assert.equal(outcome.ok, false);
    assert.equal(outcome.detail, '-1 1');
  });

  test('host processes are invisible: /proc shows only the sandbox', async () => {
    const outcome = await attempt(hostile.client, 'list_processes');
    const processes = outcome['processes'] as string[];
    assert.ok(processes.length < 8, processes.join('\n'));
    assert.ok(!processes.some((p) => p.includes('--test')), 'the test runner is visible');
    assert.ok(processes.some((p) => p.startsWith('1:')), 'pid 1 is the sandbox init');
  });

  test('the environment holds only what was set explicitly', async () => {
    const outcome = await attempt(hostile.client, 'read_file', { path: '/proc/self/environ' });
    const names = outcome.detail.split('\0').map((kv) => kv.split('=')[0]).filter(Boolean).sort();
    assert.ok(names.includes('HOSTILE'));
    for (const name of names) assert.match(name as string, /^(HOSTILE|PATH|HOME|TMPDIR|LANG|HTTPS?_PROXY|https?_proxy|BASTION_EGRESS_SOCKET)$/);
  });

  test('dispose removes the per-server cgroup', async () => {
    const extra = await startHostile('disposable', []);
    const cgroupFile = readFileSync(`/proc/${extra.handle.child.pid}/cgroup`, 'utf8');
    await extra.client.close();
    await extra.handle.dispose();
    const memoryParent = /:memory:(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1];
    if (extra.handle.cpuTimeMs() === undefined && memoryParent !== undefined && existsSync(`/sys/fs/cgroup/memory${memoryParent}`)) {
      const left = readdirSync(`/sys/fs/cgroup/memory${memoryParent}`).filter((n) => n.startsWith(`bastion-disposable-${process.pid}-`));
      assert.deepEqual(left, []);
    }
    assert.ok(cgroupFile.length > 0);
  });

  test('a networked server starts in its own prepared namespace, which dispose removes', async () => {
    const ours = (): string[] => (existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(`bastion-${process.pid}-`)) : []);
    const before = ours();
    const extra = await startHostile('netns-disposable', [`write:network:127.0.0.1:${listenerPort}`]);
    try {
      const added = ours().filter((n) => !before.includes(n));
      if (root) {
        assert.equal(added.length, 1, `new namespaces: ${added.join(', ')}`);
        // The sandbox runs in the namespace Bastion prepared (and owns), not in one bwrap made.
        assert.equal(statSync(`/proc/${extra.handle.child.pid}/ns/net`).ino, statSync(`/run/netns/${added[0]}`).ino);
        // A plain connect() is redirected by the prepared rules to the relay, and the broker connects.
        const connected = new Promise<EgressEvent>((resolve) => extra.handle.events.on('egress', (event) => event.reason === 'connected' && resolve(event)));
        const outcome = await attempt(extra.client, 'tcp_connect', { host: '127.0.0.1', port: listenerPort });
        assert.equal(outcome.ok, true, outcome.detail);
        const event = await connected;
        assert.equal(event.allowed, true);
        assert.equal(event.port, listenerPort);
      } else {
        assert.deepEqual(added, []);
      }
    } finally {
      await extra.client.close().catch(() => {});
      await extra.handle.dispose();
    }
    assert.deepEqual(ours().filter((n) => !before.includes(n)), []);
  });
});

describe('CPU limits', () => {
  test('a CPU spinner is killed at RLIMIT_CPU and its CPU time is charged to the server', async () => {
    const spinner = await startHostile('spinner', [], { cpuSeconds: 2 });
    try {
      const before = spinner.handle.cpuTimeMs();
      const outcome = await attempt(spinner.client, 'spin_cpu');
      assert.equal(outcome.ok, false);
      assert.match(String(outcome['signal']), /SIGKILL|SIGXCPU/);
      assert.equal((await attempt(spinner.client, 'whoami')).ok, true);
      const afterMs = spinner.handle.cpuTimeMs();
      if (before !== undefined && afterMs !== undefined) // The spinner alone burned about cpuSeconds of CPU; scheduler accounting and RLIMIT_CPU sampling differ slightly, so the bound is loose.
      assert.ok(afterMs - before >= 1000, `charged ${afterMs - before} ms`);
    } finally {
      await spinner.client.close();
      await spinner.handle.dispose();
    }
  });
});
