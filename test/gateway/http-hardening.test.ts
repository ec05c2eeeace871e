import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { auditRecords } from '../helpers/audit.js';
import { configYaml, fixture, OTHER_TOKEN, startGateway, stdioServer, type RunningGateway } from '../helpers/gateway.js';
import { callBody, initializeBody, openSession, post, rawConnect, settlesWithin, type Answer } from '../helpers/raw-http.js';

function listeners(extra: string): string {
  return `listeners:\n  http:\n    host: 127.0.0.1\n    port: 0\n${extra}`;
}

const paced = stdioServer('paced', fixture('paced-server'));

function errorOf(answer: Answer): { code: number; message: string } | undefined {
  return answer.body?.['error'] as { code: number; message: string } | undefined;
}

function textOf(answer: Answer): string {
  const result = answer.body?.['result'] as { content?: Array<{ text?: string }> } | undefined;
  return result?.content?.[0]?.text ?? '';
}

/** Stops the gateway but keeps its directory, so the audit log can be read; `after` then removes it. */
async function shutDown(gw: RunningGateway): Promise<void> {
  await gw.bastion.close();
  stopped.add(gw);
}
const stopped = new Set<RunningGateway>();
async function cleanUp(gw: RunningGateway | undefined): Promise<void> {
  if (gw === undefined) return;
  if (stopped.has(gw)) gw.dir.cleanup();
  else await gw.stop();
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
}

function hostHeader(url: string): string {
  return new URL(url).host;
}

describe('HTTP listener: a refused request does not hold its connection', () => {
  let gw: RunningGateway;
  before(async () => {
    // Default timeouts (30 s for a whole request): the 401 must close the connection long before.
    gw = await startGateway(configYaml(paced));
  });
  after(async () => cleanUp(gw));

  test('a request without a token that drips its body gets 401 and the connection closed, not read forever', async () => {
    const conn = await rawConnect(gw.url);
    conn.socket.write(`POST /mcp HTTP/1.1\r\nHost: ${hostHeader(gw.url)}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 1000000\r\n\r\n{`);
    const drip = setInterval(() => {
      if (!conn.isClosed()) conn.socket.write(' ');
    }, 20);
    try {
      assert.equal(await settlesWithin(conn.closed, 5000), true, 'the gateway kept the connection open, reading the dripped body');
      assert.match(conn.received(), /^HTTP\/1\.1 401 /);
    } finally {
      clearInterval(drip);
      conn.socket.destroy();
    }
  });
});

