import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { auditRecords } from '../helpers/audit.js';
import { configYaml, fixture, httpClient, startGateway, stdioServer, type RunningGateway } from '../helpers/gateway.js';
import { probeAppendOnly } from '../../src/audit/append-only.js';

const AUDITCTL = fileURLToPath(new URL('../../src/cli/auditctl.js', import.meta.url));

describe('every tool call through the gateway has exactly one audit record', () => {
  let gw: RunningGateway;
  let client: Client;
  const secret = 'sk-live-51HqLyjWDarjtT1zdp7dcXYZ0123456789abcdefABCDEF';

  before(async () => {
    gw = await startGateway(configYaml(stdioServer('odd', fixture('misbehaving-server'), [], '    limits: { timeoutMs: 800 }\n')));
    client = await httpClient(gw.url);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
  });

  test('allowed, denied, failed and timed-out calls are each recorded once, with their outcome', async () => {
    const settle = (name: string, args: Record<string, unknown>): Promise<unknown> => client.callTool({ name, arguments: args }).catch((error: unknown) => error);
    await settle('odd.echo', { text: `my key is ${secret}` }); // allowed
    await settle('odd.echo', { wrong: 1 }); // denied by argument validation
    await settle('odd.nope', {}); // error: unknown tool
    await settle('odd.hang', {}); // timed out
    await gw.bastion.audit.flush();
    const calls = auditRecords(gw.bastion.audit.dir).filter((record) => record.kind === 'request' && record.method === 'tools/call');
    assert.equal(calls.length, 4, JSON.stringify(calls));
    assert.equal(new Set(calls.map((record) => record.request_id)).size, 4, 'one record per request id');
    assert.deepEqual(
      calls.map((record) => record.decision),
      ['allow', 'deny', 'error', 'error'],
    );
    assert.match(calls[3]?.reason ?? '', /time/);
    assert.ok(calls.every((record) => record.agent_id === 'alice'));
    assert.ok(calls.every((record) => /^sha256:[0-9a-f]{16}$/.test(record.token_fingerprint ?? '')));
  });

  test('a secret in the arguments never reaches the log files', () => {
    const raw = readdirSync(join(gw.bastion.audit.dir, 'segments')).map((file) => readFileSync(join(gw.bastion.audit.dir, 'segments', file), 'utf8')).join('');
    assert.ok(!raw.includes(secret), 'the secret was written to the audit log');
    assert.ok(!raw.includes('test-token-for-agent-alice'), 'the bearer token was written to the audit log');
  });

  test('the gateway start and config load are recorded, and mcp-auditctl verifies the log', async () => {
    const events = auditRecords(gw.bastion.audit.dir).filter((record) => record.kind === 'event').map((record) => record.event);
    assert.ok(events.includes('config.load'));
    assert.ok(events.includes('gateway.start'));
    // The default, audit.appendOnly: auto, protects the log exactly where the host allows it (root with CAP_LINUX_IMMUTABLE on ext4 here).
    const start = auditRecords(gw.bastion.audit.dir).find((record) => record.event === 'gateway.start');
    assert.equal(start?.info?.['append_only'], probeAppendOnly(join(gw.bastion.audit.dir, 'segments')).supported);
    assert.equal(gw.bastion.audit.appendOnly.enabled, start?.info?.['append_only']);
    await gw.bastion.audit.checkpoint();
    const result = spawnSync(process.execPath, [AUDITCTL, '--log', gw.bastion.audit.dir, 'verify'], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stdout + result.stderr);
  });
});
