// Approval through MCP elicitation (approval.channels: [console, elicitation]): the gateway asks
// the client's user with an elicitation/create written by Bastion alone; the official SDK client
// answers it. Accept with approve=true lets the call run, a decline denies it, a client without
// the capability is never asked (the console decides), and an operator deciding first withdraws
// the question (the first decision wins).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ElicitRequestSchema, type ElicitRequest, type ElicitResult } from '@modelcontextprotocol/sdk/types.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { firstText, httpClient, type RunningGateway } from '../helpers/gateway.js';
import { readRecords } from '../../src/audit/reader.js';
import { ALICE, APPROVER, api, openStream, startConsoleGateway } from '../admin/api/helpers.js';

type Answer = (request: ElicitRequest, signal: AbortSignal) => ElicitResult | Promise<ElicitResult>;

/** An SDK client that declared elicitation and answers each request with `answer`, keeping what it was asked. */
async function elicitingClient(url: string, answer: { current: Answer }): Promise<{ client: Client; asked: ElicitRequest[] }> {
  const client = await httpClient(url, ALICE, { elicitation: {} });
  const asked: ElicitRequest[] = [];
  client.setRequestHandler(ElicitRequestSchema, async (request, extra) => {
    asked.push(request);
    return answer.current(request, extra.signal);
  });
  return { client, asked };
}

function callRecord(dir: string, approvalId: string): Record<string, unknown> | undefined {
  for (const { record } of readRecords(dir)) if ((record as unknown as Record<string, unknown>)['approval_id'] === approvalId) return record as unknown as Record<string, unknown>;
  return undefined;
}

const approvalIdOf = (message: string): string => /approval (a-[0-9a-f]{16})/.exec(message)?.[1] ?? assert.fail(message);