describe('HTTP listener: header and body timeouts, connection caps', () => {
  let gw: RunningGateway;
  before(async () => {
    gw = await startGateway(configYaml(paced, '', listeners('    headersTimeoutMs: 1000\n    bodyTimeoutMs: 1500\n    maxConnectionsPerAddress: 4')));
  });
  after(async () => cleanUp(gw));

  test('an authenticated client that drips its body is cut off with 408 after bodyTimeoutMs', async () => {
    const conn = await rawConnect(gw.url);
    conn.socket.write(`POST /mcp HTTP/1.1\r\nHost: ${hostHeader(gw.url)}\r\nAuthorization: Bearer test-token-for-agent-alice\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 1000000\r\n\r\n{`);
    const drip = setInterval(() => {
      if (!conn.isClosed()) conn.socket.write(' ');
    }, 50);
    try {
      assert.equal(await settlesWithin(conn.closed, 10_000), true, 'the slow body was read without a deadline');
      assert.match(conn.received(), /^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(drip);
    }
  });

  test('a client that never finishes its headers is disconnected', async () => {
    const conn = await rawConnect(gw.url);
    conn.socket.write(`GET /healthz HTTP/1.1\r\nHost: ${hostHeader(gw.url)}\r\n`);
    assert.equal(await settlesWithin(conn.closed, 10_000), true);
  });

  test('connections over the per-address cap are closed on accept; a slot freed is usable again', async () => {
    const request = `GET /healthz HTTP/1.1\r\nHost: ${hostHeader(gw.url)}\r\n\r\n`;
    const held = [];
    for (let i = 0; i < 4; i += 1) {
      const conn = await rawConnect(gw.url);
      conn.socket.write(request);
      await until(() => conn.received().includes('"ok"') || conn.isClosed());
      assert.match(conn.received(), /^HTTP\/1\.1 200 /, `connection ${i + 1} of 4 is served`);
      held.push(conn);
    }
    const fifth = await rawConnect(gw.url);
    fifth.socket.write(request);
    await fifth.closed;
    assert.equal(fifth.received(), '', 'the fifth connection is closed without an answer');
    held[0]?.socket.destroy();
    await held[0]?.closed;
    await until(() => gw.gateway.http !== undefined);
    let served = false;
    // The server sees the close a moment after the client: retry until the slot is free.
    while (!served) {
      const again = await rawConnect(gw.url);
      again.socket.write(request);
      await until(() => again.received().includes('"ok"') || again.isClosed());
      served = again.received().startsWith('HTTP/1.1 200');
      again.socket.destroy();
    }
    for (const conn of held) conn.socket.destroy();
  });
});

describe('HTTP listener: sessions per agent, eviction of idle sessions, refusal when all are busy', () => {
  let gw: RunningGateway;
  const bob = { authorization: `Bearer ${OTHER_TOKEN}` };
  const pending: Array<Promise<Answer>> = [];
  let aliceSessions: string[] = [];
  let bobSessions: string[] = [];

  before(async () => {
    gw = await startGateway(configYaml(paced, 'limits: { timeoutMs: 600000 }', listeners('    maxSessions: 3\n    maxSessionsPerAgent: 2')));
  });
  after(async () => cleanUp(gw));

  const ping = (session: string, headers: Record<string, string> = {}): Promise<Answer> => post(gw.url, JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'ping' }), { 'mcp-session-id': session, ...headers });

  test("an agent at its own cap gives up its least recently used idle session, not another agent's", async () => {
    const first = await openSession(gw.url);
    const second = await openSession(gw.url);
    assert.equal((await ping(first)).status, 200); // first is now the most recently used
    const third = await openSession(gw.url);
    assert.equal((await ping(second)).status, 404, 'the least recently used idle session was evicted');
    assert.equal((await ping(first)).status, 200);
    assert.equal((await ping(third)).status, 200);
    aliceSessions = [first, third];
  });

  test('a full gateway evicts the least recently used idle session of any agent before refusing anyone', async () => {
    const b1 = await openSession(gw.url, OTHER_TOKEN); // 3 of 3
    const b2 = await openSession(gw.url, OTHER_TOKEN); // bob is under his cap, the gateway is full
    assert.equal(gw.gateway.http?.sessionCount, 3);
    assert.equal((await ping(aliceSessions[0] ?? '')).status, 404, "alice's least recently used session made room");
    assert.equal((await ping(aliceSessions[1] ?? '')).status, 200);
    assert.equal((await ping(b1, bob)).status, 200);
    bobSessions = [b1, b2];
  });

  test('when every candidate session is busy, initialize is refused with the reason', async () => {
    pending.push(post(gw.url, callBody(1, 'paced.hang'), { 'mcp-session-id': aliceSessions[1] ?? '' }));
    for (const session of bobSessions) pending.push(post(gw.url, callBody(1, 'paced.hang'), { 'mcp-session-id': session, ...bob }));
    await until(() => gw.gateway.http?.inFlightRequests === 3);
    const bobRefused = await post(gw.url, initializeBody(), bob);
    assert.equal(bobRefused.status, 503);
    assert.match(errorOf(bobRefused)?.message ?? '', /agent bob holds its limit of 2 sessions, all busy/);
    const aliceRefused = await post(gw.url, initializeBody());
    assert.equal(aliceRefused.status, 503);
    assert.match(errorOf(aliceRefused)?.message ?? '', /at its limit of 3 sessions, all busy/);
  });

  test('shutdown answers the requests in flight with a JSON-RPC error, and every lifecycle event is audited', async () => {
    await shutDown(gw);
    const answers = await Promise.all(pending);
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.equal(errorOf(answer)?.code, -32015);
      assert.match(errorOf(answer)?.message ?? '', /closed this session/);
    }
    const records = auditRecords(gw.bastion.audit.dir).filter((record) => record.kind === 'event');
    const of = (event: string): Array<Record<string, unknown>> => records.filter((record) => record.event === event).map((record) => record.info ?? {});
    assert.equal(of('session.created').length, 5);
    assert.deepEqual(of('session.closed').map((info) => info['reason']).sort(), ['evicted', 'evicted', 'shutdown', 'shutdown', 'shutdown']);
    assert.deepEqual(of('session.refused').map((info) => `${String(info['agent'])}:${String(info['reason'])}`).sort(), ['alice:gateway_full', 'bob:agent_limit']);
  });
});

