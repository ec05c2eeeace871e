// The periodic re-list: a session lists every cached list again (on a timer in the gateway; called
// directly here, so the test needs no clock), and when what it publishes changed it tells the
// client with notifications/tools/list_changed, although the server itself said nothing.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createBastion, type Bastion } from '../../src/app/index.js';
import { loadConfigText } from '../../src/config/index.js';
import { GatewaySession, type SessionSink } from '../../src/gateway/index.js';
import type { JsonRpcMessage } from '../../src/gateway/jsonrpc.js';
import { silentLogger } from '../../src/observability/index.js';
import type { Identity } from '../../src/pipeline/index.js';
import { configYaml, fixture, stdioServer, tempDir } from '../helpers/gateway.js';

const work = tempDir('bastion-relist-');
const identity: Identity = { agentId: 'alice', tokenFingerprint: 'test', method: 'api-token' };

describe('the periodic re-list catches a silent change and tells the client', () => {
  let bastion: Bastion;
  let session: GatewaySession;
  const received: JsonRpcMessage[] = [];
  const sink: SessionSink = { send: (message) => (received.push(message), true) };
  let nextId = 1;

  /** Sends a request through the session and waits for its answer. */
  async function request(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = nextId++;
    session.handle({ jsonrpc: '2.0', id, method, params }, 100, identity);
    for (let attempt = 0; attempt < 400; attempt += 1) {
      const answer = received.find((message) => 'id' in message && message.id === id && !('method' in message));
      if (answer !== undefined) return answer as unknown as Record<string, unknown>;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assert.fail(`no answer to ${method}`);
  }

  before(async () => {
    // The default interval (60 s) is far longer than the test: only the explicit re-list runs.
    const yaml = configYaml(stdioServer('weather', fixture('poisoned-definitions-server'), ['changed:1']));
    bastion = await createBastion({ loaded: loadConfigText(yaml, join(work.path, 'bastion.yaml'), work.path), logger: silentLogger(), version: '0.0.0-test' });
    session = new GatewaySession(bastion.gateway.runtime, sink, { transport: 'http' });
    await request('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'relist-test', version: '1' } });
  });

  after(async () => {
    await session?.close();
    await bastion?.close();
    work.cleanup();
  });

  test('a re-list after an unannounced change sends list_changed and drops the changed tool', async () => {
    const names = async (): Promise<string[]> => ((await request('tools/list')).result as { tools: Array<{ name: string }> }).tools.map((tool) => tool.name).sort();
    assert.deepEqual(await names(), ['weather.get_weather', 'weather.honest_echo']);
    await request('tools/call', { name: 'weather.get_weather', arguments: { city: 'Oslo' } });
    // Without a re-list the cached list still offers the old tool: the server sent nothing.
    assert.deepEqual(await names(), ['weather.get_weather', 'weather.honest_echo']);
    assert.ok(!received.some((message) => 'method' in message && message.method === 'notifications/tools/list_changed'));
    await session.relist();
    assert.ok(received.some((message) => 'method' in message && message.method === 'notifications/tools/list_changed'));
    assert.deepEqual(await names(), ['weather.honest_echo']);
    const refused = await request('tools/call', { name: 'weather.get_weather', arguments: { city: 'Oslo' } });
    assert.equal((refused.error as { code: number }).code, -32017);
  });
});
