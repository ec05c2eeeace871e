import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { configYaml, firstText, fixture, httpClient, startGateway, stdioServer } from '../helpers/gateway.js';
import { auditRecords } from '../helpers/audit.js';

test('upstream start, exit on a signal (by name), restart, and a SIGKILL after the grace period are audited', { timeout: 60_000 }, async () => {
  const gw = await startGateway(configYaml(stdioServer('stubborn', fixture('runtime-hostile-server'), ['--ignore-sigterm'], '    isolation: session'), 'upstream: { restartBackoffMs: 100, maxBackoffMs: 400 }'));
  try {
    const client = await httpClient(gw.url);
    await assert.rejects(client.callTool({ name: 'stubborn.abort', arguments: {} }));
    let pid = '';
    for (let attempt = 0; attempt < 50 && pid === ''; attempt += 1) {
      pid = await client.callTool({ name: 'stubborn.pid', arguments: {} }).then(firstText, () => '');
      if (pid === '') await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.notEqual(pid, '', 'the server came back');
    // isolation: session: closing the session stops its upstream; this one ignores SIGTERM and must be SIGKILLed.
    await (client.transport as StreamableHTTPClientTransport).terminateSession();
    await client.close();
    const deadline = Date.now() + 10_000;
    let records = auditRecords(gw.bastion.audit.dir);
    while (Date.now() < deadline && !records.some((record) => record.event === 'upstream.killed')) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      await gw.bastion.audit.flush();
      records = auditRecords(gw.bastion.audit.dir);
    }
    const of = (event: string) => records.filter((record) => record.event === event && record.info?.['server'] === 'stubborn');
    assert.equal(of('upstream.start').length, 1);
    assert.equal(of('upstream.exit')[0]?.info?.['signal'], 'SIGABRT');
    assert.ok(of('upstream.restart').length >= 1, 'the restart is audited');
    const killed = of('upstream.killed')[0];
    assert.equal(killed?.info?.['signal'], 'SIGKILL');
    assert.equal(String(killed?.info?.['pid']), pid);
  } finally {
    await gw.stop();
  }
});
