// Results many sessions share (a cached list page): frozen all the way down, and their memoized
// texts (the audit record's canonical JSON and digest, the response's wire form) are exactly what
// the unshared path writes, so caching changes the cost and nothing else.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CallContext, isSharedResult, shareResult, success } from '../../src/pipeline/index.js';
import { canonicalJson, plainCanonicalJson } from '../../src/audit/canonical.js';
import { requestRecord } from '../../src/audit/record.js';
import { parseMessage, serializeMessage } from '../../src/gateway/lossless-id.js';

function listResult(): Record<string, unknown> {
  return { tools: [{ name: 'b.read', inputSchema: { type: 'object', properties: { z: { type: 'string' }, a: { type: 'number' } } } }, { name: 'a.write', description: 'é \u2028 "quoted"' }], nextCursor: 'abc' };
}

function context(): CallContext {
  return new CallContext({
    requestId: 7,
    method: 'tools/list',
    params: {},
    session: { sessionId: 's', transport: 'http', protocolVersion: '2025-06-18' },
    identity: { agentId: 'alice', tokenFingerprint: 'fp', method: 'api-token' },
    requestBytes: 10,
    limits: { timeoutMs: 1000, maxOutputBytes: 1 << 20, maxRequestBytes: 1 << 20 },
    signal: new AbortController().signal,
  });
}

describe('shared results', () => {
  test('a shared result is frozen all the way down: no session can change what another is sent', () => {
    const shared = shareResult(listResult());
    assert.ok(isSharedResult(shared));
    assert.equal(isSharedResult(listResult()), false);
    const tools = shared['tools'] as Array<Record<string, unknown>>;
    assert.throws(() => tools.push({ name: 'evil' }), TypeError);
    assert.throws(() => {
      (tools[0]?.['inputSchema'] as Record<string, unknown>)['type'] = 'string';
    }, TypeError);
  });

  test('the wire form of a response with a shared result is what JSON.stringify writes, large ids included', () => {
    const shared = shareResult(listResult());
    for (const id of [1, 'req-1', (parseMessage('{"id":12345678901234567891}') as { id: unknown }).id]) {
      const message = { jsonrpc: '2.0', id, result: shared };
      const expected = serializeMessage({ jsonrpc: '2.0', id, result: listResult() });
      assert.equal(serializeMessage(message), expected);
      assert.equal(serializeMessage(message), expected, 'the second time, from the memo');
    }
    assert.match(serializeMessage({ jsonrpc: '2.0', id: (parseMessage('{"id":12345678901234567891}') as { id: unknown }).id, result: shared }), /"id":12345678901234567891,/);
  });

  test('the audit record of a shared result has the canonical text, digest and size of an unshared one', () => {
    const shared = shareResult(listResult());
    assert.equal(plainCanonicalJson(shared), canonicalJson(listResult()));
    const digest = (text: string): string => `test:${text.length}:${text.slice(0, 20)}`;
    const other = (text: string): string => `other:${text.length}`;
    const plain = requestRecord(context(), success(listResult()), { arguments: 'none', outputs: 'none', maxChars: 100 }, digest);
    for (let round = 0; round < 2; round += 1) {
      const record = requestRecord(context(), success(shared), { arguments: 'none', outputs: 'none', maxChars: 100 }, digest);
      assert.equal(record.output_digest, plain.output_digest);
      assert.equal(record.output_bytes, plain.output_bytes);
    }
    // A second log (another key) never gets the first log's memoized digest.
    assert.equal(requestRecord(context(), success(shared), { arguments: 'none', outputs: 'none', maxChars: 100 }, other).output_digest, other(canonicalJson(listResult())));
  });
});
