// Quarantine as persistent state, end to end: a real server changes a tool without announcing
// it; the gateway holds it in the state directory; a restarted gateway (whose server now lists
// the changed tool from its first answer) still holds it; `bastion lock --check` reports it even
// though a fresh server process lists the approved text; `bastion quarantine` shows, rejects and
// approves it (approval pins it in the hash lock when the server is locked).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { BASTION_BIN, configYaml, firstText, fixture, httpClient, startGateway, stdioServer, tempDir, type RunningGateway } from '../helpers/gateway.js';

const SERVER = fixture('poisoned-definitions-server');
const NEW_DESCRIPTION = 'Returns the weather forecast for a city, in Celsius or Fahrenheit.';

function bastion(cwd: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [BASTION_BIN, ...args], { encoding: 'utf8', cwd });
}

/** A gateway config for the weather server in `mode`, lists fetched again before every call. */
function config(dir: string, mode: string): string {
  return configYaml(stdioServer('weather', SERVER, [mode]), `integrity:\n  relistIntervalSeconds: 0\n  hashlockFile: ${JSON.stringify(join(dir, 'tool_hashlock.json'))}`);
}

const refusal = (client: Client, args: Record<string, unknown> = { city: 'Oslo' }): Promise<{ code?: number; message: string } | undefined> =>
  client.callTool({ name: 'weather.get_weather', arguments: args }).then(() => undefined, (error: unknown) => error as { code?: number; message: string });

const toolNames = async (client: Client): Promise<string[]> => (await client.listTools()).tools.map((tool) => tool.name).sort();

/** Makes the server change get_weather (one call) and returns the quarantine id of the change. */
async function pullTheRug(client: Client): Promise<string> {
  assert.match(firstText(await client.callTool({ name: 'weather.get_weather', arguments: { city: 'Oslo' } })), /Oslo/);
  const error = await refusal(client);
  assert.equal(error?.code, -32017, error?.message);
  const id = /quarantine (q-[0-9a-f]{16})/.exec(error?.message ?? '')?.[1];
  assert.ok(id, error?.message);
  return id;
}

describe('a quarantine of an unlocked server survives a restart, and approval publishes the change', () => {
  const work = tempDir('bastion-quarantine-');
  let gw: RunningGateway | undefined;
  let client: Client | undefined;
  let id = '';

  after(async () => {
    await client?.close();
    await gw?.stop();
    work.cleanup();
  });

  test('the first gateway holds the silently changed tool', async () => {
    gw = await startGateway(config(work.path, 'changed:1'), work.path);
    client = await httpClient(gw.url);
    id = await pullTheRug(client);
    await client.close();
    await gw.stop();
    client = undefined;
    gw = undefined;
  });

  test('after a restart, with the server listing the changed tool from its first answer, it is still held under the same id', async () => {
    writeFileSync(join(work.path, 'bastion.yaml'), config(work.path, 'changed:0'));
    gw = await startGateway(config(work.path, 'changed:0'), work.path);
    client = await httpClient(gw.url);
    assert.deepEqual(await toolNames(client), ['weather.honest_echo']);
    const error = await refusal(client);
    assert.equal(error?.code, -32017);
    assert.match(error?.message ?? '', new RegExp(`its definition changed since it was approved \\(quarantine ${id}\\)`));
  });

  test('bastion quarantine list and show name it, with old and new digests and the diff', () => {
    const list = bastion(work.path, 'quarantine', 'list', '--config', 'bastion.yaml');
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`${id}\\s+held\\s+weather\\s+tools\\s+get_weather\\s+changed`));
    const show = bastion(work.path, 'quarantine', 'show', id, '--config', 'bastion.yaml');
    assert.equal(show.status, 0, show.stderr);
    assert.match(show.stdout, /old: {7}sha256:[0-9a-f]{64}\nnew: {7}sha256:[0-9a-f]{64}/);
    assert.match(show.stdout, /diff:\n {2}description:/);
    assert.ok(show.stdout.includes('Celsius'), show.stdout);
    assert.equal(bastion(work.path, 'quarantine', 'show', 'q-0000000000000000', '--config', 'bastion.yaml').status, 2);
  });

  test('approve publishes the new definition to the next session of the running gateway', async () => {
    const approved = bastion(work.path, 'quarantine', 'approve', id, '--config', 'bastion.yaml');
    assert.equal(approved.status, 0, approved.stderr);
    assert.match(approved.stdout, /approved .*kept in the quarantine store/);
    const next = await httpClient(gw!.url);
    try {
      const tools = (await next.listTools()).tools;
      assert.equal(tools.find((tool) => tool.name === 'weather.get_weather')?.description, NEW_DESCRIPTION);
      assert.match(firstText(await next.callTool({ name: 'weather.get_weather', arguments: { city: 'Oslo', units: 'C' } })), /"units":"C"/);
    } finally {
      await next.close();
    }
  });
});

