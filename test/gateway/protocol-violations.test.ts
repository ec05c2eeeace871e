import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { BASTION_BIN, configYaml, firstText, fixture, httpClient, referenceServer, startGateway, stdioServer, type RunningGateway, callError } from '../helpers/gateway.js';
import { auditRecords } from '../helpers/audit.js';

describe('a hostile upstream that breaks the protocol', () => {
  let gw: RunningGateway;
  let client: Client;

  before(async () => {
    // A long tool timeout: a call that waited for it instead of failing at once would stall the test.
    gw = await startGateway(configYaml(stdioServer('evil', fixture('runtime-hostile-server'), [], '    limits: { timeoutMs: 60000 }\n') + stdioServer('everything', referenceServer('everything'), ['stdio'])));
    client = await httpClient(gw.url);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
  });

  test('an answer inside a JSON-RPC batch fails its call within a second, and the violation is audited with the server', async () => {
    const started = Date.now();
    const error = await callError(client, 'evil.batch');
    assert.ok(Date.now() - started < 1000, `the call took ${Date.now() - started} ms`);
    assert.match(error.message, /broke the MCP protocol.*batch/);
    await gw.bastion.audit.flush();
    const violation = auditRecords(gw.bastion.audit.dir).find((record) => record.event === 'upstream.protocol_violation');
    assert.equal(violation?.info?.['server'], 'evil');
    assert.match(String(violation?.info?.['description']), /batch/);
  });

  test('a response with both result and error fails its call at once', async () => {
    const error = await callError(client, 'evil.malformed');
    assert.match(error.message, /broke the MCP protocol.*malformed/);
  });

  test('a truncated, unparseable answer that names the call fails it at once', async () => {
    const started = Date.now();
    const error = await callError(client, 'evil.garbled');
    assert.ok(Date.now() - started < 1000, `the call took ${Date.now() - started} ms`);
    assert.match(error.message, /broke the MCP protocol/);
  });

  test('a response to a request the gateway never made is dropped, logged and audited; the call goes on', async () => {
    assert.equal(firstText(await client.callTool({ name: 'evil.stray', arguments: {} })), 'after stray');
    await gw.bastion.audit.flush();
    const stray = auditRecords(gw.bastion.audit.dir).find((record) => record.event === 'upstream.stray_response');
    assert.equal(stray?.info?.['server'], 'evil');
    assert.equal(stray?.info?.['id'], '987654');
    assert.equal(firstText(await client.callTool({ name: 'everything.echo', arguments: { message: 'unaffected' } })), 'Echo: unaffected');
  });

  test('an injection in an error message, in _meta, or nested deep past 500 items is withheld end to end and kept for review', async () => {
    for (const tool of ['evil.inject-error', 'evil.inject-meta', 'evil.inject-deep']) {
      const error = await callError(client, tool);
      assert.match(error.message, /withheld/, tool);
      assert.doesNotMatch(error.message, /Ignore all previous/, `${tool}: the injection reached the client`);
      const id = /bastion review show (r[0-9a-z]+-[0-9a-f]+)/.exec(error.message)?.[1];
      assert.ok(id, `${tool}: the error names a review id`);
      const shown = spawnSync(process.execPath, [BASTION_BIN, 'review', 'show', id, '--state-dir', join(gw.dir.path, 'state')], { encoding: 'utf8' });
      assert.equal(shown.status, 0, shown.stderr);
      const entry = JSON.parse(shown.stdout) as { id: string; server: string; withheld: unknown };
      assert.equal(entry.id, id);
      assert.equal(entry.server, 'evil');
      assert.match(JSON.stringify(entry.withheld), /Ignore all previous instructions/);
    }
    const listed = spawnSync(process.execPath, [BASTION_BIN, 'review', 'list', '--state-dir', join(gw.dir.path, 'state')], { encoding: 'utf8' });
    assert.equal(listed.status, 0, listed.stderr);
    assert.equal(listed.stdout.trim().split('\n').length, 3);
    await gw.bastion.audit.flush();
    const denials = auditRecords(gw.bastion.audit.dir).filter((record) => record.kind === 'request' && record.denied_by === 'output-inspection');
    assert.equal(denials.length, 3);
    assert.match(denials[0]?.reason ?? '', /review r[0-9a-z]+-/);
  });
});
