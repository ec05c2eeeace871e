// Config reload, continued (reload.test.ts has the server table under live sessions): what
// triggers a reload (a write of the config file, SIGHUP to a gateway started through the CLI),
// reloads under least privilege (declarations, logging grants, a refused policy input), and a
// server whose processes are per session.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { BASTION_BIN, TEST_TOKEN, configYaml, firstText, httpClient, startGateway, tempDir, type RunningGateway } from '../helpers/gateway.js';
import { RELOAD, reloadRecords, server, toolNames, until } from './reload-helpers.js';

describe('config reload: the file watch', () => {
  let gw: RunningGateway;
  let client: Client;

  before(async () => {
    gw = await startGateway(configYaml(server('mem', 'memory'), 'reload: { debounceMs: 50 }'));
    client = await httpClient(gw.url, TEST_TOKEN);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
  });

  it('writing the config file reloads it after the debounce', async () => {
    writeFileSync(join(gw.dir.path, 'bastion.yaml'), configYaml(server('mem', 'memory') + server('ev', 'everything'), 'reload: { debounceMs: 50 }'));
    await until(async () => (await toolNames(client)).includes('ev.echo'), 'the added server to be listed');
    const record = reloadRecords(gw).find((entry) => entry.info?.['why'] === 'file changed');
    assert.equal(record?.info?.['status'], 'applied');
  });
});

describe('config reload: SIGHUP to a gateway started through the CLI', () => {
  const dir = tempDir('bastion-reload-cli-');
  const path = join(dir.path, 'bastion.yaml');
  after(() => dir.cleanup());

  it('SIGHUP adds the server written to the file; the session stays open', async () => {
    writeFileSync(path, configYaml(server('mem', 'memory'), 'reload: { watch: false }'));
    const child = spawn(process.execPath, [BASTION_BIN, 'serve', '--config', path], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, BASTION_LOG_LEVEL: 'info' } });
    const lines: string[] = [];
    const url = await new Promise<string>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`the gateway exited (${code}): ${lines.join('\n')}`)));
      createInterface({ input: child.stderr }).on('line', (line) => {
        lines.push(line);
        const match = /"url":"([^"]+)"/.exec(line);
        if (match?.[1] !== undefined && line.includes('gateway listening')) resolve(match[1]);
      });
    });
    const client = await httpClient(url, TEST_TOKEN);
    try {
      assert.ok(!(await toolNames(client)).includes('ev.echo'));
      writeFileSync(path, configYaml(server('mem', 'memory') + server('ev', 'everything'), 'reload: { watch: false }'));
      child.kill('SIGHUP');
      await until(async () => (await toolNames(client)).includes('ev.echo'), 'the server added by SIGHUP');
      assert.equal(firstText(await client.callTool({ name: 'ev.echo', arguments: { message: 'hup' } })), 'Echo: hup');
      assert.ok(lines.some((line) => line.includes('config reloaded')));
    } finally {
      await client.close();
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  });
});

