// Curation with least privilege and the hash lock, through the gateway with the SDK client:
// a policy grant naming a tool group, renames under policy (which speaks upstream names), and
// `bastion lock` pinning the curation apart from the upstream definitions.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { auditRecords } from '../helpers/audit.js';
import { BASTION_BIN, OTHER_TOKEN, callError, configYaml, firstText, fixture, httpClient, startGateway, tempDir, type RunningGateway } from '../helpers/gateway.js';

const RUGPULL = fixture('rugpull-server');
const HONEST = 'Returns the weather forecast for a city.';

function wx(tools: string): string {
  return `  wx:
    transport: stdio
    command: ${JSON.stringify(process.execPath)}
    args: ${JSON.stringify([RUGPULL, '1000'])}
    trust: unsigned
    tools:
${tools}`;
}

const names = async (client: Client): Promise<string[]> => (await client.listTools()).tools.map((tool) => tool.name).sort();

describe('a tool group granted in the policy, with renamed tools', () => {
  const dir = tempDir('bastion-curation-policy-');
  let gw: RunningGateway;
  let alice: Client;
  let bob: Client;

  before(async () => {
    writeFileSync(join(dir.path, 'policy.yaml'), 'version: 1\ntoolGroups:\n  readers: [wx.get_weather, wx.add]\nagents:\n  alice:\n    grants: ["exec:tools:@readers"]\n  bob:\n    grants: ["exec:tools:[@readers, wx.echo]"]\n');
    const tools = '      get_weather: { scopes: [], rename: forecast }\n      add: { scopes: [] }\n      echo: { scopes: [] }\n';
    gw = await startGateway(configYaml(wx(tools), `policy:\n  files: [${JSON.stringify(join(dir.path, 'policy.yaml'))}]\n`));
    alice = await httpClient(gw.url);
    bob = await httpClient(gw.url, OTHER_TOKEN);
  });

  after(async () => {
    await alice?.close();
    await bob?.close();
    await gw?.stop();
    dir.cleanup();
  });

  test("the group's members are listed and callable under their curated names; others are not", async () => {
    assert.deepEqual(await names(alice), ['wx.add', 'wx.forecast']);
    assert.equal(firstText(await alice.callTool({ name: 'wx.forecast', arguments: { city: 'Oslo' } })), 'Sunny in Oslo');
    const denied = (await callError(alice, 'wx.echo', { message: 'x' })) as Error & { code?: number };
    assert.match(denied.message, /not granted exec:tools:wx\.echo/);
    assert.deepEqual(await names(bob), ['wx.add', 'wx.echo', 'wx.forecast']);
    assert.equal(firstText(await bob.callTool({ name: 'wx.echo', arguments: { message: 'hi' } })), 'hi');
  });

  test('the denial and the allowed call are audited under the upstream name', async () => {
    await gw.bastion.audit.flush();
    const calls = auditRecords(gw.bastion.audit.dir).filter((record) => record.kind === 'request' && record.method === 'tools/call' && record.agent_id === 'alice');
    assert.ok(calls.some((record) => record.tool === 'get_weather' && record.decision === 'allow'), JSON.stringify(calls));
    assert.ok(calls.some((record) => record.tool === 'echo' && record.decision === 'deny'), JSON.stringify(calls));
  });
});

describe('bastion lock pins the curation apart from the upstream definitions', () => {
  const work = tempDir('bastion-curation-lock-');
  const integrity = `integrity:\n  hashlockFile: ${JSON.stringify(join(work.path, 'tool_hashlock.json'))}\n  unlocked: quarantine\n`;
  const yamlWith = (description: string): string => configYaml(wx(`      get_weather: { description: ${JSON.stringify(description)} }\n`), integrity);
  let gw: RunningGateway | undefined;
  let client: Client | undefined;

  before(() => {
    writeFileSync(join(work.path, 'bastion.yaml'), yamlWith('Forecast, reviewed.'));
    const locked = spawnSync(process.execPath, [BASTION_BIN, 'lock', '--config', 'bastion.yaml'], { encoding: 'utf8', cwd: work.path });
    assert.equal(locked.status, 0, locked.stderr);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
    work.cleanup();
  });

  test('the lock entry holds the upstream text under tools and the override under curation', () => {
    const lock = JSON.parse(readFileSync(join(work.path, 'tool_hashlock.json'), 'utf8')) as { servers: Record<string, { tools: Record<string, { definition: { description: string } }>; curation?: { digest: string; definition: { tools: Record<string, { description: string }> } } }> };
    const entry = lock.servers['wx'];
    assert.equal(entry?.tools['get_weather']?.definition.description, HONEST);
    assert.equal(entry?.curation?.definition.tools['get_weather']?.description, 'Forecast, reviewed.');
    assert.match(entry?.curation?.digest ?? '', /^sha256:/);
  });

  test('with the locked override the gateway serves it and records the pin as matching', async () => {
    gw = await startGateway(yamlWith('Forecast, reviewed.'), work.path);
    client = await httpClient(gw.url);
    const tool = (await client.listTools()).tools.find((item) => item.name === 'wx.get_weather');
    assert.equal(tool?.description, 'Forecast, reviewed.');
    await gw.bastion.audit.flush();
    const loaded = auditRecords(gw.bastion.audit.dir).filter((record) => record.kind === 'event' && record.event === 'curation.loaded');
    assert.equal(loaded[0]?.info?.['status'], 'pinned');
    await client.close();
    await gw.stop();
    client = undefined;
    gw = undefined;
  });

  test('a changed override is a config change: served as configured, reported, nothing quarantined', async () => {
    gw = await startGateway(yamlWith('Forecast, edited after locking.'), work.path);
    client = await httpClient(gw.url);
    const tools = (await client.listTools()).tools;
    assert.deepEqual(tools.map((item) => item.name).sort(), ['wx.add', 'wx.echo', 'wx.get_weather']);
    assert.equal(tools.find((item) => item.name === 'wx.get_weather')?.description, 'Forecast, edited after locking.');
    assert.equal(firstText(await client.callTool({ name: 'wx.get_weather', arguments: { city: 'Oslo' } })), 'Sunny in Oslo');
    await gw.bastion.audit.flush();
    const records = auditRecords(gw.bastion.audit.dir);
    const loaded = records.filter((record) => record.kind === 'event' && record.event === 'curation.loaded');
    // The state directory (and its audit log) is shared with the previous start: the last record is this start's.
    assert.equal(loaded.at(-1)?.info?.['status'], 'changed');
    assert.notEqual(loaded.at(-1)?.info?.['digest'], loaded.at(-1)?.info?.['pinned_digest']);
    assert.equal(records.filter((record) => record.kind === 'event' && record.event === 'quarantine').length, 0, 'an override change quarantined something');
  });
});
