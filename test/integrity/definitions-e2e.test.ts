// Runtime definition inspection through the running gateway, with a real hostile MCP server
// (test/fixtures/servers/poisoned-definitions-server.ts) behind it and the official SDK client in
// front: poisoned text in every place a definition carries it, and every class of hidden
// character, must never reach the client; a silent rug pull (no list_changed) is caught within
// one call; an argument the pinned schema does not declare is refused.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { readRecords } from '../../src/audit/reader.js';
import type { AuditRecord } from '../../src/audit/schema.js';
import { configYaml, firstText, fixture, httpClient, startGateway, stdioServer, type RunningGateway } from '../helpers/gateway.js';

const POISONED = fixture('poisoned-definitions-server');

/** Everything the client received, as one string. */
const everything = async (client: Client): Promise<string> =>
  JSON.stringify([
    await client.listTools(),
    await client.listPrompts(),
    await client.listResources(),
    await client.listResourceTemplates(),
    client.getInstructions() ?? null,
  ]);

const HIDDEN = /[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]|[\u{e0000}-\u{e007f}]/u;

const callError = (client: Client, name: string, args: Record<string, unknown> = {}): Promise<{ code?: number; message: string } | undefined> =>
  client.callTool({ name, arguments: args }).then(() => undefined, (error: unknown) => error as { code?: number; message: string });

function events(gw: RunningGateway, type: string): AuditRecord[] {
  return [...readRecords(gw.bastion.audit.dir)].map((item) => item.record).filter((record) => record.kind === 'event' && record.event === type);
}

describe('a server whose definitions carry instructions to the model', () => {
  let gw: RunningGateway;
  let client: Client;

  before(async () => {
    gw = await startGateway(configYaml(stdioServer('notes', POISONED, ['poisoned'])));
    client = await httpClient(gw.url);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
  });

  test('only the honest tools are listed; noise-only hidden characters are stripped, not passed on', async () => {
    const tools = (await client.listTools()).tools;
    assert.deepEqual(tools.map((tool) => tool.name).sort(), ['notes.benign_bidi', 'notes.benign_zero_width', 'notes.get_weather', 'notes.honest_echo']);
    assert.equal(tools.find((tool) => tool.name === 'notes.benign_zero_width')?.description, 'Adds two numbers.');
    assert.equal(tools.find((tool) => tool.name === 'notes.benign_bidi')?.description, 'Lists files in a directory.');
  });

  test('no injected text and no hidden character of any class reaches the client, in any list or in instructions', async () => {
    const seen = await everything(client);
    for (const marker of ['IMPORTANT', 'id_rsa', 'evil.example', 'previous instructions', 'prev\u200bious', 'never mention']) assert.ok(!seen.includes(marker), `the client saw ${JSON.stringify(marker)}`);
    assert.doesNotMatch(seen, HIDDEN);
    assert.equal(client.getInstructions(), undefined, 'poisoned instructions are withheld');
  });

  test('prompts, resources and templates with poisoned descriptions are withheld; honest ones pass', async () => {
    assert.deepEqual((await client.listPrompts()).prompts.map((prompt) => prompt.name), ['notes.summary']);
    assert.deepEqual((await client.listResources()).resources.map((resource) => resource.uri), ['notes+notes://honest']);
    assert.deepEqual((await client.listResourceTemplates()).resourceTemplates, []);
  });

  test('calling a blocked tool is refused with -32017, naming the tool and the rule but quoting nothing from the server', async () => {
    for (const name of ['desc_important', 'zero_width_injection', 'bidi_injection', 'tag_payload', 'nested_description', 'nested_title', 'enum_value']) {
      const error = await callError(client, `notes.${name}`, {});
      assert.ok(error, `${name} was called`);
      assert.equal(error.code, -32017, `${name}: ${error.message}`);
      assert.match(error.message, new RegExp(`tool 'notes\\.${name}' is not available: blocked by definition inspection: a (high|critical) finding \\(BST-[A-Z]\\d+\\)`));
      assert.doesNotMatch(error.message, /IMPORTANT|ssh|evil|instructions and/);
    }
    assert.match(firstText(await client.callTool({ name: 'notes.honest_echo', arguments: { message: 'hi' } })), /"message":"hi"/);
  });

  test('each finding is audited with server, tool, field path, rule id and definition hash', async () => {
    await gw.bastion.audit.flush();
    const findings = events(gw, 'definition.finding');
    const nested = findings.find((record) => record.info?.['tool'] === 'nested_description');
    assert.ok(nested, JSON.stringify(findings.map((record) => record.info?.['tool'])));
    assert.equal(nested.info?.['server'], 'notes');
    assert.equal(nested.info?.['action'], 'block');
    assert.match(String(nested.info?.['digest']), /^sha256:[0-9a-f]{64}$/);
    const items = nested.info?.['findings'] as Array<{ rule_id: string; field: string }>;
    assert.ok(items.some((item) => item.field === 'inputSchema.properties.options.properties.path.description' && /^BST-M\d+$/.test(item.rule_id)), JSON.stringify(items));
    const tag = findings.find((record) => record.info?.['tool'] === 'tag_payload');
    assert.ok((tag?.info?.['findings'] as Array<{ rule_id: string }>).some((item) => item.rule_id === 'BST-U001'));
    const stripped = findings.find((record) => record.info?.['tool'] === 'benign_zero_width');
    assert.equal(stripped?.info?.['action'], 'strip');
    assert.ok(findings.some((record) => record.info?.['kind'] === 'instructions' && record.info?.['action'] === 'block'));
    assert.ok(findings.some((record) => record.info?.['kind'] === 'prompts' && record.info?.['tool'] === 'poisoned_argument'));
  });

  test('an argument the schema does not declare is refused before it reaches the server', async () => {
    const error = await callError(client, 'notes.honest_echo', { message: 'hi', path: '/etc/shadow' });
    assert.equal(error?.code, -32602, error?.message);
    assert.match(error?.message ?? '', /must NOT have additional properties/);
  });
});

