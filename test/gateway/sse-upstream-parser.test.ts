// The gateway's own text/event-stream parser for SSE upstreams: line endings split anywhere,
// comments, multi-line data, and a hostile server's oversized events and endless lines.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SseParser, type SseEvent } from '../../src/gateway/upstream/sse-parser.js';

function parse(chunks: string[], max = 1024): { events: SseEvent[]; oversize: number[] } {
  const events: SseEvent[] = [];
  const oversize: number[] = [];
  const parser = new SseParser(max, { onEvent: (event) => events.push(event), onOversize: (bytes) => oversize.push(bytes) });
  for (const chunk of chunks) parser.push(chunk);
  return { events, oversize };
}

describe('SSE parser', () => {
  test('LF, CRLF and CR end lines, even when a chunk splits CR from LF', () => {
    const { events } = parse(['event: endpoint\r', '\ndata: /messages?sessionId=1\r\n\r', '\ndata: {"a":1}\r\rdata: {"b":2}\n\n']);
    assert.deepEqual(events.map(({ event, data }) => [event, data]), [['endpoint', '/messages?sessionId=1'], ['message', '{"a":1}'], ['message', '{"b":2}']]);
  });

  test('comments are skipped, data lines join with LF, a field without a colon or space still counts', () => {
    const { events } = parse([': keep-alive\n\n', 'data:one\ndata: two\n', 'data\n\n', 'event: other\ndata: x\n\n']);
    assert.deepEqual(events.map(({ event, data }) => [event, data]), [['message', 'one\ntwo\n'], ['other', 'x']]);
  });

  test('an event over the cap is dropped whole, reported once, and the next event arrives', () => {
    const { events, oversize } = parse([`data: ${'x'.repeat(600)}\n`, `data: ${'y'.repeat(600)}\n\n`, 'data: after\n\n'], 1000);
    assert.equal(oversize.length, 1);
    assert.ok((oversize[0] ?? 0) > 1000);
    assert.deepEqual(events.map((event) => event.data), ['after']);
  });

  test('an endless line is never buffered past the cap', () => {
    const events: SseEvent[] = [];
    let oversize = 0;
    const parser = new SseParser(4096, { onEvent: (event) => events.push(event), onOversize: () => (oversize += 1) });
    const chunk = 'z'.repeat(64 * 1024);
    parser.push('data: ');
    for (let index = 0; index < 256; index += 1) parser.push(chunk); // 16 MiB without a line end
    assert.ok(JSON.stringify(parser).length < 8192, 'the parser holds the endless line');
    parser.push('\n\ndata: ok\n\n');
    assert.equal(oversize, 1);
    assert.deepEqual(events.map((event) => event.data), ['ok']);
  });
});
