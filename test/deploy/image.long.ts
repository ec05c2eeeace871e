// The OCI image, built from the Containerfile with podman and run far enough to answer tools/list:
// the machine reaches Debian's mirror and npm but no container registry, so the Containerfile's
// base images (build arguments) are a local stand-in built from Debian packages
// (deploy/container/local-base.sh). Several minutes on a cold machine (the Debian base alone is
// about 2.5), so it is not part of `npm test` (its name does not end in .test.ts); it needs
// root, podman and mmdebstrap (installed with apt-get when missing). Run it on its own after a build:
//   node --test --test-timeout=2400000 dist/test/deploy/image.long.js
// Measured on the 2-core VM: about 8 minutes cold (Debian base 2.5, podman build 4.3), about 1
// minute when podman's layer cache has the base and the build.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { parseDocument } from 'yaml';
import { hashToken } from '../../src/auth/index.js';
import { removeTree } from '../helpers/tmp.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const require = createRequire(import.meta.url);
const INSPECTOR_CLI = join(dirname(require.resolve('@modelcontextprotocol/inspector-cli/package.json')), 'build', 'cli.js');
const BASE_IMAGE = 'localhost/bastion-base/node:20-bookworm';
const IMAGE = 'localhost/bastion-test/bastion:latest';
const MINUTE = 60_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

function run(command: string, args: string[], timeoutMs = 10 * MINUTE): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, seconds: (Date.now() - started) / 1000 });
    });
  });
}

const tail = (text: string, lines = 30): string => text.trimEnd().split('\n').slice(-lines).join('\n');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** The hard limit of one resource for this process, from /proc/self/limits. */
function hardLimit(label: string): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(label));
  const hard = line?.slice(label.length).trim().split(/\s+/)[1];
  return hard === undefined || hard === 'unlimited' ? Number.POSITIVE_INFINITY : Number(hard);
}

/**
 * Rootful podman sets nofile=1048576 and nproc=4194304 in every container; raising a hard limit
 * needs CAP_SYS_RESOURCE, which root lacks on some CI machines (this one), where runc then fails
 * with "error setting rlimit type 7: operation not permitted". Explicit limits at or below the
 * host's work everywhere, and stay above what Bastion's prlimit asks for its servers.
 */
function ulimitFlags(): string[] {
  const nofile = Math.min(hardLimit('Max open files'), 65536);
  const nproc = Math.min(hardLimit('Max processes'), 32768);
  return ['--ulimit', `nofile=${nofile}:${nofile}`, '--ulimit', `nproc=${nproc}:${nproc}`];
}

