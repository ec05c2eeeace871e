import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CallContext, compose, success } from '../../src/pipeline/index.js';
import { AuditLog, AuditTamperError, createAuditGuard, verifyLog, type AuditLogOptions, type AuditRecord } from '../../src/audit/index.js';
import { buildLine, canonicalJson, digestOf } from '../../src/audit/canonical.js';
import { listCheckpoints, listSegments } from '../../src/audit/layout.js';
import { readRecords } from '../../src/audit/reader.js';
import { auditOptions, tempDir } from './helpers.js';

/**
 * Someone who can write the log directory but holds neither the signing key nor the MAC key:
 * what they append, delete or rewrite must not verify clean, and the writer must not sign it.
 */

const binary = fileURLToPath(new URL('../../src/cli/auditctl.js', import.meta.url));

function auditctl(...args: string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [binary, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

async function writtenLog(stateDir: string, records: number, everyRecords = 1000): Promise<AuditLogOptions> {
  const options = auditOptions(stateDir, { checkpoint: { everyRecords } });
  const log = await AuditLog.open(options);
  for (let index = 0; index < records; index += 1) await log.append({ kind: 'request', method: 'tools/call', agent_id: 'alice', server: 'files', tool: 'read', decision: 'allow', request_id: index });
  await log.close();
  return options;
}

/** The last record of the log, as stored. */
function lastRecord(dir: string): AuditRecord {
  const all = [...readRecords(dir)].map((item) => item.record);
  return all[all.length - 1] as AuditRecord;
}

/** Appends a correctly hashed and chained record after the last one, as an attacker can. */
function appendForged(dir: string, fields: Parameters<typeof buildLine>[0]): number {
  const last = lastRecord(dir);
  const segment = listSegments(dir).pop() as { path: string };
  appendFileSync(segment.path, `${buildLine(fields, last.seq + 1, last.hash).line}\n`);
  return last.seq + 1;
}

function forgedRequest(): Parameters<typeof buildLine>[0] {
  return { kind: 'request', method: 'tools/call', agent_id: 'intruder', server: 'files', tool: 'delete', decision: 'allow', ts: new Date().toISOString() };
}

describe('audit forgery by someone who can write the log but holds no key', () => {
  test('a chained record appended after the last checkpoint is an unsigned tail for verify, and the writer cuts it instead of signing it', async () => {
    const temp = tempDir();
    try {
      const options = await writtenLog(temp.dir, 30);
      const publicKey = join(options.dir, 'audit-key.pub');
      const forgedSeq = appendForged(options.dir, forgedRequest());
      const verified = auditctl('--log', options.dir, 'verify', '--key', publicKey);
      assert.equal(verified.status, 4, `verify must not call a forged tail clean: ${verified.stdout}`);
      assert.match(verified.stdout, new RegExp(`UNSIGNED TAIL: 1 record\\(s\\), seq ${forgedSeq}\\.\\.${forgedSeq}`));
      assert.equal(auditctl('--log', options.dir, 'verify', '--key', publicKey, '--allow-unsigned-tail').status, 0);
      assert.notEqual(auditctl('--log', options.dir, 'prove', String(forgedSeq)).status, 0, 'no checkpoint covers the forged record');

      const log = await AuditLog.open(options);
      assert.equal(log.recovery.unsealedRecords, 1);
      await log.close();
      const stored = [...readRecords(options.dir)].map((item) => item.record);
      assert.ok(!stored.some((record) => record.agent_id === 'intruder'), 'the forged record is no longer in the chain');
      const cut = stored.find((record) => record.event === 'audit.unsealed_tail') as AuditRecord;
      assert.equal(cut.info?.['unsealed_records'], 1);
      const evidence = String(cut.info?.['evidence']);
      assert.match(readFileSync(evidence, 'utf8'), /"agent_id":"intruder"/, 'the forged bytes are kept as evidence');
      assert.equal(auditctl('--log', options.dir, 'verify', '--key', publicKey).status, 0);
      // Whatever prove now says about that seq, it is not about the forged record.
      const proof = auditctl('--log', options.dir, 'prove', String(forgedSeq));
      assert.doesNotMatch(proof.stdout, /intruder/);
    } finally {
      temp.cleanup();
    }
  });

  test('a forged batch seal makes the writer refuse the log', async () => {
    const temp = tempDir();
    try {
      const options = await writtenLog(temp.dir, 10);
      appendForged(options.dir, forgedRequest());
      appendForged(options.dir, { kind: 'event', event: 'audit.seal', info: { mac: randomBytes(32).toString('hex') }, ts: new Date().toISOString() });
      await assert.rejects(AuditLog.open(options), (error: unknown) => error instanceof AuditTamperError && /batch seal does not verify/.test(error.message));
    } finally {
      temp.cleanup();
    }
  });

  test('deleting the newest checkpoint fails verify; the writer signs it again from its sealed records', async () => {
    const temp = tempDir();
    try {
      const options = await writtenLog(temp.dir, 40, 10);
      const files = listCheckpoints(options.dir);
      const newest = files[files.length - 1] as (typeof files)[number];
      rmSync(newest.path);
      const report = verifyLog(options.dir);
      assert.equal(report.status, 'tampered', 'a log whose newest checkpoint was deleted must not verify clean');
      assert.match(report.problem?.message ?? '', new RegExp(`seals checkpoint ${files.length} \\(size ${newest.checkpoint.size}\\), which is missing`));
      const log = await AuditLog.open(options);
      assert.deepEqual(log.recovery.resignedCheckpoints, [newest.checkpoint.size]);
      await log.close();
      const again = listCheckpoints(options.dir).find((item) => item.checkpoint.size === newest.checkpoint.size);
      assert.ok(again !== undefined);
      assert.ok(again.checkpoint.root.equals(newest.checkpoint.root));
      assert.equal(again.checkpoint.head, newest.checkpoint.head);
      assert.equal(verifyLog(options.dir).status, 'clean');
    } finally {
      temp.cleanup();
    }
  });

  test('a gap in the checkpoint sequence fails verify and the writer refuses the log', async () => {
    const temp = tempDir();
    try {
      const options = await writtenLog(temp.dir, 40, 10);
      const files = listCheckpoints(options.dir);
      assert.ok(files.length >= 4);
      rmSync((files[1] as (typeof files)[number]).path);
      const report = verifyLog(options.dir);
      assert.equal(report.status, 'tampered');
      assert.match(report.problem?.message ?? '', /checkpoint 2 is missing/);
      await assert.rejects(AuditLog.open(options), AuditTamperError);
    } finally {
      temp.cleanup();
    }
  });

  test('a log with records but no checkpoint fails verify, also after its whole history was rewritten', async () => {
    const temp = tempDir();
    try {
      const options = await writtenLog(temp.dir, 20, 5);
      for (const item of listCheckpoints(options.dir)) rmSync(item.path);
      const report = verifyLog(options.dir);
      assert.equal(report.status, 'tampered', 'deleting every checkpoint must not verify as "clean, 0 of 0 checkpoints"');
      assert.match(report.problem?.message ?? '', /no signed checkpoint/);
      // Rewrite every record (new agent, re-chained from seq 0) as someone without the keys can.
      const segment = listSegments(options.dir)[0] as { path: string };
      let prev = '0'.repeat(64);
      const rewritten = readFileSync(segment.path, 'utf8').split('\n').slice(0, -1).map((text) => {
        const { hash: _hash, seq, prev: _prev, schema: _schema, ...fields } = JSON.parse(text) as AuditRecord;
        const built = buildLine({ ...fields, agent_id: fields.agent_id === undefined ? undefined : 'mallory' }, seq, prev);
        prev = built.hash;
        return built.line;
      });
      writeFileSync(segment.path, `${rewritten.join('\n')}\n`);
      const after = verifyLog(options.dir);
      assert.equal(after.status, 'tampered');
      assert.match(after.problem?.message ?? '', /no signed checkpoint/);
      assert.equal(auditctl('--log', options.dir, 'verify').status, 2);
    } finally {
      temp.cleanup();
    }
  });

  test('args_digest and output_digest are HMACs under the log key: a guessed password or file content cannot be confirmed from the log alone', async () => {
    const temp = tempDir();
    try {
      const options = auditOptions(temp.dir);
      const log = await AuditLog.open(options);
      const ctx = new CallContext({
        requestId: 1,
        method: 'tools/call',
        params: { name: 'db.login', arguments: { user: 'root', password: 'hunter2' } },
        session: { sessionId: 's', transport: 'http', protocolVersion: '2025-06-18' },
        identity: { agentId: 'ci-bot', tokenFingerprint: 'fp:1', method: 'api-token' },
        requestBytes: 10,
        limits: { timeoutMs: 1000, maxOutputBytes: 65536, maxRequestBytes: 65536 },
        signal: new AbortController().signal,
      });
      ctx.target = { server: 'db', name: 'login' };
      const secretOutput = { content: [{ type: 'text', text: 'DB_PASSWORD=hunter2' }] };
      await compose([createAuditGuard(log, { arguments: 'full', outputs: 'none', maxChars: 1024 })], async () => success(secretOutput))(ctx);
      await log.close();
      const record = [...readRecords(options.dir)].map((item) => item.record).find((item) => item.kind === 'request') as AuditRecord;
      assert.ok(!JSON.stringify(record).includes('hunter2'), 'the password is redacted');
      const guess = digestOf({ password: 'hunter2', user: 'root' });
      assert.notEqual(record.args_digest, guess, 'the unkeyed digest of the guess does not match');
      assert.match(record.args_digest ?? '', /^hmac-sha256:[0-9a-f]{64}$/);
      assert.notEqual(record.output_digest, digestOf(secretOutput), 'a guessed output does not match either');
      assert.match(record.output_digest ?? '', /^hmac-sha256:[0-9a-f]{64}$/);
      const reopened = await AuditLog.open(options);
      assert.equal(reopened.digestText('{"password":"hunter2","user":"root"}'), record.args_digest, 'the key holder can still match a copy of the arguments');
      assert.equal(reopened.digestText(canonicalJson(secretOutput)), record.output_digest, 'and a copy of the output');
      await reopened.close();
    } finally {
      temp.cleanup();
    }
  });

  test('a bastion.audit/1 log is archived unchanged, stays verifiable there, and a new sealed chain starts', async () => {
    const temp = tempDir();
    try {
      const options = await writtenLog(temp.dir, 12);
      const metadataPath = join(options.dir, 'log.json');
      const metadata = JSON.parse(readFileSync(metadataPath, 'utf8')) as Record<string, unknown>;
      writeFileSync(metadataPath, JSON.stringify({ ...metadata, schema: 'bastion.audit/1' }));
      const legacyRecords = [...readRecords(options.dir)].length;
      const log = await AuditLog.open(options);
      assert.equal(log.recovery.formatUpgrade, true);
      await log.close();
      const archives = readdirSync(join(options.dir, 'archive'));
      assert.equal(archives.length, 1);
      const archive = join(options.dir, 'archive', archives[0] as string);
      assert.ok(existsSync(join(archive, 'log.json')) && existsSync(join(archive, 'audit-key.pub')));
      const old = verifyLog(archive);
      assert.equal(old.status, 'clean', old.problem?.message);
      assert.equal(old.legacyFormat, true);
      assert.equal(old.scan.records, legacyRecords);
      const fresh = [...readRecords(options.dir)].map((item) => item.record);
      assert.equal(fresh[0]?.seq, 0);
      assert.ok(fresh.some((record) => record.event === 'audit.format_upgrade'));
      assert.equal(JSON.parse(readFileSync(metadataPath, 'utf8')).schema, 'bastion.audit/2');
      assert.equal(verifyLog(options.dir).status, 'clean');
    } finally {
      temp.cleanup();
    }
  });
});
