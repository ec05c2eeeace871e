import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { directiveSource, ruleAtoms } from './prepared.js';
import { isAttackClass, isSeverity, type AttackClass, type Severity } from './types.js';
import type { ScanModel } from './model.js';

/** Detection content loaded from data/scan. Rules change more often than engines, so they live in files. */
export interface PatternRule {
  id: string;
  title: string;
  category: string;
  /** The attack class a match is evidence of (metadata rules). */
  attackClass?: AttackClass;
  severity: Severity;
  confidence: number;
  patterns: RegExp[];
  /** Per pattern, literals one of which every match contains (lower-cased); undefined = no prefilter. */
  atoms: (string[] | undefined)[];
  why: string;
  remediation: string;
  capability?: 'filesystem' | 'network' | 'process';
  /** true: match code with string contents blanked (rules about calls, not data). */
  codeOnly: boolean;
  /** Literal substrings (from a host list), matched case-insensitively. */
  substrings: string[];
  /** Languages the rule is about (code rules): ["js"] rules are skipped for Python files. Absent = all. */
  languages?: string[];
}

export interface PurposeData {
  argumentKinds: Record<string, RegExp>;
  purposes: { name: string; match: RegExp; allows: string[] }[];
  /** A kind the tool's own text explains (a "file converter" asking for a path) is not a mismatch. */
  explainedBy: Record<string, RegExp>;
  contextUnlessPurpose: RegExp;
}

export interface UnicodeData {
  zeroWidth: [number, number][];
  bidi: [number, number][];
  tags: [number, number][];
  variationSelectorsSupplement: [number, number][];
  privateUse: [number, number][];
  confusables: Map<string, string>;
}

export interface Thresholds {
  severityPoints: Record<Severity, number>;
  verdict: { blockAtScore: number; reviewAtScore: number; blockOnSeverity: Severity; reviewOnSeverity: Severity };
  entropy: {
    minLength: number;
    base64Charset: { minBits: number; minLength: number };
    hexCharset: { minBits: number; minLength: number; standardDigestLengths: number[] };
    anyCharset: { minBits: number; minLength: number };
    longBlobLength: number;
    sortedRunRatio: number;
  };
  minified: { avgLineLength: number; maxLineLength: number; expectedPathPattern: RegExp };
  files: { maxFileBytes: number; codeExtensions: string[] };
  installScripts: { hooks: string[]; knownBuilders: RegExp };
  behaviour: { callTimeoutMs: number; startTimeoutMs: number; maxToolsCalled: number };
}

export interface WeakSignals {
  highAt: number;
  mediumAt: number;
  /** Kinds that alone (in any number) describe what an honest tool handles; a combination needs one other kind. */
  passiveKinds: string[];
  signals: { kind: string; patterns: RegExp[] }[];
}

export interface RuleSet {
  dataDir: string;
  weakSignals: WeakSignals;
  metadata: PatternRule[];
  code: PatternRule[];
  /** Python idioms (data/scan/python-rules.json), for .py files. */
  python: PatternRule[];
  purpose: PurposeData;
  unicode: UnicodeData;
  thresholds: Thresholds;
  /** Absolute paths of the YARA rule files. */
  yaraFiles: string[];
  /**
   * The learned scorer to use instead of data/scan/model.json (cross-validation scores each fold with
   * the model trained without it); `null` runs the rules alone. Absent: the shipped model.
   */
  model?: ScanModel | null;
}

export class RuleFileError extends Error {
  constructor(file: string, where: string, what: string) {
    super(`${file}: ${where}: ${what}. Fix the rule file; the scanner does not run with broken rules.`);
    this.name = 'RuleFileError';
  }
}

