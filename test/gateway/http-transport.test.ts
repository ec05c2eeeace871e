import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { configYaml, fixture, httpClient, OTHER_TOKEN, startGateway, stdioServer, TEST_TOKEN, type RunningGateway } from '../helpers/gateway.js';

const ACCEPT = 'application/json, text/event-stream';

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown> | undefined;
}

async function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: ACCEPT, authorization: `Bearer ${TEST_TOKEN}`, ...headers },
    body,
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>) };
}

function initialize(id: number | string = 1): string {
  return JSON.stringify({ jsonrpc: '2.0', id, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
}

function errorOf(answer: Answer): { code: number; message: string } {
  return answer.body?.['error'] as { code: number; message: string };
}

describe('Streamable HTTP listener: authentication, DNS-rebinding defence and bad input', () => {
  let gw: RunningGateway;
  let sessionId: string;

  before(async () => {
    gw = await startGateway(configYaml(stdioServer('odd', fixture('misbehaving-server'))));
    const answer = await post(gw.url, initialize());
    assert.equal(answer.status, 200);
    sessionId = answer.headers.get('mcp-session-id') ?? '';
  });

  after(async () => gw?.stop());

  test('a request without a token gets 401 with a WWW-Authenticate challenge naming the resource metadata', async () => {
    const answer = await post(gw.url, initialize(), { authorization: '' });
    assert.equal(answer.status, 401);
    const challenge = answer.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /^Bearer resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"/);
  });

  test('a wrong token gets 401 invalid_token', async () => {
    const answer = await post(gw.url, initialize(), { authorization: 'Bearer not-a-real-token' });
    assert.equal(answer.status, 401);
    assert.match(answer.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  });

  test('publishes RFC 9728 protected-resource metadata for the MCP endpoint', async () => {
    const base = new URL(gw.url);
    const response = await fetch(`${base.origin}/.well-known/oauth-protected-resource/mcp`);
    assert.equal(response.status, 200);
    const metadata = (await response.json()) as Record<string, unknown>;
    assert.equal(metadata['resource'], gw.url);
    assert.deepEqual(metadata['bearer_methods_supported'], ['header']);
  });

  test('a Host header that is not allowed is refused (DNS rebinding)', async () => {
    // fetch() cannot set Host, so this goes through node:http, as a rebinding browser's request would arrive.
    const target = new URL(gw.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers: { host: 'attacker.example:80', 'content-type': 'application/json', accept: ACCEPT, authorization: `Bearer ${TEST_TOKEN}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(initialize());
    });
    assert.equal(status, 403);
  });

  test('a browser Origin that is not allowed is refused', async () => {
    const answer = await post(gw.url, initialize(), { origin: 'http://evil.example' });
    assert.equal(answer.status, 403);
    assert.match(errorOf(answer).message, /Origin not allowed/);
  });

  test('malformed JSON gets a JSON-RPC parse error, not silence', async () => {
    const answer = await post(gw.url, '{"jsonrpc": "2.0", "id": 1, "method": ', { 'mcp-session-id': sessionId });
    assert.equal(answer.status, 400);
    assert.equal(errorOf(answer).code, -32700);
  });

  test('a JSON-RPC batch is refused with an explanation (batches were removed from MCP)', async () => {
    const answer = await post(gw.url, JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'ping' }]), { 'mcp-session-id': sessionId });
    assert.equal(answer.status, 400);
    assert.equal(errorOf(answer).code, -32600);
    assert.match(errorOf(answer).message, /batches/);
  });

  test('a message that is not JSON-RPC 2.0 gets Invalid Request with its id', async () => {
    const answer = await post(gw.url, JSON.stringify({ jsonrpc: '1.0', id: 7, method: 'ping' }), { 'mcp-session-id': sessionId });
    assert.equal(answer.status, 400);
    assert.equal(errorOf(answer).code, -32600);
    assert.equal(answer.body?.['id'], 7);
  });

  test('an unknown method gets Method Not Found and the session keeps working', async () => {
    const unknown = await post(gw.url, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/explode' }), { 'mcp-session-id': sessionId });
    assert.equal(unknown.status, 200);
    assert.equal(errorOf(unknown).code, -32601);
    const ping = await post(gw.url, JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'ping' }), { 'mcp-session-id': sessionId });
    assert.deepEqual(ping.body?.['result'], {});
  });

  test('an oversized body is refused with 413 before it is buffered', async () => {
    const huge = JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'odd.echo', arguments: { text: 'x'.repeat(2 * 1024 * 1024) } } });
    const answer = await post(gw.url, huge, { 'mcp-session-id': sessionId });
    assert.equal(answer.status, 413);
    assert.equal(errorOf(answer).code, -32014);
  });

  test('an unsupported MCP-Protocol-Version header is refused with 400', async () => {
    const answer = await post(gw.url, JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'ping' }), { 'mcp-session-id': sessionId, 'mcp-protocol-version': '1999-01-01' });
    assert.equal(answer.status, 400);
    assert.match(errorOf(answer).message, /MCP-Protocol-Version/);
  });

  test('a request without a session id, or with an unknown one, is refused', async () => {
    const missing = await post(gw.url, JSON.stringify({ jsonrpc: '2.0', id: 6, method: 'ping' }));
    assert.equal(missing.status, 400);
    const unknown = await post(gw.url, JSON.stringify({ jsonrpc: '2.0', id: 6, method: 'ping' }), { 'mcp-session-id': 'guessed-session-id' });
    assert.equal(unknown.status, 404);
  });

  test('another agent cannot use a session it did not create, even with the right session id', async () => {
    const answer = await post(gw.url, JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/list' }), { 'mcp-session-id': sessionId, authorization: `Bearer ${OTHER_TOKEN}` });
    assert.equal(answer.status, 404);
  });

  test('session ids are long and random', async () => {
    const second = await post(gw.url, initialize(9));
    const other = second.headers.get('mcp-session-id') ?? '';
    assert.notEqual(other, sessionId);
    assert.ok(Buffer.from(sessionId, 'base64url').length >= 32);
  });

  test('DELETE ends the session; later requests on it get 404', async () => {
    const created = await post(gw.url, initialize(10));
    const id = created.headers.get('mcp-session-id') ?? '';
    const deleted = await fetch(gw.url, { method: 'DELETE', headers: { authorization: `Bearer ${TEST_TOKEN}`, 'mcp-session-id': id } });
    assert.equal(deleted.status, 204);
    const after = await post(gw.url, JSON.stringify({ jsonrpc: '2.0', id: 11, method: 'ping' }), { 'mcp-session-id': id });
    assert.equal(after.status, 404);
  });

  test('two agents each get their own session with the SDK client', async () => {
    const alice = await httpClient(gw.url, TEST_TOKEN);
    const bob = await httpClient(gw.url, OTHER_TOKEN);
    const [a, b] = await Promise.all([
      alice.callTool({ name: 'odd.echo', arguments: { text: 'from alice' } }),
      bob.callTool({ name: 'odd.echo', arguments: { text: 'from bob' } }),
    ]);
    assert.match(JSON.stringify(a), /from alice/);
    assert.match(JSON.stringify(b), /from bob/);
    await alice.close();
    await bob.close();
  });
});
