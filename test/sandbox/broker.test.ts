import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server } from 'node:net';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { startEgressBroker, type EgressBroker } from '../../src/sandbox/broker.js';
import type { EgressEvent } from '../../src/sandbox/types.js';

/** Sends raw bytes to the broker socket and returns everything it answers before closing. */
function exchange(socketPath: string, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let answer = '';
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (answer.includes('greeting')) socket.end();
    });
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
  });
}

describe('egress broker', () => {
  let target: Server;
  let port = 0;
  let closedPort = 0;
  let broker: EgressBroker;
  const events: EgressEvent[] = [];

  before(async () => {
    target = createServer((socket) => socket.end('greeting\n'));
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    port = (target.address() as { port: number }).port;
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    closedPort = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));
    broker = await startEgressBroker({ server: 'web', grants: [{ host: '127.0.0.1', port }, { host: '127.0.0.1', port: closedPort }], onEvent: (e) => events.push(e) });
  });

  after(async () => {
    await broker.close();
    target.close();
  });

  test('a granted CONNECT is tunnelled and reported as connected', async () => {
    const answer = await exchange(broker.socketPath, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\n\r\n`);
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.match(answer, /greeting/);
    assert.ok(events.some((e) => e.allowed && e.port === port && e.reason === 'connected' && e.server === 'web'));
  });

  test('an ungranted port on a granted host is refused with 403 and reported', async () => {
    const answer = await exchange(broker.socketPath, `CONNECT 127.0.0.1:${port + 1 === closedPort ? port + 2 : port + 1} HTTP/1.1\r\n\r\n`);
    assert.match(answer, /^HTTP\/1\.1 403 /);
    assert.ok(events.some((e) => !e.allowed && e.reason.includes('no write:network scope')));
  });

  test('an absolute-form GET (plain HTTP proxying) is refused with 405 and reported', async () => {
    const answer = await exchange(broker.socketPath, `GET http://127.0.0.1:${port}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.match(answer, /^HTTP\/1\.1 405 /);
    assert.ok(events.some((e) => !e.allowed && e.reason.startsWith('not a CONNECT')));
  });

  test('a granted destination that is down answers 502 and the failure is reported', async () => {
    const answer = await exchange(broker.socketPath, `CONNECT 127.0.0.1:${closedPort} HTTP/1.1\r\n\r\n`);
    assert.match(answer, /^HTTP\/1\.1 502 /);
    assert.ok(events.some((e) => e.port === closedPort && e.reason.startsWith('connect failed')));
  });

  test('an endless header is cut off instead of buffering without bound', async () => {
    const answer = await exchange(broker.socketPath, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\n${'X-Pad: y\r\n'.repeat(2000)}`);
    assert.match(answer, /^HTTP\/1\.1 431 /);
  });

  test('close removes the socket and its private directory', async () => {
    const other = await startEgressBroker({ server: 'tmp', grants: [], onEvent: () => {} });
    assert.ok(existsSync(other.socketPath));
    await other.close();
    assert.equal(existsSync(dirname(other.socketPath)), false);
  });
});
