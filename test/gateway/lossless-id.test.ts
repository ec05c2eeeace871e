import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { parseMessage, serializeMessage, topLevelIdLexeme } from '../../src/gateway/lossless-id.js';
import { StdioListener } from '../../src/gateway/downstream/stdio.js';
import { configYaml, fixture, startGateway, stdioServer, TEST_TOKEN, type RunningGateway } from '../helpers/gateway.js';
import { ACCEPT, openSession } from '../helpers/raw-http.js';

const BIG = '12345678901234567891';

describe('request ids beyond 2^53', () => {
  test('the extractor reads the last top-level "id" lexeme, not one nested or inside a string', () => {
    assert.equal(topLevelIdLexeme(`{"params":{"id":1},"x":"\\"id\\":5","id":${BIG}}`), BIG);
    assert.equal(topLevelIdLexeme(`{"id":1,"id":${BIG}}`), BIG);
    assert.equal(topLevelIdLexeme(`{"\\u0069d" : -${BIG} }`), `-${BIG}`);
    assert.equal(topLevelIdLexeme('{"params":{"id":7}}'), undefined);
  });

  test('parse and serialize round-trip the exact digits; safe ids are untouched; the mark is refused from clients', () => {
    const parsed = parseMessage(`{"jsonrpc":"2.0","id":${BIG},"method":"ping"}`) as { id: unknown };
    assert.equal(serializeMessage({ jsonrpc: '2.0', id: parsed.id, result: {} }), `{"jsonrpc":"2.0","id":${BIG},"result":{}}`);
    assert.equal((parseMessage('{"id":42}') as { id: unknown }).id, 42);
    assert.equal(typeof (parseMessage('{"id":"\\u0000bigint:5"}') as { id: unknown }).id, 'object');
    assert.equal(serializeMessage({ id: 'plain' }), '{"id":"plain"}');
  });

  describe('end to end', () => {
    let gw: RunningGateway;
    before(async () => {
      gw = await startGateway(configYaml(stdioServer('paced', fixture('paced-server'))));
    });
    after(async () => gw?.stop());

    test('over HTTP the answer carries the same id, digit for digit', async () => {
      const session = await openSession(gw.url);
      const response = await fetch(gw.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: ACCEPT, authorization: `Bearer ${TEST_TOKEN}`, 'mcp-session-id': session },
        body: `{"jsonrpc":"2.0","id":${BIG},"method":"tools/call","params":{"name":"paced.echo","arguments":{"text":"big"}}}`,
      });
      const text = await response.text();
      assert.match(text, new RegExp(`"id":${BIG}[,}]`));
      assert.match(text, /"text":"big"/);
    });

    test('over stdio too', async () => {
      const input = new PassThrough();
      const output = new PassThrough();
      let written = '';
      output.on('data', (chunk: Buffer) => {
        written += chunk.toString('utf8');
      });
      const listener = new StdioListener(gw.gateway.runtime, { agentId: 'alice', tokenFingerprint: 'stdio', method: 'stdio' }, input, output);
      input.write(`{"jsonrpc":"2.0","id":${BIG},"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}\n`);
      while (!written.includes('\n')) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.ok(written.startsWith(`{"jsonrpc":"2.0","id":${BIG},"result":`), written.slice(0, 200));
      input.end();
      await listener.close();
    });
  });
});
