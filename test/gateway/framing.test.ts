import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LineFramer } from '../../src/gateway/framing.js';
import { classify } from '../../src/gateway/jsonrpc.js';

function frame(chunks: Buffer[], max: number): { lines: string[]; overflows: number[] } {
  const lines: string[] = [];
  const overflows: number[] = [];
  const framer = new LineFramer(max, (line) => lines.push(line), (bytes) => overflows.push(bytes));
  for (const chunk of chunks) framer.push(chunk);
  return { lines, overflows };
}

describe('newline framing', () => {
  test('any split of the byte stream yields the same lines', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !s.includes('\n') && s.trim() !== '' && !s.endsWith('\r')), { minLength: 1, maxLength: 20 }), fc.array(fc.nat(), { maxLength: 10 }), (messages, cuts) => {
        const stream = Buffer.from(messages.map((m) => `${m}\n`).join(''));
        const points = [...new Set(cuts.map((cut) => cut % (stream.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let start = 0;
        for (const point of points) {
          chunks.push(stream.subarray(start, point));
          start = point;
        }
        chunks.push(stream.subarray(start));
        assert.deepEqual(frame(chunks, 1000).lines, messages);
      }),
    );
  });

  test('a line over the cap is reported once, discarded, and the stream resynchronises at the next newline', () => {
    const { lines, overflows } = frame([Buffer.from('ok-1\n'), Buffer.from('x'.repeat(50)), Buffer.from('y'.repeat(50)), Buffer.from('\nok-2\n')], 64);
    assert.deepEqual(lines, ['ok-1', 'ok-2']);
    assert.equal(overflows.length, 1);
  });

  test('multi-byte characters split across chunks are decoded whole', () => {
    const bytes = Buffer.from('{"text":"héllo wörld ✓"}\n');
    assert.deepEqual(frame([bytes.subarray(0, 12), bytes.subarray(12)], 1000).lines, ['{"text":"héllo wörld ✓"}']);
  });

  test('CRLF line endings and blank lines are tolerated', () => {
    assert.deepEqual(frame([Buffer.from('a\r\n\n\nb\n')], 100).lines, ['a', 'b']);
  });
});

describe('JSON-RPC classification', () => {
  test('sorts requests, notifications and responses', () => {
    assert.equal(classify({ jsonrpc: '2.0', id: 1, method: 'ping' }).kind, 'request');
    assert.equal(classify({ jsonrpc: '2.0', method: 'notifications/initialized' }).kind, 'notification');
    assert.equal(classify({ jsonrpc: '2.0', id: 'a', result: {} }).kind, 'response');
    assert.equal(classify({ jsonrpc: '2.0', id: 'a', error: { code: -1, message: 'x' } }).kind, 'response');
  });

  const invalid: Array<[string, unknown]> = [
    ['a batch', [{ jsonrpc: '2.0', id: 1, method: 'ping' }]],
    ['a string', 'ping'],
    ['a wrong version', { jsonrpc: '1.0', id: 1, method: 'ping' }],
    ['a null id on a request', { jsonrpc: '2.0', id: null, method: 'ping' }],
    ['an object id', { jsonrpc: '2.0', id: { x: 1 }, method: 'ping' }],
    ['array params', { jsonrpc: '2.0', id: 1, method: 'ping', params: [1] }],
    ['an empty method', { jsonrpc: '2.0', id: 1, method: '' }],
    ['both result and error', { jsonrpc: '2.0', id: 1, result: {}, error: { code: 1, message: 'x' } }],
    ['an error without a code', { jsonrpc: '2.0', id: 1, error: { message: 'x' } }],
    ['nothing at all', { jsonrpc: '2.0', id: 1 }],
  ];
  for (const [name, value] of invalid) {
    test(`refuses ${name}`, () => {
      const result = classify(value);
      assert.equal(result.kind, 'invalid');
    });
  }
});
