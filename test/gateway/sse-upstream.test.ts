// Upstream servers that offer only the deprecated HTTP+SSE transport (2024-11-05), through the
// gateway with the official SDK client in front: an honest one (the SDK's SSEServerTransport,
// test/fixtures/servers/sse-upstream.ts) and hostile ones (an endpoint on another origin, a
// flood of events, a stream that dies in the middle of a call).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { auditRecords } from '../helpers/audit.js';
import { callError, configYaml, firstText, fixture, httpClient, startGateway, type RunningGateway } from '../helpers/gateway.js';

interface Fixture {
  child: ChildProcess;
  url: string;
  probe: string;
}

async function startFixture(mode: string): Promise<Fixture> {
  const child = spawn(process.execPath, [fixture('sse-upstream'), mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', resolve));
  const { url, probe } = JSON.parse(line) as { url: string; probe: string };
  return { child, url, probe };
}

const sseServer = (name: string, url: string): string => `  ${name}:\n    transport: http\n    url: ${url}\n    legacySse: true\n    trust: unsigned\n`;

describe('an SSE-only upstream behind the gateway', () => {
  let honest: Fixture;
  let foreign: Fixture;
  let gw: RunningGateway;
  let client: Client;

  before(async () => {
    [honest, foreign] = await Promise.all([startFixture('honest'), startFixture('foreign-endpoint')]);
    gw = await startGateway(configYaml(sseServer('legacy', honest.url) + sseServer('foreign', foreign.url), 'upstream: { restartBackoffMs: 50, startTimeoutMs: 5000 }\n'));
    client = await httpClient(gw.url);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
    honest?.child.kill();
    foreign?.child.kill();
  });

  test('its tools are listed and called through the gateway; the audit log says upstream_transport sse', async () => {
    const names = (await client.listTools()).tools.map((tool) => tool.name).filter((name) => name.startsWith('legacy.')).sort();
    assert.deepEqual(names, ['legacy.add', 'legacy.die', 'legacy.echo', 'legacy.flood']);
    assert.equal(firstText(await client.callTool({ name: 'legacy.add', arguments: { a: 2, b: 3 } })), '5');
    await gw.bastion.audit.flush();
    const started = auditRecords(gw.bastion.audit.dir).filter((record) => record.kind === 'event' && record.event === 'upstream.start' && record.info?.['server'] === 'legacy');
    assert.equal(started[0]?.info?.['upstream_transport'], 'sse', JSON.stringify(started));
  });

  test('an endpoint event naming another origin is refused: no tools, a clear error, nothing sent there', async () => {
    assert.equal((await client.listTools()).tools.filter((tool) => tool.name.startsWith('foreign.')).length, 0);
    const error = await callError(client, 'foreign.add', { a: 1, b: 2 });
    assert.match(error.message, /server 'foreign' is unavailable \(.*another origin/);
    const count = await (await fetch(`${foreign.probe}/count`)).text();
    assert.equal(count, '0', 'a message reached the foreign endpoint');
  });

  test('a flood of events is rate-limited toward the client and the session keeps answering', async () => {
    let received = 0;
    client.setNotificationHandler(LoggingMessageNotificationSchema, () => {
      received += 1;
    });
    assert.equal(firstText(await client.callTool({ name: 'legacy.flood', arguments: { count: 5000 } })), 'sent 5000');
    assert.equal(firstText(await client.callTool({ name: 'legacy.echo', arguments: { message: 'after the flood' } })), 'after the flood');
    // A drop burst is reported once the upstream has been quiet for a moment.
    let dropped = 0;
    for (let attempt = 0; attempt < 50 && dropped === 0; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      await gw.bastion.audit.flush();
      dropped = auditRecords(gw.bastion.audit.dir)
        .filter((record) => record.kind === 'event' && record.event === 'upstream.notifications_dropped' && record.info?.['server'] === 'legacy')
        .reduce((sum, record) => sum + Number(record.info?.['dropped'] ?? 0), 0);
    }
    assert.ok(dropped > 0, 'no drop was audited');
    assert.ok(received < 5000 - dropped + 1, `the client received ${received} of 5000 with ${dropped} dropped`);
  });

  test('a stream that dies mid-call ends the call with a JSON-RPC error; the next call reconnects', async () => {
    const error = (await callError(client, 'legacy.die')) as Error & { code?: number };
    assert.equal(error.code, -32015);
    assert.match(error.message, /server 'legacy' stopped during the call \(the SSE stream (ended|failed)/);
    let answer: string | undefined;
    for (let attempt = 0; attempt < 20 && answer === undefined; attempt += 1) {
      answer = await client.callTool({ name: 'legacy.add', arguments: { a: 1, b: 1 } }).then(firstText, () => undefined);
      if (answer === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(answer, '2');
  });
});
