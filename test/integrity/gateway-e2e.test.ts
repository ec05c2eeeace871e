// Supply-chain integrity through the running gateway, set up the way a publisher and an operator
// would (bastion manifest from-server, keygen, sign, a trusted signers file, bastion lock), with
// a real MCP server written for the test that turns one tool's description into a prompt
// injection after a few calls and announces it with notifications/tools/list_changed.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { readRecords } from '../../src/audit/reader.js';
import type { AuditRecord } from '../../src/audit/schema.js';
import { BASTION_BIN, configYaml, firstText, fixture, httpClient, referenceServer, startGateway, stdioServer, tempDir, type RunningGateway } from '../helpers/gateway.js';

const RUGPULL = fixture('rugpull-server');
const work = tempDir('bastion-integrity-e2e-');
after(() => work.cleanup());

function bastion(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [BASTION_BIN, ...args], { encoding: 'utf8', cwd: work.path });
}

function mustRun(...args: string[]): void {
  const result = bastion(...args);
  assert.equal(result.status, 0, `bastion ${args.join(' ')}:\n${result.stderr}`);
}

/** A server block for the rug-pull fixture, run through `script` (the fixture or a wrapper). */
function rugpullServer(name: string, script: string, after: number, trust: string): string {
  return `  ${name}:
    transport: stdio
    command: ${JSON.stringify(process.execPath)}
    args: ${JSON.stringify([script, String(after)])}
${trust}`;
}

function gatewayConfig(servers: string, unlocked = 'pin-first-seen'): string {
  const integrity = `integrity:\n  signersFile: ${JSON.stringify(join(work.path, 'signers.yaml'))}\n  hashlockFile: ${JSON.stringify(join(work.path, 'tool_hashlock.json'))}\n  unlocked: ${unlocked}`;
  return configYaml(servers, integrity);
}

function events(gw: RunningGateway, type: string): AuditRecord[] {
  return [...readRecords(gw.bastion.audit.dir)].map((item) => item.record).filter((record) => record.kind === 'event' && record.event === type);
}

const toolNames = async (client: Client): Promise<string[]> => (await client.listTools()).tools.map((tool) => tool.name).sort();

async function waitFor(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`timed out waiting until ${what}`);
}

const signedBlock = (manifest: string): string => `    trust: signed\n    manifest: ${JSON.stringify(join(work.path, manifest))}\n`;

before(() => {
  // The publisher drafts a manifest from the honest server, reviews it, and signs it.
  const draft = gatewayConfig(rugpullServer('rugpull', RUGPULL, 1000, '    trust: unsigned\n'));
  writeFileSync(join(work.path, 'draft.yaml'), draft);
  mustRun('manifest', 'from-server', '--config', 'draft.yaml', '--server', 'rugpull', '--name', 'io.github.acme/rugpull', '--server-version', '1.0.0', '--publisher', 'Acme', '--out', 'rugpull.manifest.yaml');
  mustRun('keygen', '--out', 'acme');
  mustRun('sign', 'rugpull.manifest.yaml', '--key', 'acme.key');
  // The operator trusts the publisher for its namespace.
  const publicKey = (JSON.parse(readFileSync(join(work.path, 'acme.pub.json'), 'utf8')) as { publicKeyMultibase: string }).publicKeyMultibase;
  writeFileSync(join(work.path, 'signers.yaml'), `signers:\n  - publisher: Acme\n    namespaces: ["io.github.acme/*"]\n    keys:\n      - publicKeyMultibase: ${publicKey}\n`);
  mustRun('verify', 'rugpull.manifest.yaml', '--keyring', 'signers.yaml');
});

