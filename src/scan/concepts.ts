import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DemandRule } from './directives.js';
import type { PatternFilter } from './pattern-filter.js';
import { unicodeBoundaries } from './regex-speed.js';
import { conceptPattern, patternAtoms, patternFilter } from './prepared.js';
import { RuleFileError } from './rules.js';
import { isAttackClass, isSeverity } from './types.js';

/**
 * Concept-level directive analysis (data in data/scan/concepts.json). A word list asks "does the
 * text say X"; a concept asks "what is this clause about": a shell profile, a cleanup command, a
 * verification endpoint, the user's arguments, another tool, secrecy. Each concept is a few
 * multilingual lemma patterns, so "add a line to ~/.zshrc", "ajoute une ligne à .bashrc" and a
 * clause that names `export PATH=` all become SHELL_PROFILE. The concepts of a clause, whether the
 * clause addresses the model, and whether a concept is part of the tool's own stated purpose are
 * features for the learned scorer; a few combinations are rules of their own (`combos`).
 */
export interface Concept {
  name: string;
  patterns: RegExp[];
  /** Required literals per pattern (atoms.ts); undefined means the pattern cannot be prefiltered. */
  atoms: (string[] | undefined)[];
}

export interface ConceptCombo {
  id: string;
  all: string[];
  any: string[];
  /** The clause must address the model (a directive marker matched). */
  directive: boolean;
  /** These concepts must not be part of the tool's stated purpose (a shell tool may speak of the shell). */
  outsidePurpose: string[];
  /** A negated clause ("do not change the user's arguments") protects the user; false where the attack is phrased negatively (secrecy). */
  negationProtects: boolean;
  /** Skip a clause that deprecates this tool or its own parameter (directives.json ownDeprecation). */
  notOwnDeprecation: boolean;
  /** Judged on the clause and the one before it (default), or on the clause alone. */
  window: boolean;
  /** The combo as a demand, so directive findings report it like any other. */
  demand: DemandRule;
}

export interface ConceptData {
  concepts: Concept[];
  combos: ConceptCombo[];
  /** Concepts a FOREIGN_TOOL combo also requires: only a clause with one of them needs the (costly) tool-name check. */
  foreignTriggers: Set<string>;
  /** Every concept's patterns in order, flattened, with their atom prefilter (pattern-filter.ts). */
  flat: { concept: number; re: RegExp }[];
  filter: PatternFilter;
}

/** Which flattened concept patterns may match a document (PatternFilter.live of its lower-cased text). */
export type LiveConcepts = Uint8Array;

/** Not a pattern: the clause names a tool that is neither this one nor a sibling (set by directives.ts). */
export const FOREIGN_TOOL = 'FOREIGN_TOOL';

const cache = new Map<string, ConceptData>();

function strings(value: unknown, file: string, where: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v.length === 0)) throw new RuleFileError(file, where, 'expected an array of non-empty strings');
  return value as string[];
}

// Moved to regex-speed.ts (prepared.ts needs it without importing this module); still exported from here.
export { unicodeBoundaries };

/**
 * A concept pattern, compiled when first asked for. Unicode boundaries, and a boundary next to a certain word
 * character as one lookaround (regex-speed.ts), prepared at build time. Compiling the 120-odd iu patterns (their
 * \\p{L} classes) was the largest part of the CLI's start-up, and a scan runs only the few whose atoms occur. A
 * source the build did not compile (prepared.ts) is compiled now, so a broken rule file still fails at load.
 */
function compile(source: string, file: string, where: string): () => RegExp {
  const { source: rewritten, prepared } = conceptPattern(source);
  let re: RegExp | undefined;
  const get = (): RegExp => (re ??= new RegExp(rewritten, 'iu'));
  if (prepared) return get;
  try {
    get();
  } catch (error) {
    throw new RuleFileError(file, where, `invalid regular expression (${(error as Error).message})`);
  }
  return get;
}

/** The compile-on-use thunks behind each loaded concept's patterns. */
const patternThunks = new WeakMap<Concept, (() => RegExp)[]>();

