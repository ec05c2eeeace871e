import type { AtomIndex } from '../atom-index.js';
import { atomIndex, patternFilter, ruleAtoms } from '../prepared.js';
import { foldForAtoms, type PatternFilter } from '../pattern-filter.js';
import { makeFinding } from '../finding.js';
import { analyzeIntent } from './intent.js';
import type { PatternRule, RuleSet, UnicodeData, WeakSignals } from '../rules.js';
import { cleanText, decodeTagCharacters, foldConfusables, hasAnsi, inRanges, isPlainAscii, textVariants, withVariantMemo, type TextVariant } from '../text.js';
import type { Finding, FindingLocation, ServerMetadata, ToolDefinition } from '../types.js';

/** One piece of text the model will read, and where it sits. */
export interface TextField {
  text: string;
  location: FindingLocation;
  /** Names (tool, argument, prompt) are identifiers: confusables there are an attack, not a language. */
  isIdentifier: boolean;
}

const SCHEMA_CHILD_KEYS = ['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains', 'propertyNames', 'additionalItems', 'unevaluatedProperties', 'unevaluatedItems'];
const SCHEMA_CHILD_LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems'];
const SCHEMA_CHILD_MAPS = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'];

function pushStrings(out: TextField[], value: unknown, subject: string, field: string): void {
  if (typeof value === 'string') out.push({ text: value, location: { subject, field }, isIdentifier: false });
  else if (Array.isArray(value)) value.forEach((v, i) => pushStrings(out, v, subject, `${field}[${i}]`));
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) pushStrings(out, v, subject, `${field}.${k}`);
  }
}

/** Walks a JSON Schema collecting every description, title, default, enum, const and example. */
export function collectSchemaText(schema: unknown, subject: string, path: string, out: TextField[], depth = 0): void {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema) || depth > 32) return;
  const node = schema as Record<string, unknown>;
  for (const key of ['description', 'title', '$comment']) if (typeof node[key] === 'string') out.push({ text: node[key] as string, location: { subject, field: `${path}.${key}` }, isIdentifier: false });
  for (const key of ['default', 'enum', 'const', 'examples']) if (node[key] !== undefined) pushStrings(out, node[key], subject, `${path}.${key}`);
  for (const key of SCHEMA_CHILD_KEYS) collectSchemaText(node[key], subject, `${path}.${key}`, out, depth + 1);
  for (const key of SCHEMA_CHILD_LISTS) {
    const list = node[key];
    if (Array.isArray(list)) list.forEach((child, i) => collectSchemaText(child, subject, `${path}.${key}[${i}]`, out, depth + 1));
  }
  for (const key of SCHEMA_CHILD_MAPS) {
    const map = node[key];
    if (typeof map !== 'object' || map === null) continue;
    for (const [name, child] of Object.entries(map)) {
      if (key === 'properties') out.push({ text: name, location: { subject, field: `${path}.${key}` }, isIdentifier: true });
      collectSchemaText(child, subject, `${path}.${key}.${name}`, out, depth + 1);
    }
  }
}

