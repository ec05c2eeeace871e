import { createHmac, createSecretKey, hkdfSync, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { chainMembers } from './canonical.js';
import type { ScanProblem } from './scan.js';
import type { SegmentFile } from './layout.js';
import { AuditEvent } from './schema.js';

/**
 * Batch seals and keyed argument digests.
 *
 * The record chain is plain SHA-256: anyone who can write the log can extend it. What an attacker
 * without the gateway's keys cannot make is a seal: every group-commit batch ends with an
 * `audit.seal` record whose `info.mac` is an HMAC-SHA-256, under a per-log key, of the log id, the
 * seal's seq and its `prev` (the chain head, which commits to every record before it). The writer
 * checks the seals of the records after the newest checkpoint when it opens the log and signs only
 * sealed records into a new checkpoint. A seal that closes the records of a checkpoint also names
 * that checkpoint's index, so a verifier holding only the public key can tell that a checkpoint
 * the log announces is missing.
 *
 * The per-log keys come from one 32-byte secret kept beside the signing key (audit-mac.key, 0600)
 * by HKDF-SHA-256 with the log id as salt: one key for seals, one for argument digests.
 */

export interface LogKeys {
  // Key objects: createHmac then uses the key as it is instead of importing a buffer per call.
  seal: KeyObject;
  digest: KeyObject;
}

const SECRET_BYTES = 32;

/** Loads the secret the per-log keys derive from, creating it (mode 0600) when absent. */
export function loadOrCreateLogSecret(path: string): Buffer {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const fd = openSync(path, 'wx', 0o600);
    try {
      writeSync(fd, `${randomBytes(SECRET_BYTES).toString('hex')}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) throw new Error(`audit MAC key ${path} has mode ${mode.toString(8)}: others can read it, and whoever reads it can seal forged records. Run chmod 600 ${path}`);
  const text = readFileSync(path, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(text)) throw new Error(`audit MAC key ${path} does not hold 64 hex digits (32 bytes). Restore it from backup; a new key cannot check the seals already in the log`);
  return Buffer.from(text, 'hex');
}

export function deriveLogKeys(secret: Buffer, logId: string): LogKeys {
  const derive = (purpose: string): KeyObject => createSecretKey(Buffer.from(hkdfSync('sha256', secret, Buffer.from(logId, 'utf8'), Buffer.from(`bastion.audit ${purpose}`, 'utf8'), 32)));
  return { seal: derive('batch seal'), digest: derive('argument digest') };
}

/** The MAC a seal at `seq` carries; `checkpoint` is the index of the checkpoint it closes, if any. */
export function sealMac(key: KeyObject, logId: string, seq: number, prev: string, checkpoint: number | undefined): string {
  return createHmac('sha256', key).update(`bastion.audit.seal/1\n${logId}\n${seq}\n${prev}\n${checkpoint ?? '-'}\n`).digest('hex');
}

/** `hmac-sha256:<hex>` of a canonical JSON text: confirmable only by a holder of the log's key. */
export function keyedDigest(key: KeyObject, text: string): string {
  return `hmac-sha256:${createHmac('sha256', key).update(text, 'utf8').digest('hex')}`;
}

const SEAL_MARKER = Buffer.from(`"event":"${AuditEvent.Seal}"`);

export interface SealInfo {
  mac: string;
  checkpoint?: number;
}

/** The seal carried by a record line, or undefined when the line is not a seal record. */
/** Whether a seal record line (the record at `seq` of log `logId`) carries the MAC under `key`. */
export function sealLineVerifies(key: KeyObject, logId: string, line: Buffer, seq: number): boolean {
  const seal = sealOf(line);
  const members = chainMembers(line);
  if (seal === undefined || typeof members === 'string') return false;
  const expected = sealMac(key, logId, seq, members.prev, seal.checkpoint);
  return seal.mac.length === expected.length && timingSafeEqual(Buffer.from(seal.mac, 'latin1'), Buffer.from(expected, 'latin1'));
}

export function sealOf(line: Buffer): SealInfo | undefined {
  // A nested member of input could hold the same bytes: the parse below decides.
  if (!line.includes(SEAL_MARKER)) return undefined;
  let record: { kind?: unknown; event?: unknown; info?: { mac?: unknown; checkpoint?: unknown } };
  try {
    record = JSON.parse(line.toString('utf8')) as typeof record;
  } catch {
    return undefined;
  }
  if (record.kind !== 'event' || record.event !== AuditEvent.Seal) return undefined;
  const mac = record.info?.mac;
  const checkpoint = record.info?.checkpoint;
  return { mac: typeof mac === 'string' ? mac : '', checkpoint: typeof checkpoint === 'number' ? checkpoint : undefined };
}

export interface Position {
  segment: SegmentFile;
  offset: number;
  seq: number;
  line: number;
}

/**
 * Watches the records the writer's open-time scan walks (an onRecord callback) and checks the
 * seal of every record after the newest checkpoint. After the walk: `problem` is a seal that does
 * not verify (tampering); `firstUnsealed` is the first record no seal covers (a batch cut by a
 * crash before its seal reached the disk, or records appended by someone without the key);
 * `announced` lists checkpoints the sealed tail says were written.
 */
export class SealTracker {
  problem: ScanProblem | undefined;
  firstUnsealed: Position | undefined;
  readonly announced: Array<{ index: number; size: number }> = [];
  private lines = new Map<string, number>();

  constructor(
    private readonly key: KeyObject,
    private readonly logId: string,
    private readonly fromSeq: number,
  ) {}

  readonly observe = (line: Buffer, seq: number, segment: SegmentFile, offset: number): void => {
    const lineNumber = (this.lines.get(segment.path) ?? 0) + 1;
    this.lines.set(segment.path, lineNumber);
    if (seq < this.fromSeq || this.problem !== undefined) return;
    const seal = sealOf(line);
    if (seal === undefined) {
      this.firstUnsealed ??= { segment, offset, seq, line: lineNumber };
      return;
    }
    const members = chainMembers(line);
    const expected = typeof members === 'string' ? '' : sealMac(this.key, this.logId, seq, members.prev, seal.checkpoint);
    if (!macEquals(seal.mac, expected)) {
      this.problem = { segment: segment.path, line: lineNumber, offset, seq, message: 'batch seal does not verify under this log\'s MAC key: records after the last checkpoint were forged or changed (or audit-mac.key was replaced)', tornTail: false };
      return;
    }
    if (seal.checkpoint !== undefined) this.announced.push({ index: seal.checkpoint, size: seq + 1 });
    this.firstUnsealed = undefined;
  };
}

function macEquals(given: string, expected: string): boolean {
  if (given.length !== expected.length || expected.length === 0) return false;
  return timingSafeEqual(Buffer.from(given, 'latin1'), Buffer.from(expected, 'latin1'));
}
