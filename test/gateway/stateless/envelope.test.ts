import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { auditRecords } from '../../helpers/audit.js';
import { configYaml, fixture, OTHER_TOKEN, startGateway, stdioServer, tempDir, TEST_TOKEN, type RunningGateway } from '../../helpers/gateway.js';
import { eventually } from '../../helpers/replicas.js';

const VERSION = '2026-07-28';

interface Answer {
  status: number;
  body: { id?: unknown; result?: Record<string, unknown>; error?: { code: number; message: string; data?: Record<string, unknown> } };
}

function envelope(capabilities: Record<string, unknown> = {}): Record<string, unknown> {
  return { 'io.modelcontextprotocol/protocolVersion': VERSION, 'io.modelcontextprotocol/clientCapabilities': capabilities, 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' } };
}

/** One stateless POST with the headers a 2026-07-28 client sends, `headers` overriding them. */
async function post(url: string, id: number, method: string, params: Record<string, unknown>, headers: Record<string, string | undefined> = {}, token = TEST_TOKEN): Promise<Answer> {
  const name = typeof params['name'] === 'string' ? params['name'] : typeof params['uri'] === 'string' ? params['uri'] : undefined;
  const all: Record<string, string | undefined> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    authorization: `Bearer ${token}`,
    'mcp-protocol-version': VERSION,
    'mcp-method': method,
    ...(name === undefined ? {} : { 'mcp-name': name }),
    ...headers,
  };
  const sent = Object.fromEntries(Object.entries(all).filter((entry): entry is [string, string] => entry[1] !== undefined));
  const response = await fetch(url, { method: 'POST', headers: sent, body: JSON.stringify({ jsonrpc: '2.0', id, method, params }) });
  const text = await response.text();
  // An SSE answer carries the response as its last data line.
  const data = response.headers.get('content-type')?.startsWith('text/event-stream') ? text.split('\n').filter((line) => line.startsWith('data: ')).at(-1)?.slice(6) ?? '{}' : text;
  return { status: response.status, body: JSON.parse(data) as Answer['body'] };
}

const SAMPLING = { sampling: {} };

