import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { clauseConceptFeatures, conceptsInLive, FOREIGN_TOOL, liveConceptMask, loadConceptData, matchingCombos, type ComboClause, type ConceptData } from './concepts.js';
import { PatternFilter } from './pattern-filter.js';
import { directiveSource, patternAtoms, patternFilter } from './prepared.js';
import { makeFinding } from './finding.js';
import { RuleFileError, type RuleSet } from './rules.js';
import { cleanText, decodeTagCharacters, textVariants, type TextVariant } from './text.js';
import { isAttackClass, isSeverity, type AttackClass, type Finding, type FindingLocation, type Severity } from './types.js';

/** What a directive clause may demand of the model, loaded from data/scan/directives.json. */
export interface DemandRule {
  kind: string;
  attackClass: AttackClass;
  ruleId: string;
  severity: Severity;
  title: string;
  why: string;
  /** Out of scope whatever it touches (hiding, editing a shell profile, escalating). */
  inherent: boolean;
  /** Judged in every sentence, not only in directives (editing a shell profile is an attack however it is phrased). */
  markerFree: boolean;
  /** Otherwise one of these objects must be in the same sentence. */
  needs: string[];
  patterns: RegExp[];
  /** Required literals of each pattern (atoms.ts): a pattern whose atoms are absent from the text is not run. */
  atoms: (string[] | undefined)[];
  exemptWhenPurpose: RegExp;
  /** Concepts (concepts.ts) that make the demand the tool's own business when its stated purpose is about them. */
  purposeConcepts: string[];
}

export interface DirectiveData {
  markers: RegExp[];
  markerAtoms: (string[] | undefined)[];
  outOfScope: Record<string, RegExp>;
  demands: DemandRule[];
  fixedValue: RegExp;
  preferClaim: RegExp;
  ownDeprecation: RegExp;
  /** "Do not include API keys in the query": a protective directive, not a demand. */
  negation: RegExp;
  redirectTo: RegExp;
  /** A passive statement of the server's own behaviour ("never silently discarded"): not a demand to hide. */
  hideStatement: RegExp;
  /** A sibling tool that returns instructions, docs or a schema: calling it first is onboarding. */
  guidanceTool: RegExp;
  /** Every demand's patterns flattened in order (their atoms follow the markers' in clauseFilterOf's prefilter). */
  demandPatterns: RegExp[];
}

/** One text the model reads, grouped by what it belongs to (a tool, a prompt, the server's instructions). */
export interface DirectiveDocument {
  subject: string;
  fields: { text: string; location: FindingLocation }[];
  /** The tool's own name and parameter names: a directive about these is the tool's business. */
  ownNames: string[];
  /** Tools of the same server: calling one of them is in scope unless every call is demanded. */
  siblingTools: string[];
  /** Name, title and first sentence: what the tool says it is for. */
  purpose: string;
}

export interface DirectiveHit {
  demand: DemandRule;
  sentence: string;
  location: FindingLocation;
  marker: string;
  objects: string[];
  variant: TextVariant['kind'];
}

export interface DirectiveAnalysis {
  hits: DirectiveHit[];
  /** Features for the learned scorer: which demands and objects occur in directive sentences. */
  features: string[];
}

const dataCache = new Map<string, DirectiveData>();

function compileList(list: unknown, file: string, where: string): RegExp[] {
  if (!Array.isArray(list)) throw new RuleFileError(file, where, 'expected an array of regexes');
  return list.map((source, i) => compileOne(source, file, `${where}[${i}]`));
}

function compileOne(source: unknown, file: string, where: string): RegExp {
  if (typeof source !== 'string' || source.length === 0) throw new RuleFileError(file, where, 'expected a regex string');
  try {
    // A \\b next to a certain word character becomes one lookaround (regex-speed.ts; prepared at build time): faster to compile and to scan.
    return new RegExp(directiveSource(source), 'iu');
  } catch (error) {
    throw new RuleFileError(file, where, `invalid regular expression (${(error as Error).message})`);
  }
}

function text(value: unknown, file: string, where: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new RuleFileError(file, where, 'expected a non-empty string');
  return value;
}

