import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AtomIndex, type AtomIndexTables } from './atom-index.js';
import { prefilterAtoms, regexAtoms, regexAtomsDeep } from './atoms.js';
import { PatternFilter } from './pattern-filter.js';
import { ASCII_BOUNDARY, fastBoundaries, unicodeBoundaries, UNICODE_WORD_BOUNDARY } from './regex-speed.js';

/**
 * Scanner data derived from the rule files, prepared at build time so the CLI's start-up does not derive it
 * again: the rewritten regex sources (regex-speed.ts), the atoms of each pattern (atoms.ts) and the atom
 * indexes (atom-index.ts). Each is a pure function of its input, so the prepared data is a memo keyed by the
 * full input: a rule directory whose patterns were not prepared (edited rules, --rules) gets the same answer
 * computed at run time. `npm run build` writes the memo (scripts/prepare-scan-data.mjs) next to this module
 * in dist/, inside the package: detection data is never read from a user-writable cache. The memo is used
 * only when it was made by this code on this Unicode version (`CODE_FILES` and process.versions.unicode,
 * hashed): a changed rewrite or a rebuilt index compiled by `tsc` alone is not answered from a stale memo.
 */

const FORMAT = 1;
/** The modules whose functions the memo answers for (this one holds the compositions the call sites use). */
const CODE_FILES = ['prepared.js', 'regex-speed.js', 'atoms.js', 'atom-index.js', 'pattern-filter.js'];
const DATA_FILE = 'prepared-data.json';

type StringKind = 'concept' | 'directive';
type AtomsKind = 'pattern' | 'rule';

interface Memo {
  strings: Record<StringKind, Map<string, string>>;
  atoms: Record<AtomsKind, Map<string, string[] | undefined>>;
  /** By JSON.stringify of the atom list given to the index. */
  indexes: Map<string, AtomIndexTables>;
}

/** The file as JSON: typed arrays as base64 of their little-endian bytes. */
interface PreparedFile {
  format: number;
  code: string;
  strings: Record<StringKind, Record<string, string>>;
  atoms: Record<AtomsKind, Record<string, string[] | null>>;
  indexes: ({ atoms: string[] } & Record<keyof AtomIndexTables, string>)[];
}

const TABLE_KEYS: (keyof AtomIndexTables)[] = ['fail', 'outputLink', 'endStart', 'endIds', 'order', 'edgeStart', 'edgeUnit', 'edgeNext'];

const emptyMemo = (): Memo => ({ strings: { concept: new Map(), directive: new Map() }, atoms: { pattern: new Map(), rule: new Map() }, indexes: new Map() });

let memo: Memo | undefined;
let recording: Memo | undefined;
const counts = { hits: 0, misses: 0 };

/** sha256 of the code the memo stands for, or undefined when it cannot be read (running from src/ under tsx). */
function codeDigest(): string | undefined {
  const hash = createHash('sha256').update(`format ${FORMAT} unicode ${process.versions.unicode ?? '?'}\n`);
  try {
    for (const name of CODE_FILES) hash.update(readFileSync(new URL(`./${name}`, import.meta.url))).update('\0');
  } catch {
    return undefined;
  }
  return hash.digest('hex');
}

function toInt32(base64: string): Int32Array {
  const bytes = Buffer.from(base64, 'base64');
  // Copied: a pooled Buffer's offset need not be a multiple of 4.
  const out = new Int32Array(bytes.byteLength >> 2);
  new Uint8Array(out.buffer).set(bytes.subarray(0, out.byteLength));
  return out;
}

const fromInt32 = (array: Int32Array): string => Buffer.from(array.buffer, array.byteOffset, array.byteLength).toString('base64');

function loadMemo(): Memo {
  const loaded = emptyMemo();
  let text: string;
  try {
    text = readFileSync(new URL(`./${DATA_FILE}`, import.meta.url), 'utf8');
  } catch {
    return loaded;
  }
  const file = JSON.parse(text) as PreparedFile;
  if (file.format !== FORMAT || file.code !== codeDigest()) return loaded;
  for (const kind of ['concept', 'directive'] as const) loaded.strings[kind] = new Map(Object.entries(file.strings[kind]));
  for (const kind of ['pattern', 'rule'] as const) loaded.atoms[kind] = new Map(Object.entries(file.atoms[kind]).map(([k, v]) => [k, v ?? undefined]));
  for (const entry of file.indexes) {
    const tables = Object.fromEntries(TABLE_KEYS.map((key) => [key, toInt32(entry[key])])) as unknown as AtomIndexTables;
    loaded.indexes.set(JSON.stringify(entry.atoms), tables);
  }
  return loaded;
}