describe('approval through elicitation', () => {
  let running: RunningGateway;
  let admin: string;
  let cleanup: () => Promise<void>;
  const answer: { current: Answer } = { current: () => ({ action: 'cancel' }) };
  let eliciting: { client: Client; asked: ElicitRequest[] };
  let plain: Client;

  before(async () => {
    ({ running, admin, cleanup } = await startConsoleGateway({ rugpullAfter: 1000, approvalChannels: ['console', 'elicitation'] }));
    eliciting = await elicitingClient(running.url, answer);
    plain = await httpClient(running.url, ALICE);
  });
  after(async () => {
    await eliciting?.client.close();
    await plain?.close();
    await cleanup?.();
  });

  test('the user accepts: the call runs, and its record says approval_via elicitation', async () => {
    answer.current = () => ({ action: 'accept', content: { approve: true } });
    const result = await eliciting.client.callTool({ name: 'rugpull.add', arguments: { a: 20, b: 22 } });
    assert.equal(firstText(result), '42');
    const request = eliciting.asked.at(-1) ?? assert.fail('no elicitation was sent');
    const { message, requestedSchema } = request.params as { message: string; requestedSchema: { properties: Record<string, { type: string }>; required: string[] } };
    assert.match(message, /^Bastion security gateway: agent "alice" wants to call tool "add" on server "rugpull"\.\nArguments: a=20, b=22\n/);
    assert.match(message, /Approval id a-[0-9a-f]{16}\.$/);
    assert.deepEqual(Object.keys(requestedSchema.properties), ['approve']);
    assert.equal(requestedSchema.properties['approve']?.type, 'boolean');
    assert.deepEqual(requestedSchema.required, ['approve']);
    const id = /Approval id (a-[0-9a-f]{16})/.exec(message)?.[1] ?? assert.fail(message);
    await running.bastion.audit.flush();
    const record = callRecord(running.bastion.audit.dir, id) ?? assert.fail('no record of the call');
    assert.equal(record['approval'], 'allowed');
    assert.equal(record['approval_via'], 'elicitation');
    assert.equal(record['approval_by'], 'user@elicitation');
    assert.equal(record['decision'], 'allow');
  });

  test('the text the user sees is Bastion\'s own, not the upstream\'s description of the tool', async () => {
    answer.current = () => ({ action: 'accept', content: { approve: true } });
    const tools = await eliciting.client.listTools();
    const description = tools.tools.find((tool) => tool.name === 'rugpull.add')?.description ?? '';
    assert.ok(description.length > 0);
    await eliciting.client.callTool({ name: 'rugpull.add', arguments: { a: 1, b: 2 } });
    const message = (eliciting.asked.at(-1)?.params as { message: string }).message;
    assert.ok(!message.includes(description), message);
  });

  for (const [what, reply] of [
    ['declines', { action: 'decline' }],
    ['cancels', { action: 'cancel' }],
    ['accepts with approve: false', { action: 'accept', content: { approve: false } }],
  ] as const) {
    test(`the user ${what}: the call is denied (fail closed)`, async () => {
      answer.current = () => reply as ElicitResult;
      const error = await eliciting.client.callTool({ name: 'rugpull.add', arguments: { a: 1, b: 1 } }).then(() => assert.fail('allowed'), (failure: Error) => failure);
      assert.match(error.message, /an approver denied this call/);
      await running.bastion.audit.flush();
      const record = callRecord(running.bastion.audit.dir, approvalIdOf(error.message)) ?? assert.fail('no record');
      assert.equal(record['approval'], 'denied');
      assert.equal(record['approval_via'], 'elicitation');
      assert.equal(record['decision'], 'deny');
    });
  }

  test('the client answers with an error: denied', async () => {
    answer.current = () => {
      throw new Error('the user interface crashed');
    };
    const error = await eliciting.client.callTool({ name: 'rugpull.add', arguments: { a: 3, b: 3 } }).then(() => assert.fail('allowed'), (failure: Error) => failure);
    assert.match(error.message, /an approver denied this call/);
  });

  test('a client without the elicitation capability is not asked: the operator decides in the console', async () => {
    const before = eliciting.asked.length;
    const stream = await openStream(admin, APPROVER);
    try {
      const call = plain.callTool({ name: 'rugpull.add', arguments: { a: 4, b: 5 } });
      const pending = await stream.next((event) => event.event === 'approval' && event.data['agent'] === 'alice');
      const decided = await api(admin, `approvals/${String(pending.data['id'])}/allow`, APPROVER, { body: { via: 'console' } });
      assert.equal(decided.status, 200);
      assert.equal(firstText(await call), '9');
      assert.equal(eliciting.asked.length, before, 'no elicitation went to any client');
    } finally {
      stream.close();
    }
  });

  test('console and elicitation race: the operator decides first, the user\'s later answer changes nothing', async () => {
    let release: (result: ElicitResult) => void = () => undefined;
    let withdrawn: Promise<void> = Promise.resolve();
    answer.current = (_request, signal) => {
      withdrawn = new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      return new Promise<ElicitResult>((resolve) => (release = resolve));
    };
    const stream = await openStream(admin, APPROVER);
    try {
      const call = eliciting.client.callTool({ name: 'rugpull.add', arguments: { a: 6, b: 7 } });
      const pending = await stream.next((event) => event.event === 'approval' && event.data['agent'] === 'alice');
      const id = String(pending.data['id']);
      assert.equal((await api(admin, `approvals/${id}/deny`, APPROVER, { body: { via: 'console' } })).status, 200);
      const error = await call.then(() => assert.fail('allowed'), (failure: Error) => failure);
      assert.match(error.message, /an approver denied this call/);
      await withdrawn; // the gateway sent notifications/cancelled for its question
      release({ action: 'accept', content: { approve: true } }); // too late: already decided
      await running.bastion.audit.flush();
      const record = callRecord(running.bastion.audit.dir, id) ?? assert.fail('no record');
      assert.equal(record['approval_via'], 'console');
      assert.equal(record['approval_by'], 'abe');
    } finally {
      stream.close();
    }
  });
});
