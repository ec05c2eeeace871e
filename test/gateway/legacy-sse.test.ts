import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { auditRecords } from '../helpers/audit.js';
import { configProblems } from '../helpers/config.js';
import { configYaml, firstText, fixture, OTHER_TOKEN, referenceServer, startGateway, stdioServer, TEST_TOKEN, type RunningGateway } from '../helpers/gateway.js';

const LEGACY_LISTENER = 'listeners:\n  http:\n    host: 127.0.0.1\n    port: 0\n    legacySse: { enabled: true }';

function sseUrl(gw: RunningGateway): URL {
  return new URL('/sse', gw.url);
}

/** The official v1 SDK client over the deprecated HTTP+SSE transport, as 2024-11-05 clients connect. */
async function sseClient(gw: RunningGateway, token = TEST_TOKEN, capabilities: Record<string, unknown> = {}): Promise<Client> {
  const client = new Client({ name: 'legacy-sse-client', version: '1.0.0' }, { capabilities });
  // The SDK's SSE transport sends requestInit's headers both when it opens the stream and when it posts.
  await client.connect(new SSEClientTransport(sseUrl(gw), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return client;
}

/** Opens a raw SSE stream and returns the endpoint the gateway names, keeping the stream open. */
async function rawEndpoint(gw: RunningGateway, token: string): Promise<{ endpoint: string; close: () => void }> {
  const controller = new AbortController();
  const response = await fetch(sseUrl(gw), { headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' }, signal: controller.signal });
  assert.equal(response.status, 200);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  let text = '';
  while (!/event: endpoint\ndata: ([^\n]+)\n/.test(text)) {
    const { value, done } = await reader.read();
    assert.equal(done, false, 'the stream ended before naming its endpoint');
    text += Buffer.from(value as Uint8Array).toString('utf8');
  }
  return { endpoint: /event: endpoint\ndata: ([^\n]+)\n/.exec(text)?.[1] ?? '', close: () => controller.abort() };
}

describe('the legacy HTTP+SSE transport (2024-11-05) beside Streamable HTTP', () => {
  let gw: RunningGateway;

  before(async () => {
    gw = await startGateway(configYaml(`${stdioServer('everything', referenceServer('everything'))}${stdioServer('evil', fixture('runtime-hostile-server'))}`, '', LEGACY_LISTENER));
  });

  after(async () => {
    await gw?.stop();
  });

  test('the SDK SSE client lists and calls tools of a real reference server, and the calls are audited as transport sse', async () => {
    const client = await sseClient(gw);
    try {
      const tools = await client.listTools();
      assert.ok(tools.tools.some((tool) => tool.name === 'everything.echo'), 'the reference server tools are listed');
      const result = await client.callTool({ name: 'everything.echo', arguments: { message: 'over sse' } });
      assert.match(firstText(result), /over sse/);
    } finally {
      await client.close();
    }
    await gw.bastion.audit.flush();
    const call = auditRecords(gw.bastion.audit.dir).find((record) => record.method === 'tools/call' && record.tool === 'echo');
    assert.equal(call?.transport, 'sse');
    assert.equal(call?.agent_id, 'alice');
    assert.equal(call?.decision, 'allow');
  });

  test('a server-to-client request (sampling) reaches the SSE client on its stream and its answer goes back to the server', async () => {
    const client = await sseClient(gw, TEST_TOKEN, { sampling: {} });
    client.setRequestHandler(CreateMessageRequestSchema, async () => ({ role: 'assistant', content: { type: 'text', text: 'sampled over sse' }, model: 'test-model' }));
    try {
      const result = await client.callTool({ name: 'evil.sample', arguments: { prompt: 'Summarise the weather report in one sentence.' } });
      assert.match(firstText(result), /sampled over sse/);
    } finally {
      await client.close();
    }
  });

  test('without a token the stream is refused with 401 and a resource-metadata challenge', async () => {
    const response = await fetch(sseUrl(gw), { headers: { Accept: 'text/event-stream' } });
    assert.equal(response.status, 401);
    assert.match(response.headers.get('www-authenticate') ?? '', /resource_metadata=/);
  });

  test("another agent cannot post into a session, and a Streamable HTTP request cannot use a legacy session's id", async () => {
    const stream = await rawEndpoint(gw, TEST_TOKEN);
    try {
      const endpoint = new URL(stream.endpoint, gw.url);
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
      const asBob = await fetch(endpoint, { method: 'POST', headers: { Authorization: `Bearer ${OTHER_TOKEN}`, 'Content-Type': 'application/json' }, body });
      assert.equal(asBob.status, 404, "bob is told the session does not exist, as for an unknown id");
      const unknown = await fetch(new URL('/messages?sessionId=not-a-session', gw.url), { method: 'POST', headers: { Authorization: `Bearer ${TEST_TOKEN}`, 'Content-Type': 'application/json' }, body });
      assert.equal(unknown.status, 404);
      const sessionId = endpoint.searchParams.get('sessionId') ?? '';
      const streamable = await fetch(gw.url, { method: 'POST', headers: { Authorization: `Bearer ${TEST_TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': sessionId }, body });
      assert.equal(streamable.status, 404, 'a legacy session id is no Streamable HTTP session');
      const garbage = await fetch(endpoint, { method: 'POST', headers: { Authorization: `Bearer ${TEST_TOKEN}`, 'Content-Type': 'application/json' }, body: '{"jsonrpc":' });
      assert.equal(garbage.status, 400);
      assert.equal(((await garbage.json()) as { error: { code: number } }).error.code, -32700, 'malformed JSON gets a JSON-RPC parse error');
    } finally {
      stream.close();
    }
  });

  test('closing the event stream ends the session (audited), and its endpoint stops accepting messages', async () => {
    const stream = await rawEndpoint(gw, TEST_TOKEN);
    const endpoint = new URL(stream.endpoint, gw.url);
    const sessionId = endpoint.searchParams.get('sessionId') ?? '';
    stream.close();
    const closed = async (): Promise<boolean> => {
      await gw.bastion.audit.flush();
      return auditRecords(gw.bastion.audit.dir).some((record) => record.event === 'session.closed' && record.info?.['session_id'] === sessionId && record.info?.['reason'] === 'stream_closed');
    };
    while (!(await closed())) await new Promise((resolve) => setTimeout(resolve, 20));
    const late = await fetch(endpoint, { method: 'POST', headers: { Authorization: `Bearer ${TEST_TOKEN}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }) });
    assert.equal(late.status, 404);
  });
});

describe('legacy SSE configuration', () => {
  test('it is off by default: /sse is not found', async () => {
    const gw = await startGateway(configYaml(stdioServer('everything', referenceServer('everything'))));
    try {
      const response = await fetch(new URL('/sse', gw.url), { headers: { Authorization: `Bearer ${TEST_TOKEN}`, Accept: 'text/event-stream' } });
      assert.equal(response.status, 404);
    } finally {
      await gw.stop();
    }
  });

  test('a legacy path that shadows the Streamable HTTP path is refused with the field and a fix', () => {
    const problems = configProblems(configYaml(stdioServer('everything', referenceServer('everything')), '', 'listeners:\n  http:\n    port: 0\n    legacySse: { enabled: true, ssePath: /mcp }'));
    const problem = problems.find((item) => item.field === 'listeners.http.legacySse.ssePath');
    assert.ok(problem, JSON.stringify(problems));
    assert.match(problem.message, /already listeners\.http\.path/);
    assert.ok(problem.line !== undefined, 'the problem names its line');
  });
});