describe('config reload under least privilege', () => {
  const dir = tempDir('bastion-reload-policy-');
  let gw: RunningGateway;
  let client: Client;
  const policyFile = join(dir.path, 'policy.yaml');
  const withPolicy = (servers: string): string => configYaml(servers, `${RELOAD}\npolicy:\n  files: [${JSON.stringify(policyFile)}]\n`);

  before(async () => {
    writeFileSync(policyFile, 'version: 1\nagents:\n  alice:\n    grants: ["exec:tools:[mem.read_graph, extra.echo]", "exec:logging:mem"]\n');
    gw = await startGateway(withPolicy(server('mem', 'memory', '    tools:\n      read_graph: { scopes: [] }\n')));
    client = await httpClient(gw.url, TEST_TOKEN);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
    dir.cleanup();
  });

  it("an added server's inline declarations reach the policy: its granted tool is listed and callable, the rest stay hidden", async () => {
    assert.deepEqual(await toolNames(client), ['mem.read_graph']);
    await client.setLoggingLevel('info');
    writeFileSync(join(gw.dir.path, 'bastion.yaml'), withPolicy(server('mem', 'memory', '    tools:\n      read_graph: { scopes: [] }\n') + server('extra', 'everything', '    tools:\n      echo: { scopes: [] }\n      get-env: { scopes: [] }\n')));
    const outcome = await gw.bastion.reload('test: add under policy');
    assert.equal(outcome.status, 'applied');
    assert.deepEqual((await toolNames(client)).sort(), ['extra.echo', 'mem.read_graph'], 'get-env is declared but not granted');
    assert.equal(firstText(await client.callTool({ name: 'extra.echo', arguments: { message: 'p' } })), 'Echo: p');
  });

  it('logging/setLevel, which reaches every server, needs a grant for the added one too', async () => {
    const denied = await client.setLoggingLevel('info').then(() => undefined, (error: Error) => error);
    assert.ok(denied instanceof Error && /exec:logging:extra/.test(denied.message), String(denied));
  });

  it("a manifest named by a server the reload added is watched: editing it changes the policy's declarations", async () => {
    const manifest = join(dir.path, 'third.manifest.yaml');
    writeFileSync(manifest, 'name: third\ntools:\n  - name: get-sum\n');
    writeFileSync(policyFile, 'version: 1\nagents:\n  alice:\n    grants: ["exec:tools:[mem.read_graph, extra.echo, third.get-sum]", "exec:logging:[mem, extra, third]"]\n');
    const base = server('mem', 'memory', '    tools:\n      read_graph: { scopes: [] }\n') + server('extra', 'everything', '    tools:\n      echo: { scopes: [] }\n      get-env: { scopes: [] }\n');
    writeFileSync(join(gw.dir.path, 'bastion.yaml'), withPolicy(base + server('third', 'everything', `    manifest: ${JSON.stringify(manifest)}\n`)));
    const outcome = await gw.bastion.reload('test: manifest');
    assert.equal(outcome.status, 'applied', JSON.stringify(outcome));
    await until(async () => !(await toolNames(client)).includes('third.get-sum'), 'get-sum to be undeclared (no scopes field)');
    writeFileSync(manifest, 'name: third\ntools:\n  - name: get-sum\n    scopes: []\n');
    await until(async () => (await toolNames(client)).includes('third.get-sum'), 'the manifest edit to declare get-sum');
    // Back to the servers of the next test.
    writeFileSync(join(gw.dir.path, 'bastion.yaml'), withPolicy(base));
    assert.equal((await gw.bastion.reload('test: manifest done')).status, 'applied');
  });

  it('a new server whose manifest cannot be read is refused with the policy problem; nothing changes', async () => {
    const missing = join(dir.path, 'missing.manifest.yaml');
    writeFileSync(join(gw.dir.path, 'bastion.yaml'), withPolicy(server('mem', 'memory', '    tools:\n      read_graph: { scopes: [] }\n') + server('extra', 'everything', '    tools:\n      echo: { scopes: [] }\n      get-env: { scopes: [] }\n') + server('third', 'everything', `    manifest: ${JSON.stringify(missing)}\n`)));
    const outcome = await gw.bastion.reload('test: bad manifest');
    assert.equal(outcome.status, 'refused');
    assert.ok(outcome.status === 'refused' && outcome.problems.some((problem) => problem.includes('missing.manifest.yaml')), JSON.stringify(outcome));
    assert.ok(!Object.hasOwn(gw.gateway.runtime.config.servers, 'third'));
    assert.equal(firstText(await client.callTool({ name: 'extra.echo', arguments: { message: 'q' } })), 'Echo: q');
  });
});

describe('config reload: a server with a process per session (isolation: session)', () => {
  let gw: RunningGateway;
  let client: Client;
  const solo = server('solo', 'everything', '    isolation: session\n');

  before(async () => {
    gw = await startGateway(configYaml(server('mem', 'memory') + solo, RELOAD));
    client = await httpClient(gw.url, TEST_TOKEN);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
  });

  it("removed: the session's own process finishes the call in flight, then stops; the session stays", async () => {
    const inFlight = client.callTool({ name: 'solo.trigger-long-running-operation', arguments: { duration: 2, steps: 2 } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    writeFileSync(join(gw.dir.path, 'bastion.yaml'), configYaml(server('mem', 'memory'), RELOAD));
    const reloaded = gw.bastion.reload('test: remove solo');
    assert.match(firstText(await inFlight), /completed/i);
    const outcome = await reloaded;
    assert.deepEqual(outcome.status === 'applied' ? outcome.cancelledCalls : {}, { solo: 0 });
    assert.deepEqual(await toolNames(client).then((names) => names.filter((name) => name.startsWith('solo.'))), []);
    await client.callTool({ name: 'mem.read_graph', arguments: {} });
    assert.equal(gw.gateway.http?.sessionCount, 1);
  });
});

describe('config reload: limits and quota rules apply live', () => {
  let gw: RunningGateway;
  let client: Client;
  const withQuotas = (points: number, timeoutMs: number): string => configYaml(server('mem', 'memory'), `${RELOAD}\nlimits: { timeoutMs: ${timeoutMs} }\nquotas:\n  rates: [{ name: per-agent, scope: agent, points: ${points}, durationMs: 600000 }]`);

  before(async () => {
    gw = await startGateway(withQuotas(1000, 30000));
    client = await httpClient(gw.url, TEST_TOKEN);
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
  });

  it('a lowered rate limit and a new timeout reach the open session from its next call', async () => {
    await client.callTool({ name: 'mem.read_graph', arguments: {} });
    writeFileSync(join(gw.dir.path, 'bastion.yaml'), withQuotas(2, 20000));
    const outcome = await gw.bastion.reload('test: quotas');
    assert.ok(outcome.status === 'applied' && outcome.diff.live.includes('quotas.rates') && outcome.diff.live.includes('limits'), JSON.stringify(outcome));
    assert.equal(gw.gateway.runtime.config.limits.timeoutMs, 20000);
    // Under the new rule (2 calls per 10 minutes per agent) the third call after the reload is refused.
    await client.callTool({ name: 'mem.read_graph', arguments: {} });
    await client.callTool({ name: 'mem.read_graph', arguments: {} });
    const limited = await client.callTool({ name: 'mem.read_graph', arguments: {} }).then((value) => value, (error: Error) => error);
    assert.ok(limited instanceof Error && /rate limit 'per-agent' exceeded/.test(limited.message), String(limited));
  });
});