function lookupEntry<K, V>(pick: (m: Memo) => Map<K, V>, key: K, compute: () => V): { value: V; prepared: boolean } {
  memo ??= loadMemo();
  const map = pick(memo);
  if (map.has(key)) {
    counts.hits += 1;
    return { value: map.get(key) as V, prepared: true };
  }
  counts.misses += 1;
  const value = compute();
  if (recording) pick(recording).set(key, value);
  return { value, prepared: false };
}

const lookup = <K, V>(pick: (m: Memo) => Map<K, V>, key: K, compute: () => V): V => lookupEntry(pick, key, compute).value;

/**
 * A concept pattern as concepts.ts compiles it: Unicode word boundaries, fast where a word character is certain.
 * `prepared`: the build compiled this source with flags iu (the preparing run loads every rule and fails on a
 * broken one), so concepts.ts may defer compiling it to its first use without losing the load-time check.
 */
export function conceptPattern(source: string): { source: string; prepared: boolean } {
  const { value, prepared } = lookupEntry((m) => m.strings.concept, source, () => unicodeBoundaries(fastBoundaries(source, UNICODE_WORD_BOUNDARY)));
  return { source: value, prepared };
}

export const conceptSource = (source: string): string => conceptPattern(source).source;

/** A directive pattern as directives.ts compiles it: ASCII boundaries, fast where a word character is certain. */
export function directiveSource(source: string): string {
  return lookup((m) => m.strings.directive, source, () => fastBoundaries(source, ASCII_BOUNDARY));
}

/** prefilterAtoms(source): the atoms of a concept or directive pattern. */
export function patternAtoms(source: string): string[] | undefined {
  return lookup((m) => m.atoms.pattern, source, () => prefilterAtoms(source));
}

/** The atoms of a rule file's pattern (rules.ts, metadata.ts): top-level literals, else the deep ones. */
export function ruleAtoms(source: string): string[] | undefined {
  return lookup((m) => m.atoms.rule, source, () => regexAtoms(source) ?? regexAtomsDeep(source));
}

/** new AtomIndex(atoms), from the prepared tables when these exact atoms were prepared. */
export function atomIndex(atoms: readonly string[]): AtomIndex {
  let built: AtomIndex | undefined;
  const tables = lookup((m) => m.indexes, JSON.stringify(atoms), () => {
    built = new AtomIndex(atoms);
    return built.tables();
  });
  return built ?? new AtomIndex(atoms, tables);
}

/** new PatternFilter(atoms) with its index from atomIndex. */
export function patternFilter(atoms: readonly (readonly string[] | undefined)[]): PatternFilter {
  return new PatternFilter(atoms, atomIndex);
}

/** How many answers came from the prepared data and how many were computed (tests and the build check). */
export function preparedCounts(): { hits: number; misses: number } {
  return { ...counts };
}

/**
 * For scripts/prepare-scan-data.mjs: ignores the prepared file (so everything is computed) and remembers
 * every answer until preparedFile() serialises them.
 */
export function startPreparing(): void {
  memo = emptyMemo();
  recording = emptyMemo();
}

export function preparedFile(): string {
  const code = codeDigest();
  if (recording === undefined || code === undefined) throw new Error('prepared: startPreparing() first, from the built dist/');
  const r = recording;
  const file: PreparedFile = {
    format: FORMAT,
    code,
    strings: { concept: Object.fromEntries(r.strings.concept), directive: Object.fromEntries(r.strings.directive) },
    atoms: { pattern: Object.fromEntries([...r.atoms.pattern].map(([k, v]) => [k, v ?? null])), rule: Object.fromEntries([...r.atoms.rule].map(([k, v]) => [k, v ?? null])) },
    indexes: [...r.indexes].map(([key, tables]) => ({ atoms: JSON.parse(key) as string[], ...Object.fromEntries(TABLE_KEYS.map((k) => [k, fromInt32(tables[k])])) }) as PreparedFile['indexes'][number]),
  };
  return JSON.stringify(file);
}