export function collectTextFields(server: ServerMetadata): TextField[] {
  const out: TextField[] = [];
  if (server.instructions) out.push({ text: server.instructions, location: { subject: 'server', field: 'instructions' }, isIdentifier: false });
  for (const tool of server.tools) {
    const subject = `tool:${tool.name}`;
    out.push({ text: tool.name, location: { subject, field: 'name' }, isIdentifier: true });
    if (tool.title) out.push({ text: tool.title, location: { subject, field: 'title' }, isIdentifier: false });
    if (tool.description) out.push({ text: tool.description, location: { subject, field: 'description' }, isIdentifier: false });
    if (tool.annotations) pushStrings(out, tool.annotations, subject, 'annotations');
    collectSchemaText(tool.inputSchema, subject, 'inputSchema', out);
    collectSchemaText(tool.outputSchema, subject, 'outputSchema', out);
  }
  for (const prompt of server.prompts) {
    const subject = `prompt:${prompt.name}`;
    out.push({ text: prompt.name, location: { subject, field: 'name' }, isIdentifier: true });
    if (prompt.title) out.push({ text: prompt.title, location: { subject, field: 'title' }, isIdentifier: false });
    if (prompt.description) out.push({ text: prompt.description, location: { subject, field: 'description' }, isIdentifier: false });
    (prompt.arguments ?? []).forEach((arg, i) => {
      out.push({ text: arg.name, location: { subject, field: `arguments[${i}].name` }, isIdentifier: true });
      if (arg.description) out.push({ text: arg.description, location: { subject, field: `arguments[${i}].description` }, isIdentifier: false });
    });
  }
  const resourceLists: [string, typeof server.resources][] = [['resource', server.resources], ['resourceTemplate', server.resourceTemplates]];
  for (const [kind, list] of resourceLists) {
    list.forEach((res, i) => {
      const subject = `${kind}:${res.name ?? res.uri ?? res.uriTemplate ?? i}`;
      for (const key of ['name', 'title', 'description', 'uri', 'uriTemplate'] as const) {
        const value = res[key];
        if (value) out.push({ text: value, location: { subject, field: key }, isIdentifier: key === 'name' });
      }
    });
  }
  return out;
}

const VARIANT_NOTE: Record<TextVariant['kind'], string> = {
  raw: '',
  cleaned: ' (after removing invisible characters)',
  confusables: ' (after folding look-alike characters)',
  tags: ' (decoded from invisible Unicode tag characters)',
  'html-entities': ' (after decoding HTML entities)',
  base64: ' (decoded from base64)',
  percent: ' (after percent-decoding)',
  'ansi-stripped': ' (after removing ANSI escapes)',
};

function snippet(text: string, index: number, length: number): string {
  const start = Math.max(0, index - 40);
  const end = Math.min(text.length, index + length + 40);
  return `${start > 0 ? '…' : ''}${text.slice(start, end)}${end < text.length ? '…' : ''}`;
}

/** A rule set's atoms in one index, and each pattern's atoms as ids into it. */
interface RulePrefilter {
  index: AtomIndex;
  /** byRule[rule][pattern]: the ids of that pattern's atoms (undefined: the pattern has none and always runs). */
  byRule: (number[] | undefined)[][];
}

const prefilters = new WeakMap<readonly PatternRule[], RulePrefilter>();

function prefilterFor(rules: readonly PatternRule[]): RulePrefilter {
  let prefilter = prefilters.get(rules);
  if (prefilter === undefined) {
    const index = atomIndex(rules.flatMap((rule) => rule.atoms.flatMap((atoms) => atoms ?? [])).map(foldForAtoms));
    const byRule = rules.map((rule) => rule.atoms.map((atoms) => atoms?.map((atom) => index.idOf(foldForAtoms(atom)) as number)));
    prefilter = { index, byRule };
    prefilters.set(rules, prefilter);
  }
  return prefilter;
}

function anyPresent(ids: number[], found: Uint8Array): boolean {
  for (let k = 0; k < ids.length; k += 1) if (found[ids[k] as number] === 1) return true;
  return false;
}

// Indexed loops: this runs for every rule, pattern and variant of every inspected text.
function matchRule(rule: PatternRule, atomIds: (number[] | undefined)[], variants: TextVariant[], present: Uint8Array[]): { variant: TextVariant; match: RegExpExecArray } | undefined {
  for (let v = 0; v < variants.length; v += 1) {
    const variant = variants[v] as TextVariant;
    const found = present[v] as Uint8Array;
    for (let i = 0; i < rule.patterns.length; i += 1) {
      // YARA-style prefilter: a pattern none of whose required literals occurs cannot match.
      const ids = atomIds[i];
      if (ids !== undefined && !anyPresent(ids, found)) continue;
      const pattern = rule.patterns[i] as RegExp;
      pattern.lastIndex = 0;
      const match = pattern.exec(variant.text);
      if (match) return { variant, match };
    }
  }
  return undefined;
}

type RuleHit = { rule: PatternRule; variant: TextVariant; match: RegExpExecArray };

