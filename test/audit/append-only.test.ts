import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AuditLog, AuditTamperError, ThreadedAuditLog, resolveAuditConfig, verifyLog } from '../../src/audit/index.js';
import { callRecordInput } from '../../src/audit/record.js';
import { success } from '../../src/pipeline/index.js';
import { probeAppendOnly } from '../../src/audit/append-only.js';
import { checkpointFilePaths, listSegments } from '../../src/audit/layout.js';
import { readRecords } from '../../src/audit/reader.js';
import { removeTree } from '../helpers/tmp.js';
import { appendMany, auditOptions, callContext } from './helpers.js';

const BASTION = fileURLToPath(new URL('../../src/cli/bastion.js', import.meta.url));
const ATTACKER = fileURLToPath(new URL('../fixtures/append-only-attacker.js', import.meta.url));
/** ext4 keeps the attributes; the test directory must be on it (/var/tmp here), not on a tmpfs of an older kernel. */
const EXT4 = 0xef53;
const BASE = '/var/tmp';

function flagsOf(path: string): string {
  return execFileSync('lsattr', [path], { encoding: 'utf8' }).split(/\s/)[0] ?? '';
}

/** Runs the fixture as root without CAP_LINUX_IMMUTABLE (util-linux setpriv). */
function withoutImmutableCapability(args: string[]): { stdout: string; status: number | null } {
  const result = spawnSync('setpriv', ['--bounding-set=-linux_immutable', '--inh-caps=-linux_immutable', '--', process.execPath, ATTACKER, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { stdout: result.stdout, status: result.status };
}

interface Attack {
  linuxImmutable: boolean;
  results: Array<{ path: string; overwrite: string; truncate: string; rename: string; unlink: string; append: string }>;
}

const support = probeAppendOnly(BASE);

describe('append-only audit segments (audit.appendOnly, chattr +a / +i)', { skip: support.supported ? false : `needs root with CAP_LINUX_IMMUTABLE on ext4/xfs: ${support.detail}` }, () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(BASE, 'bastion-append-only-'));
    assert.equal(statfsSync(dir).type, EXT4, `${dir} is on ext4`);
  });
  // The attributes outlive the test's process: lifted before the directory can go.
  after(() => removeTree(dir));

  test('root without CAP_LINUX_IMMUTABLE cannot overwrite, truncate, rename or delete a segment; Bastion keeps appending; retention deletes through its own path and records it', async () => {
    const options = auditOptions(join(dir, 'state'), { appendOnly: 'required', checkpoint: { everyRecords: 20 }, rotation: { maxBytes: 4096 }, retention: { maxTotalBytes: 40_960 } });
    const log = await AuditLog.open(options);
    try {
      await appendMany(log, 120, 4);
      await log.flush();
      const segments = listSegments(options.dir);
      assert.ok(segments.length >= 3, `several segments (${segments.length})`);
      const active = segments[segments.length - 1] as { path: string };
      const sealed = segments.slice(0, -1).map((segment) => segment.path);
      assert.match(flagsOf(active.path), /a/, 'the active segment is append-only');
      assert.doesNotMatch(flagsOf(active.path), /i/);
      for (const path of sealed) assert.match(flagsOf(path), /i/, `${path} is immutable`);

      const attacked = withoutImmutableCapability(['attack', active.path, sealed[sealed.length - 1] as string]);
      assert.equal(attacked.status, 0, attacked.stdout);
      const report = JSON.parse(attacked.stdout) as Attack;
      assert.equal(report.linuxImmutable, false, 'the attacker really lacks CAP_LINUX_IMMUTABLE');
      const [onActive, onSealed] = report.results;
      assert.deepEqual({ ...onActive, path: undefined }, { path: undefined, overwrite: 'EPERM', truncate: 'EPERM', rename: 'EPERM', unlink: 'EPERM', append: 'ok' }, 'the active segment only takes appends');
      assert.deepEqual({ ...onSealed, path: undefined }, { path: undefined, overwrite: 'EPERM', truncate: 'EPERM', rename: 'EPERM', unlink: 'EPERM', append: 'EPERM' }, 'a sealed segment takes nothing');
      const chattr = spawnSync('setpriv', ['--bounding-set=-linux_immutable', '--', 'chattr', '-i', sealed[sealed.length - 1] as string], { encoding: 'utf8' });
      assert.notEqual(chattr.status, 0, 'nor can it lift the attribute');

      // The writer itself goes on, across rotations, and the log verifies.
      await appendMany(log, 30, 4);
      await log.flush();
      const after = listSegments(options.dir);
      assert.ok(after[after.length - 1]?.path !== active.path, 'the log rotated after the attack');
      assert.match(flagsOf(active.path), /i/, 'the segment that was active is immutable once sealed');
      assert.match(flagsOf((after[after.length - 1] as { path: string }).path), /a/);
    } finally {
      await log.close();
    }
    assert.equal(verifyLog(options.dir).status, 'clean');
    const retention = [...readRecords(options.dir)].map((item) => item.record).filter((record) => record.event === 'audit.retention');
    assert.ok(retention.length > 0, 'retention ran');
    const deleted = retention.flatMap((record) => (record.info?.['deleted'] ?? []) as Array<{ segment: string; immutable_lifted?: boolean }>);
    assert.ok(deleted.length > 0 && deleted.every((entry) => entry.immutable_lifted === true), 'every deletion records that the immutable attribute was lifted');
    for (const entry of deleted) assert.equal(existsSync(join(options.dir, 'segments', entry.segment)), false, `${entry.segment} is gone`);
    const remaining = listSegments(options.dir);
    assert.match(flagsOf((remaining[remaining.length - 1] as { path: string }).path), /a/, 'after close the active segment stays append-only');
  });

  test('the adaptive writer keeps the attributes across moves: the main thread rotates, freezes the closed segment and appends to the new one', async () => {
    const options = auditOptions(join(dir, 'adaptive'), { appendOnly: 'required', checkpoint: { everyRecords: 25 }, rotation: { maxBytes: 8192 } });
    const log = await ThreadedAuditLog.open(options, { adaptive: true });
    try {
      for (let i = 0; i < 120; i += 1) await log.appendCall(callRecordInput(callContext(i, { i }), success({ ok: i })), { arguments: 'truncated', outputs: 'truncated', maxChars: 64 }, false, true);
      assert.equal(log.writingOn, 'main');
      const segments = listSegments(options.dir);
      assert.ok(segments.length >= 3, `rotated on the main thread (${segments.length} segments)`);
      for (const sealed of segments.slice(0, -1)) assert.match(flagsOf(sealed.path), /i/, `${sealed.name} is immutable`);
      assert.match(flagsOf((segments[segments.length - 1] as { path: string }).path), /a/, 'the active segment is append-only');
    } finally {
      await log.close();
    }
    assert.equal(verifyLog(options.dir).status, 'clean');
  });

  test("'required' refuses to open where the process cannot set the attributes; 'auto' opens without a warning and reports why", () => {
    const stateDir = join(dir, 'unprivileged');
    const required = withoutImmutableCapability(['open', stateDir, 'required']);
    const refused = JSON.parse(required.stdout) as { opened: boolean; error?: string };
    assert.equal(refused.opened, false);
    assert.match(refused.error ?? '', /audit\.appendOnly is 'required'.*CAP_LINUX_IMMUTABLE/);
    const auto = spawnSync('setpriv', ['--bounding-set=-linux_immutable', '--', process.execPath, ATTACKER, 'open', stateDir, 'auto'], { encoding: 'utf8', timeout: 60_000 });
    const opened = JSON.parse(auto.stdout) as { opened: boolean; appendOnly?: { enabled: boolean; detail: string } };
    assert.equal(opened.opened, true);
    assert.equal(opened.appendOnly?.enabled, false);
    assert.match(opened.appendOnly?.detail ?? '', /lacks CAP_LINUX_IMMUTABLE/, 'the log says why (the gateway logs it in one info line)');
    assert.doesNotMatch(auto.stderr, /Warning/, 'auto, the default, is silent where the host cannot: no process warning');
    const segment = listSegments(join(stateDir, 'audit'))[0] as { path: string };
    assert.doesNotMatch(flagsOf(segment.path), /[ai]/);
  });

  test('checkpoint notes and their mirror copies are immutable once written: root without CAP_LINUX_IMMUTABLE cannot rewrite or delete them', async () => {
    const mirrorDir = join(dir, 'mirror');
    const options = auditOptions(join(dir, 'checkpoints-state'), { appendOnly: 'required', checkpoint: { everyRecords: 10, mirrorDir } });
    const log = await AuditLog.open(options);
    try {
      await appendMany(log, 45, 4);
      await log.flush();
      const written = checkpointFilePaths(join(options.dir, 'checkpoints'));
      const mirrored = checkpointFilePaths(mirrorDir);
      assert.ok(written.length >= 4, `several checkpoints (${written.length})`);
      assert.equal(mirrored.length, written.length, 'every checkpoint is mirrored');
      for (const path of [...written, ...mirrored]) assert.match(flagsOf(path), /i/, `${path} is immutable`);
      assert.deepEqual(log.appendOnly.mirror, { enabled: true, detail: log.appendOnly.mirror?.detail }, 'the mirror is probed and protected too');
      const attacked = withoutImmutableCapability(['attack', written[written.length - 1] as string, mirrored[0] as string]);
      const report = JSON.parse(attacked.stdout) as Attack;
      for (const result of report.results) assert.deepEqual({ ...result, path: undefined }, { path: undefined, overwrite: 'EPERM', truncate: 'EPERM', rename: 'EPERM', unlink: 'EPERM', append: 'EPERM' }, `${result.path} takes nothing`);
    } finally {
      await log.close();
    }
    assert.equal(verifyLog(options.dir).status, 'clean');
  });

  test('a tamper restart with the attributes set: the damaged files and the superseded mirror move aside, stay evidence, and the new chain is protected', async () => {
    const mirrorDir = join(dir, 'tamper-mirror');
    const options = auditOptions(join(dir, 'tamper-state'), { appendOnly: 'required', checkpoint: { everyRecords: 10, mirrorDir }, rotation: { maxBytes: 4096 } });
    let log = await AuditLog.open(options);
    await appendMany(log, 60, 4);
    await log.close();
    // The signing key replaced: every checkpoint now fails its signature, and the restart must move the protected files.
    unlinkSync(options.checkpoint.keyFile);
    await assert.rejects(AuditLog.open(options), AuditTamperError);
    log = await AuditLog.open({ ...options, startNewSegmentAfterTamper: true });
    try {
      await appendMany(log, 5, 1);
      await log.flush();
      const restart = [...readRecords(options.dir)].map((item) => item.record).find((record) => record.event === 'audit.tamper_restart');
      assert.ok(restart !== undefined, 'the restart is recorded');
      const [quarantined] = readdirSync(join(options.dir, 'quarantine'));
      assert.ok(checkpointFilePaths(join(options.dir, 'quarantine', quarantined as string, 'checkpoints')).length > 0, 'the old checkpoints moved to quarantine/ as evidence');
      const superseded = join(mirrorDir, 'superseded');
      const [stamp] = readdirSync(superseded);
      const movedNotes = checkpointFilePaths(join(superseded, stamp as string));
      assert.ok(movedNotes.length > 0, 'the old chain\'s mirror notes moved to superseded/');
      for (const path of movedNotes) assert.match(flagsOf(path), /i/, `${path} stays immutable`);
      const segments = listSegments(options.dir);
      assert.match(flagsOf((segments[segments.length - 1] as { path: string }).path), /a/, 'the new chain\'s active segment is append-only');
      for (const path of checkpointFilePaths(join(options.dir, 'checkpoints'))) assert.match(flagsOf(path), /i/);
    } finally {
      await log.close();
    }
  });

  test('the default (auto) protects the log of a root process that holds the capability, and the test helper still deletes it', async () => {
    const stateDir = join(dir, 'default-state');
    const options = resolveAuditConfig({ checkpoint: { everyRecords: 10 }, rotation: { maxBytes: 4096 } }, stateDir);
    assert.equal(options.appendOnly, 'auto', 'auto is the default');
    const log = await AuditLog.open(options);
    await appendMany(log, 60, 4);
    await log.close();
    assert.equal(log.appendOnly.enabled, true, log.appendOnly.detail);
    const segments = listSegments(options.dir);
    assert.match(flagsOf((segments[segments.length - 1] as { path: string }).path), /a/);
    for (const segment of segments.slice(0, -1)) assert.match(flagsOf(segment.path), /i/);
    // A torn tail (appending is all +a allows): with audit.appendOnly off the writer cannot cut it, and says how to proceed.
    appendFileSync((segments[segments.length - 1] as { path: string }).path, '{"torn":');
    await assert.rejects(AuditLog.open({ ...options, appendOnly: 'off' }), /carry the append-only or immutable attribute from an earlier run.*chattr -R -a -i/);
    const repaired = await AuditLog.open(options);
    assert.equal(repaired.recovery.truncatedBytes, '{"torn":'.length, 'auto lifts, cuts and protects again');
    await repaired.close();
    assert.equal(verifyLog(options.dir).status, 'clean');
    assert.throws(() => rmSync(stateDir, { recursive: true, force: true }), 'a plain recursive delete fails, even for root');
    removeTree(stateDir);
    assert.equal(existsSync(stateDir), false, 'removeTree lifts the attributes first');
  });

  test('bastion doctor reports whether the audit directory can be made append-only', () => {
    const doctor = (prefix: string[]): { status: string; detail: string } | undefined => {
      const run = spawnSync(prefix[0] ?? '', [...prefix.slice(1), process.execPath, BASTION, 'doctor', '--json', '--audit-dir', join(dir, 'not-yet', 'audit')], { encoding: 'utf8', timeout: 60_000 });
      return (JSON.parse(run.stdout) as { checks: Array<{ control: string; status: string; detail: string }> }).checks.find((check) => check.control === 'audit append-only');
    };
    const privileged = doctor(['env']);
    assert.equal(privileged?.status, 'ok', privileged?.detail);
    assert.match(privileged?.detail ?? '', /ext2\/3\/4 keeps FS_APPEND_FL/);
    const unprivileged = doctor(['setpriv', '--bounding-set=-linux_immutable', '--']);
    assert.equal(unprivileged?.status, 'degraded');
    assert.match(unprivileged?.detail ?? '', /lacks CAP_LINUX_IMMUTABLE.*auto \(the default\) runs with ordinary files/);
    // With --config, the gateway's own audit directory and mode.
    const configFile = join(dir, 'doctor.yaml');
    writeFileSync(configFile, `version: 1\nstateDir: doctor-state\naudit: { appendOnly: required }\nservers:\n  echo: { transport: stdio, command: ${JSON.stringify(process.execPath)}, trust: unsigned }\n`);
    const configured = spawnSync('setpriv', ['--bounding-set=-linux_immutable', '--', process.execPath, BASTION, 'doctor', '--json', '--config', configFile], { encoding: 'utf8', timeout: 60_000 });
    const check = (JSON.parse(configured.stdout) as { checks: Array<{ control: string; status: string; detail: string }> }).checks.find((item) => item.control === 'audit append-only');
    assert.equal(check?.status, 'missing', check?.detail);
    assert.match(check?.detail ?? '', /required: the gateway will refuse to start/);
  });
});