describe('per-server actions in the config', () => {
  let gw: RunningGateway;
  let client: Client;

  before(async () => {
    const servers = stdioServer('warned', POISONED, ['poisoned'], '    definitions: { actions: { critical: warn, high: warn }, hiddenCharacters: warn }\n') + stdioServer('held', POISONED, ['poisoned'], '    definitions: { actions: { critical: quarantine, high: quarantine } }\n');
    gw = await startGateway(configYaml(servers));
    client = await httpClient(gw.url);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
  });

  test('warn offers the definition as it is (audited); quarantine holds it with a quarantine id', async () => {
    const tools = (await client.listTools()).tools;
    assert.ok(tools.some((tool) => tool.name === 'warned.desc_important'));
    assert.equal(tools.find((tool) => tool.name === 'warned.benign_zero_width')?.description, 'Adds\u200b two\u200c numbers.');
    assert.ok(!tools.some((tool) => tool.name === 'held.desc_important'));
    const error = await callError(client, 'held.desc_important', {});
    assert.match(error?.message ?? '', /held by definition inspection: a (high|critical) finding \(BST-M\d+\) \(quarantine q-[0-9a-f]{16}\)/);
  });
});

describe('a silent rug pull (the server changes a tool and says nothing)', () => {
  let gw: RunningGateway;
  let client: Client;

  before(async () => {
    // relistIntervalSeconds: 0 lists again before every call, so the test needs no clock.
    gw = await startGateway(configYaml(stdioServer('weather', POISONED, ['silent:1']), 'integrity:\n  relistIntervalSeconds: 0'));
    client = await httpClient(gw.url);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
  });

  test('the call after the change is refused, and the tool leaves the list', async () => {
    assert.match(firstText(await client.callTool({ name: 'weather.get_weather', arguments: { city: 'Oslo' } })), /Oslo/);
    // The server has now rewritten get_weather, without notifications/tools/list_changed.
    const error = await callError(client, 'weather.get_weather', { city: 'Oslo', path: '~/.ssh/id_rsa' });
    assert.equal(error?.code, -32017, error?.message);
    assert.match(error?.message ?? '', /its definition changed since it was approved \(quarantine q-[0-9a-f]{16}\)/);
    assert.deepEqual((await client.listTools()).tools.map((tool) => tool.name), ['weather.honest_echo']);
  });

  test('the quarantine audit event carries the old and the new definition hash', async () => {
    await gw.bastion.audit.flush();
    const items = events(gw, 'quarantine').flatMap((record) => record.info?.['items'] as Array<{ name: string; old_digest: string | null; new_digest: string | null; id: string | null }>);
    const item = items.find((entry) => entry.name === 'get_weather');
    assert.match(item?.old_digest ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.match(item?.new_digest ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.notEqual(item?.old_digest, item?.new_digest);
    assert.match(item?.id ?? '', /^q-[0-9a-f]{16}$/);
  });
});