/** The rule hits of texts already scanned in this analyzeMetadata call (for its rule list): a server repeats many texts. */
let hitMemo: { rules: readonly PatternRule[]; byText: Map<string, RuleHit[]> } | undefined;

function ruleHits(text: string, rules: RuleSet): RuleHit[] {
  const memo = hitMemo?.rules === rules.metadata ? hitMemo.byText : undefined;
  const known = memo?.get(text);
  if (known !== undefined) return known;
  const variants = textVariants(text, rules.unicode);
  const prefilter = prefilterFor(rules.metadata);
  // Folded as the atoms are: /ssh/iu matches "ſſh", whose lower case holds no "ssh" (pattern-filter.ts).
  const present = variants.map((v) => prefilter.index.scan(foldForAtoms(v.text.toLowerCase())));
  const hits: RuleHit[] = [];
  for (const [r, rule] of rules.metadata.entries()) {
    const hit = matchRule(rule, prefilter.byRule[r] as (number[] | undefined)[], variants, present);
    if (hit) hits.push({ rule, ...hit });
  }
  memo?.set(text, hits);
  return hits;
}

/** Runs the pattern rules over one text (also used for tool outputs in the behaviour run). */
export function scanText(text: string, location: FindingLocation, rules: RuleSet, analyzer: 'metadata' | 'behaviour' = 'metadata'): Finding[] {
  const findings: Finding[] = [];
  for (const { rule, ...hit } of ruleHits(text, rules)) {
    const encoded = hit.variant.kind !== 'raw' && hit.variant.kind !== 'cleaned';
    findings.push(makeFinding({
      ruleId: rule.id,
      analyzer,
      title: rule.title,
      severity: rule.severity,
      confidence: rule.confidence + (encoded ? 0.1 : 0),
      location,
      evidence: `${snippet(hit.variant.text, hit.match.index, hit.match[0].length)}${VARIANT_NOTE[hit.variant.kind]}`,
      why: encoded ? `${rule.why} The text was hidden by encoding, which legitimate metadata has no reason to do.` : rule.why,
      remediation: rule.remediation,
      ...(rule.attackClass ? { attackClass: rule.attackClass } : {}),
    }));
  }
  return findings;
}

