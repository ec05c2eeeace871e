import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client as ClientV2, StreamableHTTPClientTransport as HttpTransportV2 } from '@modelcontextprotocol/client';
import { StdioClientTransport as StdioTransportV2 } from '@modelcontextprotocol/client/stdio';
import { BASTION_BIN, configYaml, firstText, fixture, httpClient, referenceServer, startGateway, stdioServer, tempDir, TEST_TOKEN, type RunningGateway } from '../helpers/gateway.js';

describe('interoperability across SDK generations and protocol revisions', () => {
  let gw: RunningGateway;

  before(async () => {
    gw = await startGateway(configYaml(stdioServer('modern', fixture('v2-server')) + stdioServer('everything', referenceServer('everything'), ['stdio'])));
  });

  after(async () => gw?.stop());

  test('a v1 SDK client calls a tool of a v2 SDK server through the gateway', async () => {
    const client = await httpClient(gw.url);
    assert.equal(firstText(await client.callTool({ name: 'modern.multiply', arguments: { a: 6, b: 7 } })), '42');
    await client.close();
  });

  test('a v2 SDK client connects, lists and calls tools of both generations', async () => {
    const client = new ClientV2({ name: 'v2-client', version: '1.0.0' });
    await client.connect(new HttpTransportV2(new URL(gw.url), { requestInit: { headers: { Authorization: `Bearer ${TEST_TOKEN}` } } }));
    const { tools } = await client.listTools();
    assert.ok(tools.some((tool) => tool.name === 'modern.multiply'));
    assert.equal(firstText(await client.callTool({ name: 'modern.multiply', arguments: { a: 3, b: 5 } })), '15');
    assert.equal(firstText(await client.callTool({ name: 'everything.echo', arguments: { message: 'v2' } })), 'Echo: v2');
    await client.close();
  });

  test('a 2026-07-28 client probing with server/discover is answered with the revisions Bastion serves', async () => {
    const response = await fetch(gw.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${TEST_TOKEN}`, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'server/discover' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'server/discover', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } }),
    });
    const answer = (await response.json()) as { result: { supportedVersions: string[]; resultType: string } };
    assert.equal(answer.result.resultType, 'complete');
    assert.deepEqual(answer.result.supportedVersions, ['2026-07-28', '2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05']);
  });

  test('a v2 SDK client pinned to 2026-07-28 connects and calls tools of both generations', async () => {
    const client = new ClientV2({ name: 'v2-pinned', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await client.connect(new HttpTransportV2(new URL(gw.url), { requestInit: { headers: { Authorization: `Bearer ${TEST_TOKEN}` } } }));
    assert.equal(client.getNegotiatedProtocolVersion(), '2026-07-28');
    assert.equal(firstText(await client.callTool({ name: 'modern.multiply', arguments: { a: 7, b: 8 } })), '56');
    assert.equal(firstText(await client.callTool({ name: 'everything.echo', arguments: { message: 'pinned' } })), 'Echo: pinned');
    await client.close();
  });

  // 'auto' makes the v2 client probe with server/discover first; over HTTP Bastion answers it,
  // so the client speaks 2026-07-28 (the v2 client's default mode, 'legacy', never probes).
  test('a v2 SDK client negotiating automatically gets 2026-07-28 over HTTP and its calls work', async () => {
    const client = new ClientV2({ name: 'v2-auto', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
    await client.connect(new HttpTransportV2(new URL(gw.url), { requestInit: { headers: { Authorization: `Bearer ${TEST_TOKEN}` } } }));
    assert.equal(client.getProtocolEra(), 'modern');
    assert.equal(client.getNegotiatedProtocolVersion(), '2026-07-28');
    assert.equal(firstText(await client.callTool({ name: 'modern.multiply', arguments: { a: 4, b: 6 } })), '24');
    await client.close();
  });

  test('a v2 SDK client negotiating automatically over stdio negotiates 2026-07-28 and its calls work', async () => {
    const dir = tempDir();
    const config = join(dir.path, 'stdio', 'bastion.yaml');
    mkdirSync(join(dir.path, 'stdio'));
    writeFileSync(config, configYaml(stdioServer('modern', fixture('v2-server')), '', 'listeners:\n  stdio: { agent: desktop-agent }'));
    const client = new ClientV2({ name: 'v2-auto-stdio', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
    try {
      await client.connect(new StdioTransportV2({ command: process.execPath, args: [BASTION_BIN, 'serve', '--stdio', '--config', config], stderr: 'ignore' }));
      assert.equal(client.getProtocolEra(), 'modern');
      assert.equal(client.getNegotiatedProtocolVersion(), '2026-07-28');
      assert.equal(firstText(await client.callTool({ name: 'modern.multiply', arguments: { a: 5, b: 5 } })), '25');
    } finally {
      await client.close();
      dir.cleanup();
    }
  });

  for (const version of ['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25']) {
    test(`a client asking for protocol ${version} gets it, and its calls work`, async () => {
      const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${TEST_TOKEN}` };
      const init = await fetch(gw.url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }) });
      const answer = (await init.json()) as { result: { protocolVersion: string } };
      assert.equal(answer.result.protocolVersion, version);
      const session = init.headers.get('mcp-session-id') ?? '';
      const call = await fetch(gw.url, { method: 'POST', headers: { ...headers, 'mcp-session-id': session, 'mcp-protocol-version': version }, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'modern.multiply', arguments: { a: 2, b: 2 } } }) });
      const result = (await call.json()) as { result: unknown };
      assert.equal(firstText(result.result), '4');
      await fetch(gw.url, { method: 'DELETE', headers: { ...headers, 'mcp-session-id': session } });
    });
  }
});
