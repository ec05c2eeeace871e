// Several sessions of one agent over one pooled upstream process (isolation: agent, the
// default): calls, progress, cancellation, sampling and subscriptions interleave with no
// cross-talk, and the upstream never sees a client's own ids or progress tokens.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ResourceUpdatedNotificationSchema, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { poolsFor } from '../../../src/gateway/pool/registry.js';
import { OTHER_TOKEN, TEST_TOKEN, configYaml, firstText, fixture, httpClient, startGateway, stdioServer, type RunningGateway } from '../../helpers/gateway.js';

/** Ends the session the way a well-behaved client does (DELETE), not just the connection. */
async function end(client: Client): Promise<void> {
  await (client.transport as StreamableHTTPClientTransport).terminateSession();
  await client.close();
}

interface Seen {
  pid: number;
  id: number | string;
  progressToken: unknown;
}

async function whoami(client: Client): Promise<Seen> {
  return JSON.parse(firstText(await client.callTool({ name: 'pool.whoami', arguments: {} }))) as Seen;
}

/** A client that answers sampling with its own name, and counts the requests it got. */
async function samplingClient(url: string, token: string, name: string): Promise<{ client: Client; asked: string[] }> {
  const client = await httpClient(url, token, { sampling: {} });
  const asked: string[] = [];
  client.setRequestHandler(CreateMessageRequestSchema, (request) => {
    const first = request.params.messages[0]?.content;
    asked.push(first !== undefined && 'text' in first ? String(first.text) : '?');
    return { role: 'assistant', model: name, content: { type: 'text', text: `answered by ${name}` } };
  });
  return { client, asked };
}

