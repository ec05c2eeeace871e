// The approval journal: a call waiting for approval when the gateway is killed (kill -9 of a
// gateway started with the CLI) is recorded at the next start as denied, `approval.interrupted`
// with reason gateway_restarted, instead of vanishing. Waits that ended are not reported, and a
// torn last line (the kill landed mid-write) does not stop the journal from being read.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashToken } from '../../src/auth/index.js';
import { ApprovalJournal, ApprovalQueue, journalPath, type PendingApproval } from '../../src/approval/index.js';
import { readRecords } from '../../src/audit/reader.js';
import { CallCancellation } from '../../src/pipeline/index.js';
import { fixture, httpClient, stdioServer, tempDir } from '../helpers/gateway.js';
import { startReplica, stopReplica } from '../helpers/replicas.js';

const ALICE = 'alice-journal-token';

async function until(check: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 400; attempt += 1) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('the approval journal', () => {
  test('kill -9 while a call waits for approval: the next start records it as denied (approval.interrupted, gateway_restarted)', async () => {
    const work = tempDir('bastion-journal-');
    try {
      const policy = join(work.path, 'policy.yaml');
      writeFileSync(policy, 'version: 1\nagents:\n  alice:\n    grants:\n      - { scope: "exec:tools:rugpull.add", approval: required, approvalTimeoutSeconds: 600 }\n');
      const config = join(work.path, 'bastion.yaml');
      const tools = '    tools:\n      add: { scopes: [] }\n      echo: { scopes: [] }\n      get_weather: { scopes: [] }\n';
      writeFileSync(
        config,
        [
          'version: 1',
          'stateDir: state',
          'listeners:',
          '  http: { host: 127.0.0.1, port: 0 }',
          'auth:',
          '  apiTokens:',
          `    - { agent: alice, sha256: ${hashToken(ALICE)} }`,
          'policy:',
          `  files: [${JSON.stringify(policy)}]`,
          'sandbox: { backend: none }',
          'servers:',
          stdioServer('rugpull', fixture('rugpull-server'), ['1000'], tools),
        ].join('\n'),
      );
      const journal = journalPath(join(work.path, 'state'), undefined);
      const first = await startReplica('first', config);
      const client = await httpClient(first.url, ALICE);
      const call = client.callTool({ name: 'rugpull.add', arguments: { a: 1, b: 2 } }).then(() => 'answered', (error: Error) => error.message);
      await until(() => existsSync(journal) && readFileSync(journal, 'utf8').includes('"op":"pending"'), 'the wait to reach the journal');
      const waiting = JSON.parse(readFileSync(journal, 'utf8').trim().split('\n')[0] ?? '') as { approval: PendingApproval };
      await stopReplica(first, 'SIGKILL');
      assert.notEqual(await call, 'answered');
      await client.close().catch(() => undefined);

      const second = await startReplica('second', config);
      await stopReplica(second, 'SIGTERM');
      const interrupted = [...readRecords(join(work.path, 'state', 'audit'))].map(({ record }) => record as unknown as { event?: string; info?: Record<string, unknown> }).filter((record) => record.event === 'approval.interrupted');
      assert.equal(interrupted.length, 1, JSON.stringify(interrupted));
      const info = interrupted[0]?.info ?? {};
      assert.equal(info['approval_id'], waiting.approval.id);
      assert.equal(info['agent'], 'alice');
      assert.equal(info['server'], 'rugpull');
      assert.equal(info['tool'], 'add');
      assert.equal(info['decision'], 'deny');
      assert.equal(info['reason'], 'gateway_restarted');
      assert.equal(statSync(journal).size, 0, 'the journal is emptied once the interrupted wait is in the audit log');
    } finally {
      work.cleanup();
    }
  });

  test('waits that ended are not reported; a torn last line is skipped', async () => {
    const work = tempDir('bastion-journal-unit-');
    try {
      const path = journalPath(work.path, 'replica-a');
      const { journal, interrupted } = ApprovalJournal.open(path);
      assert.deepEqual(interrupted, []);
      const queue = new ApprovalQueue({ journal });
      const request = { agent: 'alice', server: 's', tool: 't', arguments: { token: 'sk-secret-value-000000000000' }, sessionId: 'x', timeoutSeconds: 60, grant: 'exec:tools:s.t', source: 'p.yaml:3' };
      const ended = queue.request(request, new CallCancellation());
      const [first] = queue.list();
      queue.request(request, new CallCancellation()).catch(() => undefined);
      queue.decide(first?.id ?? assert.fail('no wait'), false, 'abe', 'console');
      assert.equal((await ended).verdict, 'denied');
      journal.close();
      writeFileSync(path, `${readFileSync(path, 'utf8')}{"op":"pending","appro`);
      const reopened = ApprovalJournal.open(path);
      assert.equal(reopened.interrupted.length, 1, 'the second wait never ended');
      assert.notEqual(reopened.interrupted[0]?.id, first?.id);
      assert.ok(!readFileSync(path, 'utf8').includes('sk-secret-value'), 'arguments are journaled redacted');
      reopened.journal.close();
    } finally {
      work.cleanup();
    }
  });
});
