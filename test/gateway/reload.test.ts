// Config reload (issue 22 item 6) with the MCP reference servers from npm and the SDK client:
// servers added, removed and changed under running sessions, while a session that uses only an
// unaffected server keeps calling in a loop and never sees an error. An invalid config is refused
// and the old one keeps serving; sections that cannot change live are named restart_required.
// The triggers (file watch, SIGHUP to the CLI), least privilege and per-session processes are in
// reload-triggers.test.ts.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { OTHER_TOKEN, TEST_TOKEN, configYaml, firstText, httpClient, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { CURATED, RELOAD, bobs, keepCalling, reloadRecords, server, toolNames, until } from './reload-helpers.js';

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