describe('pooled upstream: one process, several sessions of one agent', () => {
  let gw: RunningGateway;
  let a1: { client: Client; asked: string[] };
  let a2: { client: Client; asked: string[] };

  before(async () => {
    gw = await startGateway(configYaml(stdioServer('pool', fixture('pool-server'))));
    a1 = await samplingClient(gw.url, TEST_TOKEN, 'a1');
    a2 = await samplingClient(gw.url, TEST_TOKEN, 'a2');
  });

  after(async () => {
    await Promise.all([a1.client.close(), a2.client.close()]);
    await gw.stop();
  });

  it('runs both sessions on one process and never lets a client id or progress token reach it', async () => {
    const calls = [];
    for (let index = 0; index < 10; index += 1) calls.push(whoami(a1.client), whoami(a2.client));
    const seen = await Promise.all(calls);
    assert.equal(new Set(seen.map((entry) => entry.pid)).size, 1, 'one process serves both sessions');
    // Both SDK clients number their requests alike; upstream, every call has an id of its own.
    assert.equal(new Set(seen.map((entry) => String(entry.id))).size, seen.length, 'ids collided upstream');
    const withProgress = await a1.client.callTool({ name: 'pool.progress', arguments: { steps: 1, tag: 't' } }, undefined, { onprogress: () => undefined });
    const token = (JSON.parse(firstText(withProgress)) as { progressToken: unknown }).progressToken;
    assert.equal(typeof token, 'string');
    assert.match(String(token), /^pool-p\d+$/, 'the upstream saw the gateway\'s token, not the client\'s');
  });

  it('delivers progress only to the session whose call it belongs to', async () => {
    const got1: string[] = [];
    const got2: string[] = [];
    await Promise.all([
      a1.client.callTool({ name: 'pool.progress', arguments: { steps: 5, tag: 'one' } }, undefined, { onprogress: (p) => got1.push(String(p.message)) }),
      a2.client.callTool({ name: 'pool.progress', arguments: { steps: 5, tag: 'two' } }, undefined, { onprogress: (p) => got2.push(String(p.message)) }),
    ]);
    assert.deepEqual(got1, ['one', 'one', 'one', 'one', 'one']);
    assert.deepEqual(got2, ['two', 'two', 'two', 'two', 'two']);
  });

  it('translates one session\'s cancellation to that call upstream and leaves the other running', async () => {
    const abort = new AbortController();
    const cancelled = a1.client.callTool({ name: 'pool.wait', arguments: { tag: 'first' } }, undefined, { signal: abort.signal }).then(
      () => 'answered',
      (error: Error) => error.name,
    );
    const other = a2.client.callTool({ name: 'pool.wait', arguments: { tag: 'second' } });
    // Both calls are upstream once the fixture can release one of them.
    let upstream: string[] = [];
    while (!(upstream.includes('first') && upstream.includes('second'))) upstream = JSON.parse(firstText(await a2.client.callTool({ name: 'pool.waiting', arguments: {} }))) as string[];
    abort.abort();
    assert.notEqual(await cancelled, 'answered');
    let tags: string[] = [];
    while (!tags.includes('first')) tags = JSON.parse(firstText(await a2.client.callTool({ name: 'pool.cancelled', arguments: {} }))) as string[];
    assert.deepEqual(tags, ['first'], 'only the cancelled call was cancelled upstream');
    assert.equal(firstText(await a2.client.callTool({ name: 'pool.release', arguments: { tag: 'second' } })), 'released second');
    assert.equal(firstText(await other), 'released second');
  });

  it('routes sampling to the session whose call asked, and refuses it when calls of two sessions are in flight', async () => {
    assert.match(firstText(await a1.client.callTool({ name: 'pool.sample', arguments: { tag: 'from-a1' } })), /answered by a1/);
    assert.match(firstText(await a2.client.callTool({ name: 'pool.sample', arguments: { tag: 'from-a2' } })), /answered by a2/);
    assert.deepEqual(a1.asked, ['from-a1']);
    assert.deepEqual(a2.asked, ['from-a2']);
    const pending = a2.client.callTool({ name: 'pool.wait', arguments: { tag: 'busy' } });
    let upstream: string[] = [];
    while (!upstream.includes('busy')) upstream = JSON.parse(firstText(await a1.client.callTool({ name: 'pool.waiting', arguments: {} }))) as string[];
    const ambiguous = firstText(await a1.client.callTool({ name: 'pool.sample', arguments: { tag: 'ambiguous' } }));
    assert.match(ambiguous, /^error: .*cannot tell which of 2 sessions/);
    assert.deepEqual([a1.asked.length, a2.asked.length], [1, 1], 'neither client was asked');
    await a1.client.callTool({ name: 'pool.release', arguments: { tag: 'busy' } });
    await pending;
  });

  it('refuses a server request that no call in flight caused', async () => {
    await a1.client.callTool({ name: 'pool.unprompted', arguments: {} });
    const answer = firstText(await a1.client.callTool({ name: 'pool.unprompted-result', arguments: {} }));
    assert.match(answer, /^error: .*only while a call that could have caused it is in flight/);
    assert.deepEqual([a1.asked.length, a2.asked.length], [1, 1]);
  });

  it('tells every session of the pool that the tool list changed', async () => {
    const heard = (client: Client): Promise<void> => new Promise((resolve) => client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve()));
    const both = Promise.all([heard(a1.client), heard(a2.client)]);
    await a1.client.callTool({ name: 'pool.list-changed', arguments: {} });
    await both;
  });

  it('subscribes upstream once per URI, delivers updates to subscribers only, and unsubscribes when the last one goes', async () => {
    const b1 = await httpClient(gw.url, TEST_TOKEN);
    const b2 = await httpClient(gw.url, TEST_TOKEN);
    const observer = await httpClient(gw.url, TEST_TOKEN);
    try {
      const updates1: string[] = [];
      const updates2: string[] = [];
      const waiters: Array<() => void> = [];
      const record = (list: string[]) => (note: { params: { uri: string } }) => {
        list.push(note.params.uri);
        for (const wake of waiters.splice(0)) wake();
      };
      b1.setNotificationHandler(ResourceUpdatedNotificationSchema, record(updates1));
      b2.setNotificationHandler(ResourceUpdatedNotificationSchema, record(updates2));
      const until = async (done: () => boolean): Promise<void> => {
        while (!done()) await new Promise<void>((resolve) => waiters.push(resolve));
      };
      await b1.subscribeResource({ uri: 'pool+mem://a' });
      await b2.subscribeResource({ uri: 'pool+mem://a' });
      await b2.subscribeResource({ uri: 'pool+mem://b' });
      const state = async (): Promise<{ subscribed: Record<string, number>; unsubscribed: string[] }> => JSON.parse(firstText(await observer.callTool({ name: 'pool.subscriptions', arguments: {} }))) as { subscribed: Record<string, number>; unsubscribed: string[] };
      assert.deepEqual((await state()).subscribed, { 'mem://a': 1, 'mem://b': 1 }, 'one upstream subscription per URI');
      await observer.callTool({ name: 'pool.touch', arguments: { uri: 'mem://b' } });
      await observer.callTool({ name: 'pool.touch', arguments: { uri: 'mem://a' } });
      await until(() => updates1.length >= 1 && updates2.length >= 2);
      assert.deepEqual(updates1, ['pool+mem://a'], 'b1 did not subscribe to mem://b');
      assert.deepEqual(updates2, ['pool+mem://b', 'pool+mem://a']);
      await b2.unsubscribeResource({ uri: 'pool+mem://a' });
      assert.deepEqual((await state()).unsubscribed, [], 'b1 still wants mem://a');
      await end(b1);
      let after = await state();
      while (after.unsubscribed.length === 0) after = await state();
      assert.deepEqual(after.unsubscribed, ['mem://a'], 'the last subscriber of mem://a left');
      await end(b2);
      while (after.unsubscribed.length < 2) after = await state();
      assert.deepEqual(after.unsubscribed, ['mem://a', 'mem://b']);
    } finally {
      await Promise.all([b1.close(), b2.close(), observer.close()]);
    }
  });

  it('opens a new session on a warm pool without spawning or listing upstream', async () => {
    await a1.client.listTools();
    const listsBefore = firstText(await a1.client.callTool({ name: 'pool.list-count', arguments: {} }));
    const processesBefore = poolsFor(gw.gateway.runtime).list('pool').length;
    const fresh = await httpClient(gw.url, TEST_TOKEN);
    try {
      const { tools } = await fresh.listTools();
      assert.ok(tools.some((tool) => tool.name === 'pool.whoami'));
      assert.equal(firstText(await fresh.callTool({ name: 'pool.list-count', arguments: {} })), listsBefore, 'the catalog came from the pool');
      assert.equal(poolsFor(gw.gateway.runtime).list('pool').length, processesBefore, 'nothing spawned');
      assert.equal((await whoami(fresh)).pid, (await whoami(a1.client)).pid);
    } finally {
      await end(fresh);
    }
  });

  it('gives another agent a process of its own', async () => {
    const bob = await httpClient(gw.url, OTHER_TOKEN);
    try {
      const [alice, other] = await Promise.all([whoami(a1.client), whoami(bob)]);
      assert.notEqual(alice.pid, other.pid);
    } finally {
      await bob.close();
    }
  });
});