function codePointHex(cp: number): string {
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Zero-width joiners are part of emoji sequences and of Arabic/Indic orthography; only flag them elsewhere. */
function isLegitimateJoiner(chars: string[], i: number): boolean {
  const cp = chars[i]?.codePointAt(0);
  if (cp === 0xfeff && i === 0) return true;
  if (cp !== 0x200c && cp !== 0x200d) return false;
  const around = `${chars[i - 1] ?? ''}${chars[i + 1] ?? ''}`;
  return /[\p{Extended_Pictographic}\p{Emoji_Modifier}\u{FE0F}]/u.test(around) || /[\p{Script=Arabic}\p{Script=Devanagari}\p{Script=Bengali}\p{Script=Tamil}\p{Script=Telugu}\p{Script=Kannada}\p{Script=Malayalam}\p{Script=Gujarati}\p{Script=Gurmukhi}\p{Script=Oriya}\p{Script=Sinhala}\p{Script=Syriac}]/u.test(around);
}

interface CharClassHit { ruleId: string; title: string; severity: Finding['severity']; why: string; cps: number[] }

function hiddenCharacterHits(text: string, unicode: UnicodeData): CharClassHit[] {
  if (isPlainAscii(text)) return [];
  const chars = [...text];
  const zero: number[] = [];
  const bidi: number[] = [];
  const tags: number[] = [];
  const vs: number[] = [];
  const control: number[] = [];
  const pua: number[] = [];
  chars.forEach((ch, i) => {
    const cp = ch.codePointAt(0) ?? 0;
    if (inRanges(cp, unicode.tags)) tags.push(cp);
    else if (inRanges(cp, unicode.bidi)) bidi.push(cp);
    else if (inRanges(cp, unicode.zeroWidth)) { if (!isLegitimateJoiner(chars, i)) zero.push(cp); }
    else if (inRanges(cp, unicode.variationSelectorsSupplement)) vs.push(cp);
    else if (inRanges(cp, unicode.privateUse)) pua.push(cp);
    else if ((cp < 0x20 && cp !== 0x0a && cp !== 0x0d && cp !== 0x09 && cp !== 0x1b) || (cp >= 0x7f && cp < 0xa0)) control.push(cp);
  });
  const hits: CharClassHit[] = [];
  if (tags.length > 0) hits.push({ ruleId: 'BST-U001', title: 'Invisible Unicode tag characters', severity: 'high', cps: tags, why: 'Unicode tag characters (U+E0000-E007F) render as nothing but models read them, so they can carry instructions the user never sees.' });
  if (bidi.length > 0) hits.push({ ruleId: 'BST-U002', title: 'Bidirectional control characters', severity: 'high', cps: bidi, why: 'Bidi controls reorder how text is displayed, so what a reviewer sees differs from what the model reads (Trojan Source).' });
  if (hasAnsi(text)) hits.push({ ruleId: 'BST-U004', title: 'ANSI escape sequences', severity: 'high', cps: [0x1b], why: 'Terminal escape sequences can hide, recolour or overwrite text when metadata is shown in a terminal, concealing instructions from the reviewer.' });
  if (zero.length > 0) hits.push({ ruleId: 'BST-U003', title: 'Zero-width or invisible characters', severity: 'medium', cps: zero, why: 'Invisible characters split words so filters miss them, or hide content from a human reviewer.' });
  if (vs.length >= 4) hits.push({ ruleId: 'BST-U008', title: 'Run of variation selectors (hidden payload)', severity: 'high', cps: vs, why: 'Long runs of variation selectors can encode arbitrary bytes invisibly after a visible character.' });
  if (pua.length > 0) hits.push({ ruleId: 'BST-U009', title: 'Private-use characters', severity: 'low', cps: pua, why: 'Private-use characters have no standard meaning and may render as nothing.' });
  if (control.length > 0) hits.push({ ruleId: 'BST-U005', title: 'Control characters', severity: 'medium', cps: control, why: 'Control characters have no place in descriptions and can alter how text is displayed.' });
  return hits;
}

function confusableHit(text: string, unicode: UnicodeData): string | undefined {
  const folded = foldConfusables(text, unicode);
  return folded !== text ? folded : undefined;
}

const LATIN = /\p{Script=Latin}/u;
const OTHER_CASED = /[\p{Script=Cyrillic}\p{Script=Greek}\p{Script=Armenian}]/u;

function mixedScriptWords(text: string): string[] {
  if (isPlainAscii(text)) return [];
  return (text.match(/[\p{L}\p{M}]+/gu) ?? []).filter((word) => LATIN.test(word) && OTHER_CASED.test(word));
}

export function analyzeHiddenCharacters(field: TextField, rules: RuleSet): Finding[] {
  const findings: Finding[] = [];
  for (const hit of hiddenCharacterHits(field.text, rules.unicode)) {
    const distinct = [...new Set(hit.cps)].slice(0, 6).map(codePointHex).join(', ');
    let evidence = `${hit.cps.length} character(s): ${distinct}`;
    // In a name, invisible characters only serve impersonation (send\u200b_email vs send_email).
    let severity = field.isIdentifier && hit.severity === 'medium' ? 'high' : hit.severity;
    if (hit.ruleId === 'BST-U001') {
      const decoded = decodeTagCharacters(field.text);
      evidence += `; hidden text: "${decoded.slice(0, 160)}"`;
      if (decoded.trim().length > 0) severity = 'critical';
    }
    findings.push(makeFinding({ ruleId: hit.ruleId, analyzer: 'metadata', title: hit.title, severity, confidence: 0.9, location: field.location, evidence, why: hit.why, remediation: 'Remove the characters. Metadata should be plain visible text.' }));
  }
  if (field.isIdentifier) {
    const folded = confusableHit(field.text, rules.unicode);
    if (folded !== undefined) {
      findings.push(makeFinding({ ruleId: 'BST-U006', analyzer: 'metadata', title: 'Look-alike characters in a name', attackClass: 'name-overlap', severity: 'high', confidence: 0.85, location: field.location, evidence: `"${field.text}" looks like "${folded}"`, why: 'A name that imitates another with look-alike letters (homoglyphs) can shadow a trusted tool in the model\'s and the reviewer\'s eyes.', remediation: 'Use ASCII names ([A-Za-z0-9_.-]) as the MCP specification recommends.' }));
    } else if (!/^[A-Za-z0-9_.\-/ ]*$/.test(field.text)) {
      findings.push(makeFinding({ ruleId: 'BST-U007', analyzer: 'metadata', title: 'Non-ASCII characters in a name', severity: 'low', confidence: 0.5, location: field.location, evidence: `"${field.text}"`, why: 'The MCP specification recommends tool names of [A-Za-z0-9_.-]; other characters make look-alike names possible.', remediation: 'Use an ASCII name; put localized text in the title.' }));
    }
  } else {
    const mixed = mixedScriptWords(field.text);
    if (mixed.length > 0) {
      findings.push(makeFinding({ ruleId: 'BST-U010', analyzer: 'metadata', title: 'Words mixing Latin with look-alike scripts', severity: mixed.length >= 2 ? 'high' : 'medium', confidence: 0.7, location: field.location, evidence: mixed.slice(0, 5).join(', '), why: 'A word that mixes Latin with Cyrillic or Greek letters is the signature of homoglyph obfuscation, used to slip words past filters. One such word can be a unit or a symbol (μs); several are an attack.', remediation: 'Write each word in one script.' }));
    }
  }
  return findings;
}

function identifierWords(name: string): string {
  return name.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/[_.-]+/g, ' ');
}

