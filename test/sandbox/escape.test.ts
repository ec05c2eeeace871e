// The escape-server fixture tries, from inside the sandbox, the ways out an ordinary program
// uses: plain TCP, DNS, HTTP without proxy variables, the sandbox init's memory, and it crashes
// by SIGSEGV and by running out of memory. One server per backend, shared by that backend's
// tests; the same test body runs for every backend.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createSandbox, type EgressEvent, type SandboxBackendName, type SandboxHandle } from '../../src/sandbox/index.js';
import { attempt, connectClient, FIXTURE_PACKAGE_DIRS } from './helpers.js';

const escapeServer = fileURLToPath(new URL('../fixtures/servers/escape-server.js', import.meta.url));

async function listen(server: Server | HttpServer): Promise<number> {
  // No host: dual-stack, so `localhost` reaches it whichever family the broker's lookup returns.
  await new Promise<void>((resolve) => server.listen(0, resolve));
  return (server.address() as { port: number }).port;
}

/** Starts a fresh escape server (for the crash tests: each ends its server). */
async function startEscape(backend: SandboxBackendName, name: string, memoryBytes = 192 * 1024 * 1024): Promise<{ handle: SandboxHandle; client: Client }> {
  const handle = await createSandbox({ backend, limits: { memoryBytes, pids: 128 } }).spawn({ serverName: name, command: process.execPath, args: [escapeServer], env: {}, packageDirs: FIXTURE_PACKAGE_DIRS, scopes: [] });
  return { handle, client: await connectClient(handle.child) };
}

/** Calls a tool that ends the server and returns how the handle names the exit. */
async function crash(backend: SandboxBackendName, tool: string, memoryBytes?: number): Promise<{ code: number | null; signal: string | null; named: ReturnType<SandboxHandle['describeExit']> }> {
  const { handle, client } = await startEscape(backend, `escape-${tool}-${backend}`, memoryBytes);
  try {
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => handle.child.once('exit', (code, signal) => resolve({ code, signal })));
    await assert.rejects(client.callTool({ name: tool, arguments: {} }, undefined, { timeout: 60_000 }));
    const { code, signal } = await exited;
    return { code, signal, named: handle.describeExit(code, signal) };
  } finally {
    await client.close().catch(() => {});
    await handle.dispose();
  }
}

/**
 * `transparent`: plain connect() and DNS reach granted destinations (`transparentEgress:
 * require`); without it (`off`) only the relay does. The refusals hold either way.
 */
