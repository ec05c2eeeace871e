// Runtime definition inspection: every tool, prompt, resource and resource template an upstream
// lists, and its `initialize` instructions, pass the scanner's metadata analyzer (the rules and
// decodings of `bastion scan`, one code path) before any client sees them. The verdict for one
// definition is cached by its hash, so a list that does not change is not scanned again.
import { createHash } from 'node:crypto';
import { analyzeMetadata, collectTextFields, scanText, severityRank, type Finding, type RuleSet, type ServerMetadata } from '../scan/index.js';
import { analyzeHiddenCharacters } from '../scan/analyzers/metadata.js';
import { digestJson } from '../integrity/digest.js';
import type { DefinitionInspectionConfig, FindingAction } from './config.js';

/** The lists a gateway receives (the hash lock pins all but plain resources). */
export type InspectedKind = 'tools' | 'prompts' | 'resources' | 'resourceTemplates';

export type Definition = Record<string, unknown>;

/** What the gateway does with one definition. */
export type VerdictAction = 'publish' | 'strip' | 'quarantine' | 'block';

export interface DefinitionFinding {
  ruleId: string;
  severity: Finding['severity'];
  /** Path of the field inside the definition, e.g. `inputSchema.properties.city.description`. */
  field: string;
  title: string;
  /** The action this finding alone asks for. */
  action: FindingAction;
  /** The scanner's evidence (invisible characters made visible); for the audit log and the operator, never for clients. */
  evidence: string;
}

export interface DefinitionVerdict {
  action: VerdictAction;
  /** sha256 of the definition's canonical JSON, as the upstream sent it. */
  digest: string;
  findings: DefinitionFinding[];
  /** What may be offered: the definition itself, or a copy with invisible characters removed. */
  item: Definition;
}

/** Rules whose findings are only invisible or control characters, which stripping removes. */
const HIDDEN_CHARACTER_RULES = new Set(['BST-U001', 'BST-U002', 'BST-U003', 'BST-U004', 'BST-U005', 'BST-U008', 'BST-U009']);

const ACTION_RANK: Record<VerdictAction, number> = { publish: 0, strip: 1, quarantine: 2, block: 3 };

const ACTION_VERDICT: Record<FindingAction, VerdictAction> = { warn: 'publish', strip: 'strip', quarantine: 'quarantine', block: 'block' };

const MAX_CACHED_VERDICTS = 20_000;

const SCHEMA_DIALECT = /^https?:\/\/json-schema\.org\/[A-Za-z0-9/_.#-]*$/;

/** The scanner's view of one definition: a server with just that item. */
function metadataFor(kind: InspectedKind, item: Definition): ServerMetadata {
  const named = { ...item, name: typeof item['name'] === 'string' ? item['name'] : String(item['name'] ?? '') };
  const server: ServerMetadata = { name: 'upstream', tools: [], prompts: [], resources: [], resourceTemplates: [], scopes: [] };
  if (kind === 'tools') server.tools.push(named as unknown as ServerMetadata['tools'][number]);
  else if (kind === 'prompts') server.prompts.push(named as unknown as ServerMetadata['prompts'][number]);
  else if (kind === 'resources') server.resources.push(item as ServerMetadata['resources'][number]);
  else server.resourceTemplates.push(item as ServerMetadata['resourceTemplates'][number]);
  return server;
}

/** Every string in a definition with its path, so text the analyzer's walk does not visit is still scanned. */
function everyString(value: unknown, path: string, out: { text: string; field: string }[], depth = 0): void {
  if (depth > 40) return;
  if (typeof value === 'string') out.push({ text: value, field: path });
  else if (Array.isArray(value)) value.forEach((child, index) => everyString(child, `${path}[${index}]`, out, depth + 1));
  else if (typeof value === 'object' && value !== null) {
    for (const [key, child] of Object.entries(value)) everyString(child, path === '' ? key : `${path}.${key}`, out, depth + 1);
  }
}

function isIdentifierField(field: string): boolean {
  return field === 'name' || field.endsWith('.properties') || /arguments\[\d+\]\.name$/.test(field);
}

/**
 * Removes what the model reads but a person does not see: zero-width, bidi, tag and
 * variation-selector characters (the scanner's own ranges), ANSI escapes and control characters.
 */
export function stripInvisible(text: string, rules: RuleSet): string {
  const { unicode } = rules;
  const ranges = [...unicode.zeroWidth, ...unicode.bidi, ...unicode.tags, ...unicode.variationSelectorsSupplement, ...unicode.privateUse];
  // eslint-disable-next-line no-control-regex
  const withoutAnsi = text.replace(/\u001b(\[[0-?]*[ -/]*[@-~]|\][^\u0007\u001b]*(\u0007|\u001b\\)|[@-Z\\-_])/g, '');
  let out = '';
  for (const character of withoutAnsi) {
    const cp = character.codePointAt(0) ?? 0;
    if ((cp < 0x20 && cp !== 0x09 && cp !== 0x0a && cp !== 0x0d) || (cp >= 0x7f && cp < 0xa0)) continue;
    if (ranges.some(([from, to]) => cp >= from && cp <= to)) continue;
    out += character;
  }
  return out;
}

/** A copy with every string value stripped; keys (names) are kept, since hidden characters in a name block instead. */
function stripDefinition(value: unknown, rules: RuleSet): unknown {
  if (typeof value === 'string') return stripInvisible(value, rules);
  if (Array.isArray(value)) return value.map((child) => stripDefinition(child, rules));
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([key, child]) => [key, stripDefinition(child, rules)]));
  return value;
}

