import { createHash, hash as oneShotHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { AUDIT_SCHEMA, type AuditFields } from './schema.js';

/** Length of the `"hash":"<64 hex>",` member that a line carries and its hashed body does not. */
export const HASH_MEMBER_LENGTH = 74;
const HASH_KEY = '"hash":"';

export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value has no JSON form');
  return text;
}

export function sha256Hex(data: string | Buffer): string {
  return oneShotHash('sha256', data, 'hex');
}

/** `sha256:<hex>` of the canonical JSON of a value: how arguments, outputs and prompts are digested. */
export function digestOf(value: unknown): string {
  return `sha256:${sha256Hex(canonicalJson(value === undefined ? null : value))}`;
}

export interface BuiltLine {
  line: string;
  hash: string;
}

/**
 * Builds the stored line for one record. The record hash is SHA-256 over the canonical JSON of
 * the record without its `hash` member (schema, seq and prev included); the line is the canonical
 * JSON with it. Both are assembled from the same sorted members, so canonicalisation runs once.
 */
export function buildLine(fields: AuditFields & { ts: string }, seq: number, prev: string): BuiltLine {
  const members: Array<[string, unknown]> = [];
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) members.push([key, value]);
  members.push(['schema', AUDIT_SCHEMA], ['seq', seq], ['prev', prev]);
  // RFC 8785 orders keys by UTF-16 code units, which is what the default sort compares.
  members.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const parts = members.map(([key, value]) => `${JSON.stringify(key)}:${canonicalJson(value)}`);
  let insertAt = parts.length;
  for (let index = 0; index < members.length; index += 1) {
    if ((members[index] as [string, unknown])[0] > 'hash') {
      insertAt = index;
      break;
    }
  }
  const body = `{${parts.join(',')}}`;
  const hash = sha256Hex(body);
  parts.splice(insertAt, 0, `${HASH_KEY}${hash}"`);
  const line = `{${parts.join(',')}}`;
  return { line, hash };
}

export interface ChainMembers {
  seq: number;
  prev: string;
  hash: string;
  /** Offset of the `"hash":"` member within the line. */
  hashAt: number;
}

const PREV_KEY = Buffer.from('"prev":"');
const SEQ_KEY = Buffer.from('"seq":');
const HASH_KEY_BYTES = Buffer.from(HASH_KEY);

/** Finds seq, prev and hash in a line without parsing it (see the layout rule in schema.ts). */
export function chainMembers(line: Buffer): ChainMembers | string {
  const hashAt = line.indexOf(HASH_KEY_BYTES);
  if (hashAt < 0) return 'no hash member';
  const prevAt = line.lastIndexOf(PREV_KEY);
  if (prevAt < 0) return 'no prev member';
  const seqAt = line.lastIndexOf(SEQ_KEY);
  if (seqAt < 0) return 'no seq member';
  const hash = line.toString('latin1', hashAt + 8, hashAt + 72);
  const prev = line.toString('latin1', prevAt + 8, prevAt + 72);
  if (line[hashAt + 72] !== 0x22 || line[hashAt + 73] !== 0x2c || !isHex64(hash)) return 'malformed hash member';
  if (line[prevAt + 72] !== 0x22 || !isHex64(prev)) return 'malformed prev member';
  let seq = 0;
  let cursor = seqAt + 6;
  const digitsStart = cursor;
  while (cursor < line.length && (line[cursor] as number) >= 0x30 && (line[cursor] as number) <= 0x39) {
    seq = seq * 10 + ((line[cursor] as number) - 0x30);
    cursor += 1;
  }
  if (cursor === digitsStart || (line[cursor] !== 0x2c && line[cursor] !== 0x7d)) return 'malformed seq member';
  return { seq, prev, hash, hashAt };
}

function isHex64(text: string): boolean {
  return /^[0-9a-f]{64}$/.test(text);
}

/** Recomputes a line's record hash: SHA-256 of the line with its hash member removed. */
export function recordHashOfLine(line: Buffer, hashAt: number): string {
  return createHash('sha256').update(line.subarray(0, hashAt)).update(line.subarray(hashAt + HASH_MEMBER_LENGTH)).digest('hex');
}