/** Loads and validates data/scan/directives.json once per data directory. */
export function loadDirectiveData(dataDir: string): DirectiveData {
  const cached = dataCache.get(dataDir);
  if (cached) return cached;
  const file = join(dataDir, 'directives.json');
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new RuleFileError(file, 'whole file', `not readable JSON (${(error as Error).message})`);
  }
  const outOfScope: Record<string, RegExp> = {};
  for (const [name, source] of Object.entries((doc.outOfScope ?? {}) as Record<string, unknown>)) outOfScope[name] = compileOne(source, file, `outOfScope.${name}`);
  if (!Array.isArray(doc.demands)) throw new RuleFileError(file, 'demands', 'expected an array');
  const demands = doc.demands.map((raw: unknown, i: number): DemandRule => {
    const where = `demands[${i}]`;
    const d = (raw ?? {}) as Record<string, unknown>;
    if (!isAttackClass(d.attackClass)) throw new RuleFileError(file, `${where}.attackClass`, 'expected an attack class');
    if (!isSeverity(d.severity)) throw new RuleFileError(file, `${where}.severity`, 'expected a severity');
    const needs = Array.isArray(d.needs) ? d.needs.map((n, j) => text(n, file, `${where}.needs[${j}]`)) : [];
    return {
      kind: text(d.kind, file, `${where}.kind`), attackClass: d.attackClass, ruleId: text(d.ruleId, file, `${where}.ruleId`), severity: d.severity,
      title: text(d.title, file, `${where}.title`), why: text(d.why, file, `${where}.why`), inherent: d.inherent === true, markerFree: d.markerFree === true, needs,
      patterns: compileList(d.patterns, file, `${where}.patterns`), atoms: [], exemptWhenPurpose: compileOne(d.exemptWhenPurpose, file, `${where}.exemptWhenPurpose`),
      purposeConcepts: Array.isArray(d.purposeConcepts) ? d.purposeConcepts.map((n, j) => text(n, file, `${where}.purposeConcepts[${j}]`)) : [],
    };
  });
  const data: DirectiveData = {
    markers: compileList(doc.markers, file, 'markers'), markerAtoms: [], outOfScope, demands,
    fixedValue: compileOne(doc.fixedValue, file, 'fixedValue'), preferClaim: compileOne(doc.preferClaim, file, 'preferClaim'), ownDeprecation: compileOne(doc.ownDeprecation, file, 'ownDeprecation'), negation: compileOne(doc.negation, file, 'negation'), redirectTo: compileOne(doc.redirectTo, file, 'redirectTo'),
    hideStatement: compileOne(doc.hideStatement, file, 'hideStatement'), guidanceTool: compileOne(doc.guidanceTool, file, 'guidanceTool'),
    demandPatterns: demands.flatMap((d) => d.patterns),
  };
  data.markerAtoms = (doc.markers as string[]).map((source) => patternAtoms(source));
  for (const d of demands) d.atoms = d.patterns.map((re) => patternAtoms(re.source));
  dataCache.set(dataDir, data);
  return data;
}


