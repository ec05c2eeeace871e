// A server that crashes or runs out of memory behind the gateway: the caller's error and the
// `upstream.exit` audit record name the cause (SIGSEGV; SIGKILL by the OOM killer), under bwrap
// and under gVisor, where the OOM kill is counted in the cgroup Bastion made for runsc.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { configYaml, fixture, httpClient, startGateway, stdioServer, type RunningGateway } from '../helpers/gateway.js';
import { auditRecords } from '../helpers/audit.js';

async function exitRecord(gw: RunningGateway, server: string): Promise<Record<string, unknown> | undefined> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    await gw.bastion.audit.flush();
    const found = auditRecords(gw.bastion.audit.dir).find((record) => record.event === 'upstream.exit' && record.info?.['server'] === server);
    if (found || Date.now() > deadline) return found?.info;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

for (const backend of ['bwrap', 'gvisor'] as const) {
  describe(`a server's death behind the gateway, named under ${backend}`, () => {
    let gw: RunningGateway;
    let client: Client;

    before(async () => {
      const servers = stdioServer('oom', fixture('escape-server')) + stdioServer('segv', fixture('escape-server'));
      gw = await startGateway(configYaml(servers, `sandbox: { backend: ${backend}, limits: { memoryBytes: 100663296, pids: 128 } }\nupstream: { restartBackoffMs: 60000 }`));
      client = await httpClient(gw.url);
    });

    after(async () => {
      await client?.close();
      await gw?.stop();
    });

    test('out of memory: the call fails naming the OOM kill, and upstream.exit records it', async () => {
      await assert.rejects(client.callTool({ name: 'oom.exhaust_memory', arguments: {} }, undefined, { timeout: 90_000 }), /out of memory \(the memory limit of 96 MiB/);
      const info = await exitRecord(gw, 'oom');
      assert.equal(info?.['signal'], 'SIGKILL', JSON.stringify(info));
      assert.match(String(info?.['reason']), /exited on signal SIGKILL \(killed by SIGKILL: out of memory/);
      const limit = auditRecords(gw.bastion.audit.dir).find((record) => record.event === 'sandbox.limit' && record.info?.['server'] === 'oom');
      assert.equal(limit?.info?.['kind'], 'memory', 'the OOM kill is also audited as a sandbox limit');
    });

    test('SIGSEGV: named as such, not as exit code 139', async () => {
      await assert.rejects(client.callTool({ name: 'segv.crash_segv', arguments: {} }, undefined, { timeout: 60_000 }), /SIGSEGV/);
      const info = await exitRecord(gw, 'segv');
      assert.equal(info?.['signal'], 'SIGSEGV', JSON.stringify(info));
      assert.doesNotMatch(String(info?.['reason']), /out of memory|139/);
    });
  });
}