function escapeTests(backend: SandboxBackendName, transparent: boolean): void {
  describe(`escape attempts under ${backend}${transparent ? '' : ' without transparent egress (relay only)'}`, () => {
    let granted: Server;
    let ungranted: Server;
    let web: HttpServer;
    let grantedPort = 0;
    let ungrantedPort = 0;
    let webPort = 0;
    let ungrantedConnections = 0;
    let handle: SandboxHandle;
    let client: Client;
    const egress: EgressEvent[] = [];

    before(async () => {
      granted = createServer((socket) => socket.end('hello-granted\n'));
      ungranted = createServer((socket) => {
        ungrantedConnections += 1;
        socket.end('hello-ungranted\n');
      });
      web = createHttpServer((_req, res) => res.end('web-body'));
      [grantedPort, ungrantedPort, webPort] = await Promise.all([listen(granted), listen(ungranted), listen(web)]);
      const sandbox = createSandbox({ backend, transparentEgress: transparent ? 'require' : 'off', limits: { memoryBytes: 192 * 1024 * 1024, pids: 128 } });
      handle = await sandbox.spawn({
        serverName: `escape-${backend}${transparent ? '' : '-relay'}`,
        command: process.execPath,
        args: [escapeServer],
        env: {},
        packageDirs: FIXTURE_PACKAGE_DIRS,
        scopes: [`write:network:127.0.0.1:${grantedPort}`, `write:network:127.0.0.1:${webPort}`, `write:network:localhost:${grantedPort}`],
      });
      handle.events.on('egress', (event) => egress.push(event));
      client = await connectClient(handle.child);
    });

    after(async () => {
      await client?.close().catch(() => {});
      await handle?.dispose();
      for (const server of [granted, ungranted, web]) server?.close();
    });

    if (!transparent) test('plain TCP to the granted port goes nowhere: only the relay (HTTPS_PROXY) leads out', async () => {
      const outcome = await attempt(client, 'tcp', { host: '127.0.0.1', port: grantedPort });
      assert.equal(outcome.ok, false, outcome.detail);
      assert.match(outcome.detail, /ECONNREFUSED|ECONNRESET|ENETUNREACH/);
      assert.ok(!egress.some((e) => e.via === 'transparent'));
    });

    if (transparent) test('plain TCP to the granted 127.0.0.1 port reaches the listener, through the broker', async () => {
      const outcome = await attempt(client, 'tcp', { host: '127.0.0.1', port: grantedPort });
      assert.equal(outcome.ok, true, outcome.detail);
      assert.equal(outcome['data'], 'hello-granted\n');
      assert.ok(egress.some((e) => e.allowed && e.host === '127.0.0.1' && e.port === grantedPort && e.via === 'transparent' && e.reason === 'connected'));
    });

    test('plain TCP to a port that is not granted never reaches its listener', async () => {
      const outcome = await attempt(client, 'tcp', { host: '127.0.0.1', port: ungrantedPort });
      assert.equal(outcome.ok, false, outcome.detail);
      assert.match(outcome.detail, /ECONNRESET|ECONNREFUSED|ENETUNREACH|EAFNOSUPPORT|closed without data/);
      assert.equal(ungrantedConnections, 0);
    });

    if (transparent) test('the refused connection is audited with the scope it lacks', () => {
      const denied = egress.find((e) => !e.allowed && e.port === ungrantedPort);
      assert.ok(denied, JSON.stringify(egress));
      assert.equal(denied.server, `escape-${backend}${transparent ? '' : '-relay'}`);
      assert.equal(denied.via, 'transparent');
      assert.equal(denied.scope, `write:network:127.0.0.1:${ungrantedPort}`);
    });

    if (transparent) test('repeated refusals of one destination are audited once per window (rate limit)', async () => {
      for (let i = 0; i < 5; i += 1) assert.equal((await attempt(client, 'tcp', { host: '127.0.0.1', port: ungrantedPort })).ok, false);
      assert.equal(egress.filter((e) => !e.allowed && e.port === ungrantedPort).length, 1);
      assert.equal(ungrantedConnections, 0);
    });

    if (transparent) test('a granted name resolves (getaddrinfo and a raw DNS query) to an address that reaches only that name', async () => {
      const outcome = await attempt(client, 'lookup', { name: 'localhost' });
      assert.equal(outcome.ok, true, outcome.detail);
      assert.match(String(outcome['lookup']), /^127\.100\.\d+\.\d+$/);
      assert.equal(outcome['resolved'], outcome['lookup']);
      const connected = await attempt(client, 'tcp', { host: 'localhost', port: grantedPort });
      assert.equal(connected.ok, true, connected.detail);
      assert.ok(egress.some((e) => e.allowed && e.host === 'localhost' && e.port === grantedPort));
      // The same address on another port is the same name on that port: not granted.
      const other = await attempt(client, 'tcp', { host: String(outcome['lookup']), port: ungrantedPort });
      assert.equal(other.ok, false, other.detail);
      assert.ok(egress.some((e) => !e.allowed && e.host === 'localhost' && e.port === ungrantedPort));
      assert.equal(ungrantedConnections, 0);
    });

    test('a name no scope grants does not resolve', async () => {
      const outcome = await attempt(client, 'lookup', { name: 'not-granted.example.com' });
      assert.equal(outcome.ok, false);
      assert.match(String(outcome['lookup']), /ENOTFOUND|EAI_AGAIN|ECONNREFUSED/);
      assert.match(String(outcome['resolved']), /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEOUT/);
      if (transparent) assert.ok(egress.some((e) => !e.allowed && e.host === 'not-granted.example.com' && e.via === 'dns'));
    });

    test('HTTP without proxy variables reaches a granted server (transparent backends); an ungranted address (cloud metadata) never does', async () => {
      if (transparent) {
        const outcome = await attempt(client, 'http_get', { url: `http://127.0.0.1:${webPort}/` });
        assert.equal(outcome.ok, true, outcome.detail);
        assert.equal(outcome['body'], 'web-body');
      }
      const metadata = await attempt(client, 'http_get', { url: 'http://169.254.169.254/latest/meta-data/' });
      assert.equal(metadata.ok, false, metadata.detail);
      if (transparent) assert.ok(egress.some((e) => !e.allowed && e.host === '169.254.169.254' && e.port === 80 && e.scope === 'write:network:169.254.169.254:80'));
    });

    test("the sandbox init's /proc/1/mem (and environ) do not open, for reading or writing", async () => {
      const outcome = await attempt(client, 'init_memory');
      // Under gVisor the server itself is pid 1 (runsc runs no init of its own): its own memory is no escape.
      if (outcome['selfPid'] === 1) {
        assert.equal(backend, 'gvisor');
        return;
      }
      const attempts = outcome['attempts'] as Record<string, string>;
      for (const mode of ['r', 'r+']) assert.match(attempts[`/proc/1/mem ${mode}`] ?? '', /EACCES|EPERM|ENOENT/, outcome.detail);
      if (backend === 'gvisor') {
        // pid 1 is the relay, of the server's uid; gVisor refuses an ancestor's memory (ptrace
        // attach mode) but not its environ (read mode), which is the environment it handed the server.
        if (attempts['/proc/1/environ r']?.startsWith('opened')) assert.equal(outcome['initEnvironIsOwn'], true, outcome.detail);
        return;
      }
      assert.equal(outcome.ok, false, outcome.detail);
      assert.match(attempts['/proc/1/environ r'] ?? '', /EACCES|EPERM|ENOENT/);
    });

    // Servers of their own: once per backend.
    if (transparent) test('a server that dies of SIGSEGV is reported as killed by SIGSEGV, not exit code 139', async () => {
      const ended = await crash(backend, 'crash_segv');
      assert.equal(ended.named?.signal, 'SIGSEGV', JSON.stringify(ended));
      assert.equal(ended.named?.detail, 'killed by SIGSEGV');
    });

    // Servers of their own: once per backend.
    if (transparent) test('a server that runs out of memory is reported as SIGKILL by the OOM killer, with the cause', async () => {
      const ended = await crash(backend, 'exhaust_memory', 96 * 1024 * 1024);
      assert.equal(ended.named?.signal, 'SIGKILL', JSON.stringify(ended));
      assert.match(ended.named?.detail ?? '', /out of memory \(the memory limit of 96 MiB was reached/);
    });

    // Servers of their own: once per backend.
    if (transparent) test('without a network grant, seccomp refuses unshare(CLONE_NEWUSER), keyctl, mount and AF_INET sockets; clone3 answers ENOSYS', async () => {
      const { handle: plain, client: plainClient } = await startEscape(backend, `escape-seccomp-${backend}`);
      try {
        const outcome = await attempt(plainClient, 'raw_syscalls');
        const errnos = outcome['errnos'] as Record<string, number>;
        assert.ok(errnos, outcome.detail);
        for (const name of ['unshare', 'keyctl', 'mount']) assert.equal(errnos[name], 1, `${name}: ${outcome.detail}`);
        // runsc enforces the bundle's profile but ignores its errnoRet: every refusal is EPERM there.
        assert.equal(errnos['socket'], backend === 'gvisor' ? 1 : 97, outcome.detail);
        // ENOSYS makes libc fall back to clone, whose flags the filter checks (under gVisor the sentry says it: it has no clone3).
        assert.equal(errnos['clone3'], 38, outcome.detail);
      } finally {
        await plainClient.close().catch(() => {});
        await plain.dispose();
      }
    });

    test('a networked server still runs as an unprivileged uid (or gVisor root mapped to one) without capabilities, and seccomp still refuses namespaces, keyrings and mounts', async () => {
      const who = await attempt(client, 'identity');
      if (backend === 'gvisor' && !transparent) {
        // The bundle's user namespace maps container root to the server's host uid; gVisor shows
        // its own users inside (uid 0, uid_map "0 0 4294967295"), without any capability.
        assert.equal(who['uid'], 0, who.detail);
      } else if (process.getuid?.() === 0) {
        assert.equal(who['uid'], handle.uid, who.detail);
      }
      assert.ok((handle.uid ?? 0) >= 1000, String(handle.uid));
      assert.match(String(who['capEff']), /^0+$/);
      const errnos = (await attempt(client, 'raw_syscalls'))['errnos'] as Record<string, number>;
      for (const name of ['unshare', 'keyctl', 'mount']) assert.equal(errnos[name], 1, `${name}: ${JSON.stringify(errnos)}`);
      assert.equal(errnos['socket'], 0, 'AF_INET is granted with the network');
    });

    test('CONNECT through the in-sandbox relay (HTTPS_PROXY) reaches a granted port; an ungranted one gets 403, audited', async () => {
      const outcome = await attempt(client, 'proxy_connect', { host: '127.0.0.1', port: grantedPort });
      assert.equal(outcome.ok, true, outcome.detail);
      assert.equal(outcome['data'], 'hello-granted\n');
      const refused = await attempt(client, 'proxy_connect', { host: '127.0.0.1', port: ungrantedPort + 0 });
      assert.equal(refused['status'], 403, refused.detail);
      assert.equal(ungrantedConnections, 0);
      assert.ok(egress.some((e) => e.allowed && e.port === grantedPort && e.via === 'proxy'), JSON.stringify(egress));
    });
  });
}

escapeTests('bwrap', true);
escapeTests('gvisor', true);
// The fallback where transparent egress is off or the host lacks it: still the relay, never a silent widening.
escapeTests('gvisor', false);
