import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { silentLogger } from '../../src/observability/index.js';
import { CallCancellation, CallContext, compose, success, type Guard, type Outcome } from '../../src/pipeline/index.js';
import { createPolicyGuard, PathLocks, PolicyStore } from '../../src/policy/index.js';
import { tempDir } from './helpers.js';

const FIXTURES = join(process.cwd(), 'test', 'policy', 'fixtures');
const SERVER = join(process.cwd(), 'node_modules', '@modelcontextprotocol', 'server-filesystem', 'dist', 'index.js');

/**
 * The check-then-use race: an agent with write access renames a directory that holds an
 * escaping symlink onto a path another call has just had checked, then the checked call reads
 * through it. The interleaving is forced, not hoped for: the read is held between its policy
 * check and its dispatch until the rename has either finished or is seen waiting. The real
 * filesystem server (allowed the whole temp directory) does the reading and the renaming.
 */
describe('a rename between check and use cannot redirect a checked path', () => {
  const tmp = tempDir('bastion-policy-race-');
  let client: Client;
  let store: PolicyStore;
  let granted = '';
  let nextId = 1;

  before(async () => {
    granted = join(tmp.dir, 'allowed');
    mkdirSync(join(granted, 'out', 'staging'), { recursive: true });
    mkdirSync(join(tmp.dir, 'secret'));
    writeFileSync(join(tmp.dir, 'secret', 'key.txt'), 'SECRET-KEY');
    symlinkSync(join(tmp.dir, 'secret'), join(granted, 'out', 'staging', 'link'));
    const text = readFileSync(join(FIXTURES, 'filesystem.policy.yaml'), 'utf8').replaceAll('/tmp/bastion-policy-e2e', tmp.dir);
    store = PolicyStore.open({ policyFiles: [tmp.write('policy.yaml', text)], manifestFiles: [join(FIXTURES, 'filesystem.manifest.yaml')], logger: silentLogger() });
    client = new Client({ name: 'bastion-race-test', version: '1.0.0' });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [SERVER, tmp.dir], stderr: 'ignore' }));
  });

  after(async () => {
    await client.close();
    tmp.cleanup();
  });

  function context(tool: string, args: Record<string, unknown>): CallContext {
    const ctx = new CallContext({
      requestId: nextId++,
      method: 'tools/call',
      params: { name: `filesystem.${tool}`, arguments: args },
      session: { sessionId: 'race', transport: 'stdio', protocolVersion: '2025-06-18' },
      identity: { agentId: 'writer', tokenFingerprint: 'sha256:test', method: 'api-token' },
      requestBytes: 100,
      limits: { timeoutMs: 30_000, maxOutputBytes: 1 << 20, maxRequestBytes: 1 << 20 },
      signal: new CallCancellation(),
    });
    ctx.target = { server: 'filesystem', name: tool };
    return ctx;
  }

  async function dispatch(ctx: CallContext): Promise<Outcome> {
    const result = await client.callTool({ name: ctx.target?.name ?? '', arguments: ctx.params?.['arguments'] as Record<string, unknown> });
    return success(result);
  }

  test('the agent moves a directory with an escaping symlink onto a checked path, then reads through it: no secret', async () => {
    let sawWait: () => void = () => undefined;
    const moveWaits = new Promise<void>((resolve) => (sawWait = resolve));
    const policy = createPolicyGuard(store, { onPathWait: () => sawWait() });
    let move: Promise<Outcome> | undefined;
    // Between the read's check and its dispatch, the same agent renames staging/ onto checked/.
    const interleave: Guard = {
      name: 'interleave',
      async handle(ctx, next) {
        if (ctx.target?.name === 'read_text_file' && move === undefined) {
          move = Promise.resolve(run(context('move_file', { source: join(granted, 'out', 'staging'), destination: join(granted, 'out', 'checked') })));
          await Promise.race([move, moveWaits]);
        }
        return next(ctx);
      },
    };
    const run = compose([policy, interleave], dispatch);
    const read = await run(context('read_text_file', { path: join(granted, 'out', 'checked', 'link', 'key.txt') }));
    assert.ok(read.ok, 'the read was allowed: at its check, checked/ did not exist');
    assert.doesNotMatch(JSON.stringify(read.result), /SECRET-KEY/);
    const moved = await (move as Promise<Outcome>);
    assert.ok(moved.ok);
    assert.equal(readFileSync(join(granted, 'out', 'checked', 'link', 'key.txt'), 'utf8'), 'SECRET-KEY');
    // Now that the link is there, the same read is denied at its check.
    const again = await run(context('read_text_file', { path: join(granted, 'out', 'checked', 'link', 'key.txt') }));
    assert.equal(again.ok, false);
  });

  test('a rename made outside the gateway while the call runs: the answer that came through the link is withheld', async () => {
    mkdirSync(join(granted, 'out', 'staging-2'));
    symlinkSync(join(tmp.dir, 'secret'), join(granted, 'out', 'staging-2', 'link'));
    const outside: Guard = {
      name: 'outside-rename',
      async handle(ctx, next) {
        // Another process on the host, not a call through this gateway: no lock can see it.
        renameSync(join(granted, 'out', 'staging-2'), join(granted, 'out', 'checked-2'));
        return next(ctx);
      },
    };
    const run = compose([createPolicyGuard(store), outside], dispatch);
    const read = await run(context('read_text_file', { path: join(granted, 'out', 'checked-2', 'link', 'key.txt') }));
    assert.equal(read.ok, false);
    assert.doesNotMatch(JSON.stringify(read), /SECRET-KEY/);
    assert.match(JSON.stringify(read), /a path changed while the call ran/);
  });
});

describe('path locks', () => {
  const touch = (path: string, write: boolean) => ({ path, write });

  test('readers share, a writer excludes overlapping paths, disjoint paths do not wait', async () => {
    const locks = new PathLocks();
    const reader = await locks.acquire([touch('/srv/a/b', false)]);
    const secondReader = await locks.acquire([touch('/srv/a', false)]);
    const disjointWriter = await locks.acquire([touch('/srv/c', true)]);
    let writerIn = false;
    const writer = locks.acquire([touch('/srv/a', true)]).then((release) => {
      writerIn = true;
      return release;
    });
    assert.equal(locks.waitingCount, 1);
    reader();
    await Promise.resolve();
    assert.equal(writerIn, false);
    secondReader();
    (await writer)();
    assert.equal(writerIn, true);
    disjointWriter();
    assert.equal(locks.waitingCount, 0);
  });

  test('a waiting writer is not starved by later readers, and a cancelled waiter leaves the queue', async () => {
    const locks = new PathLocks();
    const first = await locks.acquire([touch('/srv/a', false)]);
    const order: string[] = [];
    const writer = locks.acquire([touch('/srv/a', true)]).then((release) => (order.push('writer'), release));
    const laterReader = locks.acquire([touch('/srv/a/x', false)]).then((release) => (order.push('reader'), release));
    const cancellation = new CallCancellation();
    const cancelled = locks.acquire([touch('/srv/a', true)], cancellation).catch((error: Error) => error.message);
    cancellation.abort();
    assert.match(String(await cancelled), /cancelled/);
    first();
    (await writer)();
    (await laterReader)();
    assert.deepEqual(order, ['writer', 'reader']);
    assert.equal(locks.waitingCount, 0);
  });
});
