import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSandbox, sandboxLauncher, type SandboxHandle } from '../../src/sandbox/index.js';
import { connectClient, NODE_MODULES, referenceServer } from './helpers.js';

test("the gateway's ProcessLauncher interface starts servers sandboxed with their profile", async () => {
  const handles: SandboxHandle[] = [];
  const launcher = sandboxLauncher(createSandbox(), () => ({ scopes: [], packageDirs: [NODE_MODULES] }), (_server, handle) => handles.push(handle));
  assert.equal(launcher.name, 'bwrap');
  const launched = await launcher.launch({ server: 'memory', command: process.execPath, args: [referenceServer('memory')], env: { MEMORY_FILE_PATH: '/tmp/m.jsonl' }, cwd: undefined });
  try {
    const client = await connectClient(launched.child);
    assert.match(client.getServerVersion()?.name ?? '', /memory/);
    assert.equal(handles.length, 1);
    assert.ok(handles[0]?.uid === undefined || (handles[0].uid ?? 0) >= 61000);
    await client.close();
  } finally {
    await launched.dispose();
  }
});
