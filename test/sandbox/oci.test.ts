// The oci backend for real, with runc: the same hostile server, the same containment.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createSandbox, type SandboxHandle } from '../../src/sandbox/index.js';
import { attempt, connectClient, FIXTURE_PACKAGE_DIRS, hostileServer } from './helpers.js';
import { removeTree } from '../helpers/tmp.js';

describe('a hostile server under runc (oci backend)', () => {
  const bundleDir = mkdtempSync(join(tmpdir(), 'bastion-oci-test-'));
  // runc's init runs as the server uid and must reach the bundle's rootfs.
  chmodSync(bundleDir, 0o711);
  let handle: SandboxHandle;
  let client: Client;

  before(async () => {
    const backend = createSandbox({ backend: 'oci', oci: { runtime: 'runc', bundleDir }, limits: { pids: 48, memoryBytes: 256 * 1024 * 1024 } });
    handle = await backend.spawn({ serverName: 'oci-hostile', command: process.execPath, args: [hostileServer()], env: {}, packageDirs: FIXTURE_PACKAGE_DIRS, scopes: [] });
    client = await connectClient(handle.child);
  });

  after(async () => {
    await client?.close().catch(() => {});
    await handle?.dispose();
    removeTree(bundleDir);
  });

  test('no capabilities, no_new_privs, seccomp filter, and an unprivileged host uid behind container root', async () => {
    const who = await attempt(client, 'whoami');
    assert.equal(who['capEff'], '0000000000000000');
    assert.equal(who['noNewPrivs'], '1');
    assert.equal(who['seccomp'], '2');
    if (process.getuid?.() === 0) assert.ok((handle.uid ?? 0) >= 61000);
  });

  test('/etc/shadow and paths outside the view are not visible', async () => {
    for (const path of ['/etc/shadow', '/root/.ssh/id_ed25519', '/work/main/src/sandbox/bwrap.ts']) assert.equal((await attempt(client, 'read_file', { path })).ok, false, path);
  });

  test('the root filesystem and system binds are read-only', async () => {
    for (const path of ['/planted', '/usr/bin/evil']) {
      const outcome = await attempt(client, 'write_file', { path, text: 'x' });
      assert.equal(outcome.ok, false, path);
      assert.match(outcome.detail, /EROFS|EACCES/);
    }
  });

  test('unshare, mount and keyctl are refused; no network; host processes invisible', async () => {
    assert.match((await attempt(client, 'unshare')).detail, /Operation not permitted/);
    assert.equal((await attempt(client, 'mount')).ok, false);
    assert.equal((await attempt(client, 'keyctl')).detail, '-1 1');
    assert.equal((await attempt(client, 'tcp_connect', { host: '127.0.0.1', port: 22 })).ok, false);
    assert.ok(((await attempt(client, 'list_processes'))['processes'] as string[]).length < 8);
  });

  test('a fork bomb stops at the pids limit and CPU time is read from the container cgroup', async () => {
    const outcome = await attempt(client, 'fork_bomb', { max: 300 });
    assert.match(outcome.detail, /EAGAIN/);
    assert.ok((outcome['started'] as number) < 48);
    assert.ok((handle.cpuTimeMs() ?? 0) > 0);
  });

  test('dispose removes the container and its bundle', async () => {
    await handle.dispose();
    assert.deepEqual(readdirSync(bundleDir), []);
  });
});