function firstSentence(text: string): string {
  const end = text.search(/[.!?。](\s|$)|\n/u);
  return end < 0 ? text : text.slice(0, end + 1);
}

function topLevelArguments(tool: ToolDefinition): { name: string; description: string }[] {
  const schema = tool.inputSchema;
  if (typeof schema !== 'object' || schema === null) return [];
  const props = (schema as { properties?: unknown }).properties;
  if (typeof props !== 'object' || props === null) return [];
  return Object.entries(props).map(([name, def]) => ({
    name,
    description: typeof def === 'object' && def !== null && typeof (def as { description?: unknown }).description === 'string' ? (def as { description: string }).description : '',
  }));
}

/** A "calculator" that wants a file path or a token, or any tool fishing for conversation context. */
export function analyzePurposeMismatch(tool: ToolDefinition, rules: RuleSet): Finding[] {
  const purposeText = `${identifierWords(tool.name)} ${tool.title ?? ''} ${tool.description ?? ''}`;
  // What a tool presents itself as is its name, title and first sentence; a "time" or "weather" further
  // down is an example or a field, not the purpose (the whole text still explains an argument).
  const presentedAs = `${identifierWords(tool.name)} ${tool.title ?? ''} ${firstSentence(tool.description ?? '')}`;
  const purposes = rules.purpose.purposes.filter((p) => p.match.test(presentedAs));
  const findings: Finding[] = [];
  for (const arg of topLevelArguments(tool)) {
    const kinds = Object.entries(rules.purpose.argumentKinds).filter(([, re]) => re.test(arg.name) || (arg.description !== '' && re.test(arg.description))).map(([kind]) => kind);
    const location = { subject: `tool:${tool.name}`, field: `inputSchema.properties.${arg.name}` };
    for (const kind of kinds) {
      if (kind === 'context') {
        if (rules.purpose.contextUnlessPurpose.test(purposeText)) continue;
        findings.push(makeFinding({ ruleId: 'BST-M021', analyzer: 'metadata', title: 'Argument invites the model to pass conversation context', attackClass: 'exfiltration', severity: 'high', confidence: 0.65, location, evidence: `argument "${arg.name}" on a tool described as: ${(tool.description ?? tool.name).slice(0, 100)}`, why: 'Arguments like "sidenote" or "conversation_history" on a tool that has nothing to do with notes or conversations are a known channel for exfiltrating context through tool calls.', remediation: 'Remove the argument, or describe the tool so its purpose explains it.', discriminator: kind }));
        continue;
      }
      if (rules.purpose.explainedBy[kind]?.test(purposeText)) continue;
      const mismatched = purposes.filter((p) => !p.allows.includes(kind));
      if (purposes.length === 0 || mismatched.length < purposes.length) continue;
      findings.push(makeFinding({ ruleId: 'BST-M020', analyzer: 'metadata', title: 'Metadata does not match the tool\'s apparent purpose', attackClass: 'exfiltration', severity: kind === 'network' ? 'medium' : 'high', confidence: 0.7, location, evidence: `a ${purposes.map((p) => p.name).join('/')} tool asks for ${kind} argument "${arg.name}"`, why: `A tool that presents itself as ${purposes.map((p) => p.name).join('/')} has no use for a ${kind} argument; mismatches like this are how poisoned tools collect data.`, remediation: 'Remove the argument or change the description to say truthfully what the tool does.', discriminator: kind }));
    }
  }
  return findings;
}

