import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { serverUid } from '../../src/sandbox/index.js';
import { configYaml, firstText, fixture, httpClient, referenceServer, startGateway, stdioServer, tempDir, type RunningGateway } from '../helpers/gateway.js';

const root = process.getuid?.() === 0;

function parse(result: unknown): Record<string, unknown> {
  return JSON.parse(firstText(result)) as Record<string, unknown>;
}

describe('servers behind the gateway run in the bubblewrap sandbox by default', () => {
  const tmp = tempDir('bastion-sbx-gw-');
  const granted = join(tmp.path, 'granted');
  let gw: RunningGateway;
  let client: Client;

  before(async () => {
    chmodSync(tmp.path, 0o755);
    mkdirSync(granted);
    writeFileSync(join(granted, 'hello.txt'), 'hello from a granted directory\n');
    mkdirSync(join(tmp.path, 'memory'));
    if (root) chownSync(join(tmp.path, 'memory'), serverUid('memory'), serverUid('memory'));
    writeFileSync(join(tmp.path, 'gateway-secret.txt'), 'the gateway\'s own secret\n', { mode: 0o644 });
    const servers =
      stdioServer('everything', referenceServer('everything'), ['stdio']) +
      stdioServer('filesystem', referenceServer('filesystem'), [granted], `    scopes: [${JSON.stringify(`read:filesystem:${granted}`)}]\n`) +
      stdioServer('memory', referenceServer('memory'), [], `    env: { MEMORY_FILE_PATH: ${JSON.stringify(join(tmp.path, 'memory', 'm.jsonl'))} }\n    scopes: [${JSON.stringify(`write:filesystem:${join(tmp.path, 'memory')}`)}]\n`) +
      stdioServer('hostile', fixture('hostile-server'));
    gw = await startGateway(configYaml(servers, 'sandbox: { backend: bwrap }'));
    client = await httpClient(gw.url);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
    tmp.cleanup();
  });

  test('the MCP reference servers work unchanged inside the sandbox, through the gateway', async () => {
    assert.equal(firstText(await client.callTool({ name: 'everything.echo', arguments: { message: 'sandboxed' } })), 'Echo: sandboxed');
    assert.match(firstText(await client.callTool({ name: 'filesystem.read_text_file', arguments: { path: join(granted, 'hello.txt') } })), /granted directory/);
    await client.callTool({ name: 'memory.create_entities', arguments: { entities: [{ name: 'sandbox', entityType: 'test', observations: ['works'] }] } });
    assert.match(JSON.stringify(await client.callTool({ name: 'memory.read_graph', arguments: {} })), /works/);
    assert.match(readFileSync(join(tmp.path, 'memory', 'm.jsonl'), 'utf8'), /sandbox/);
  });

  test('a hostile server runs as an unprivileged uid with no capabilities, under seccomp', async () => {
    const identity = parse(await client.callTool({ name: 'hostile.whoami', arguments: {} }));
    assert.notEqual(identity['uid'], 0);
    assert.equal(identity['capEff'], '0000000000000000');
    assert.equal(identity['noNewPrivs'], '1');
    assert.equal(identity['seccomp'], '2');
  });

  test('a hostile server cannot read what it was not given, even with policy off', async () => {
    for (const path of ['/etc/shadow', join(tmp.path, 'gateway-secret.txt'), join(gw.dir.path, 'bastion.yaml')]) {
      const outcome = parse(await client.callTool({ name: 'hostile.read_file', arguments: { path } }));
      assert.equal(outcome['ok'], false, `read ${path}: ${JSON.stringify(outcome)}`);
    }
  });

  test('a hostile server cannot reach the network it was not granted', async () => {
    const url = new URL(gw.url);
    const outcome = parse(await client.callTool({ name: 'hostile.tcp_connect', arguments: { host: '127.0.0.1', port: Number(url.port) } }));
    assert.equal(outcome['ok'], false, JSON.stringify(outcome));
  });

  test('calls into sandboxed servers are audited and the gateway stays up after the attacks', async () => {
    await gw.bastion.audit.flush();
    const segments = join(gw.bastion.audit.dir, 'segments');
    const text = readdirSync(segments).map((file) => readFileSync(join(segments, file), 'utf8')).join('');
    assert.match(text, /"method":"tools\/call"/);
    assert.equal(firstText(await client.callTool({ name: 'everything.echo', arguments: { message: 'still up' } })), 'Echo: still up');
  });
});

describe('every session gets its own copy of a server, however many share its uid', () => {
  let gw: RunningGateway;
  const clients: Client[] = [];

  before(async () => {
    // A small per-copy pids limit: RLIMIT_NPROC counts every copy under the server's one uid
    // together, so a backstop of pids + a margin would refuse the fourth or fifth copy.
    gw = await startGateway(configYaml(stdioServer('counted', fixture('limits-server'), [], '    sandbox: { limits: { pids: 24 } }\n'), 'sandbox: { backend: bwrap }'));
  });

  after(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await gw?.stop();
  });

  test('eight concurrent sessions each start the server and call it', async () => {
    for (let index = 0; index < 8; index += 1) clients.push(await httpClient(gw.url));
    const answers = await Promise.all(clients.map((client, index) => client.callTool({ name: 'counted.echo', arguments: { text: `s${index}` } })));
    assert.deepEqual(
      answers.map((answer) => answer.isError === true),
      Array.from({ length: 8 }, () => false),
      JSON.stringify(answers.filter((answer) => answer.isError === true).slice(0, 1)),
    );
  });
});