describe('the 2026-07-28 envelope, headers and requestState', () => {
  let gw: RunningGateway;

  before(async () => {
    const policyDir = tempDir();
    const policyFile = join(policyDir.path, 'policy.yaml');
    writeFileSync(policyFile, `agents:
  alice:
    grants: ["exec:tools:[input.echo, input.sample-only, input.ask]", "exec:sampling:[input]"]
  bob:
    grants: ["exec:tools:[input.sample-only]", "exec:sampling:[input]"]
`);
    gw = await startGateway(configYaml(stdioServer('input', fixture('input-server'), [], '    tools:\n      echo: { scopes: [] }\n      sample-only: { scopes: [] }\n      ask: { scopes: [] }\n'), `policy:\n  files: [${JSON.stringify(policyFile)}]`, 'listeners:\n  http:\n    host: 127.0.0.1\n    port: 0\n    stateless: { inputTimeoutSeconds: 2 }'));
    cleanup = () => policyDir.cleanup();
  });

  let cleanup = (): void => undefined;

  after(async () => {
    await gw?.stop();
    cleanup();
  });

  test('server/discover names the revisions, the capabilities and the gateway, never cacheable across agents', async () => {
    const { status, body } = await post(gw.url, 1, 'server/discover', { _meta: envelope() });
    assert.equal(status, 200);
    const result = body.result as Record<string, unknown>;
    assert.equal(result['resultType'], 'complete');
    assert.ok((result['supportedVersions'] as string[]).includes(VERSION));
    assert.ok((result['supportedVersions'] as string[]).includes('2025-11-25'));
    assert.equal(result['cacheScope'], 'private');
    assert.equal(typeof result['ttlMs'], 'number');
    assert.deepEqual((result['_meta'] as Record<string, unknown>)['io.modelcontextprotocol/serverInfo'], { name: 'bastion', title: 'Bastion MCP security gateway', version: '0.0.0-test' });
    assert.equal(result['serverInfo'], undefined, 'serverInfo goes in _meta, not the body');
  });

  test('lists are stamped private (filtered per agent) and each agent sees only its own tools', async () => {
    const alice = await post(gw.url, 2, 'tools/list', { _meta: envelope() });
    const bob = await post(gw.url, 2, 'tools/list', { _meta: envelope() }, {}, OTHER_TOKEN);
    assert.equal(alice.body.result?.['cacheScope'], 'private');
    assert.equal(alice.body.result?.['resultType'], 'complete');
    const names = (answer: Answer): string[] => ((answer.body.result?.['tools'] ?? []) as Array<{ name: string }>).map((tool) => tool.name).sort();
    assert.deepEqual(names(alice), ['input.ask', 'input.echo', 'input.sample-only']);
    assert.deepEqual(names(bob), ['input.sample-only']);
  });

  test('a request without the envelope is refused with -32602', async () => {
    const { status, body } = await post(gw.url, 3, 'tools/list', {});
    assert.equal(status, 400);
    assert.equal(body.error?.code, -32602);
    assert.equal(body.id, 3);
  });

  test('an envelope naming an unknown revision is refused with -32022 and the supported ones', async () => {
    const { status, body } = await post(gw.url, 4, 'tools/list', { _meta: { ...envelope(), 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } }, { 'mcp-protocol-version': '2099-01-01' });
    assert.equal(status, 400);
    assert.equal(body.error?.code, -32022);
    assert.deepEqual(body.error?.data?.['supported'], [VERSION]);
    assert.equal(body.error?.data?.['requested'], '2099-01-01');
  });

  test('an envelope without clientCapabilities is refused with -32602', async () => {
    const { body } = await post(gw.url, 5, 'tools/list', { _meta: { 'io.modelcontextprotocol/protocolVersion': VERSION } });
    assert.equal(body.error?.code, -32602);
  });

  test('a missing MCP-Protocol-Version or Mcp-Method header is refused with -32020', async () => {
    for (const header of ['mcp-protocol-version', 'mcp-method']) {
      const { status, body } = await post(gw.url, 6, 'tools/list', { _meta: envelope() }, { [header]: undefined });
      assert.equal(status, 400, header);
      assert.equal(body.error?.code, -32020, header);
    }
  });

  test('headers that disagree with the body are refused: a header-routed proxy must see what runs', async () => {
    const cases: Array<[string, Record<string, string | undefined>]> = [
      ['method header names another method', { 'mcp-method': 'tools/list' }],
      ['name header names another tool', { 'mcp-name': 'input.sample-only' }],
      ['name header missing', { 'mcp-name': undefined }],
      ['version header names another revision', { 'mcp-protocol-version': '2025-11-25' }],
      ['base64 name header decoding to another tool', { 'mcp-name': `=?base64?${Buffer.from('input.sample-only').toString('base64')}?=` }],
    ];
    for (const [label, headers] of cases) {
      const { status, body } = await post(gw.url, 7, 'tools/call', { _meta: envelope(), name: 'input.echo', arguments: { message: 'x' } }, headers);
      assert.equal(status, 400, label);
      assert.equal(body.error?.code, -32020, label);
    }
    const encoded = await post(gw.url, 8, 'tools/call', { _meta: envelope(), name: 'input.echo', arguments: { message: 'x' } }, { 'mcp-name': `=?base64?${Buffer.from('input.echo').toString('base64')}?=` });
    assert.equal(encoded.status, 200, 'a base64 name header that matches the body is accepted');
  });

  test('initialize and ping are not part of the revision', async () => {
    const { body } = await post(gw.url, 9, 'ping', { _meta: envelope() });
    assert.equal(body.error?.code, -32601);
  });

  test('the policy still applies: a tool outside the grant is denied, and the audit log has the stateless records', async () => {
    const denied = await post(gw.url, 10, 'tools/call', { _meta: envelope(), name: 'input.echo', arguments: { message: 'x' } }, {}, OTHER_TOKEN);
    assert.equal(denied.status, 200);
    assert.equal(denied.body.error?.code, -32011);
    const allowed = await post(gw.url, 11, 'tools/call', { _meta: envelope(), name: 'input.echo', arguments: { message: 'audited' } });
    assert.equal(allowed.body.result?.['resultType'], 'complete');
    assert.deepEqual(allowed.body.result?.['content'], [{ type: 'text', text: 'echo:audited' }]);
    const records = auditRecords(join(gw.dir.path, 'state', 'audit')) as unknown as Array<Record<string, unknown>>;
    const calls = records.filter((record) => record['method'] === 'tools/call' && record['server'] === 'input' && record['tool'] === 'echo');
    const bobs = calls.find((record) => record['agent_id'] === 'bob');
    const alices = calls.filter((record) => record['agent_id'] === 'alice' && record['decision'] === 'allow').at(-1);
    assert.equal(bobs?.['decision'], 'deny');
    assert.equal(bobs?.['protocol_version'], VERSION);
    assert.equal(alices?.['protocol_version'], VERSION);
    assert.match(String(alices?.['request_id']), /:11$/, "the record names the client's own request id");
  });

  /** Starts sample-only for `token` and returns the input_required answer. */
  async function inputRequired(id: number, token = TEST_TOKEN): Promise<{ state: string; key: string }> {
    const { body } = await post(gw.url, id, 'tools/call', { _meta: envelope(SAMPLING), name: 'input.sample-only', arguments: {} }, {}, token);
    assert.equal(body.result?.['resultType'], 'input_required', JSON.stringify(body));
    const requests = body.result?.['inputRequests'] as Record<string, { method: string }>;
    const [key, request] = Object.entries(requests)[0] ?? [];
    assert.equal(request?.method, 'sampling/createMessage');
    const state = body.result?.['requestState'];
    assert.equal(typeof state, 'string');
    assert.ok(Buffer.from(state as string, 'base64url').length >= 16, 'requestState carries at least 128 bits');
    return { state: state as string, key: key as string };
  }

  const reply = { model: 'm', role: 'assistant', content: { type: 'text', text: 'hi' } };

  test('an input_required round completes on a retry with inputResponses, and the requestState cannot be reused', async () => {
    const { state, key } = await inputRequired(20);
    const retry = await post(gw.url, 21, 'tools/call', { _meta: envelope(SAMPLING), name: 'input.sample-only', arguments: {}, requestState: state, inputResponses: { [key]: reply } });
    assert.deepEqual(retry.body.result?.['content'], [{ type: 'text', text: 'model:hi' }]);
    assert.equal(retry.body.id, 21);
    const again = await post(gw.url, 22, 'tools/call', { _meta: envelope(SAMPLING), name: 'input.sample-only', arguments: {}, requestState: state, inputResponses: { [key]: reply } });
    assert.equal(again.body.error?.code, -32602, 'a requestState is single use');
  });

  test("another agent's retry with a requestState is refused, and the held call is not left to it", async () => {
    const { state, key } = await inputRequired(30);
    const stolen = await post(gw.url, 31, 'tools/call', { _meta: envelope(SAMPLING), name: 'input.sample-only', arguments: {}, requestState: state, inputResponses: { [key]: reply } }, {}, OTHER_TOKEN);
    assert.equal(stolen.body.error?.code, -32602);
    assert.equal(stolen.body.result, undefined);
    const owner = await post(gw.url, 32, 'tools/call', { _meta: envelope(SAMPLING), name: 'input.sample-only', arguments: {}, requestState: state, inputResponses: { [key]: reply } });
    assert.equal(owner.body.error?.code, -32602, 'a state tried by another agent is spent (fail closed)');
  });

  test('a retry that changes the request is refused', async () => {
    const { state, key } = await inputRequired(40);
    const changed = await post(gw.url, 41, 'tools/call', { _meta: envelope(SAMPLING), name: 'input.echo', arguments: { message: 'x' }, requestState: state, inputResponses: { [key]: reply } });
    assert.equal(changed.body.error?.code, -32602);
  });

  test('a guessed requestState is refused', async () => {
    const guessed = await post(gw.url, 50, 'tools/call', { _meta: envelope(SAMPLING), name: 'input.sample-only', arguments: {}, requestState: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', inputResponses: {} });
    assert.equal(guessed.body.error?.code, -32602);
  });

  test('after its deadline a requestState is refused and the held upstream call is cancelled', async () => {
    const stateless = gw.gateway.http?.stateless;
    assert.ok(stateless !== undefined);
    const { state, key } = await inputRequired(60);
    // The deadline is 2 s here (listeners.http.stateless.inputTimeoutSeconds); wait for the state to go.
    while (stateless.pendingInputCount > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    const late = await post(gw.url, 61, 'tools/call', { _meta: envelope(SAMPLING), name: 'input.sample-only', arguments: {}, requestState: state, inputResponses: { [key]: reply } });
    assert.equal(late.body.error?.code, -32602);
    // The expiry's record goes through the log's group commit: it may land just after the state is gone.
    await eventually('the stateless.input_expired audit record', () => {
      const records = auditRecords(join(gw.dir.path, 'state', 'audit')) as unknown as Array<Record<string, unknown>>;
      return records.some((record) => record['event'] === 'stateless.input_expired') ? true : undefined;
    });
  });

  test('a client without the sampling capability is never asked: the upstream is refused', async () => {
    const { body } = await post(gw.url, 70, 'tools/call', { _meta: envelope(), name: 'input.sample-only', arguments: {} });
    assert.equal(body.result?.['resultType'], 'complete');
    assert.match(JSON.stringify(body.result?.['content']), /refused:/);
  });
});