const fastKey = (kind: string, value: unknown): string => createHash('sha256').update(kind).update('\u0000').update(JSON.stringify(value)).digest('base64');

/** Scans definitions with one rule set and caches each verdict by definition hash and settings. */
export class DefinitionScanner {
  private readonly verdicts = new Map<string, DefinitionVerdict>();

  constructor(readonly rules: RuleSet) {}

  /** The findings of one definition, each with the action the settings give it. */
  findings(kind: InspectedKind, item: Definition, config: DefinitionInspectionConfig): DefinitionFinding[] {
    const metadata = metadataFor(kind, item);
    const fields = collectTextFields(metadata);
    const covered = new Set(fields.map((field) => field.location.field ?? ''));
    const raw: Finding[] = analyzeMetadata(metadata, this.rules);
    const strings: { text: string; field: string }[] = [];
    everyString(item, '', strings);
    for (const { text, field } of strings) {
      // The JSON Schema dialect URI is an identifier every SDK writes, not text for the model.
      if (covered.has(field) || (field.endsWith('$schema') && SCHEMA_DIALECT.test(text))) continue;
      const location = { subject: 'definition', field };
      raw.push(...analyzeHiddenCharacters({ text, location, isIdentifier: false }, this.rules), ...scanText(text, location, this.rules));
    }
    return dedupe(raw.map((finding) => this.judge(finding, config)));
  }

  /** The verdict for one definition (cached by its hash and the settings). */
  verdict(kind: InspectedKind, item: Definition, config: DefinitionInspectionConfig): DefinitionVerdict {
    const key = `${fastKey(kind, item)}\u0000${settingsKey(config)}`;
    const cached = this.verdicts.get(key);
    if (cached !== undefined) return cached;
    const findings = this.findings(kind, item, config);
    const verdict = this.decide(findings, digestJson(item), item, (value) => stripDefinition(value, this.rules) as Definition);
    this.remember(key, verdict);
    return verdict;
  }

  /** The verdict for a server's `instructions` text; `item` is `{ instructions }` (stripped when the action is strip). */
  instructionsVerdict(text: string, config: DefinitionInspectionConfig): DefinitionVerdict {
    const key = `${fastKey('instructions', text)}\u0000${settingsKey(config)}`;
    const cached = this.verdicts.get(key);
    if (cached !== undefined) return cached;
    const metadata: ServerMetadata = { name: 'upstream', instructions: text, tools: [], prompts: [], resources: [], resourceTemplates: [], scopes: [] };
    const findings = dedupe(analyzeMetadata(metadata, this.rules).map((finding) => this.judge(finding, config)));
    const verdict = this.decide(findings, digestJson({ instructions: text }), { instructions: text }, () => ({ instructions: stripInvisible(text, this.rules) }));
    this.remember(key, verdict);
    return verdict;
  }

  private judge(finding: Finding, config: DefinitionInspectionConfig): DefinitionFinding {
    const field = finding.location.field ?? '';
    // A tag payload that spells out text (critical) and hidden characters in a name are the attack itself.
    const strippable = HIDDEN_CHARACTER_RULES.has(finding.ruleId) && finding.severity !== 'critical' && !isIdentifierField(field);
    const action = strippable ? config.hiddenCharacters : config.actions[finding.severity];
    return { ruleId: finding.ruleId, severity: finding.severity, field: field === '' ? '(definition)' : field, title: finding.title, action, evidence: finding.evidence };
  }

  private decide(findings: DefinitionFinding[], digest: string, item: Definition, strip: (item: Definition) => Definition): DefinitionVerdict {
    let action: VerdictAction = 'publish';
    for (const finding of findings) {
      const asked = ACTION_VERDICT[finding.action];
      if (ACTION_RANK[asked] > ACTION_RANK[action]) action = asked;
    }
    // Anything offered (strip, or a quarantine later approved) loses its invisible characters when any finding asked for that.
    const wantsStrip = findings.some((finding) => finding.action === 'strip');
    return { action, digest, findings, item: wantsStrip ? strip(item) : item };
  }

  private remember(key: string, verdict: DefinitionVerdict): void {
    if (this.verdicts.size >= MAX_CACHED_VERDICTS) this.verdicts.delete(this.verdicts.keys().next().value as string);
    this.verdicts.set(key, verdict);
  }
}

const settingsKeys = new WeakMap<DefinitionInspectionConfig, string>();
function settingsKey(config: DefinitionInspectionConfig): string {
  let key = settingsKeys.get(config);
  if (key === undefined) {
    key = JSON.stringify(config);
    settingsKeys.set(config, key);
  }
  return key;
}

function dedupe(findings: DefinitionFinding[]): DefinitionFinding[] {
  const seen = new Set<string>();
  return findings.filter((finding) => {
    const key = `${finding.ruleId}\u0000${finding.field}`;
    return seen.has(key) ? false : (seen.add(key), true);
  });
}

/** The most severe finding first, for short reasons. */
export function worstFinding(findings: readonly DefinitionFinding[]): DefinitionFinding | undefined {
  return [...findings].sort((a, b) => severityRank(b.severity) - severityRank(a.severity))[0];
}
