import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client as ClientV2, StreamableHTTPClientTransport as HttpTransportV2 } from '@modelcontextprotocol/client';
import { configYaml, firstText, fixture, httpClient, referenceServer, startGateway, stdioServer, TEST_TOKEN, type RunningGateway } from '../helpers/gateway.js';

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

  test('a 2026-07-28 client probing with server/discover is told to fall back to initialize', async () => {
    const response = await fetch(gw.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${TEST_TOKEN}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'server/discover', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } }),
    });
    const answer = (await response.json()) as { error: { code: number } };
    assert.equal(answer.error.code, -32601);
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
