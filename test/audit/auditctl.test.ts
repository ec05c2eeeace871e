import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, appendFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPairSync } from 'node:crypto';
import { AuditLog } from '../../src/audit/index.js';
import { listCheckpoints, listSegments } from '../../src/audit/layout.js';
import { readRecords } from '../../src/audit/reader.js';
import { auditOptions, tempDir } from './helpers.js';

const binary = fileURLToPath(new URL('../../src/cli/auditctl.js', import.meta.url));

function auditctl(...args: string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [binary, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

describe('mcp-auditctl on a real log', () => {
  const temp = tempDir();
  let dir = '';
  let publicKey = '';
  /** Records in the log, batch seals included (each sequential append is a batch of its own). */
  let total = 0;
  let lastRequestSeq = 0;

  before(async () => {
    const options = auditOptions(temp.dir, { checkpoint: { everyRecords: 50 }, capture: { arguments: 'full' } });
    dir = options.dir;
    const log = await AuditLog.open(options);
    await log.event('gateway.start', { version: 'test' });
    for (let index = 0; index < 200; index += 1) {
      await log.append({
        kind: 'request',
        method: 'tools/call',
        agent_id: index % 2 === 0 ? 'alice' : 'bob',
        server: 'files',
        tool: index % 4 === 0 ? 'write' : 'read',
        tools_invoked: [index % 4 === 0 ? 'files.write' : 'files.read'],
        decision: index % 5 === 0 ? 'deny' : 'allow',
        reason: index % 5 === 0 ? 'scope not granted, "quoted"' : undefined,
        task_id: index < 10 ? 'task-42' : undefined,
        ts: new Date(Date.parse('2026-03-01T00:00:00Z') + index * 60_000).toISOString(),
      });
    }
    await log.close();
    publicKey = join(dir, 'audit-key.pub');
    for (const { record } of readRecords(dir)) {
      total += 1;
      if (record.kind === 'request') lastRequestSeq = record.seq;
    }
  });
  after(() => temp.cleanup());

  test('verify exits 0 on a clean log and reports the counts', () => {
    const result = auditctl('--log', dir, 'verify', '--key', publicKey);
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, new RegExp(`^clean: ${total} records`));
    const json = JSON.parse(auditctl('--log', dir, 'verify', '--json', '--key', publicKey).stdout) as { status: string; checkpointsMatched: number };
    assert.equal(json.status, 'clean');
    assert.ok(json.checkpointsMatched >= 4);
    assert.equal(auditctl('--log', dir, 'verify', '--from-checkpoint').status, 0);
  });

  test('verify exits 2 on an edited record and names segment, line and seq', () => {
    const segment = (listSegments(dir)[0] as { path: string }).path;
    const original = readFileSync(segment, 'utf8');
    try {
      writeFileSync(segment, original.replace('"agent_id":"bob"', '"agent_id":"eve"'));
      const index = original.split('\n').findIndex((line) => line.includes('"agent_id":"bob"'));
      const seq = (JSON.parse(original.split('\n')[index] as string) as { seq: number }).seq;
      const result = auditctl('--log', dir, 'verify', '--key', publicKey);
      assert.equal(result.status, 2);
      assert.match(result.stdout, new RegExp(`TAMPERED: .*seg-000000000000\\.jsonl line ${index + 1} \\(byte \\d+\\), seq ${seq}: record hash does not match`));
      const parallel = auditctl('--log', dir, 'verify', '--key', publicKey, '--workers', '2');
      assert.equal(parallel.status, 2);
      assert.equal(parallel.stdout, result.stdout, 'worker threads report the same first problem');
    } finally {
      writeFileSync(segment, original);
    }
  });

  test('verify exits 3 on a missing log and names the fix', () => {
    const result = auditctl('--log', join(temp.dir, 'nope'), 'verify');
    assert.equal(result.status, 3);
    assert.match(result.stderr, /does not exist: pass --log DIR/);
  });

  test('verify with the wrong public key fails and says so', () => {
    const other = join(temp.dir, 'other.pub');
    writeFileSync(other, generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }));
    const result = auditctl('--log', dir, 'verify', '--key', other);
    assert.equal(result.status, 2);
    assert.match(result.stdout, /no signature by key .* Is --key the log's public key\?/);
  });

  test('verify --checkpoint with an external checkpoint from a longer log detects truncation', () => {
    const external = join(temp.dir, 'external-checkpoint.txt');
    const segment = (listSegments(dir)[0] as { path: string }).path;
    const original = readFileSync(segment, 'utf8');
    const files = listCheckpoints(dir);
    const newest = files[files.length - 1] as (typeof files)[number];
    writeFileSync(external, readFileSync(newest.path));
    // Roll the log back to exactly the size of an older checkpoint and delete the newer checkpoints.
    const keep = files[Math.floor(files.length / 2)] as (typeof files)[number];
    const removed = files.filter((item) => item.checkpoint.size > keep.checkpoint.size);
    const saved = removed.map((item) => ({ path: item.path, data: readFileSync(item.path) }));
    try {
      const lines = original.split('\n');
      writeFileSync(segment, `${lines.slice(0, keep.checkpoint.size).join('\n')}\n`);
      for (const item of removed) rmSync(item.path);
      assert.equal(auditctl('--log', dir, 'verify', '--key', publicKey).status, 0, 'without the external checkpoint a rollback to a checkpoint boundary is invisible');
      const result = auditctl('--log', dir, 'verify', '--key', publicKey, '--checkpoint', external);
      assert.equal(result.status, 2);
      assert.match(result.stdout, /newer checkpoints were deleted/);
    } finally {
      writeFileSync(segment, original);
      for (const item of saved) writeFileSync(item.path, item.data);
    }
    assert.equal(auditctl('--log', dir, 'verify').status, 0);
  });

  test('query filters by agent, decision, tool, task and time, as table, jsonl and csv', () => {
    const jsonl = auditctl('--log', dir, 'query', '--agent', 'alice', '--decision', 'deny', '--format', 'jsonl');
    assert.equal(jsonl.status, 0, jsonl.stderr);
    const rows = jsonl.stdout.trim().split('\n').map((line) => JSON.parse(line) as { agent_id: string; decision: string });
    assert.equal(rows.length, 20);
    assert.ok(rows.every((row) => row.agent_id === 'alice' && row.decision === 'deny'));
    const task = auditctl('--log', dir, 'query', '--task', 'task-42', '--format', 'jsonl');
    assert.equal(task.stdout.trim().split('\n').length, 10);
    const window = auditctl('--log', dir, 'query', '--since', '2026-03-01T01:00:00Z', '--until', '2026-03-01T01:09:00Z', '--tool', 'write', '--format', 'jsonl');
    assert.equal(window.stdout.trim().split('\n').length, 3);
    const csv = auditctl('--log', dir, 'query', '--decision', 'deny', '--format', 'csv', '--limit', '2');
    const csvLines = csv.stdout.trim().split('\n');
    assert.equal(csvLines[0], 'ts,seq,kind,event,agent_id,method,server,tool,decision,reason,task_id,exec_duration_ms');
    assert.equal(csvLines.length, 3);
    assert.match(csvLines[1] as string, /"scope not granted, ""quoted"""/);
    const table = auditctl('--log', dir, 'query', '--server', 'files', '--limit', '3');
    assert.match(table.stdout, /^ts\s+seq\s+kind/);
    assert.equal(table.stdout.trim().split('\n').length, 4);
  });

  test('stats counts by agent, tool and decision', () => {
    const result = auditctl('--log', dir, 'stats', '--json');
    const stats = JSON.parse(result.stdout) as { total: number; byAgent: Record<string, number>; byDecision: Record<string, number>; byTool: Record<string, number> };
    assert.equal(stats.total, 200);
    assert.deepEqual(stats.byAgent, { alice: 100, bob: 100 });
    assert.deepEqual(stats.byDecision, { allow: 160, deny: 40 });
    assert.deepEqual(stats.byTool, { 'files.read': 150, 'files.write': 50 });
    assert.match(auditctl('--log', dir, 'stats').stdout, /requests: 200/);
  });

  test('tail prints the newest records, readable or JSON, and -f follows new ones', async () => {
    const result = auditctl('--log', dir, 'tail', '-n', '3');
    const lines = result.stdout.trim().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[2] as string, new RegExp(`#${lastRequestSeq} .*tools/call files\\.(read|write)`));
    assert.ok(lines.every((line) => !line.includes('audit.seal')), 'tail leaves the batch seals out');
    const json = auditctl('--log', dir, 'tail', '-n', '1', '--json');
    assert.equal((JSON.parse(json.stdout) as { seq: number }).seq, lastRequestSeq);
    assert.equal((JSON.parse(auditctl('--log', dir, 'tail', '-n', '1', '--json', '--seals').stdout) as { event: string }).event, 'audit.seal');
    const scratch = join(temp.dir, 'follow-state');
    mkdirSync(scratch);
    const options = auditOptions(scratch, { rotation: { maxBytes: 4096 } });
    const log = await AuditLog.open(options);
    await log.event('gateway.start');
    const follower = spawn(process.execPath, [binary, '--log', options.dir, 'tail', '-f', '-n', '1', '--json', '--interval', '30'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let output = '';
      let ready: () => void = () => undefined;
      const started = new Promise<void>((resolve) => {
        ready = resolve;
      });
      const seen = new Promise<void>((resolve) => {
        follower.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          // -n 1 prints the gateway.start record first: the follower is then positioned at the end.
          if (output.includes('gateway.start')) ready();
          if (output.includes('"tool":"last"')) resolve();
        });
      });
      await started;
      for (let index = 0; index < 30; index += 1) await log.append({ kind: 'request', method: 'tools/call', tool: index === 29 ? 'last' : 'op', info: { padding: 'p'.repeat(200) } });
      await seen;
      const followed = output.trim().split('\n').map((line) => JSON.parse(line) as { tool?: string; event?: string }).filter((record) => record.event === undefined);
      assert.equal(followed.length, 30, 'every new record is printed once, across segment rotations');
      assert.ok(listSegments(options.dir).length > 1, 'the log rotated while being followed');
    } finally {
      follower.kill();
      await log.close();
    }
  });

  test('export writes a bundle that verify checks offline; a corrupted bundle is reported', () => {
    const bundle = join(temp.dir, 'bundle');
    const result = auditctl('--log', dir, 'export', '--out', bundle, '--key', publicKey);
    assert.equal(result.status, 0, result.stderr);
    const manifest = JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8')) as { files: Array<{ path: string; sha256: string }>; records: number };
    assert.equal(manifest.records, total);
    assert.ok(manifest.files.some((file) => file.path === 'audit-key.pub'));
    const verified = auditctl('--log', bundle, 'verify', '--key', publicKey);
    assert.equal(verified.status, 0, verified.stdout);
    assert.match(verified.stdout, /files match the manifest/);
    const someCheckpoint = (listCheckpoints(bundle)[1] as { name: string }).name;
    appendFileSync(join(bundle, 'checkpoints', someCheckpoint), ' ');
    const corrupt = auditctl('--log', bundle, 'verify', '--key', publicKey);
    assert.equal(corrupt.status, 2);
    assert.match(corrupt.stdout, new RegExp(`${someCheckpoint.replace('.', '\\.')} does not match its manifest digest`));
    const again = auditctl('--log', dir, 'export', '--out', bundle);
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /not empty/);
  });

  test('export converts to OCSF API Activity and Elastic Common Schema', () => {
    const ocsf = auditctl('--log', dir, 'export', '--format', 'ocsf', '--agent', 'bob', '--decision', 'allow');
    const events = ocsf.stdout.trim().split('\n').map((line) => JSON.parse(line) as { class_uid: number; type_uid: number; actor: { user: { uid: string } }; status: string; metadata: { sequence: number } });
    assert.equal(events.length, 80);
    assert.ok(events.every((event) => event.class_uid === 6003 && event.actor.user.uid === 'bob' && event.status === 'Success'));
    const out = join(temp.dir, 'ecs.jsonl');
    assert.equal(auditctl('--log', dir, 'export', '--format', 'ecs', '--decision', 'deny', '--out', out).status, 0);
    const ecs = readFileSync(out, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { '@timestamp': string; event: { outcome: string; type: string[] }; user: { id: string } });
    assert.equal(ecs.length, 40);
    assert.ok(ecs.every((event) => event.event.outcome === 'failure' && event.event.type.includes('denied') && typeof event['@timestamp'] === 'string'));
  });

  test('prove gives an RFC 6962 inclusion proof that verify-proof accepts, and rejects when the record is altered', () => {
    const proofFile = join(temp.dir, 'proof-77.json');
    const proved = auditctl('--log', dir, 'prove', '77', '--out', proofFile, '--key', publicKey);
    assert.equal(proved.status, 0, proved.stderr);
    const valid = auditctl('verify-proof', proofFile, '--key', publicKey);
    assert.equal(valid.status, 0, valid.stderr);
    assert.match(valid.stdout, /valid: record 77 is included/);
    const document = JSON.parse(readFileSync(proofFile, 'utf8')) as { record: string; proof: string[] };
    for (const seq of [0, 1, 49, 150]) {
      const other = join(temp.dir, `proof-${seq}.json`);
      assert.equal(auditctl('--log', dir, 'prove', String(seq), '--out', other).status, 0);
      assert.equal(auditctl('--log', dir, 'verify-proof', other).status, 0, `proof for ${seq}`);
    }
    const forged = join(temp.dir, 'proof-forged.json');
    writeFileSync(forged, JSON.stringify({ ...document, record: document.record.replace(/"agent_id":"(alice|bob)"/, '"agent_id":"mallory"') }));
    const rejected = auditctl('verify-proof', forged, '--key', publicKey);
    assert.equal(rejected.status, 2);
    assert.match(rejected.stderr, /NOT valid: the record does not hash to the proof leaf/);
    const wrongPath = join(temp.dir, 'proof-wrong-path.json');
    writeFileSync(wrongPath, JSON.stringify({ ...document, proof: [...document.proof].reverse() }));
    assert.equal(auditctl('verify-proof', wrongPath, '--key', publicKey).status, 2);
  });

  test('prove refuses a record that no checkpoint covers yet', async () => {
    const scratch = join(temp.dir, 'scratch-state');
    mkdirSync(scratch);
    const options = auditOptions(scratch, { checkpoint: { everyRecords: 1000 } });
    const log = await AuditLog.open(options);
    const { seq } = await log.event('gateway.start');
    const result = auditctl('--log', options.dir, 'prove', String(seq));
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, new RegExp(`no checkpoint covers record ${seq} yet`));
    await log.close();
  });
});