describe('HTTP listener: sessions that never make a call expire early', () => {
  let gw: RunningGateway;
  before(async () => {
    gw = await startGateway(configYaml(paced, '', listeners('    unusedSessionIdleSeconds: 30')));
  });
  after(async () => cleanUp(gw));

  test('an initialized session with no call since is ended after unusedSessionIdleSeconds; a used one stays until sessionIdleSeconds', async () => {
    const unused = await openSession(gw.url);
    const used = await openSession(gw.url);
    assert.equal((await post(gw.url, callBody(2, 'paced.echo', { text: 'hi' }), { 'mcp-session-id': used })).status, 200);
    gw.gateway.http?.sweepIdle(Date.now() + 31_000);
    await until(() => gw.gateway.http?.sessionCount === 1);
    const ping = (session: string): Promise<Answer> => post(gw.url, JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'ping' }), { 'mcp-session-id': session });
    assert.equal((await ping(unused)).status, 404);
    assert.equal((await ping(used)).status, 200);
    gw.gateway.http?.sweepIdle(Date.now() + 901_000);
    await until(() => gw.gateway.http?.sessionCount === 0);
    await shutDown(gw);
    const reasons = auditRecords(gw.bastion.audit.dir).filter((record) => record.event === 'session.closed').map((record) => record.info?.['reason']);
    assert.deepEqual(reasons, ['unused', 'expired']);
  });
});

describe('HTTP listener: refused authentications are audited per source and window, not per request', () => {
  test('200 requests with a wrong token make at most two audit records whose counts add up to 200', async () => {
    const gw = await startGateway(configYaml(paced));
    try {
      for (let i = 0; i < 200; i += 1) {
        const answer = await post(gw.url, initializeBody(), { authorization: 'Bearer wrong' });
        assert.equal(answer.status, 401);
      }
    } finally {
      await shutDown(gw);
      after(() => cleanUp(gw));
    }
    const denied = auditRecords(gw.bastion.audit.dir).filter((record) => record.event === 'auth.denied');
    assert.ok(denied.length >= 1 && denied.length <= 2, `${denied.length} records`);
    assert.equal(denied.reduce((sum, record) => sum + Number(record.info?.['count'] ?? 0), 0), 200);
    assert.equal(denied[0]?.info?.['remote'], '127.0.0.1');
  });
});

describe('HTTP listener: duplicate request ids and cancellations', () => {
  let gw: RunningGateway;
  let session: string;
  before(async () => {
    gw = await startGateway(configYaml(paced, 'limits: { timeoutMs: 600000 }'));
    session = await openSession(gw.url);
  });
  after(async () => cleanUp(gw));

  test('a second request with the id of one in flight is refused; the first still gets its answer', async () => {
    const first = post(gw.url, callBody(7, 'paced.sleep', { ms: 800 }), { 'mcp-session-id': session });
    await until(() => gw.gateway.http?.inFlightRequests === 1);
    const second = await post(gw.url, callBody(7, 'paced.echo', { text: 'again' }), { 'mcp-session-id': session });
    assert.equal(second.status, 200);
    assert.equal(second.body?.['id'], 7);
    assert.match(errorOf(second)?.message ?? '', /already in use/);
    assert.equal(await settlesWithin(first, 10_000), true, 'the first POST hangs');
    assert.match(textOf(await first), /^slept 800 ms/);
  });

  test('a cancellation is audited and ends the cancelled POST without a response', async () => {
    const hanging = post(gw.url, callBody(9, 'paced.hang'), { 'mcp-session-id': session });
    await until(() => gw.gateway.http?.inFlightRequests === 1);
    const cancel = await post(gw.url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 9, reason: 'user pressed stop' } }), { 'mcp-session-id': session });
    assert.equal(cancel.status, 202);
    assert.equal(await settlesWithin(hanging, 10_000), true, 'the cancelled POST hangs');
    const answer = await hanging;
    assert.equal(answer.body, undefined, 'no response for a cancelled request');
    await shutDown(gw);
    const cancelled = auditRecords(gw.bastion.audit.dir).filter((record) => record.event === 'request.cancelled');
    assert.equal(cancelled.length, 1);
    assert.equal(cancelled[0]?.info?.['request_id'], 9);
    assert.equal(cancelled[0]?.info?.['reason'], 'user pressed stop');
  });
});