describe('a rug pull through the gateway', () => {
  let gw: RunningGateway;
  let client: Client;

  before(async () => {
    const yaml = gatewayConfig(rugpullServer('rugpull', RUGPULL, 3, signedBlock('rugpull.manifest.yaml')) + rugpullServer('steady', RUGPULL, 1000, '    trust: unsigned\n'));
    writeFileSync(join(work.path, 'bastion.yaml'), yaml);
    mustRun('lock', '--config', 'bastion.yaml');
    gw = await startGateway(yaml);
    client = await httpClient(gw.url);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
  });

  test('the signed, locked server is published whole at start', async () => {
    assert.deepEqual(await toolNames(client), ['rugpull.add', 'rugpull.echo', 'rugpull.get_weather', 'steady.add', 'steady.echo', 'steady.get_weather']);
    assert.match(firstText(await client.callTool({ name: 'rugpull.get_weather', arguments: { city: 'Oslo' } })), /Sunny in Oslo/);
  });

  test('after the description changes, the tool disappears, calls to it are denied, and the other tools still work', async () => {
    // Calls 2 and 3: the third makes the server rewrite get_weather and send list_changed.
    await client.callTool({ name: 'rugpull.add', arguments: { a: 1, b: 2 } });
    await client.callTool({ name: 'rugpull.echo', arguments: { message: 'three' } });
    await waitFor(async () => !(await toolNames(client)).includes('rugpull.get_weather'), 'the changed tool leaves tools/list');
    assert.deepEqual(await toolNames(client), ['rugpull.add', 'rugpull.echo', 'steady.add', 'steady.echo', 'steady.get_weather']);
    const denied = await client.callTool({ name: 'rugpull.get_weather', arguments: { city: 'Oslo' } }).then(
      () => undefined,
      (error: unknown) => error as { code?: number; message: string },
    );
    assert.ok(denied, 'a call to the quarantined tool was answered');
    assert.equal(denied.code, -32017);
    assert.match(denied.message, /not available: its definition changed since it was approved \(quarantine q-[0-9a-f]{16}\)/);
    assert.doesNotMatch(denied.message, /IMPORTANT|ssh|id_rsa/, 'the refusal quotes the injected text');
    assert.equal(firstText(await client.callTool({ name: 'rugpull.add', arguments: { a: 2, b: 2 } })), '4');
    assert.equal(firstText(await client.callTool({ name: 'steady.echo', arguments: { message: 'still here' } })), 'still here');
  });

  test('the audit log has the quarantine, naming the tool and what changed, and the denied call', async () => {
    await gw.bastion.audit.flush();
    const quarantines = events(gw, 'quarantine').filter((record) => record.info?.['server'] === 'rugpull');
    const items = quarantines.flatMap((record) => record.info?.['items'] as Array<{ name: string; reason: string; detail: string }>);
    assert.ok(items.some((item) => item.name === 'get_weather' && item.reason === 'changed' && /description/.test(item.detail)), JSON.stringify(items));
    const requests = [...readRecords(gw.bastion.audit.dir)].map((item) => item.record).filter((record) => record.kind === 'request' && record.tool === 'get_weather');
    assert.ok(requests.some((record) => record.decision === 'deny' && /quarantined/.test(record.reason ?? '')), 'no denied call in the audit log');
  });

  test('a new session still sees the tool quarantined, and bastion lock --check reports the change', async () => {
    const second = await httpClient(gw.url);
    try {
      // A fresh upstream starts honest; once it turns, the lock still refuses it.
      await second.callTool({ name: 'rugpull.add', arguments: { a: 1, b: 1 } });
      await second.callTool({ name: 'rugpull.add', arguments: { a: 1, b: 1 } });
      await second.callTool({ name: 'rugpull.add', arguments: { a: 1, b: 1 } });
      await waitFor(async () => !(await toolNames(second)).includes('rugpull.get_weather'), 'the second session drops the tool too');
    } finally {
      await second.close();
    }
  });
});

describe('a server that differs from its signed manifest at first start', () => {
  let gw: RunningGateway;
  let client: Client;

  before(async () => {
    // No lock entry: the signed manifest is what the live definitions are held to.
    gw = await startGateway(gatewayConfig(rugpullServer('poisoned', RUGPULL, 0, signedBlock('rugpull.manifest.yaml'))));
    client = await httpClient(gw.url);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
  });

  test('the differing tool is quarantined from the first list; the others are published', async () => {
    assert.deepEqual(await toolNames(client), ['poisoned.add', 'poisoned.echo']);
    const error = await client.callTool({ name: 'poisoned.get_weather', arguments: { city: 'x' } }).then(() => undefined, (e: unknown) => e as Error);
    assert.match(error?.message ?? '', /it differs from the signed manifest \(quarantine q-[0-9a-f]{16}\)/);
    assert.equal(firstText(await client.callTool({ name: 'poisoned.echo', arguments: { message: 'ok' } })), 'ok');
  });
});