/** Past this length, kinds of signal spread over many honest paragraphs are no longer a combination: medium at most. */
const LONG_TEXT = 1000;

const globalRegexes = new WeakMap<RegExp, RegExp>();

/** The global twin of a rule regex, compiled once (matchAll needs the g flag). */
function globalOf(pattern: RegExp): RegExp {
  let global = globalRegexes.get(pattern);
  if (!global) {
    global = new RegExp(pattern.source, `${pattern.flags.replace('g', '')}g`);
    globalRegexes.set(pattern, global);
  }
  global.lastIndex = 0;
  return global;
}

const weakFilters = new WeakMap<WeakSignals, PatternFilter>();

/**
 * The atom prefilter (atoms.ts) of every weak-signal pattern, flattened in order, answered in one pass over
 * the text (pattern-filter.ts) instead of one `includes` per atom: the same answer, a pattern whose required
 * literals are all absent cannot match.
 */
function weakFilterOf(weak: WeakSignals): PatternFilter {
  let filter = weakFilters.get(weak);
  if (filter === undefined) {
    filter = patternFilter(weak.signals.flatMap((signal) => signal.patterns.map((pattern) => ruleAtoms(pattern.source))));
    weakFilters.set(weak, filter);
  }
  return filter;
}

/** What a server calls its own: its tools' names and the product words of its name ("circleci" in mcp-server-circleci). */
export interface OwnNames { tools: ReadonlySet<string>; words: ReadonlySet<string> }

/** Words of server names that name no product. */
const GENERIC_NAME_WORDS = new Set(['mcp', 'server', 'servers', 'tool', 'tools', 'api', 'the', 'and', 'for', 'model', 'context', 'protocol', 'example', 'official', 'plugin', 'app', 'com', 'org', 'io', 'dev', 'node', 'client', 'other', 'all', 'any', 'every', 'another']);

export function ownNamesOf(server: ServerMetadata): OwnNames {
  const words = (server.name ?? '').toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w.length >= 3 && !GENERIC_NAME_WORDS.has(w));
  return { tools: new Set(server.tools.map((t) => t.name.toLowerCase())), words: new Set(words) };
}

// A mention of "other tools" that names the server's own tool or product ("the list_files tool", "other
// CircleCI tools") is the server documenting itself, not a reach into someone else's tools.
function namesOwn(match: string, own: OwnNames | undefined): boolean {
  if (!own) return false;
  return match.toLowerCase().split(/[^\p{L}\p{N}_.-]+/u).some((w) => own.tools.has(w) || own.words.has(w));
}

