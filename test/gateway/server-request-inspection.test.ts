import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { canonicalJson } from '../../src/audit/canonical.js';
import { configYaml, firstText, fixture, httpClient, startGateway, stdioServer, TEST_TOKEN, type RunningGateway } from '../helpers/gateway.js';
import { auditRecords } from '../helpers/audit.js';

describe('sampling and elicitation requests from a server pass output inspection', () => {
  let gw: RunningGateway;
  let client: Client;
  const sampled: Record<string, unknown>[] = [];
  const elicited: Record<string, unknown>[] = [];

  before(async () => {
    gw = await startGateway(configYaml(stdioServer('evil', fixture('runtime-hostile-server'))));
    client = new Client({ name: 'sampling-client', version: '1.0.0' }, { capabilities: { sampling: {}, elicitation: {} } });
    client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
      sampled.push(request.params as Record<string, unknown>);
      return { role: 'assistant', content: { type: 'text', text: 'sampled answer' }, model: 'test-model' };
    });
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      elicited.push(request.params as Record<string, unknown>);
      return { action: 'accept', content: { answer: 'yes' } };
    });
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.url), { requestInit: { headers: { Authorization: `Bearer ${TEST_TOKEN}` } } }));
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
  });

  async function serverRequests(): Promise<Record<string, unknown>[]> {
    await gw.bastion.audit.flush();
    return auditRecords(gw.bastion.audit.dir).filter((record) => record.event === 'server_request').map((record) => record.info ?? {});
  }

  test('a sampling request with an injected prompt is refused to the server, never reaches the client, and is audited with its prompt digest', async () => {
    const answer = firstText(await client.callTool({ name: 'evil.sample', arguments: {} }));
    assert.match(answer, /refused by Bastion: the prompt carries instructions aimed at the model/);
    assert.equal(sampled.length, 0, 'the client was asked to sample an injected prompt');
    const denied = (await serverRequests()).find((info) => info['method'] === 'sampling/createMessage' && info['decision'] === 'deny');
    assert.ok(denied, 'the refusal is audited');
    assert.match(String(denied['prompt_digest']), /^hmac-sha256:[0-9a-f]{64}$/, 'keyed under the audit log: a guessed prompt cannot be confirmed from the log alone');
    assert.match(String(denied['reason']), /inspection:.*review r/);
  });

  test('an ordinary sampling request is relayed with includeContext lowered to thisServer, and its prompt digest is audited', async () => {
    const prompt = 'Summarise the weather report in one sentence.';
    const answer = firstText(await client.callTool({ name: 'evil.sample', arguments: { prompt, includeContext: 'allServers' } }));
    assert.match(answer, /sampled answer/);
    assert.equal(sampled.length, 1);
    assert.equal(sampled[0]?.['includeContext'], 'thisServer');
    const messages = [{ role: 'user', content: { type: 'text', text: prompt } }];
    const text = canonicalJson({ messages, systemPrompt: 'You are helpful.' });
    const expected = gw.bastion.audit.digestText(text);
    assert.notEqual(expected, `sha256:${createHash('sha256').update(text).digest('hex')}`);
    const allowed = (await serverRequests()).find((info) => info['method'] === 'sampling/createMessage' && info['decision'] === 'allow');
    assert.equal(allowed?.['prompt_digest'], expected);
    assert.equal(allowed?.['include_context_requested'], 'allServers');
    assert.equal(allowed?.['include_context'], 'thisServer');
  });

  test('an elicitation whose message carries an injection is refused; an ordinary one is relayed', async () => {
    assert.match(firstText(await client.callTool({ name: 'evil.elicit', arguments: {} })), /refused by Bastion/);
    assert.equal(elicited.length, 0);
    assert.match(firstText(await client.callTool({ name: 'evil.elicit', arguments: { prompt: 'Which city should I look up?' } })), /accept/);
    assert.equal(elicited.length, 1);
  });

  test('a sampling request to a client that did not declare sampling is refused and the refusal is audited', async () => {
    const bare = await httpClient(gw.url);
    try {
      assert.match(firstText(await bare.callTool({ name: 'evil.sample', arguments: { prompt: 'hello there' } })), /did not declare the 'sampling' capability/);
    } finally {
      await bare.close();
    }
    const refused = (await serverRequests()).find((info) => String(info['reason']).startsWith('client_capability_missing'));
    assert.equal(refused?.['server'], 'evil');
    assert.equal(refused?.['decision'], 'deny');
  });
});
