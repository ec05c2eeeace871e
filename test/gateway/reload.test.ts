// Config reload (issue 22 item 6) with the MCP reference servers from npm and the SDK client:
// servers added, removed and changed under running sessions, while a session that uses only an
// unaffected server keeps calling in a loop and never sees an error. An invalid config is refused
// and the old one keeps serving; sections that cannot change live are named restart_required.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { BASTION_BIN, OTHER_TOKEN, TEST_TOKEN, configYaml, firstText, httpClient, referenceServer, startGateway, tempDir, type RunningGateway } from '../helpers/gateway.js';
import type { PooledProcess } from '../../src/gateway/pool/process.js';
import { auditRecords, type LoggedRecord } from '../helpers/audit.js';

function server(name: string, which: 'everything' | 'memory', extra = ''): string {
  return `  ${name}:
    transport: stdio
    command: ${JSON.stringify(process.execPath)}
    args: ${JSON.stringify([referenceServer(which)])}
    trust: unsigned
${extra}`;
}

const RELOAD = 'reload: { watch: false, drainSeconds: 30 }';
/** The everything server with an env mark, a rename, an override, and an entry for a tool it does not list. */
const CURATED = '    env: { RELOAD_MARK: second }\n    tools:\n      echo: { rename: say, description: Repeats the message. }\n      no-such-tool: { hidden: true }';

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function toolNames(client: Client): Promise<string[]> {
  return (await client.listTools()).tools.map((tool) => tool.name);
}

