import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ClientOutbox } from '../../src/gateway/downstream/client-outbox.js';
import { HttpSessionSink } from '../../src/gateway/downstream/http-session-sink.js';

const LIMITS = { dropNotificationsAtBytes: 256 * 1024, disconnectAtBytes: 2 * 1024 * 1024 };
const payload = 'x'.repeat(32 * 1024);

/** A real HTTP server whose one GET stream is read by a client that has stopped reading. */
async function stalledStream(): Promise<{ res: ServerResponse; clientClosed: Promise<void>; close(): Promise<void> }> {
  let captured: ((res: ServerResponse) => void) | undefined;
  const got = new Promise<ServerResponse>((resolve) => (captured = resolve));
  const server = createServer((_req, res) => captured?.(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let clientClosed!: () => void;
  const closedPromise = new Promise<void>((resolve) => (clientClosed = resolve));
  const req = request({ host: '127.0.0.1', port, path: '/mcp', headers: { accept: 'text/event-stream' } }, (incoming: IncomingMessage) => {
    incoming.pause(); // the client never reads what it is sent
    incoming.once('close', () => clientClosed());
    incoming.once('error', () => clientClosed());
  });
  req.once('error', () => clientClosed());
  req.end();
  const res = await got;
  return {
    res,
    clientClosed: closedPromise,
    close: async () => {
      req.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('a client that stops reading loses notifications first, then its connection, and gateway memory stays bounded', async () => {
  const stream = await stalledStream();
  const drops: number[] = [];
  let overflowAt: number | undefined;
  const sink = new HttpSessionSink(
    new ClientOutbox(LIMITS, {
      onDropped: (count) => drops.push(count),
      onOverflow: (queued) => {
        overflowAt = queued;
        sink.disconnect();
      },
    }),
  );
  try {
    sink.openStandalone(stream.res);
    let sentNotifications = 0;
    let droppedNotifications = 0;
    let peakQueued = 0;
    // Notifications until they are being dropped: the kernel's buffers fill first, then the stream's queue.
    for (let i = 0; i < 2000 && droppedNotifications < 50; i += 1) {
      if (sink.send({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: payload } })) sentNotifications += 1;
      else droppedNotifications += 1;
      peakQueued = Math.max(peakQueued, stream.res.writableLength);
    }
    assert.ok(sentNotifications > 0 && droppedNotifications === 50, `sent ${sentNotifications}, dropped ${droppedNotifications}`);
    assert.ok(peakQueued < LIMITS.dropNotificationsAtBytes + payload.length * 2, `queued ${peakQueued} bytes while dropping notifications`);
    // Server-to-client requests still go while notifications are dropped, until the disconnect limit.
    let requests = 0;
    while (overflowAt === undefined && requests < 10_000) {
      if (!sink.send({ jsonrpc: '2.0', id: `bastion-${requests}`, method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: payload } }], maxTokens: 10 } })) break;
      requests += 1;
      peakQueued = Math.max(peakQueued, stream.res.writableLength);
    }
    assert.ok(requests > 0, 'requests were still written after notifications were dropped');
    assert.ok(overflowAt !== undefined && overflowAt >= LIMITS.disconnectAtBytes, `disconnected at ${overflowAt}`);
    assert.ok(peakQueued < LIMITS.disconnectAtBytes + 64 * 1024, `never queued much past the limit (${peakQueued} bytes)`);
    assert.equal(sink.send({ jsonrpc: '2.0', id: 'late', method: 'roots/list' }), false, 'nothing is written after the disconnect');
    await stream.clientClosed;
    assert.ok(stream.res.destroyed, 'the stalled stream was cut');
    assert.deepEqual(drops, [50], 'the dropped notifications are reported once, as one burst');
  } finally {
    await stream.close();
  }
});