/** Several different weak signals in one tool's text: a generalisation over phrasings no single pattern covers. */
export function analyzeWeakSignals(subject: string, fields: TextField[], rules: RuleSet, own?: OwnNames): Finding[] {
  const text = fields.filter((f) => !f.isIdentifier).map((f) => cleanText(decodeTagCharacters(f.text) || f.text, rules.unicode)).join('\n');
  const hits: string[] = [];
  const hitKinds: string[] = [];
  // One span of text is evidence of one kind only: "secret" is not both secrecy and a secret.
  const claimed: [number, number][] = [];
  const overlaps = (from: number, to: number): boolean => claimed.some(([a, b]) => from < b && a < to);
  const live = weakFilterOf(rules.weakSignals).live(text.toLowerCase());
  let p = -1;
  for (const signal of rules.weakSignals.signals) {
    let found: RegExpExecArray | undefined;
    for (const pattern of signal.patterns) {
      p += 1;
      if (found || live[p] !== 1) continue;
      for (const m of text.matchAll(globalOf(pattern))) {
        if (overlaps(m.index, m.index + m[0].length)) continue;
        if (signal.kind === 'other-tools' && namesOwn(m[0], own)) continue;
        found = m as RegExpExecArray;
        break;
      }
    }
    if (!found) continue;
    claimed.push([found.index, found.index + found[0].length]);
    hits.push(`${signal.kind} ("${found[0].trim().slice(0, 40)}")`);
    hitKinds.push(signal.kind);
  }
  // Secrets, URLs, user content and encodings are what many honest tools handle; they only combine with an active kind.
  if (hitKinds.every((k) => rules.weakSignals.passiveKinds.includes(k))) return [];
  const { highAt, mediumAt } = rules.weakSignals;
  if (hits.length < mediumAt) return [];
  return [makeFinding({ ruleId: 'BST-M030', analyzer: 'metadata', title: 'Several kinds of poisoning signal in one tool', severity: hits.length >= highAt && text.length <= LONG_TEXT ? 'high' : 'medium', confidence: hits.length >= highAt ? 0.7 : 0.5, location: { subject }, evidence: hits.join(', '), why: `The text combines ${hits.length} different kinds of signal that tool-poisoning attacks use (mentions of other tools, secrecy, secrets, destinations, directives to the model, user content, encodings, redirection). Each is common alone; together they rarely describe an honest tool.`, remediation: 'Read the whole description and schema as the model would; remove anything that is not about what this tool does.' })];
}

export function analyzeMetadata(server: ServerMetadata, rules: RuleSet): Finding[] {
  // The pattern rules and the directive analysis decode the same fields, and a server repeats texts (the same
  // parameter described on many tools): each text is decoded and matched once per call.
  const outer = hitMemo;
  hitMemo = { rules: rules.metadata, byText: new Map() };
  try {
    return withVariantMemo(rules.unicode, () => analyzeServer(server, rules));
  } finally {
    hitMemo = outer;
  }
}

function analyzeServer(server: ServerMetadata, rules: RuleSet): Finding[] {
  const findings: Finding[] = [];
  const fields = collectTextFields(server);
  for (const field of fields) {
    findings.push(...analyzeHiddenCharacters(field, rules));
    if (!field.isIdentifier) findings.push(...scanText(field.text, field.location, rules));
  }
  // Fields grouped by subject once: filtering the whole list per tool is quadratic on servers with hundreds of tools.
  const bySubject = new Map<string, TextField[]>();
  for (const f of fields) {
    const key = f.location.subject ?? '';
    const list = bySubject.get(key);
    if (list) list.push(f);
    else bySubject.set(key, [f]);
  }
  const own = ownNamesOf(server);
  for (const tool of server.tools) {
    findings.push(...analyzePurposeMismatch(tool, rules));
    const subject = `tool:${tool.name}`;
    findings.push(...analyzeWeakSignals(subject, bySubject.get(subject) ?? [], rules, own));
  }
  // The server's instructions are judged once on their own: merged into every tool they counted once per tool.
  findings.push(...analyzeWeakSignals('server', bySubject.get('server') ?? [], rules, own));
  findings.push(...analyzeIntent(server, rules));
  return dedupe(findings);
}

export function dedupe(findings: Finding[]): Finding[] {
  const seen = new Set<string>();
  return findings.filter((f) => (seen.has(f.id) ? false : (seen.add(f.id), true)));
}