/** Finds data/scan by walking up from this module (works from src/ under tsx and from dist/src/). */
export function defaultDataDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i += 1) {
    const candidate = join(dir, 'data', 'scan');
    if (existsSync(join(candidate, 'metadata-rules.json'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error('scan: cannot find data/scan (the detection rules) above the installed module; pass dataDir explicitly.');
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch (error) {
    throw new RuleFileError(file, 'whole file', `not readable JSON (${(error as Error).message})`);
  }
}

function asRecord(value: unknown, file: string, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new RuleFileError(file, where, 'expected an object');
  return value as Record<string, unknown>;
}

function asString(value: unknown, file: string, where: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new RuleFileError(file, where, 'expected a non-empty string');
  return value;
}

function compile(source: string, flags: string, file: string, where: string): RegExp {
  try {
    return new RegExp(source, flags);
  } catch (error) {
    throw new RuleFileError(file, where, `invalid regular expression (${(error as Error).message})`);
  }
}

/**
 * `fast`: compile each pattern with its word boundaries rewritten to one lookaround where a word character is
 * certain (regex-speed.ts, ASCII \\b under flags iu; prepared at build time), which matches exactly where the
 * pattern as written does. The atoms stay those of the source as written.
 */
function loadPatternRules(file: string, defaultFlags: string, hostListDir: string, fast = false): PatternRule[] {
  const doc = asRecord(readJson(file), file, 'top level');
  if (!Array.isArray(doc.rules)) throw new RuleFileError(file, 'rules', 'expected an array');
  const seen = new Set<string>();
  return doc.rules.map((raw, index) => {
    const where = `rules[${index}]`;
    const rule = asRecord(raw, file, where);
    const id = asString(rule.id, file, `${where}.id`);
    if (seen.has(id)) throw new RuleFileError(file, `${where}.id`, `duplicate rule id ${id}`);
    seen.add(id);
    if (!isSeverity(rule.severity)) throw new RuleFileError(file, `${where}.severity`, 'expected info, low, medium, high or critical');
    const confidence = rule.confidence;
    if (typeof confidence !== 'number' || confidence < 0 || confidence > 1) throw new RuleFileError(file, `${where}.confidence`, 'expected a number in 0..1');
    if (!Array.isArray(rule.patterns)) throw new RuleFileError(file, `${where}.patterns`, 'expected an array of regexes');
    const flags = rule.ignoreCase === true && !defaultFlags.includes('i') ? `${defaultFlags}i` : defaultFlags;
    const sources = rule.patterns.map((p, i) => asString(p, file, `${where}.patterns[${i}]`));
    const rewrite = fast && flags.includes('i') && flags.includes('u');
    const patterns = sources.map((source, i) => compile(rewrite ? directiveSource(source) : source, flags, file, `${where}.patterns[${i}]`));
    const substrings = typeof rule.hostList === 'string' ? loadWordList(join(hostListDir, rule.hostList)) : [];
    const capability = rule.capability;
    if (capability !== undefined && capability !== 'filesystem' && capability !== 'network' && capability !== 'process') {
      throw new RuleFileError(file, `${where}.capability`, 'expected filesystem, network or process');
    }
    if (rule.attackClass !== undefined && !isAttackClass(rule.attackClass)) throw new RuleFileError(file, `${where}.attackClass`, 'expected one of the attack classes in docs/scan.md');
    return {
      id,
      ...(rule.attackClass !== undefined ? { attackClass: rule.attackClass } : {}),
      title: asString(rule.title, file, `${where}.title`),
      category: asString(rule.category, file, `${where}.category`),
      severity: rule.severity,
      confidence,
      patterns,
      atoms: sources.map((source) => ruleAtoms(source)),
      substrings,
      codeOnly: rule.codeOnly === true,
      why: asString(rule.why, file, `${where}.why`),
      remediation: asString(rule.remediation, file, `${where}.remediation`),
      ...(capability !== undefined ? { capability } : {}),
      ...(Array.isArray(rule.languages) ? { languages: rule.languages.map((l, i) => asString(l, file, `${where}.languages[${i}]`)) } : {}),
    };
  });
}

export function loadWordList(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.trim().toLowerCase())
    .filter((line) => line.length > 0 && !line.startsWith('#'));
}

function ranges(value: unknown, file: string, where: string): [number, number][] {
  if (!Array.isArray(value)) throw new RuleFileError(file, where, 'expected an array of [from, to] hex pairs');
  return value.map((pair, i) => {
    if (!Array.isArray(pair) || pair.length !== 2) throw new RuleFileError(file, `${where}[${i}]`, 'expected [from, to]');
    const [from, to] = pair.map((hex) => Number.parseInt(asString(hex, file, `${where}[${i}]`), 16));
    if (from === undefined || to === undefined || Number.isNaN(from) || Number.isNaN(to) || from > to) throw new RuleFileError(file, `${where}[${i}]`, 'bad code point range');
    return [from, to];
  });
}

function loadUnicode(file: string): UnicodeData {
  const doc = asRecord(readJson(file), file, 'top level');
  const confusables = new Map<string, string>();
  for (const [from, to] of Object.entries(asRecord(doc.confusables, file, 'confusables'))) confusables.set(from, asString(to, file, `confusables.${from}`));
  return {
    zeroWidth: ranges(doc.zeroWidth, file, 'zeroWidth'),
    bidi: ranges(doc.bidi, file, 'bidi'),
    tags: ranges(doc.tags, file, 'tags'),
    variationSelectorsSupplement: ranges(doc.variationSelectorsSupplement, file, 'variationSelectorsSupplement'),
    privateUse: ranges(doc.privateUse, file, 'privateUse'),
    confusables,
  };
}

function loadPurpose(file: string): PurposeData {
  const doc = asRecord(readJson(file), file, 'top level');
  const kinds: Record<string, RegExp> = {};
  for (const [kind, source] of Object.entries(asRecord(doc.argumentKinds, file, 'argumentKinds'))) {
    kinds[kind] = compile(asString(source, file, `argumentKinds.${kind}`), 'iu', file, `argumentKinds.${kind}`);
  }
  if (!Array.isArray(doc.purposes)) throw new RuleFileError(file, 'purposes', 'expected an array');
  const purposes = doc.purposes.map((raw, i) => {
    const p = asRecord(raw, file, `purposes[${i}]`);
    const allows = Array.isArray(p.allows) ? p.allows.map((a, j) => asString(a, file, `purposes[${i}].allows[${j}]`)) : [];
    return { name: asString(p.name, file, `purposes[${i}].name`), match: compile(asString(p.match, file, `purposes[${i}].match`), 'iu', file, `purposes[${i}].match`), allows };
  });
  const explainedBy: Record<string, RegExp> = {};
  for (const [kind, source] of Object.entries(asRecord(doc.explainedBy, file, 'explainedBy'))) {
    explainedBy[kind] = compile(asString(source, file, `explainedBy.${kind}`), 'iu', file, `explainedBy.${kind}`);
  }
  const ctx = asRecord(doc.alwaysSuspiciousContext, file, 'alwaysSuspiciousContext');
  return { argumentKinds: kinds, purposes, explainedBy, contextUnlessPurpose: compile(asString(ctx.unlessPurpose, file, 'alwaysSuspiciousContext.unlessPurpose'), 'iu', file, 'alwaysSuspiciousContext.unlessPurpose') };
}

function loadWeakSignals(file: string): WeakSignals {
  const doc = asRecord(readJson(file), file, 'top level');
  if (typeof doc.highAt !== 'number' || typeof doc.mediumAt !== 'number') throw new RuleFileError(file, 'highAt/mediumAt', 'expected numbers');
  const signals = Object.entries(asRecord(doc.signals, file, 'signals')).map(([kind, list]) => {
    if (!Array.isArray(list)) throw new RuleFileError(file, `signals.${kind}`, 'expected an array of regexes');
    return { kind, patterns: list.map((p, i) => compile(asString(p, file, `signals.${kind}[${i}]`), 'iu', file, `signals.${kind}[${i}]`)) };
  });
  const passive = doc.passiveKinds ?? [];
  if (!Array.isArray(passive)) throw new RuleFileError(file, 'passiveKinds', 'expected an array of signal kinds');
  const passiveKinds = passive.map((k, i) => asString(k, file, `passiveKinds[${i}]`));
  return { highAt: doc.highAt, mediumAt: doc.mediumAt, passiveKinds, signals };
}

function loadThresholds(file: string): Thresholds {
  const doc = asRecord(readJson(file), file, 'top level') as unknown as Thresholds & {
    minified: { expectedPathPattern: string };
    installScripts: { knownBuilders: string };
  };
  const points = asRecord(doc.severityPoints, file, 'severityPoints');
  for (const s of ['info', 'low', 'medium', 'high', 'critical']) {
    if (typeof points[s] !== 'number') throw new RuleFileError(file, `severityPoints.${s}`, 'expected a number');
  }
  return {
    ...doc,
    minified: { ...doc.minified, expectedPathPattern: compile(doc.minified.expectedPathPattern, 'i', file, 'minified.expectedPathPattern') },
    installScripts: { ...doc.installScripts, knownBuilders: compile(doc.installScripts.knownBuilders, '', file, 'installScripts.knownBuilders') },
  };
}

const cache = new Map<string, RuleSet>();

/** Loads and validates every rule file; throws RuleFileError naming the file and field when one is broken. */
export function loadRules(dataDir: string = defaultDataDir()): RuleSet {
  const dir = resolve(dataDir);
  const cached = cache.get(dir);
  if (cached) return cached;
  const yaraDir = join(dir, 'yara');
  const rules: RuleSet = {
    dataDir: dir,
    weakSignals: loadWeakSignals(join(dir, 'weak-signals.json')),
    metadata: loadPatternRules(join(dir, 'metadata-rules.json'), 'iu', dir, true),
    code: loadPatternRules(join(dir, 'code-rules.json'), 'u', dir),
    python: loadPatternRules(join(dir, 'python-rules.json'), 'u', dir),
    purpose: loadPurpose(join(dir, 'purpose.json')),
    unicode: loadUnicode(join(dir, 'unicode.json')),
    thresholds: loadThresholds(join(dir, 'thresholds.json')),
    yaraFiles: existsSync(yaraDir) ? readdirSync(yaraDir).filter((n) => n.endsWith('.yar')).sort().map((n) => join(yaraDir, n)) : [],
  };
  cache.set(dir, rules);
  return rules;
}