describe('servers that may not start', () => {
  let gw: RunningGateway;
  let client: Client;
  const wrapper = join(work.path, 'wrapped-server.mjs');

  before(async () => {
    // Signed by a key the operator does not trust.
    mustRun('keygen', '--out', 'mallory');
    mustRun('sign', 'rugpull.manifest.yaml', '--key', 'mallory.key', '--out', 'mallory.manifest.yaml');
    // A server whose code is a file the lock pins (the artifact), changed later on disk.
    writeFileSync(wrapper, `import ${JSON.stringify(pathToFileURL(RUGPULL).href)};\n`);
    chmodSync(wrapper, 0o644);
    const servers =
      rugpullServer('nomanifest', RUGPULL, 1000, '    trust: signed\n') +
      rugpullServer('untrusted', RUGPULL, 1000, signedBlock('mallory.manifest.yaml')) +
      rugpullServer('unsigned', RUGPULL, 1000, '    trust: unsigned\n') +
      // A process per session, so that the second client below makes a new start (a pooled process, started from the verified code, would be reused).
      rugpullServer('pinned', wrapper, 1000, '    trust: unsigned\n    isolation: session\n');
    const yaml = gatewayConfig(servers);
    writeFileSync(join(work.path, 'refusals.yaml'), yaml);
    const lock = bastion('lock', '--config', 'refusals.yaml', '--lock', 'refusals-lock.json', '--update', 'pinned');
    assert.equal(lock.status, 0, lock.stderr);
    // From the config's own directory, where the lock's relative artifact path resolves.
    gw = await startGateway(yaml.replace(join(work.path, 'tool_hashlock.json'), join(work.path, 'refusals-lock.json')).replace('stateDir: state', 'stateDir: state-refusals'), work.path);
    client = await httpClient(gw.url);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
  });

  test('a signed server without a manifest and one signed by an untrusted key get no process and no tools', async () => {
    const names = await toolNames(client);
    assert.ok(!names.some((name) => name.startsWith('nomanifest.') || name.startsWith('untrusted.')), names.join(', '));
    assert.ok(names.includes('unsigned.echo') && names.includes('pinned.echo'), names.join(', '));
    await gw.bastion.audit.flush();
    const refused = events(gw, 'alert').filter((record) => record.info?.['alert'] === 'server_refused');
    const byServer = new Map(refused.map((record) => [record.info?.['server'], record.info?.['reason']]));
    assert.equal(byServer.get('nomanifest'), 'no-manifest');
    assert.equal(byServer.get('untrusted'), 'unknown-key');
  });

  test('trust: unsigned starts, and the start is an audited warning', async () => {
    await gw.bastion.audit.flush();
    const unsigned = events(gw, 'alert').filter((record) => record.info?.['alert'] === 'server_unsigned').map((record) => record.info?.['server']);
    assert.ok(unsigned.includes('unsigned') && unsigned.includes('pinned'));
  });

  test('code that changes on disk after boot does not run: the next start of the server is refused', async () => {
    appendFileSync(wrapper, '// changed after it was locked\n');
    const later = await httpClient(gw.url);
    try {
      const names = await toolNames(later);
      assert.ok(!names.some((name) => name.startsWith('pinned.')), names.join(', '));
      assert.ok(names.includes('unsigned.echo'));
    } finally {
      await later.close();
    }
    await gw.bastion.audit.flush();
    const refused = events(gw, 'alert').filter((record) => record.info?.['alert'] === 'server_refused' && record.info?.['server'] === 'pinned');
    assert.equal(refused[0]?.info?.['reason'], 'artifact-changed');
  });
});

describe("the scanner's boot check", () => {
  let gw: RunningGateway;
  let client: Client;

  before(async () => {
    const feed = join(work.path, 'feed.json');
    writeFileSync(feed, JSON.stringify({ version: 1, osv: [], blocks: [{ kind: 'package', ecosystem: 'npm', name: '@modelcontextprotocol/server-memory', reason: 'test: reported as malicious' }] }));
    const servers =
      stdioServer('memory', referenceServer('memory')) +
      stdioServer('everything', referenceServer('everything'), ['stdio'], '    minCertificationLevel: 1\n') +
      rugpullServer('plain', RUGPULL, 1000, '    trust: unsigned\n');
    const integrity = `integrity:\n  signersFile: ${JSON.stringify(join(work.path, 'signers.yaml'))}\n  hashlockFile: ${JSON.stringify(join(work.path, 'none.json'))}`;
    gw = await startGateway(configYaml(servers, `${integrity}\nscan:\n  feedPath: ${JSON.stringify(feed)}`));
    client = await httpClient(gw.url);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
  });

  test('a server whose npm package is on the threat feed, and one below its required certification level, do not start', async () => {
    const names = await toolNames(client);
    assert.ok(!names.some((name) => name.startsWith('memory.') || name.startsWith('everything.')), names.join(', '));
    assert.ok(names.includes('plain.echo'));
    await gw.bastion.audit.flush();
    const refused = new Map(events(gw, 'alert').filter((record) => record.info?.['alert'] === 'server_refused').map((record) => [record.info?.['server'], String(record.info?.['detail'])]));
    assert.match(refused.get('memory') ?? '', /threat feed match: package:@modelcontextprotocol\/server-memory@[\d.]+ .*reported as malicious/);
    assert.match(refused.get('everything') ?? '', /certification level 1 required but no certification/);
  });
});
