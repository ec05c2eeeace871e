import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AuditLog, AuditTamperError } from '../../../src/audit/index.js';
import { CHECKPOINTS_DIR, SEGMENTS_DIR, listCheckpoints } from '../../../src/audit/layout.js';
import { loadVerifier } from '../../../src/audit/keys.js';
import { payloadOf } from '../../../src/audit/ship/format.js';
import { compareWithWitness, notesInDirectory, WitnessExit } from '../../../src/audit/witness.js';
import { appendMany, auditOptions, tempDir } from '../helpers.js';

const auditctl = fileURLToPath(new URL('../../../src/cli/auditctl.js', import.meta.url));

function verify(log: string, ...extra: string[]): { status: number | null; stdout: string } {
  const result = spawnSync(process.execPath, [auditctl, 'verify', '--log', log, '--workers', '1', ...extra], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout + result.stderr };
}

/** Writes `count` records to the log in `stateDir`, with or without the checkpoint mirror. */
async function write(stateDir: string, count: number, mirrorDir?: string): Promise<void> {
  const log = await AuditLog.open(auditOptions(stateDir, { checkpoint: { everyRecords: 20, ...(mirrorDir === undefined ? {} : { mirrorDir }) } }));
  await appendMany(log, count, 4);
  await log.close();
}

describe('witnessed checkpoints expose a log rewritten with the signing key, a truncated log and a deleted checkpoint', () => {
  const temp = tempDir('bastion-witness-');
  const state = join(temp.dir, 'state');
  const mirror = join(temp.dir, 'mirror');
  const logDir = join(state, 'audit');
  let snapshot: string;
  before(async () => {
    await write(state, 50, mirror);
    snapshot = join(temp.dir, 'snapshot');
    cpSync(state, snapshot, { recursive: true });
    await write(state, 50, mirror);
  });
  after(() => temp.cleanup());

  test('the intact log agrees with its mirror (exit 0)', () => {
    const result = verify(logDir, '--witness', mirror);
    assert.equal(result.status, 0, result.stdout);
    assert.match(result.stdout, /witnessed checkpoint\(s\) agree/);
  });

  test('a log rewritten and re-chained with the key passes plain verify but --witness reports a fork (exit 5), and the gateway refuses to open it', async () => {
    const forged = join(temp.dir, 'forged');
    cpSync(state, forged, { recursive: true });
    const dir = join(forged, 'audit');
    // The attacker holds the keys: a new history under the same log id, origin and signing key.
    rmSync(join(dir, SEGMENTS_DIR), { recursive: true });
    rmSync(join(dir, CHECKPOINTS_DIR), { recursive: true });
    await write(forged, 100);
    assert.equal(verify(dir).status, 0, 'plain verify cannot tell');
    const result = verify(dir, '--witness', mirror);
    assert.equal(result.status, WitnessExit.Fork, result.stdout);
    assert.match(result.stdout, /WITNESS FORK: the local checkpoint of size \d+/);
    await assert.rejects(AuditLog.open(auditOptions(forged, { checkpoint: { mirrorDir: mirror } })), (error: Error) => error instanceof AuditTamperError && /checkpoint mirror/.test(error.message));
  });

  test('a log restored from an older copy (truncated) passes plain verify but --witness reports truncation (exit 6)', async () => {
    const dir = join(snapshot, 'audit');
    assert.equal(verify(dir).status, 0);
    const result = verify(dir, '--witness', mirror);
    assert.equal(result.status, WitnessExit.Truncated, result.stdout);
    assert.match(result.stdout, /WITNESS TRUNCATED/);
    await assert.rejects(AuditLog.open(auditOptions(snapshot, { checkpoint: { mirrorDir: mirror } })), AuditTamperError);
  });

  test('a local checkpoint deleted while its records are intact is reported missing', () => {
    const copy = join(temp.dir, 'deleted-checkpoint');
    cpSync(logDir, copy, { recursive: true });
    const second = listCheckpoints(copy)[1] ?? assert.fail('two checkpoints expected');
    unlinkSync(second.path);
    const report = compareWithWitness(copy, second.checkpoint.origin, notesInDirectory(mirror), loadVerifier(join(copy, 'audit-key.pub'), 'bastion-audit'));
    assert.deepEqual(report.findings.map((finding) => [finding.kind, finding.size]), [['missing-checkpoint', second.checkpoint.size]]);
  });

  test('checkpoints shipped as lines (an rsyslog file, a webhook receiver over HTTP) serve as the witness too', async () => {
    const notes = listCheckpoints(logDir).map((file) => ({ kind: 'checkpoint' as const, index: file.checkpoint.index ?? 0, size: file.checkpoint.size, note: file.checkpoint.text }));
    const lines = notes.map((item) => `<85>1 2026-01-01T00:00:00Z host bastion 1 checkpoint [bastion@32473 log="x" index="${item.index}" size="${item.size}"] ${payloadOf(item, 'bastion')}`).join('\n');
    const shipped = join(temp.dir, 'shipped');
    mkdirSync(shipped);
    writeFileSync(join(shipped, 'received.log'), `${lines}\n`);
    const forged = join(temp.dir, 'forged', 'audit');
    assert.equal(verify(logDir, '--witness', shipped).status, 0);
    assert.equal(verify(forged, '--witness', join(shipped, 'received.log')).status, WitnessExit.Fork);
    const server: Server = createServer((_request, response) => response.end(notes.map((item) => payloadOf(item, 'ecs')).join('\n')));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/checkpoints`;
      // Not spawnSync: this process serves the witness meanwhile.
      const child = spawn(process.execPath, [auditctl, 'verify', '--log', forged, '--workers', '1', '--witness', url], { stdio: 'ignore' });
      const status = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      assert.equal(status, WitnessExit.Fork);
    } finally {
      server.close();
    }
    assert.equal(verify(logDir, '--witness', join(temp.dir, 'nothing-here')).status, 3, 'a witness that is not there is unreadable, not clean');
  });
});