/** Calls the memory server in a loop until stopped; counts calls and keeps every error. */
function keepCalling(client: Client): { stop(): Promise<{ calls: number; errors: string[] }> } {
  let running = true;
  let calls = 0;
  const errors: string[] = [];
  const loop = (async () => {
    while (running) {
      try {
        const result = await client.callTool({ name: 'mem.read_graph', arguments: {} });
        if (result.isError === true) errors.push(firstText(result));
        calls += 1;
        // A short pause: the loop stands for a busy client, not a flood.
        await new Promise((resolve) => setTimeout(resolve, 20));
      } catch (error) {
        errors.push(error instanceof Error ? error.message : String(error));
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { calls, errors };
    },
  };
}

/** The pooled process of `server` that serves bob (the watching session's agent). */
function bobs(gw: RunningGateway, server: string): PooledProcess | undefined {
  return gw.gateway.pools.list(server).find((process) => process.facts.agentId === 'bob');
}

function reloadRecords(gw: RunningGateway, event = 'config.reload'): LoggedRecord[] {
  return auditRecords(gw.bastion.audit.dir).filter((record) => record.event === event);
}

describe('config reload: servers added, removed and changed under live sessions', () => {
  let gw: RunningGateway;
  let looping: Client;
  let watcher: Client;
  let path: string;
  let listChanged = 0;
  const yaml = (servers: string, extra = RELOAD): string => configYaml(servers, extra);

  before(async () => {
    gw = await startGateway(yaml(server('mem', 'memory') + server('ev', 'everything')));
    path = join(gw.dir.path, 'bastion.yaml');
    looping = await httpClient(gw.url, TEST_TOKEN);
    watcher = await httpClient(gw.url, OTHER_TOKEN);
    watcher.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      listChanged += 1;
    });
    assert.ok((await toolNames(watcher)).includes('ev.echo'));
  });

  after(async () => {
    await Promise.all([looping?.close(), watcher?.close()]);
    await gw?.stop();
  });

  it('adds a server: existing sessions see its tools and hear list_changed; the looping session has no error', async () => {
    const loop = keepCalling(looping);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const heard = listChanged;
    writeFileSync(path, yaml(server('mem', 'memory') + server('ev', 'everything') + server('extra', 'everything')));
    const outcome = await gw.bastion.reload('test: add');
    assert.equal(outcome.status, 'applied');
    assert.deepEqual(outcome.status === 'applied' ? outcome.gateway.added : [], ['extra']);
    await until(() => listChanged > heard, 'tools/list_changed');
    assert.ok((await toolNames(watcher)).includes('extra.echo'), 'the new server\'s tools are listed in an existing session');
    assert.equal(firstText(await watcher.callTool({ name: 'extra.echo', arguments: { message: 'hi' } })), 'Echo: hi');
    const fresh = await httpClient(gw.url, TEST_TOKEN);
    assert.ok((await toolNames(fresh)).includes('extra.echo'), 'and in a new session');
    await fresh.close();
    const { calls, errors } = await loop.stop();
    assert.deepEqual(errors, []);
    assert.ok(calls > 0);
    const applied = reloadRecords(gw).find((record) => record.info?.['why'] === 'test: add');
    assert.equal(applied?.info?.['status'], 'applied');
    assert.deepEqual(applied?.info?.['servers_added'], ['extra']);
    assert.ok(reloadRecords(gw, 'server.reload').some((record) => record.info?.['server'] === 'extra' && record.info['action'] === 'start'));
  });

  it('removes a server: a call in flight finishes, its tools disappear, its process stops; the looping session has no error', async () => {
    const loop = keepCalling(looping);
    await watcher.callTool({ name: 'extra.echo', arguments: { message: 'warm' } });
    const pid = bobs(gw, 'extra')?.pid;
    assert.ok(pid !== undefined);
    const inFlight = watcher.callTool({ name: 'extra.trigger-long-running-operation', arguments: { duration: 2, steps: 2 } });
    await until(() => (bobs(gw, 'extra')?.inFlight ?? 0) > 0, 'the call to reach the server');
    writeFileSync(path, yaml(server('mem', 'memory') + server('ev', 'everything')));
    const reloaded = gw.bastion.reload('test: remove');
    const result = await inFlight;
    assert.match(firstText(result), /completed/i, 'the call in flight finished normally');
    const outcome = await reloaded;
    assert.equal(outcome.status, 'applied');
    assert.deepEqual(outcome.status === 'applied' ? outcome.cancelledCalls : {}, { extra: 0 });
    assert.ok(!(await toolNames(watcher)).some((name) => name.startsWith('extra.')), 'its tools are gone');
    const refused = await watcher.callTool({ name: 'extra.echo', arguments: { message: 'x' } }).then((value) => value, (error: Error) => error);
    assert.ok(refused instanceof Error && /unknown tool/.test(refused.message), 'a call to it is an unknown tool');
    assert.equal(gw.gateway.pools.list('extra').length, 0, 'the pool forgot it');
    assert.throws(() => globalThis.process.kill(pid, 0), /ESRCH/, 'its process stopped');
    const { errors } = await loop.stop();
    assert.deepEqual(errors, []);
    const actions = (): unknown[] => reloadRecords(gw, 'server.reload').filter((record) => record.info?.['server'] === 'extra').map((record) => record.info?.['action']);
    await until(() => actions().length >= 3, 'the drain and stop records');
    assert.deepEqual(actions(), ['start', 'drain', 'stop']);
  });

  it('a call still running at reload.drainSeconds is cancelled (its client gets an error) and counted', async () => {
    writeFileSync(path, yaml(server('mem', 'memory') + server('ev', 'everything') + server('extra', 'everything')));
    assert.equal((await gw.bastion.reload('test: re-add')).status, 'applied');
    await until(async () => (await toolNames(watcher)).includes('extra.echo'), 'extra to be listed');
    const inFlight = watcher.callTool({ name: 'extra.trigger-long-running-operation', arguments: { duration: 20, steps: 2 } }).then((value) => value, (error: Error) => error);
    await until(() => (bobs(gw, 'extra')?.inFlight ?? 0) > 0, 'the call to reach the server');
    writeFileSync(path, yaml(server('mem', 'memory') + server('ev', 'everything'), 'reload: { watch: false, drainSeconds: 0 }'));
    const outcome = await gw.bastion.reload('test: remove now');
    assert.deepEqual(outcome.status === 'applied' ? outcome.cancelledCalls : {}, { extra: 1 });
    const ended = await inFlight;
    const failed = ended instanceof Error || (ended as { isError?: boolean }).isError === true;
    assert.ok(failed, 'the cut-off call ended with an error, not a result');
    // Event records are written without waiting; the stop record lands shortly after.
    await until(() => reloadRecords(gw, 'server.reload').some((record) => record.info?.['server'] === 'extra' && record.info['action'] === 'stop' && record.info['cancelled_calls'] === 1), 'the stop record with the cancelled call');
  });

  it('changes a server: it is restarted with the new definition; an unchanged server keeps its process', async () => {
    writeFileSync(path, yaml(server('mem', 'memory') + server('ev', 'everything')));
    await gw.bastion.reload('test: reset');
    await watcher.callTool({ name: 'ev.echo', arguments: { message: 'warm' } });
    await looping.callTool({ name: 'mem.read_graph', arguments: {} });
    const evPid = gw.gateway.pools.list('ev')[0]?.pid;
    const memPid = gw.gateway.pools.list('mem').find((process) => process.facts.agentId === 'alice')?.pid;
    const loop = keepCalling(looping);
    writeFileSync(path, yaml(server('mem', 'memory') + server('ev', 'everything', '    env: { RELOAD_MARK: second }')));
    const outcome = await gw.bastion.reload('test: change');
    assert.deepEqual(outcome.status === 'applied' ? outcome.gateway.changed : [], ['ev']);
    assert.match(firstText(await watcher.callTool({ name: 'ev.get-env', arguments: {} })), /RELOAD_MARK.{0,6}second/);
    assert.notEqual(gw.gateway.pools.list('ev').find((process) => process.facts.agentId === 'bob')?.pid, evPid, 'a new process');
    const { errors } = await loop.stop();
    assert.deepEqual(errors, []);
    assert.equal(gw.gateway.pools.list('mem').find((process) => process.facts.agentId === 'alice')?.pid, memPid, 'the unchanged server was not restarted');
  });

  it('curation of a server is applied without restarting it', async () => {
    const evPid = gw.gateway.pools.list('ev').find((process) => process.facts.agentId === 'bob')?.pid;
    writeFileSync(path, yaml(server('mem', 'memory') + server('ev', 'everything', CURATED)));
    const outcome = await gw.bastion.reload('test: curate');
    assert.deepEqual(outcome.status === 'applied' ? outcome.gateway.curated : [], ['ev']);
    const tools = (await watcher.listTools()).tools;
    assert.equal(tools.find((tool) => tool.name === 'ev.say')?.description, 'Repeats the message.');
    assert.ok(!tools.some((tool) => tool.name === 'ev.echo'));
    assert.equal(firstText(await watcher.callTool({ name: 'ev.say', arguments: { message: 'x' } })), 'Echo: x');
    assert.equal(gw.gateway.pools.list('ev').find((process) => process.facts.agentId === 'bob')?.pid, evPid, 'no restart');
    // An entry for a tool the server does not list changes nothing a client sees; it is audited, not only logged.
    await until(() => reloadRecords(gw, 'curation.unknown_tool').some((record) => record.info?.['server'] === 'ev' && record.info['tool'] === 'no-such-tool'), 'the curation.unknown_tool record');
  });

  it('an invalid config is refused with its problems (logged and audited); the running one keeps serving', async () => {
    writeFileSync(path, yaml(server('mem', 'memory') + server('ev', 'everything') + '  broken:\n    transport: stdoi\n'));
    const outcome = await gw.bastion.reload('test: invalid');
    assert.equal(outcome.status, 'refused');
    const problems = outcome.status === 'refused' ? outcome.problems : [];
    assert.ok(problems.some((problem) => /bastion\.yaml:\d+:\d+: servers\.broken\.transport/.test(problem)), problems.join('\n'));
    const record = reloadRecords(gw).find((entry) => entry.info?.['why'] === 'test: invalid');
    assert.equal(record?.info?.['status'], 'refused');
    assert.ok(Array.isArray(record?.info?.['problems']) && (record.info['problems'] as unknown[]).length > 0);
    assert.equal(firstText(await watcher.callTool({ name: 'ev.say', arguments: { message: 'still' } })), 'Echo: still');
    assert.ok(!Object.hasOwn(gw.gateway.runtime.config.servers, 'broken'));
  });

  it('a section that cannot change live is kept and listed as restart_required', async () => {
    const before = gw.gateway.runtime.config.upstream.startTimeoutMs;
    writeFileSync(path, yaml(server('mem', 'memory') + server('ev', 'everything', CURATED), `${RELOAD}\nupstream: { startTimeoutMs: 12345 }`));
    const outcome = await gw.bastion.reload('test: restart required');
    assert.equal(outcome.status, 'applied');
    assert.deepEqual(outcome.status === 'applied' ? outcome.diff.restartRequired : [], ['upstream']);
    assert.equal(gw.gateway.runtime.config.upstream.startTimeoutMs, before, 'the running value stays');
    const record = reloadRecords(gw).find((entry) => entry.info?.['why'] === 'test: restart required');
    assert.deepEqual(record?.info?.['restart_required'], ['upstream']);
  });

  it('auth.apiTokens apply live: a removed token is refused from its next request, the others keep working', async () => {
    const onlyAlice = configYaml(server('mem', 'memory') + server('ev', 'everything', CURATED), `${RELOAD}\nupstream: { startTimeoutMs: 12345 }`).replace(/ {4}- \{ agent: bob.*\n/, '');
    writeFileSync(path, onlyAlice);
    const outcome = await gw.bastion.reload('test: tokens');
    assert.ok(outcome.status === 'applied' && outcome.diff.live.includes('auth.apiTokens'));
    const refused = await watcher.callTool({ name: 'ev.say', arguments: { message: 'x' } }).then((value) => value, (error: Error) => error);
    assert.ok(refused instanceof Error, 'bob is no longer let in');
    await looping.callTool({ name: 'mem.read_graph', arguments: {} });
  });
});

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