function makeConcept(name: string, thunks: (() => RegExp)[], atoms: (string[] | undefined)[]): Concept {
  let all: RegExp[] | undefined;
  const concept: Concept = { name, atoms, get patterns() { return (all ??= thunks.map((t) => t())); } };
  patternThunks.set(concept, thunks);
  return concept;
}

function parseCombo(raw: unknown, i: number, names: Set<string>, file: string): ConceptCombo {
  const where = `combos[${i}]`;
  const c = (raw ?? {}) as Record<string, unknown>;
  const text = (key: string): string => {
    const v = c[key];
    if (typeof v !== 'string' || v.length === 0) throw new RuleFileError(file, `${where}.${key}`, 'expected a non-empty string');
    return v;
  };
  if (!isAttackClass(c.attackClass)) throw new RuleFileError(file, `${where}.attackClass`, 'expected an attack class');
  if (!isSeverity(c.severity)) throw new RuleFileError(file, `${where}.severity`, 'expected a severity');
  const all = strings(c.all, file, `${where}.all`);
  const any = strings(c.any, file, `${where}.any`);
  const outsidePurpose = strings(c.outsidePurpose, file, `${where}.outsidePurpose`);
  if (all.length === 0) throw new RuleFileError(file, `${where}.all`, 'a combo needs at least one concept');
  for (const n of [...all, ...any, ...outsidePurpose]) if (!names.has(n)) throw new RuleFileError(file, where, `unknown concept ${n}`);
  const id = text('id');
  return {
    id, all, any, outsidePurpose, directive: c.directive === true, negationProtects: c.negationProtects !== false, notOwnDeprecation: c.notOwnDeprecation === true, window: c.window !== false,
    demand: { kind: `concept:${id}`, attackClass: c.attackClass, ruleId: text('ruleId'), severity: c.severity, title: text('title'), why: text('why'),
      inherent: true, markerFree: c.directive !== true, needs: [], patterns: [], atoms: [], exemptWhenPurpose: /(?!)/, purposeConcepts: [] },
  };
}

/** Loads and validates data/scan/concepts.json once per data directory; no file means no concepts. */
export function loadConceptData(dataDir: string): ConceptData {
  const cached = cache.get(dataDir);
  if (cached) return cached;
  const file = join(dataDir, 'concepts.json');
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return withFilter([], [], new Set());
    throw new RuleFileError(file, 'whole file', `not readable JSON (${(error as Error).message})`);
  }
  if (typeof doc.concepts !== 'object' || doc.concepts === null) throw new RuleFileError(file, 'concepts', 'expected an object of concept name to patterns');
  const concepts = Object.entries(doc.concepts as Record<string, unknown>).map(([name, list]): Concept => {
    const sources = strings(list, file, `concepts.${name}`);
    return makeConcept(name, sources.map((s, j) => compile(s, file, `concepts.${name}[${j}]`)), sources.map((s) => patternAtoms(s)));
  });
  // FOREIGN_TOOL is set by directives.ts when a clause names a tool of no sibling: combos may use it.
  const names = new Set([...concepts.map((c) => c.name), FOREIGN_TOOL]);
  const combos = Array.isArray(doc.combos) ? doc.combos.map((raw, i) => parseCombo(raw, i, names, file)) : [];
  const foreignTriggers = new Set(combos.filter((c) => [...c.all, ...c.any].includes(FOREIGN_TOOL)).flatMap((c) => c.all.filter((n) => n !== FOREIGN_TOOL)));
  const data = withFilter(concepts, combos, foreignTriggers);
  cache.set(dataDir, data);
  return data;
}

function withFilter(concepts: Concept[], combos: ConceptCombo[], foreignTriggers: Set<string>): ConceptData {
  // Each entry's `re` compiles its pattern on first use (compile above).
  const flat = concepts.flatMap((c, concept) => (patternThunks.get(c) ?? c.patterns.map((re) => () => re)).map((thunk) => ({ concept, get re(): RegExp { return thunk(); } })));
  return { concepts, combos, foreignTriggers, flat, filter: patternFilter(concepts.flatMap((c) => c.atoms)) };
}

