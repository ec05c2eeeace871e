// `bastion quarantine` in a cluster: the operator's CLI reads and decides the replicas' shared
// records in a real redis-server, not a state-directory file no replica reads, so a decision made
// from any machine reaches every replica at once; with Redis down the CLI refuses (exit 1) instead
// of writing a decision nobody would see.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClusterConnection, SharedQuarantineStore } from '../../src/cluster/index.js';
import { BASTION_BIN, configYaml, fixture, stdioServer, tempDir, type TempDir } from '../helpers/gateway.js';
import { startRedis, type RunningRedis } from '../limits/redis-helpers.js';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI without blocking this process, so the replica's subscription keeps being served. */
function bastion(cwd: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BASTION_BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

async function until(what: string, probe: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    if (probe()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('bastion quarantine with cluster: decides in the shared store', () => {
  let redis: RunningRedis;
  let work: TempDir;
  let replica: ClusterConnection;
  let store: SharedQuarantineStore;
  const prefix = `test:${randomBytes(4).toString('hex')}:`;
  const stateFile = (): string => join(work.path, 'state', 'quarantine', 'quarantine.json');

  before(async () => {
    redis = await startRedis();
    work = tempDir('bastion-quarantine-cli-');
    const cluster = `cluster:\n  replicaId: ops\n  redis: ${JSON.stringify(redis.url)}\n  keyPrefix: ${JSON.stringify(prefix)}\n  sealKey: ${'ab'.repeat(32)}`;
    writeFileSync(join(work.path, 'bastion.yaml'), configYaml(stdioServer('rug', fixture('poisoned-definitions-server')), cluster));
    // A replica of the cluster (its quarantine store as the gateway opens it).
    replica = new ClusterConnection({ url: redis.url, replicaId: 'bastion-a', keyPrefix: prefix, commandTimeoutMs: 500 });
    store = new SharedQuarantineStore(replica, () => undefined);
    assert.equal(await store.ready(5000), true);
  });

  after(async () => {
    await replica?.close();
    await redis?.kill();
    work?.cleanup();
  });

  const hold = async (name: string): Promise<string> => {
    const record = store.hold({ server: 'rug', kind: 'tools', name, cause: 'changed', oldDigest: 'sha256:old', newDigest: `sha256:${name}`, newDefinition: { name, description: 'changed' }, diff: [], findings: [] });
    await store.flush();
    return record.id;
  };

  test('list and show read the records a replica holds in Redis', async () => {
    const id = await hold('get_weather');
    const list = await bastion(work.path, 'quarantine', 'list', '--json', '--config', 'bastion.yaml');
    assert.equal(list.status, 0, list.stderr);
    assert.deepEqual((JSON.parse(list.stdout) as Array<{ id: string; status: string }>).map((record) => [record.id, record.status]), [[id, 'held']]);
    const show = await bastion(work.path, 'quarantine', 'show', id, '--config', 'bastion.yaml');
    assert.equal(show.status, 0, show.stderr);
    assert.match(show.stdout, /what: {6}tools 'get_weather'/);
    const missing = await bastion(work.path, 'quarantine', 'show', 'q-0000000000000000', '--config', 'bastion.yaml');
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /no quarantine q-0000000000000000 in the cluster's Redis/);
  });

  test('an approval and a rejection made with the CLI reach the replica; no state file is written', async () => {
    const approvedId = await hold('approve_me');
    const rejectedId = await hold('reject_me');
    const approved = await bastion(work.path, 'quarantine', 'approve', approvedId, '--config', 'bastion.yaml');
    assert.equal(approved.status, 0, approved.stderr);
    assert.match(approved.stdout, new RegExp(`approved ${approvedId}`));
    await until('the replica to see the approval', () => store.find('rug', 'tools', 'approve_me', 'sha256:approve_me')?.status === 'approved');
    const rejected = await bastion(work.path, 'quarantine', 'reject', rejectedId, '--config', 'bastion.yaml');
    assert.equal(rejected.status, 0, rejected.stderr);
    await until('the replica to see the rejection', () => store.get(rejectedId)?.status === 'rejected');
    assert.equal(existsSync(stateFile()), false, 'the decision went to Redis, not to a file no replica reads');
  });

  test('with Redis down the CLI refuses (exit 1) and writes nothing anywhere', async () => {
    const id = await hold('while_down');
    await redis.kill();
    const refused = await bastion(work.path, 'quarantine', 'approve', id, '--config', 'bastion.yaml');
    assert.equal(refused.status, 1, refused.stdout);
    assert.match(refused.stderr, /cluster's Redis .* did not answer .* a decision must reach every replica/);
    assert.equal(existsSync(stateFile()), false);
    await redis.restart();
    await until('the replica to reconnect', () => replica.up);
    await until('the record to read as held again', () => store.get(id)?.status === 'held');
  });
});
