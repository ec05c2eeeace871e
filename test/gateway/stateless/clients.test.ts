import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client as ClientV2, StreamableHTTPClientTransport as HttpTransportV2 } from '@modelcontextprotocol/client';
import { StdioClientTransport as StdioTransportV2 } from '@modelcontextprotocol/client/stdio';
import { auditRecords } from '../../helpers/audit.js';
import { BASTION_BIN, configYaml, firstText, fixture, httpClient, referenceServer, startGateway, stdioServer, tempDir, TEST_TOKEN, type RunningGateway } from '../../helpers/gateway.js';

function pinnedClient(name: string, capabilities: Record<string, unknown> = {}): ClientV2 {
  return new ClientV2({ name, version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } }, capabilities });
}

function transport(url: string, token = TEST_TOKEN): HttpTransportV2 {
  return new HttpTransportV2(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
}

describe('2026-07-28 clients beside 2025-11-25 clients, through one gateway', () => {
  let gw: RunningGateway;

  before(async () => {
    gw = await startGateway(configYaml(stdioServer('everything', referenceServer('everything'), ['stdio']) + stdioServer('modern', fixture('v2-server')) + stdioServer('input', fixture('input-server'))));
  });

  after(async () => gw?.stop());

  test('a client pinned to 2026-07-28 connects without initialize, lists and calls tools on reference servers', async () => {
    const client = pinnedClient('pinned');
    await client.connect(transport(gw.url));
    assert.equal(client.getNegotiatedProtocolVersion(), '2026-07-28');
    assert.equal(client.getProtocolEra(), 'modern');
    const { tools } = await client.listTools();
    assert.ok(tools.some((tool) => tool.name === 'everything.echo'));
    assert.equal(firstText(await client.callTool({ name: 'everything.echo', arguments: { message: 'stateless' } })), 'Echo: stateless');
    assert.equal(firstText(await client.callTool({ name: 'modern.multiply', arguments: { a: 6, b: 7 } })), '42');
    assert.equal(gw.gateway.http?.sessionCount, 0, 'a stateless client holds no session of the stateful kind');
    await client.close();
  });

  test('a pinned client, an auto client and a v1 client call tools at the same time', async () => {
    const pinned = pinnedClient('pinned-2');
    await pinned.connect(transport(gw.url));
    const auto = new ClientV2({ name: 'auto', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
    await auto.connect(transport(gw.url));
    assert.equal(auto.getNegotiatedProtocolVersion(), '2026-07-28', 'auto mode finds the stateless revision through server/discover');
    const v1 = await httpClient(gw.url);
    const results = await Promise.all([
      pinned.callTool({ name: 'everything.echo', arguments: { message: 'a' } }),
      auto.callTool({ name: 'everything.echo', arguments: { message: 'b' } }),
      v1.callTool({ name: 'everything.echo', arguments: { message: 'c' } }),
      pinned.callTool({ name: 'modern.multiply', arguments: { a: 2, b: 3 } }),
      auto.callTool({ name: 'input.echo', arguments: { message: 'd' } }),
      v1.callTool({ name: 'modern.multiply', arguments: { a: 4, b: 4 } }),
    ]);
    assert.deepEqual(results.map(firstText), ['Echo: a', 'Echo: b', 'Echo: c', '6', 'echo:d', '16']);
    await Promise.all([pinned.close(), auto.close(), v1.close()]);
  });

  test('sampling and elicitation mid-call reach a pinned client as input_required rounds and the call completes', async () => {
    const client = pinnedClient('asker', { sampling: {}, elicitation: {} });
    const seen: string[] = [];
    client.setRequestHandler('sampling/createMessage', async () => {
      seen.push('sampling');
      return { model: 'test-model', role: 'assistant', content: { type: 'text', text: 'sunny' } };
    });
    client.setRequestHandler('elicitation/create', async () => {
      seen.push('elicitation');
      return { action: 'accept', content: { ok: true } };
    });
    await client.connect(transport(gw.url));
    const result = await client.callTool({ name: 'input.ask', arguments: { topic: 'weather' } });
    assert.equal(firstText(result), 'model:sunny;user:accept:{"ok":true}');
    assert.deepEqual(seen, ['sampling', 'elicitation']);
    await client.close();
  });

  test('subscriptions/listen delivers list_changed to a pinned client, and closing the stream ends it', async () => {
    const client = pinnedClient('listener');
    await client.connect(transport(gw.url));
    const changed = new Promise<void>((resolve) => client.setNotificationHandler('notifications/tools/list_changed', () => resolve()));
    const subscription = await client.listen({ toolsListChanged: true });
    assert.equal(subscription.honoredFilter.toolsListChanged, true);
    assert.equal(firstText(await client.callTool({ name: 'input.grow', arguments: {} })), 'added-1');
    await changed;
    // (Whether the added tool is then listed is the hash lock's decision: additions are quarantined.)
    await subscription.close();
    await client.close();
  });

  test('a pinned client cancels a call by closing its request stream: the call ends upstream and is audited', async () => {
    const stateless = gw.gateway.http?.stateless;
    assert.ok(stateless !== undefined);
    const client = pinnedClient('canceller');
    await client.connect(transport(gw.url));
    const controller = new AbortController();
    const call = client.callTool({ name: 'input.slow', arguments: {} }, { signal: controller.signal }).then(() => 'answered', () => 'aborted');
    while (stateless.inFlightCount === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    controller.abort();
    assert.equal(await call, 'aborted');
    while (stateless.inFlightCount > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    const cancelledRecord = (): boolean => (auditRecords(join(gw.dir.path, 'state', 'audit')) as unknown as Array<Record<string, unknown>>).some((record) => record['event'] === 'request.cancelled' && JSON.stringify(record).includes('cancelled by the client'));
    for (let attempt = 0; attempt < 200 && !cancelledRecord(); attempt += 1) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(cancelledRecord(), 'the cancellation is audited');
    await client.close();
  });

  test('a client pinned to 2026-07-28 is served over stdio too', async () => {
    const dir = tempDir();
    mkdirSync(join(dir.path, 'stdio'));
    const config = join(dir.path, 'stdio', 'bastion.yaml');
    writeFileSync(config, configYaml(stdioServer('modern', fixture('v2-server')), '', 'listeners:\n  stdio: { agent: desktop-agent }'));
    const client = pinnedClient('pinned-stdio');
    try {
      await client.connect(new StdioTransportV2({ command: process.execPath, args: [BASTION_BIN, 'serve', '--stdio', '--config', config], stderr: 'ignore' }));
      assert.equal(client.getNegotiatedProtocolVersion(), '2026-07-28');
      assert.equal(firstText(await client.callTool({ name: 'modern.multiply', arguments: { a: 5, b: 5 } })), '25');
    } finally {
      await client.close();
      dir.cleanup();
    }
  });
});