function get(port: number, path: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

function needs(): string | undefined {
  if (process.getuid?.() !== 0) return 'rootful podman: run as root';
  const missing = ['podman', 'mmdebstrap'].filter((cmd) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status !== 0);
  if (missing.length === 0) return undefined;
  const installed = spawnSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return installed.status === 0 ? undefined : `apt-get install ${missing.join(' ')} failed: ${installed.stderr}`;
}

describe('the container image', () => {
  const token = randomBytes(24).toString('base64url');
  const containers: string[] = [];
  let dir = '';
  let built = false;

  before(() => {
    const missing = needs();
    assert.equal(missing, undefined, missing);
    dir = mkdtempSync('/tmp/bastion-image-test-');
    chmodSync(dir, 0o755);
  });

  after(async () => {
    for (const name of containers) await run('podman', ['rm', '--force', '--time', '0', name], MINUTE);
    if (dir !== '') removeTree(dir);
  });

  /** The image's config with a token for agent `agent` and the host port in allowedHosts, mounted read-only. */
  function configFor(port: number): string {
    const doc = parseDocument(readFileSync(join(ROOT, 'deploy/container/bastion.yaml'), 'utf8'));
    doc.setIn(['auth', 'apiTokens'], [{ agent: 'agent', sha256: hashToken(token) }]);
    doc.setIn(['listeners', 'http', 'allowedHosts'], [`127.0.0.1:${port}`, 'localhost:8080']);
    const file = join(dir, `bastion-${port}.yaml`);
    writeFileSync(file, doc.toString(), { mode: 0o644 });
    return file;
  }

  async function startGateway(securityFlags: string[]): Promise<{ name: string; port: number }> {
    const port = await freePort();
    const name = `bastion-test-${process.pid}-${containers.length}`;
    containers.push(name);
    const started = await run('podman', ['run', '--detach', '--name', name, ...ulimitFlags(), ...securityFlags, '--publish', `127.0.0.1:${port}:8080`, '--volume', `${configFor(port)}:/etc/bastion/bastion.yaml:ro`, IMAGE]);
    assert.equal(started.code, 0, `podman run: ${started.stderr}`);
    const deadline = Date.now() + 2 * MINUTE;
    for (;;) {
      const logs = await run('podman', ['logs', name], MINUTE);
      if (`${logs.stdout}${logs.stderr}`.includes('"gateway listening"')) break;
      const state = await run('podman', ['inspect', '--format', '{{.State.Running}}', name], MINUTE);
      assert.ok(state.stdout.trim() === 'true', `the gateway exited before listening:\n${tail(logs.stdout + logs.stderr)}`);
      assert.ok(Date.now() < deadline, `no "gateway listening" within 2 minutes:\n${tail(logs.stdout + logs.stderr)}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    return { name, port };
  }

  const inspector = (port: number, args: string[]): Promise<Run> =>
    run(process.execPath, [INSPECTOR_CLI, '--cli', `http://127.0.0.1:${port}/mcp`, '--transport', 'http', '--header', `Authorization: Bearer ${token}`, ...args], 2 * MINUTE);

  test('builds from the Containerfile against a base made from Debian packages only', { timeout: 40 * MINUTE }, async (t) => {
    const base = await run('bash', [join(ROOT, 'deploy/container/local-base.sh'), BASE_IMAGE], 20 * MINUTE);
    assert.equal(base.code, 0, `local-base.sh:\n${tail(base.stdout + base.stderr)}`);
    t.diagnostic(`local base image: ${base.seconds.toFixed(0)} s (${base.stderr.trim().split('\n').at(-1) ?? ''})`);
    const build = await run('podman', ['build', '--build-arg', `BUILD_IMAGE=${BASE_IMAGE}`, '--build-arg', `RUNTIME_IMAGE=${BASE_IMAGE}`, '--tag', IMAGE, '--file', join(ROOT, 'Containerfile'), ROOT], 30 * MINUTE);
    assert.equal(build.code, 0, `podman build:\n${tail(build.stdout + build.stderr, 60)}`);
    t.diagnostic(`podman build: ${build.seconds.toFixed(0)} s`);
    const user = await run('podman', ['image', 'inspect', '--format', '{{.Config.User}}', IMAGE], MINUTE);
    assert.equal(user.stdout.trim(), '10001:10001', 'non-root by default');
    built = true;
  });

  test('with the engine defaults (its seccomp profile, a masked /proc) the gateway starts but bwrap cannot start a server, and says why', { timeout: 5 * MINUTE }, async (t) => {
    assert.ok(built, 'the image was built');
    const { name, port } = await startGateway([]);
    const listed = await inspector(port, ['--method', 'tools/list']);
    assert.equal(listed.code, 0, listed.stderr);
    const tools = (JSON.parse(listed.stdout) as { tools: unknown[] }).tools;
    const logs = await run('podman', ['logs', name], MINUTE);
    const errors = [...new Set([...`${logs.stdout}${logs.stderr}`.matchAll(/bwrap: [^"\\]+/g)].map((m) => m[0]))];
    t.diagnostic(`tools listed: ${tools.length}; sandbox errors: ${errors.join(' | ') || 'none'}`);
    // Fail closed: a server that cannot be sandboxed publishes nothing.
    if (errors.length > 0) assert.deepEqual(tools, []);
    await run('podman', ['rm', '--force', '--time', '0', name], MINUTE);
  });

  test('with seccomp=unconfined and an unmasked /proc it answers /healthz and tools/list from the sandboxed reference servers, and stops on SIGTERM', { timeout: 5 * MINUTE }, async (t) => {
    assert.ok(built, 'the image was built');
    const { name, port } = await startGateway(['--security-opt', 'seccomp=unconfined', '--security-opt', 'unmask=/proc/*']);
    const health = await get(port, '/healthz', 'localhost:8080');
    assert.equal(health.status, 200, health.body);
    const listed = await inspector(port, ['--method', 'tools/list']);
    assert.equal(listed.code, 0, listed.stderr);
    const names = (JSON.parse(listed.stdout) as { tools: { name: string }[] }).tools.map((tool) => tool.name);
    assert.ok(names.includes('everything.echo'), `tools/list: ${names.join(', ')}`);
    assert.ok(names.includes('filesystem.read_text_file') && names.includes('memory.read_graph'), 'all three servers started in their sandboxes');
    const echoed = await inspector(port, ['--method', 'tools/call', '--tool-name', 'everything.echo', '--tool-arg', 'message=from-the-image']);
    assert.equal(echoed.code, 0, echoed.stderr);
    assert.match(echoed.stdout, /from-the-image/);
    t.diagnostic(`${names.length} tools through the image`);

    const stop = await run('podman', ['stop', '--time', '20', name], MINUTE);
    assert.equal(stop.code, 0, stop.stderr);
    assert.ok(stop.seconds < 20, `stopped by SIGTERM, not by the SIGKILL after 20 s (${stop.seconds} s)`);
    const exit = await run('podman', ['inspect', '--format', '{{.State.ExitCode}}', name], MINUTE);
    assert.equal(exit.stdout.trim(), '0');
    const logs = await run('podman', ['logs', name], MINUTE);
    assert.match(`${logs.stdout}${logs.stderr}`, /shutting down: closing sessions and stopping upstream servers/);
    t.diagnostic(`podman stop: ${stop.seconds.toFixed(1)} s, exit 0`);
  });
});