/** The concepts whose patterns may match a document (their atoms occur in its lower-cased text). */
const mayMatch = (atoms: string[] | undefined, lowered: string): boolean => atoms === undefined || atoms.some((x) => lowered.includes(x));

export function liveConcepts(data: ConceptData, lowered: string): Concept[] {
  return data.concepts.map((c) => {
    const keep = c.patterns.map((_, i) => mayMatch(c.atoms[i], lowered));
    return { name: c.name, patterns: c.patterns.filter((_, i) => keep[i]), atoms: c.atoms.filter((_, i) => keep[i]) };
  }).filter((c) => c.patterns.length > 0);
}

/** The flattened patterns that may match a document (its lower-cased text): liveConcepts as a mask, in one pass. */
export function liveConceptMask(data: ConceptData, lowered: string): LiveConcepts {
  return data.filter.live(lowered);
}

/**
 * conceptsIn(text, liveConcepts(data, document)) without the per-clause `includes` loops: a pattern runs only when
 * it is live for the document and one of its atoms is in the clause. Same concepts, same order. `here` is the
 * clause's own mask (liveConceptMask of its lower-cased text), for a caller that has it already.
 */
export function conceptsInLive(text: string, data: ConceptData, live: LiveConcepts, here: LiveConcepts = data.filter.live(text.toLowerCase())): Set<string> {
  const found = new Set<string>();
  let done = -1;
  for (let p = 0; p < data.flat.length; p += 1) {
    if (live[p] !== 1 || here[p] !== 1) continue;
    const { concept, re } = data.flat[p] as { concept: number; re: RegExp };
    if (concept === done) continue;
    if (re.test(text)) { found.add((data.concepts[concept] as Concept).name); done = concept; }
  }
  return found;
}

/** The concepts a text mentions. Each pattern runs only when one of its atoms is in the clause (most are not). */
export function conceptsIn(text: string, concepts: Concept[]): Set<string> {
  const found = new Set<string>();
  const lowered = text.toLowerCase();
  for (const c of concepts) if (c.patterns.some((re, i) => mayMatch(c.atoms[i], lowered) && re.test(text))) found.add(c.name);
  return found;
}

/**
 * Scorer features of one clause: a concept in a clause addressed to the model (dk:), outside the tool's stated
 * purpose (ko:), and two concepts together (kk:). A bare mention is no feature: honest tools speak of users,
 * notes and conversations all the time, and as a feature it taught the scorer that short texts about them are poisoned.
 */
export function clauseConceptFeatures(found: Set<string>, directive: boolean, purpose: Set<string>): string[] {
  const names = [...found].sort();
  const out: string[] = [];
  for (const n of names) {
    if (directive) out.push(`dk:${n}`);
    if (!purpose.has(n)) out.push(`ko:${n}`);
  }
  for (let i = 0; i < names.length; i += 1) for (let j = i + 1; j < names.length; j += 1) out.push(`kk:${names[i]}+${names[j]}`);
  return out;
}

/** The combos a clause satisfies. */
export interface ComboClause {
  /** Concepts of this clause alone, and of this clause with the one before it. */
  found: Set<string>;
  windowed: Set<string>;
  directive: boolean;
  /** Whether this clause alone addresses the model. */
  directiveAlone: boolean;
  negated: boolean;
  ownDeprecation: boolean;
}

export function matchingCombos(data: ConceptData, clause: ComboClause, purpose: Set<string>): ConceptCombo[] {
  return data.combos.filter((c) => {
    const found = c.window ? clause.windowed : clause.found;
    // Set lookups first: `negated` and `ownDeprecation` may be computed on first read (a regex each).
    return (!c.directive || (c.window ? clause.directive : clause.directiveAlone))
    && c.all.every((n) => found.has(n))
    && (c.any.length === 0 || c.any.some((n) => found.has(n)))
    && c.outsidePurpose.every((n) => !purpose.has(n))
    && !(c.negationProtects && clause.negated) && !(c.notOwnDeprecation && clause.ownDeprecation);
  });
}