/** Sentences and clauses: split at sentence ends (Latin and CJK), line breaks, list bullets and semicolons. */
export function splitClauses(input: string): string[] {
  return input
    .split(/(?<=[.!?])\s+(?=[^a-z0-9])|(?<=[。！？；])|\n+|;\s+|\s+[-*•]\s+(?=\p{Lu})/u)
    .map((s) => s.replace(/^[\s>*#\-•]+/, '').trim())
    .filter((s) => s.length > 1);
}

export function identifierWords(name: string): string {
  return name.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/[_.-]+/g, ' ');
}

function isCalledOrNamedTool(sentence: string, at: number, word: string): boolean {
  const before = sentence.slice(Math.max(0, at - 24), at);
  const after = sentence.slice(at + word.length, at + word.length + 12);
  return /\b(call|invoke|run|use|trigger|execute|prefer)\s+(the\s+)?$/i.test(before) || /^\s+(tool|function|command)\b/i.test(after);
}

/** Identifier-like tokens (snake_case, camelCase, kebab-case, dotted, `backticked`): how descriptions name other tools. */
function identifiersIn(sentence: string): string[] {
  const out = new Set<string>();
  for (const m of sentence.matchAll(/`([\w.-]{2,64})`|\b([a-z][a-z0-9]*(?:[_.-][a-z0-9]+)+|[a-z]+[A-Z][A-Za-z0-9]+)\b/g)) {
    const id = m[1] ?? m[2];
    // A bare hyphenated word ("location-based", "read-only") is English, not a tool name, unless the
    // sentence treats it as one: called, or followed by "tool".
    if (m[2] && /^[a-z]+(-[a-z]+)+$/.test(m[2]) && !isCalledOrNamedTool(sentence, m.index ?? 0, m[2])) continue;
    if (id && !/^(e\.g|i\.e|etc|https?|www)\b/i.test(id) && !/\.(com|org|net|io|json|md|txt|js|ts|py)$/i.test(id)) out.add(id);
  }
  return [...out];
}

/** The start of the called-foreign regex of objectsIn: any of its matches holds a match of this. */
const CALL_VERB = /\b(call|invoke|run|use|trigger|execute)\s/i;

const norm = (s: string): string => s.toLowerCase().replace(/[-_.\s]+/g, '');

/** A document's own names and its siblings, normalised (norm) once per analysis rather than once per clause. */
interface DocumentNames { own: Set<string>; siblings: Set<string>; siblingList: string[] }

/**
 * Normalised sibling lists by list: buildDocuments gives every document of a server the same siblingTools array,
 * so a server's names are normalised once, not once per tool (quadratic on servers with hundreds of tools).
 * A document's lists are not changed once it is analysed.
 */
const siblingNames = new WeakMap<readonly string[], { siblings: Set<string>; siblingList: string[] }>();

function documentNames(doc: DirectiveDocument): DocumentNames {
  let sib = siblingNames.get(doc.siblingTools);
  if (sib === undefined) {
    const siblings = new Set(doc.siblingTools.map(norm));
    sib = { siblings, siblingList: [...siblings] };
    siblingNames.set(doc.siblingTools, sib);
  }
  return { own: new Set(doc.ownNames.map(norm)), ...sib };
}

function objectsIn(sentence: string, names: DocumentNames, data: DirectiveData): string[] {
  const found: string[] = [];
  for (const [name, re] of Object.entries(data.outOfScope)) if (re.test(sentence)) found.push(name);
  const { own, siblings, siblingList } = names;
  const named = identifiersIn(sentence);
  const foreign = named.filter((id) => !own.has(norm(id)));
  // A sibling may be named without its server prefix ("list-properties" for "hubspot-list-properties").
  const isSibling = (id: string): boolean => {
    const n = norm(id);
    return siblings.has(n) || (n.length >= 6 && siblingList.some((s) => s.endsWith(n)));
  };
  const strangers = foreign.filter((id) => !isSibling(id));
  if (strangers.length > 0) found.push('other-tool-name');
  if (foreign.length > 0) found.push('tool-name');
  // A tool of no known server named right after a call verb: "always call `sync_audit` first".
  // One regex for all the names (an alternation matches where any of them would), built only when a call verb is there.
  if (strangers.length > 0 && CALL_VERB.test(sentence) && new RegExp(`\\b(call|invoke|run|use|trigger|execute)\\s+(the\\s+)?[\`'"]?(?:${strangers.map((id) => id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})`, 'i').test(sentence)) found.push('called-foreign');
  // Every tool the clause names is this tool or a sibling that hands out guidance ("call `retrieve-instructions` first").
  if (named.length > 0 && strangers.length === 0 && named.every((id) => data.guidanceTool.test(identifierWords(id).toLowerCase()))) found.push('guidance-sibling');
  if (data.fixedValue.test(sentence)) found.push('fixed-value');
  if (data.preferClaim.test(sentence)) found.push('prefer-claim');
  return found;
}

function demandApplies(demand: DemandRule, sentence: string, objects: string[], doc: DirectiveDocument, data: DirectiveData, purposeConcepts: Set<string>): boolean {
  if (demand.exemptWhenPurpose.test(doc.purpose) || demand.purposeConcepts.some((c) => purposeConcepts.has(c))) return false;
  if (demand.kind === 'redirect' && (data.ownDeprecation.test(sentence) || !data.redirectTo.test(sentence))) return false;
  // Hiding is demanded in the negative ("do not tell"); for the others a negated demand protects the user.
  if (demand.kind !== 'hide' && demand.kind !== 'redirect' && demand.kind !== 'privilege' && data.negation.test(sentence)) return false;
  if (demand.kind === 'hide' && data.hideStatement.test(sentence)) return false;
  if (demand.kind === 'call-first' && objects.includes('guidance-sibling')) return false;
  if (demand.kind === 'change-argument') return objects.includes('user-arguments') || objects.includes('fixed-value');
  if (demand.kind === 'send') return (objects.includes('url') || objects.includes('ip')) && (objects.includes('beacon-purpose') || objects.includes('answer-timing') || objects.includes('every-answer'));
  if (demand.kind === 'prefer') return objects.includes('prefer-claim') && (objects.includes('other-tools') || objects.includes('other-tool-name') || /\b(always|only|never|exclusively)\b|(immer|toujours|siempre|sempre|всегда|总是|始终|常に)/iu.test(sentence));
  if (demand.inherent) return true;
  return demand.needs.some((n) => objects.includes(n));
}

/** A clause as matchingCombos sees it; `negated` and `ownDeprecation` run their regex on first read (getters on the prototype: cheap to create). */
class Clause implements ComboClause {
  private negatedMemo: boolean | undefined;
  private ownDeprecationMemo: boolean | undefined;
  constructor(readonly found: Set<string>, readonly windowed: Set<string>, readonly directive: boolean, readonly directiveAlone: boolean,
    private readonly sentence: string, private readonly pair: string, private readonly data: DirectiveData) {}

  get negated(): boolean {
    return (this.negatedMemo ??= this.data.negation.test(this.sentence));
  }

  get ownDeprecation(): boolean {
    return (this.ownDeprecationMemo ??= this.data.ownDeprecation.test(this.pair));
  }
}

/** The marker, demand and concept prefilters as one (pattern-filter.ts): one pass over a text answers all three. */
interface ClauseFilter { filter: PatternFilter; masks: (live: Uint8Array) => [Uint8Array, Uint8Array, Uint8Array] }

const clauseFilters = new WeakMap<DirectiveData, { concepts: ConceptData; value: ClauseFilter }>();

function clauseFilterOf(data: DirectiveData, concepts: ConceptData): ClauseFilter {
  const cached = clauseFilters.get(data);
  if (cached?.concepts === concepts) return cached.value;
  const demandAtoms = data.demands.flatMap((d) => d.atoms);
  const filter = patternFilter([...data.markerAtoms, ...demandAtoms, ...concepts.concepts.flatMap((c) => c.atoms)]);
  const m = data.markerAtoms.length;
  const d = m + demandAtoms.length;
  // Views, not copies: the same answers a filter of the markers, of the demands or of the concepts alone would give.
  const value: ClauseFilter = { filter, masks: (live) => [live.subarray(0, m), live.subarray(m, d), live.subarray(d)] };
  clauseFilters.set(data, { concepts, value });
  return value;
}

const SCANNED_VARIANTS = new Set<TextVariant['kind']>(['raw', 'cleaned', 'confusables', 'tags', 'html-entities', 'base64', 'percent']);

/** Finds the directives addressed to the model in one document and judges whether each concerns the tool's own purpose. */
export function analyzeDirectives(doc: DirectiveDocument, rules: RuleSet): DirectiveAnalysis {
  const data = loadDirectiveData(rules.dataDir);
  const hits: DirectiveHit[] = [];
  const features = new Set<string>();
  const fieldVariants = doc.fields.map((field) => ({ field, variants: textVariants(field.text, rules.unicode).filter((v) => SCANNED_VARIANTS.has(v.kind)) }));
  // Prefilter once per document: most patterns' literals occur nowhere in it, so no clause needs them.
  const lowered = fieldVariants.flatMap((f) => f.variants.map((v) => v.text)).join('\n').toLowerCase();
  const conceptData = loadConceptData(rules.dataDir);
  const { filter: clauseFilter, masks } = clauseFilterOf(data, conceptData);
  const [markerLive, demandLive, concepts] = masks(clauseFilter.live(lowered));
  // Each demand's patterns as indices into demandPatterns, kept where the document may hold a match.
  let flat = 0;
  const livePatterns = new Map(data.demands.map((d) => {
    const from = flat;
    flat += d.patterns.length;
    return [d, d.patterns.map((_, i) => from + i).filter((p) => demandLive[p] === 1)];
  }));
  const liveDemands = data.demands.filter((d) => (livePatterns.get(d) ?? []).length > 0);
  const { demandPatterns } = data;
  // The clause-level prefilter on top: a pattern runs only where its atoms are in the clause itself.
  let clauseDemands: Uint8Array = new Uint8Array(0);
  const demandMatches = (d: DemandRule, sentence: string): boolean => (livePatterns.get(d) ?? []).some((p) => clauseDemands[p] === 1 && (demandPatterns[p] as RegExp).test(sentence));
  // conceptsInLive would compute the same mask again from the purpose as its clause mask.
  const purposeMask = liveConceptMask(conceptData, doc.purpose.toLowerCase());
  const purposeConcepts = conceptsInLive(doc.purpose, conceptData, purposeMask, purposeMask);
  let names: DocumentNames | undefined;
  for (const { field, variants } of fieldVariants) {
    const seen = new Set<string>();
    for (const variant of variants) {
      if (variant.kind !== 'raw') features.add(`enc:${variant.kind}`);
      // Combos see two clauses at a time: a claim and its demand are often two sentences ("X is deprecated. Use Y instead.").
      let previous = { found: new Set<string>(), directive: false, sentence: '' };
      splitClauses(variant.text).forEach((sentence, index) => {
        if (seen.has(sentence)) return;
        seen.add(sentence);
        // The first sentence of a description says what the tool (or parameter) does, often as an imperative ("Read a file",
        // "Lee un secreto"): there only a form that addresses the model (you must, always, never) is a directive.
        // A parameter's description opens the same way ("Grant superuser privileges" on a `superuser` flag).
        const purposeSentence = index === 0 && /(^|\.)description$/.test(field.location.field ?? '');
        const markerCount = purposeSentence ? Math.min(2, data.markers.length) : data.markers.length;
        const [clauseMarkers, demandsHere, conceptsHere] = masks(clauseFilter.live(sentence.toLowerCase()));
        clauseDemands = demandsHere;
        let marker: RegExpExecArray | undefined;
        for (let m = 0; m < markerCount; m += 1) {
          if (markerLive[m] !== 1 || clauseMarkers[m] !== 1) continue;
          marker = (data.markers[m] as RegExp).exec(sentence) ?? undefined;
          if (marker) break;
        }
        const found = conceptsInLive(sentence, conceptData, concepts, conceptsHere);
        // The tool-name check (objectsIn) is the costly part: run it for directives and for clauses a FOREIGN_TOOL combo could use.
        const triggered = [...found, ...previous.found].some((n) => conceptData.foreignTriggers.has(n));
        let objects = marker || triggered ? objectsIn(sentence, names ??= documentNames(doc), data) : undefined;
        if (objects?.includes('other-tool-name')) found.add(FOREIGN_TOOL);
        for (const f of clauseConceptFeatures(found, marker !== undefined, purposeConcepts)) features.add(f);
        const windowed = new Set([...previous.found, ...found]);
        const pair = previous.sentence ? `${previous.sentence} ${sentence}` : sentence;
        // "Regardless of what the user asked" and "you must" address the model even where no marker list matches.
        const addressed = marker !== undefined || found.has('MODEL_ADDRESS') || found.has('USER_OVERRULED');
        // The negation and own-deprecation regexes run only when a combo's concepts are all there (concepts.ts asks last).
        const clause = new Clause(found, windowed, addressed || previous.directive, addressed, sentence, pair, data);
        for (const combo of matchingCombos(conceptData, clause, purposeConcepts)) {
          features.add(`hit:${combo.demand.kind}`);
          hits.push({ demand: combo.demand, sentence: pair, location: field.location, marker: marker?.[0] ?? '', objects: [...windowed].filter((n) => combo.all.includes(n) || combo.any.includes(n)), variant: variant.kind });
        }
        previous = { found, directive: addressed, sentence };
        if (!marker && !liveDemands.some((d) => d.markerFree && demandMatches(d, sentence))) return;
        objects ??= objectsIn(sentence, names ??= documentNames(doc), data);
        if (marker) features.add('directive');
        for (const o of objects) features.add(`o:${o}`);
        for (const demand of liveDemands) {
          if (!marker && !demand.markerFree) continue;
          if (!demandMatches(demand, sentence)) continue;
          features.add(`d:${demand.kind}`);
          for (const o of objects) features.add(`d:${demand.kind}+${o}`);
          if (!demandApplies(demand, sentence, objects, doc, data, purposeConcepts)) { features.add(`x:${demand.kind}`); continue; }
          features.add(`hit:${demand.kind}`);
          hits.push({ demand, sentence, location: field.location, marker: marker?.[0] ?? '', objects, variant: variant.kind });
        }
      });
    }
  }
  return { hits, features: [...features] };
}

const VARIANT_NOTE: Partial<Record<TextVariant['kind'], string>> = { cleaned: ' (after removing invisible characters)', confusables: ' (after folding look-alike characters)', tags: ' (decoded from invisible Unicode tag characters)', 'html-entities': ' (after decoding HTML entities)', base64: ' (decoded from base64)', percent: ' (after percent-decoding)' };

/** One finding per demand kind and location, naming the clause, the directive form and the out-of-scope objects. */
export function directiveFindings(hits: DirectiveHit[], attackClassOverride?: AttackClass): Finding[] {
  const byKey = new Map<string, DirectiveHit>();
  for (const hit of hits) {
    const key = `${hit.demand.ruleId}|${hit.location.subject ?? ''}|${hit.location.field ?? ''}`;
    if (!byKey.has(key)) byKey.set(key, hit);
  }
  return [...byKey.values()].map((hit) => {
    const objects = hit.objects.filter((o) => o !== 'tool-name');
    const form = hit.marker ? `is a directive to the model ("${hit.marker.trim()}")` : 'is a statement (this demand is an attack however it is phrased)';
    const scope = hit.demand.kind.startsWith('concept:') ? `the clause concerns ${objects.join(' and ')} (data/scan/concepts.json), outside the tool's stated purpose` : hit.demand.inherent ? 'this demand is outside any tool\'s purpose' : `it reaches outside the tool's purpose (${objects.join(', ') || 'see clause'})`;
    const encoded = hit.variant !== 'raw' && hit.variant !== 'cleaned';
    return makeFinding({
      ruleId: hit.demand.ruleId, analyzer: 'metadata', title: hit.demand.title, severity: hit.demand.severity,
      confidence: Math.min(1, (hit.demand.inherent ? 0.8 : 0.7) + (objects.length > 1 ? 0.05 : 0) + (encoded ? 0.1 : 0)),
      location: hit.location, attackClass: attackClassOverride ?? hit.demand.attackClass,
      evidence: `"${hit.sentence.slice(0, 200)}"${VARIANT_NOTE[hit.variant] ?? ''}`,
      why: `${hit.demand.why} The clause ${form}, demands "${hit.demand.kind}", and ${scope}.`,
      remediation: 'Remove the directive; a description should say what the tool does, not what the model must do elsewhere.',
    });
  });
}

/** Plain text of a document for the learned scorer: every field, tag characters decoded, invisible characters removed. */
export function documentText(doc: DirectiveDocument, rules: RuleSet): string {
  return doc.fields.map((f) => {
    const hidden = decodeTagCharacters(f.text);
    return hidden ? `${cleanText(f.text, rules.unicode)}\n${hidden}` : cleanText(f.text, rules.unicode);
  }).join('\n');
}