describe('a quarantine of a locked server: lock --check reports it; reject keeps the pin; approve updates the lock', () => {
  const work = tempDir('bastion-quarantine-lock-');
  let gw: RunningGateway | undefined;
  let client: Client | undefined;
  let id = '';
  const lockText = (): string => readFileSync(join(work.path, 'tool_hashlock.json'), 'utf8');

  before(async () => {
    writeFileSync(join(work.path, 'bastion.yaml'), config(work.path, 'changed:1000'));
    const locked = bastion(work.path, 'lock', '--config', 'bastion.yaml', '--no-sandbox');
    assert.equal(locked.status, 0, locked.stderr);
    gw = await startGateway(config(work.path, 'changed:1'), work.path);
    client = await httpClient(gw.url);
    id = await pullTheRug(client);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
    work.cleanup();
  });

  test('lock --check exits 1 and names the quarantine although a fresh server process lists the locked text', () => {
    const check = bastion(work.path, 'lock', '--config', 'bastion.yaml', '--check', '--no-sandbox');
    assert.equal(check.status, 1, check.stdout + check.stderr);
    assert.match(check.stdout, new RegExp(`! weather: tools 'get_weather' quarantined \\(changed, ${id}\\): sha256:[0-9a-f]{64} -> sha256:[0-9a-f]{64}`));
  });

  test('reject keeps the pinned definition and the live one stays refused', async () => {
    const rejected = bastion(work.path, 'quarantine', 'reject', id, '--config', 'bastion.yaml');
    assert.equal(rejected.status, 0, rejected.stderr);
    assert.ok(!lockText().includes('Celsius'));
    const error = await refusal(client!);
    assert.match(error?.message ?? '', new RegExp(`an operator rejected this definition \\(quarantine ${id}\\)`));
  });

  test('approve pins the new definition in the lock and publishes it', async () => {
    const approved = bastion(work.path, 'quarantine', 'approve', id, '--config', 'bastion.yaml');
    assert.equal(approved.status, 0, approved.stderr);
    assert.match(approved.stdout, /pinned in .*tool_hashlock\.json/);
    assert.ok(lockText().includes('Celsius'));
    assert.match(firstText(await client!.callTool({ name: 'weather.get_weather', arguments: { city: 'Bergen', units: 'F' } })), /Bergen/);
    // The lock now matches a server that lists the new text, and nothing is held.
    writeFileSync(join(work.path, 'bastion.yaml'), config(work.path, 'changed:0'));
    const check = bastion(work.path, 'lock', '--config', 'bastion.yaml', '--check', '--no-sandbox');
    assert.equal(check.status, 0, check.stdout + check.stderr);
  });
});

describe('server instructions are pinned like definitions', () => {
  const work = tempDir('bastion-instructions-');
  const instructionsConfig = (text: string): string => configYaml(stdioServer('notes', SERVER, [`instructions:${text}`]), `integrity:\n  hashlockFile: ${JSON.stringify(join(work.path, 'tool_hashlock.json'))}`);

  before(() => {
    writeFileSync(join(work.path, 'bastion.yaml'), instructionsConfig('Use these tools to keep notes.'));
    const locked = bastion(work.path, 'lock', '--config', 'bastion.yaml', '--no-sandbox');
    assert.equal(locked.status, 0, locked.stderr);
    assert.ok(readFileSync(join(work.path, 'tool_hashlock.json'), 'utf8').includes('"instructions": "Use these tools to keep notes."'));
  });

  after(() => work.cleanup());

  test('the locked instructions reach the client; changed ones are withheld and quarantined', async () => {
    const same = await startGateway(instructionsConfig('Use these tools to keep notes.'), work.path);
    try {
      const client = await httpClient(same.url);
      assert.equal(client.getInstructions(), '[notes] Use these tools to keep notes.');
      await client.close();
    } finally {
      await same.stop();
    }
    const changed = await startGateway(instructionsConfig('Use these tools to keep notes and recipes.'), work.path);
    try {
      const client = await httpClient(changed.url);
      assert.equal(client.getInstructions(), undefined);
      await client.close();
    } finally {
      await changed.stop();
    }
    const list = bastion(work.path, 'quarantine', 'list', '--config', 'bastion.yaml');
    assert.match(list.stdout, /q-[0-9a-f]{16}\s+held\s+notes\s+instructions\s+instructions\s+changed/);
  });
});
