import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { configYaml, firstText, fixture, httpClient, referenceServer, startGateway, stdioServer, type RunningGateway, callError } from '../helpers/gateway.js';

describe('an upstream that hangs, floods, writes garbage or crashes affects only its own calls', () => {
  let gw: RunningGateway;
  let client: Client;

  before(async () => {
    const limits = `    limits: { timeoutMs: 1500, maxOutputBytes: 65536 }\n    tools:\n      echo:\n        limits: { timeoutMs: 5000 }\n`;
    gw = await startGateway(
      configYaml(stdioServer('odd', fixture('misbehaving-server'), [], limits) + stdioServer('everything', referenceServer('everything'), ['stdio']), 'upstream: { restartBackoffMs: 100, maxBackoffMs: 400 }'),
    );
    client = await httpClient(gw.url);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
  });

  test('a call that hangs is cut off at the wall-clock timeout and cancelled upstream', async () => {
    const error = await callError(client, 'odd.hang');
    assert.match(error.message, /timed out after 1500 ms/);
    const report = await client.callTool({ name: 'odd.cancelled', arguments: {} });
    assert.notEqual(JSON.parse(firstText(report)).length, 0, 'the upstream never received notifications/cancelled');
  });

  test('an answer over the output cap fails the call cleanly', async () => {
    const error = await callError(client, 'odd.flood', { bytes: 200_000 });
    assert.match(error.message, /output cap/);
    assert.equal(firstText(await client.callTool({ name: 'odd.echo', arguments: { text: 'still here' } })), 'still here');
  });

  test('an answer under the cap goes through', async () => {
    const result = await client.callTool({ name: 'odd.flood', arguments: { bytes: 1000 } });
    assert.equal(firstText(result).length, 1000);
  });

  test('garbage on the upstream\'s stdout is ignored and the call still completes', async () => {
    assert.equal(firstText(await client.callTool({ name: 'odd.garbage', arguments: {} })), 'after garbage');
  });

  test('a crash fails the call in flight, other servers keep serving, and the server is restarted', async () => {
    const before = firstText(await client.callTool({ name: 'odd.pid', arguments: {} }));
    const error = await callError(client, 'odd.crash');
    assert.match(error.message, /stopped during the call|exited/);
    assert.equal(firstText(await client.callTool({ name: 'everything.echo', arguments: { message: 'unaffected' } })), 'Echo: unaffected');
    let after = '';
    for (let attempt = 0; attempt < 50 && (after === '' || after === before); attempt += 1) {
      after = await client.callTool({ name: 'odd.pid', arguments: {} }).then(firstText, () => '');
      if (after === '') await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.notEqual(after, '');
    assert.notEqual(after, before, 'the restarted server should be a new process');
  });

  test('a client can cancel its own call; the gateway tells the upstream', async () => {
    const controller = new AbortController();
    const pending = client.callTool({ name: 'odd.hang', arguments: {} }, undefined, { signal: controller.signal, timeout: 10_000 });
    setTimeout(() => controller.abort('user pressed stop'), 100);
    await assert.rejects(pending);
    const report = JSON.parse(firstText(await client.callTool({ name: 'odd.cancelled', arguments: {} }))) as unknown[];
    assert.ok(report.length >= 1);
  });
});

describe('an upstream that stops reading its input', () => {
  test('cannot make the gateway queue requests without bound: new calls are refused at once', async () => {
    const gw = await startGateway(configYaml(stdioServer('deaf', fixture('misbehaving-server'), ['--deaf-after-list'], '    limits: { timeoutMs: 10000 }\n')));
    const client = await httpClient(gw.url);
    const big = 'x'.repeat(900 * 1024);
    const outcomes = await Promise.all(
      Array.from({ length: 16 }, () => client.callTool({ name: 'deaf.echo', arguments: { text: big } }, undefined, { timeout: 20_000 }).then(() => 'answered', (error: Error) => error.message)),
    ).catch((error: Error) => [error.message]);
    const refused = outcomes.filter((outcome) => /not reading its input/.test(outcome));
    assert.ok(refused.length > 0, `expected refusals, got ${JSON.stringify(outcomes.map((o) => o.slice(0, 60)))}`);
    await client.close().catch(() => undefined);
    await gw.stop();
  });
});

describe('output inspection', () => {
  test('a tool result that carries instructions to the model is withheld, and the denial is audited', async () => {
    const gw = await startGateway(configYaml(stdioServer('odd', fixture('misbehaving-server'))));
    const client = await httpClient(gw.url);
    const error = await callError(client, 'odd.inject');
    assert.match(error.message, /withheld/);
    assert.equal(firstText(await client.callTool({ name: 'odd.echo', arguments: { text: 'my ~/.ssh/id_rsa.pub is public' } })), 'my ~/.ssh/id_rsa.pub is public');
    await gw.bastion.audit.flush();
    await client.close();
    await gw.stop();
  });
});
