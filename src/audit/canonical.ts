import { hash as oneShotHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { isSharedResult, sharedText } from '../pipeline/index.js';
import { AUDIT_SCHEMA, RECORD_KEYS_IN_ORDER, type AuditFields } from './schema.js';

/** Length of the `"hash":"<64 hex>",` member that a line carries and its hashed body does not. */
export const HASH_MEMBER_LENGTH = 74;
const HASH_KEY = '"hash":"';
const PREV_KEY = Buffer.from('"prev":"');
const SEQ_KEY = Buffer.from('"seq":');
const HASH_KEY_BYTES = Buffer.from(HASH_KEY);

interface MaybeWellFormed {
  isWellFormed?: () => boolean;
}

/** String.prototype.isWellFormed where the runtime has it (Node 20+); undefined elsewhere. */
export function isWellFormed(text: string): boolean | undefined {
  return (text as MaybeWellFormed).isWellFormed?.();
}

/**
 * RFC 8785 canonical JSON. Plain JSON data (what records hold) takes a direct path; anything else
 * (objects with toJSON, class instances) goes to the `canonicalize` package. The direct path is a
 * measured necessity on the append path, and a property test checks it against the package.
 */
export function canonicalJson(value: unknown): string {
  const text = stringifiedCanonical(value) ?? fastCanonical(value, 0);
  if (text !== undefined) return text;
  const fallback = canonicalize(value);
  if (fallback === undefined) throw new TypeError('value has no JSON form');
  return fallback;
}

/**
 * Canonical JSON of plain JSON data, or undefined when the value holds anything else (a lone
 * surrogate, a non-finite number, a class instance): the caller then makes it JSON-safe first.
 * Values parsed from the wire are almost always plain, and this skips copying them.
 */
export function plainCanonicalJson(value: unknown): string | undefined {
  // A result many sessions share (a cached list) is frozen: its canonical text is computed once.
  if (isSharedResult(value)) return sharedText(value, 'canonical', () => computedPlainCanonicalJson(value));
  return computedPlainCanonicalJson(value);
}

function computedPlainCanonicalJson(value: unknown): string | undefined {
  const text = stringifiedCanonical(value);
  if (text !== undefined) return text;
  try {
    return fastCanonical(value, 0);
  } catch {
    return undefined;
  }
}

const MAX_FAST_DEPTH = 64;

/**
 * Canonical JSON through one native JSON.stringify of a copy with every object's members in
 * canonical order (RFC 8785 keeps JSON.stringify's number and string forms). undefined where that
 * does not hold: then fastCanonical decides, member by member.
 */
function stringifiedCanonical(value: unknown): string | undefined {
  const copy = sortedPlainCopy(value, 0);
  if (copy === NOT_PLAIN) return undefined;
  const text = JSON.stringify(copy) as string | undefined;
  // JSON.stringify writes a lone surrogate as an escape where RFC 8785 refuses it.
  return text === undefined || text.includes('\\ud') ? undefined : text;
}

/** undefined means "not plain JSON data here: let the package decide". */
function fastCanonical(value: unknown, depth: number): string | undefined {
  if (typeof value === 'string') {
    const text = JSON.stringify(value);
    // JSON.stringify escapes a lone surrogate as \udXXX; only then is the exact check needed.
    if (text.includes('\\ud') && isWellFormed(value) === false) throw new TypeError('Lone surrogate is not allowed');
    return text;
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('non-finite numbers have no JSON form');
    return JSON.stringify(value);
  }
  if (value === null || typeof value === 'boolean') return String(value);
  if (depth > MAX_FAST_DEPTH || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) {
    let out = '[';
    for (let index = 0; index < value.length; index += 1) {
      const item: unknown = value[index];
      const text = item === undefined || typeof item === 'function' || typeof item === 'symbol' ? 'null' : fastCanonical(item, depth + 1);
      if (text === undefined) return undefined;
      out += index === 0 ? text : `,${text}`;
    }
    return `${out}]`;
  }
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return undefined;
  const record = value as Record<string, unknown>;
  if (typeof record['toJSON'] === 'function') return undefined;
  const keys = Object.keys(record).sort();
  let out = '{';
  for (const key of keys) {
    const item = record[key];
    if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
    const text = fastCanonical(item, depth + 1);
    if (text === undefined) return undefined;
    out += `${out.length === 1 ? '' : ','}${fastCanonical(key, depth)}:${text}`;
  }
  return `${out}}`;
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

// Quoted keys, rendered once, for the member-by-member path (encodeLineByMembers).
const QUOTED_KEYS: ReadonlyArray<readonly [key: string, quoted: string, beforeHash: boolean]> = RECORD_KEYS_IN_ORDER.map((key) => [key, `${JSON.stringify(key)}:`, key < 'hash']);

/** A stored line as bytes, newline included, and its record hash. */
export interface EncodedLine {
  bytes: Buffer;
  hash: string;
}

/**
 * Builds the stored line for one record. The record hash is SHA-256 over the canonical JSON of
 * the record without its `hash` member (schema, seq and prev included); the line is that JSON with
 * the member spliced in at its sorted place. The fields must have passed checkFields: members
 * outside the schema are not written.
 */
export function buildLine(fields: AuditFields & { ts: string }, seq: number, prev: string): BuiltLine {
  const encoded = encodeLine(fields, fields.ts, seq, prev);
  return { line: encoded.bytes.toString('utf8', 0, encoded.bytes.length - 1), hash: encoded.hash };
}

/**
 * buildLine as bytes, for the append path. Plain JSON data (nearly every record) is laid out as an
 * object whose members are already in canonical order, so one native JSON.stringify writes the
 * canonical text (RFC 8785 keeps JSON.stringify's number and string forms); anything else takes
 * the member-by-member path.
 */
export function encodeLine(fields: AuditFields, ts: string, seq: number, prev: string): EncodedLine {
  const ordered = orderedRecord(fields, ts, seq, prev);
  const text = ordered === NOT_PLAIN ? undefined : JSON.stringify(ordered);
  // JSON.stringify writes a lone surrogate as an escape where RFC 8785 refuses it: the general path refuses it too.
  if (text === undefined || text.includes('\\ud')) return encodeLineByMembers(fields, ts, seq, prev);
  const bytes = Buffer.from(`${text}\n`, 'utf8');
  // Members before hash are scalars or strings (schema.ts), so the first match is the member itself.
  const hashAt = bytes.indexOf(HASH_KEY_BYTES);
  const hash = recordHashOfLine(bytes.subarray(0, bytes.length - 1), hashAt);
  bytes.write(hash, hashAt + HASH_KEY_BYTES.length, 'latin1');
  return { bytes, hash };
}

const NOT_PLAIN: unique symbol = Symbol('not plain JSON data');
const LINE_KEYS_IN_ORDER: readonly string[] = [...RECORD_KEYS_IN_ORDER, 'hash'].sort();
const HASH_PLACEHOLDER = '0'.repeat(64);

// Set by lineValue while orderedRecord builds its literal (synchronous, so one flag serves all calls).
let allPlain = true;

/**
 * The line's members in canonical order, the hash as a placeholder; NOT_PLAIN if a value is not
 * plain JSON data. One literal with every schema member, absent ones undefined (JSON.stringify
 * skips them), so every record shares one fast object shape: built member by member, an object
 * of this many members falls back to a slow dictionary layout. The literal's order is checked
 * against the schema when this module loads.
 */
function orderedRecord(source: AuditFields, ts: string, seq: number, prev: string): Record<string, unknown> | typeof NOT_PLAIN {
  allPlain = true;
  const ordered: Record<string, unknown> = {
    agent_id: lineValue(source.agent_id),
    approval: lineValue(source.approval),
    approval_by: lineValue(source.approval_by),
    approval_id: lineValue(source.approval_id),
    approval_via: lineValue(source.approval_via),
    approval_wait_ms: lineValue(source.approval_wait_ms),
    args_digest: lineValue(source.args_digest),
    auth_method: lineValue(source.auth_method),
    decision: lineValue(source.decision),
    denied_by: lineValue(source.denied_by),
    error_code: lineValue(source.error_code),
    event: lineValue(source.event),
    exec_duration_ms: lineValue(source.exec_duration_ms),
    hash: HASH_PLACEHOLDER,
    info: lineValue(source.info),
    input: lineValue(source.input),
    kind: lineValue(source.kind),
    method: lineValue(source.method),
    output: lineValue(source.output),
    output_bytes: lineValue(source.output_bytes),
    output_digest: lineValue(source.output_digest),
    output_summary: lineValue(source.output_summary),
    prev,
    prompt_digest: lineValue(source.prompt_digest),
    protocol_version: lineValue(source.protocol_version),
    reason: lineValue(source.reason),
    redactions: lineValue(source.redactions),
    replica: lineValue(source.replica),
    request_bytes: lineValue(source.request_bytes),
    request_id: lineValue(source.request_id),
    schema: AUDIT_SCHEMA,
    seq,
    server: lineValue(source.server),
    session_id: lineValue(source.session_id),
    subject: lineValue(source.subject),
    task_id: lineValue(source.task_id),
    timed_out: lineValue(source.timed_out),
    token_fingerprint: lineValue(source.token_fingerprint),
    tool: lineValue(source.tool),
    tool_called_as: lineValue(source.tool_called_as),
    tools_invoked: lineValue(source.tools_invoked),
    trace_id: lineValue(source.trace_id),
    transport: lineValue(source.transport),
    ts,
    upstream_duration_ms: lineValue(source.upstream_duration_ms),
  };
  return allPlain ? ordered : NOT_PLAIN;
}

/** A member's value for orderedRecord: strings and booleans as they are, anything else through sortedPlainCopy. */
function lineValue(value: unknown): unknown {
  if (value === undefined || typeof value === 'string' || typeof value === 'boolean') return value;
  const copy = sortedPlainCopy(value, 0);
  if (copy === NOT_PLAIN) allPlain = false;
  return copy;
}

// A member missing from the literal above would be dropped from every line without an error.
const literalKeys = Object.keys(orderedRecord({ kind: 'request' }, '', 0, '') as Record<string, unknown>);
if (literalKeys.join() !== LINE_KEYS_IN_ORDER.join()) {
  throw new Error(`internal error: orderedRecord's members (${literalKeys.join()}) are not the schema's, in canonical order (${LINE_KEYS_IN_ORDER.join()})`);
}

/**
 * value with every object's members in canonical order, for JSON.stringify; NOT_PLAIN for what
 * canonical JSON writes differently from JSON.stringify (non-finite numbers, class instances,
 * toJSON) or refuses (bigint), and for nesting past MAX_FAST_DEPTH.
 */
function sortedPlainCopy(value: unknown, depth: number): unknown {
  if (typeof value === 'string' || typeof value === 'boolean' || value === null) return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : NOT_PLAIN;
  if (typeof value !== 'object' || depth > MAX_FAST_DEPTH) return NOT_PLAIN;
  if (Array.isArray(value)) {
    const copy: unknown[] = new Array<unknown>(value.length);
    for (let index = 0; index < value.length; index += 1) {
      const item: unknown = value[index];
      // JSON.stringify writes these as null inside arrays, as canonical JSON does.
      const itemCopy = item === undefined || typeof item === 'function' || typeof item === 'symbol' ? null : sortedPlainCopy(item, depth + 1);
      if (itemCopy === NOT_PLAIN) return NOT_PLAIN;
      copy[index] = itemCopy;
    }
    return copy;
  }
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return NOT_PLAIN;
  const record = value as Record<string, unknown>;
  if (typeof record['toJSON'] === 'function') return NOT_PLAIN;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(record).sort()) {
    // Array-index keys ("0", "17") enumerate before all others whatever the insertion order, so
    // JSON.stringify would not keep the sorted order; assigning "__proto__" would set the copy's
    // prototype instead of a member. Such objects take the general path.
    if (startsWithDigit(key) || key === '__proto__') return NOT_PLAIN;
    const item = record[key];
    if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
    const itemCopy = sortedPlainCopy(item, depth + 1);
    if (itemCopy === NOT_PLAIN) return NOT_PLAIN;
    copy[key] = itemCopy;
  }
  return copy;
}

function startsWithDigit(key: string): boolean {
  const first = key.charCodeAt(0);
  return first >= 0x30 && first <= 0x39;
}

/** The general path: each member through canonicalJson, which refuses what has no canonical form. */
function encodeLineByMembers(fields: AuditFields, ts: string, seq: number, prev: string): EncodedLine {
  const source = fields as unknown as Record<string, unknown>;
  let beforeHash = '';
  let afterHash = '';
  for (const [key, quoted, isBeforeHash] of QUOTED_KEYS) {
    const value = key === 'ts' ? ts : key === 'schema' ? AUDIT_SCHEMA : key === 'seq' ? seq : key === 'prev' ? prev : source[key];
    if (value === undefined) continue;
    const member = quoted + canonicalJson(value);
    if (isBeforeHash) beforeHash = beforeHash.length === 0 ? member : `${beforeHash},${member}`;
    else afterHash = afterHash.length === 0 ? member : `${afterHash},${member}`;
  }
  // prev, schema and seq always sort after hash, so afterHash is never empty.
  const hash = sha256Hex(beforeHash.length === 0 ? `{${afterHash}}` : `{${beforeHash},${afterHash}}`);
  const line = beforeHash.length === 0 ? `{${HASH_KEY}${hash}",${afterHash}}` : `{${beforeHash},${HASH_KEY}${hash}",${afterHash}}`;
  return { bytes: Buffer.from(`${line}\n`, 'utf8'), hash };
}

export interface ChainMembers {
  seq: number;
  prev: string;
  hash: string;
  /** Offset of the `"hash":"` member within the line. */
  hashAt: number;
}

/** Finds seq, prev and hash in a line without parsing it (see the layout rule in schema.ts). */
export function chainMembers(line: Buffer): ChainMembers | string {
  return chainMembersAt(line, 0, line.length);
}

/**
 * chainMembers for the line at data[start, end), searching the shared buffer in place (no view
 * per line: the verification workers call this for every record). hashAt is relative to start.
 */
export function chainMembersAt(data: Buffer, start: number, end: number): ChainMembers | string {
  const hashAt = data.indexOf(HASH_KEY_BYTES, start);
  if (hashAt < 0 || hashAt + HASH_MEMBER_LENGTH > end) return 'no hash member';
  // seq sorts after prev and everything after both is scalar: search backwards, seq first, then
  // prev from there, so each search covers only the bytes between them.
  const seqAt = data.lastIndexOf(SEQ_KEY, end - SEQ_KEY.length);
  if (seqAt < start) return 'no seq member';
  const prevAt = data.lastIndexOf(PREV_KEY, seqAt);
  if (prevAt < start) return 'no prev member';
  if (prevAt + 73 > end) return 'malformed prev member';
  const hash = data.toString('latin1', hashAt + 8, hashAt + 72);
  const prev = data.toString('latin1', prevAt + 8, prevAt + 72);
  // Hex-ness needs no separate check: hash is compared with a recomputed hex digest, prev with the previous hash.
  if (data[hashAt + 72] !== 0x22 || data[hashAt + 73] !== 0x2c) return 'malformed hash member';
  if (data[prevAt + 72] !== 0x22) return 'malformed prev member';
  let seq = 0;
  let cursor = seqAt + 6;
  const digitsStart = cursor;
  while (cursor < end && (data[cursor] as number) >= 0x30 && (data[cursor] as number) <= 0x39) {
    seq = seq * 10 + ((data[cursor] as number) - 0x30);
    cursor += 1;
  }
  if (cursor === digitsStart || cursor >= end || (data[cursor] !== 0x2c && data[cursor] !== 0x7d)) return 'malformed seq member';
  return { seq, prev, hash, hashAt: hashAt - start };
}

let bodyScratch = Buffer.alloc(64 * 1024);

/** Recomputes a line's record hash: SHA-256 of the line with its hash member removed. */
export function recordHashOfLine(line: Buffer, hashAt: number): string {
  const bodyLength = line.length - HASH_MEMBER_LENGTH;
  if (bodyLength > bodyScratch.length) bodyScratch = Buffer.alloc(bodyLength + 1024);
  line.copy(bodyScratch, 0, 0, hashAt);
  line.copy(bodyScratch, hashAt, hashAt + HASH_MEMBER_LENGTH);
  return oneShotHash('sha256', bodyScratch.subarray(0, bodyLength), 'hex');
}

/**
 * recordHashOfLine for the line at data[start, end), without the copy: shifts the bytes before the
 * hash member over it, so the body ends up contiguous. The line is destroyed; for callers that own
 * the buffer and are done with the line (the verification workers).
 */
export function recordHashInPlace(data: Buffer, start: number, end: number, hashAt: number): string {
  data.copyWithin(start + HASH_MEMBER_LENGTH, start, start + hashAt);
  return oneShotHash('sha256', data.subarray(start + HASH_MEMBER_LENGTH, end), 'hex');
}
