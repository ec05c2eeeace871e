import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GatewaySession } from '../../src/gateway/session.js';
import type { JsonRpcMessage } from '../../src/gateway/jsonrpc.js';
import type { Identity } from '../../src/pipeline/index.js';
import { referenceServer, startGateway, stdioServer, tempDir, type RunningGateway } from '../helpers/gateway.js';
import { policyGatewayYaml } from './helpers.js';

interface Answer {
  id?: unknown;
  result?: unknown;
  error?: { code: number; message: string; data?: { reason?: string } };
}

/**
 * A client that sends tool names it made up, some of them 1 MB long. The session is the real
 * one (the gateway's runtime, its whole guard chain, the real server-everything upstream);
 * only the transport is a function, so the test can read the session's state.
 */
describe('unknown and oversized tool names', () => {
  const tmp = tempDir('bastion-policy-names-');
  let gw: RunningGateway;
  let session: GatewaySession;
  const answers = new Map<unknown, { answer: Answer; bytes: number }>();
  const waiting = new Map<unknown, () => void>();
  const identity: Identity = { agentId: 'alice', tokenFingerprint: 'sha256:test', method: 'api-token' };
  let nextId = 1;

  async function request(method: string, params: Record<string, unknown>): Promise<{ answer: Answer; bytes: number }> {
    const id = nextId++;
    const message = { jsonrpc: '2.0', id, method, params };
    const done = new Promise<void>((resolve) => waiting.set(id, resolve));
    session.handle(message, Buffer.byteLength(JSON.stringify(message)), identity);
    await done;
    return answers.get(id) as { answer: Answer; bytes: number };
  }

  before(async () => {
    writeFileSync(join(tmp.path, 'policy.yaml'), 'version: 1\nagents:\n  alice:\n    grants: ["exec:tools:[everything.echo]"]\n');
    const yaml = policyGatewayYaml({ agents: ['alice'], policyFile: join(tmp.path, 'policy.yaml'), extra: 'limits: { maxRequestBytes: 4194304 }', servers: stdioServer('everything', referenceServer('everything'), ['stdio'], '    tools:\n      echo: { scopes: [] }\n') });
    gw = await startGateway(yaml);
    session = new GatewaySession(gw.gateway.runtime, {
      send(message: JsonRpcMessage) {
        const answer = message as Answer;
        answers.set(answer.id, { answer, bytes: Buffer.byteLength(JSON.stringify(message)) });
        waiting.get(answer.id)?.();
        return true;
      },
    }, { transport: 'stdio' });
    const init = await request('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'names-test', version: '1' } });
    assert.ok(init.answer.result !== undefined);
  });

  after(async () => {
    await session?.close();
    await gw?.stop();
    tmp.cleanup();
  });

  test('a 1 MB tool name is refused with a clear error that does not echo it', async () => {
    const { answer, bytes } = await request('tools/call', { name: `everything.${'x'.repeat(1024 * 1024)}`, arguments: {} });
    assert.equal(answer.error?.data?.reason, 'name_too_long');
    assert.match(answer.error?.message ?? '', /longer than 256 bytes/);
    assert.ok(bytes < 1024, `the answer is ${bytes} bytes`);
  });

  test('made-up tool names leave no per-name state in the session', async () => {
    // The first call creates the server's own entry; no later made-up name adds one.
    await request('tools/call', { name: 'everything.made-up', arguments: {} });
    const before = session.cachedLimitEntries;
    for (let index = 0; index < 50; index += 1) {
      const { answer } = await request('tools/call', { name: `everything.made-up-${index}-${'y'.repeat(200)}`, arguments: {} });
      assert.equal(answer.error?.data?.reason, 'unknown_tool');
    }
    assert.equal(session.cachedLimitEntries, before);
    assert.ok(session.cachedLimitEntries <= 3, `${session.cachedLimitEntries} limit entries`);
  });

  test('the audit record of a 1 MB name carries a clipped name, not the megabyte', async () => {
    const name = `everything.${'z'.repeat(1024 * 1024)}`;
    await request('tools/call', { name, arguments: {} });
    await gw.bastion.audit.flush();
    const segments = join(gw.bastion.audit.dir, 'segments');
    const lines = readdirSync(segments)
      .filter((file) => file.endsWith('.jsonl'))
      .flatMap((file) => readFileSync(join(segments, file), 'utf8').split('\n'))
      .filter((line) => line.includes('"everything.zzzz'));
    assert.equal(lines.length, 1);
    assert.ok((lines[0] as string).length < 8 * 1024, `the record is ${(lines[0] as string).length} characters`);
  });

  test('a known tool within the caps still works', async () => {
    const { answer } = await request('tools/call', { name: 'everything.echo', arguments: { message: 'hello' } });
    assert.equal(answer.error, undefined);
    assert.match(JSON.stringify(answer.result), /hello/);
  });
});
