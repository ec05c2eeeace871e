import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeMetadata, scanText } from './analyzers/metadata.js';
import { analyzeDocument } from './analyzers/intent.js';
import { analyzeCollisions } from './collisions.js';
import { buildDocuments } from './documents.js';
import { makeFinding } from './finding.js';
import type { RuleSet } from './rules.js';
import { computeScore } from './score.js';
import type { Finding, ServerMetadata } from './types.js';

/** One line of a corpus file (test/scan/corpus/data/<split>/*.jsonl; format in docs/scan.md). */
export interface CorpusSample {
  id: string;
  label: 'malicious' | 'benign';
  class: string;
  language: string;
  notes?: string;
  server: ServerMetadata;
  context?: ServerMetadata[];
  previous?: ServerMetadata;
  output?: string;
  source?: { package: string; version?: string };
  /** File the sample came from (added by the loader). */
  file: string;
}

function normalizeServer(raw: unknown): ServerMetadata | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const s = raw as Partial<ServerMetadata>;
  if (!Array.isArray(s.tools)) return undefined;
  return { name: typeof s.name === 'string' ? s.name : 'server', ...(typeof s.version === 'string' ? { version: s.version } : {}), ...(typeof s.instructions === 'string' ? { instructions: s.instructions } : {}),
    tools: s.tools, prompts: Array.isArray(s.prompts) ? s.prompts : [], resources: Array.isArray(s.resources) ? s.resources : [], resourceTemplates: Array.isArray(s.resourceTemplates) ? s.resourceTemplates : [], scopes: Array.isArray(s.scopes) ? s.scopes : [] };
}

/** Reads every *.jsonl of a split directory; malformed lines are returned as errors, not thrown. */
export function loadCorpus(dir: string): { samples: CorpusSample[]; errors: string[] } {
  const samples: CorpusSample[] = [];
  const errors: string[] = [];
  if (!existsSync(dir)) return { samples, errors: [`${dir}: no such directory`] };
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.jsonl')).sort()) {
    const lines = readFileSync(join(dir, name), 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        const raw = JSON.parse(line) as Record<string, unknown>;
        const server = normalizeServer(raw.server);
        if (!server || typeof raw.id !== 'string' || (raw.label !== 'malicious' && raw.label !== 'benign')) throw new Error('needs id, label and server.tools');
        const context = Array.isArray(raw.context) ? raw.context.map(normalizeServer).filter((s): s is ServerMetadata => s !== undefined) : undefined;
        const previous = normalizeServer(raw.previous);
        samples.push({ id: raw.id, label: raw.label, class: typeof raw.class === 'string' ? raw.class : raw.label, language: typeof raw.language === 'string' ? raw.language : 'en', server, file: name,
          ...(typeof raw.notes === 'string' ? { notes: raw.notes } : {}), ...(context ? { context } : {}), ...(previous ? { previous } : {}),
          ...(typeof raw.output === 'string' ? { output: raw.output } : {}), ...(typeof raw.source === 'object' && raw.source !== null ? { source: raw.source as CorpusSample['source'] } : {}) });
      } catch (error) {
        errors.push(`${name}:${i + 1}: ${(error as Error).message}`);
      }
    });
  }
  return { samples, errors };
}

/** Benign real packages: held out for the false-positive figure when the first byte of sha256(name) is below 102 (about 40%). */
export function isHeldOutPackage(packageName: string): boolean {
  return (createHash('sha256').update(packageName).digest()[0] ?? 0) < 102;
}

function definitionText(server: ServerMetadata, subject: string): string {
  const doc = buildDocuments(server).find((d) => d.subject === subject);
  return doc ? JSON.stringify(doc.fields.map((f) => f.text)) : '';
}

/** Findings in the current listing at places that changed since the previous one become rug-pull evidence. */
function rugPullFindings(previous: ServerMetadata, current: ServerMetadata, findings: Finding[]): Finding[] {
  const changed = new Set(buildDocuments(current).map((d) => d.subject).filter((s) => definitionText(previous, s) !== definitionText(current, s)));
  const evidence = findings.filter((f) => f.location.subject !== undefined && changed.has(f.location.subject) && f.severity !== 'info' && f.severity !== 'low');
  return [...new Set(evidence.map((f) => f.location.subject as string))].map((subject) => makeFinding({
    ruleId: 'BST-M072', analyzer: 'metadata', attackClass: 'rug-pull', title: 'Changed definition adds poisoning', severity: 'high', confidence: 0.85, location: { subject },
    evidence: `changed since the previous listing; new findings: ${evidence.filter((f) => f.location.subject === subject).map((f) => f.ruleId).join(', ')}`,
    why: 'The definition was changed after it was first listed and the change carries findings: a rug pull (the approved tool is not the one now served).',
    remediation: 'Do not approve the change; pin the previously approved definition.',
  }));
}

/** Everything the scanner says about one corpus sample: metadata, collisions with its context, rug pull, tool output. */
export function analyzeSample(sample: Pick<CorpusSample, 'server' | 'context' | 'previous' | 'output'>, rules: RuleSet): Finding[] {
  const findings = analyzeMetadata(sample.server, rules);
  if (sample.context && sample.context.length > 0) findings.push(...analyzeCollisions(sample.server, sample.context, rules));
  if (sample.previous) findings.push(...rugPullFindings(sample.previous, sample.server, findings));
  if (sample.output !== undefined) {
    const location = { subject: 'output', field: 'text' };
    findings.push(...scanText(sample.output, location, rules, 'behaviour').map((f) => ({ ...f, attackClass: 'output-instructions' as const })));
    findings.push(...analyzeDocument({ subject: 'output', fields: [{ text: sample.output, location }], ownNames: sample.server.tools.map((t) => t.name), siblingTools: sample.server.tools.map((t) => t.name), purpose: '' }, rules, 'output-instructions'));
  }
  return findings;
}

export interface SampleResult { id: string; label: CorpusSample['label']; class: string; language: string; flagged: boolean; classes: string[]; findings: Finding[] }

/** "Flagged" is what an operator sees: the verdict is review or block. */
export function evaluateSample(sample: CorpusSample, rules: RuleSet): SampleResult {
  const findings = analyzeSample(sample, rules);
  const verdict = computeScore(findings, rules.thresholds).verdict;
  const classes = [...new Set(findings.filter((f) => f.severity === 'high' || f.severity === 'critical' || f.severity === 'medium').map((f) => f.attackClass ?? ''))];
  return { id: sample.id, label: sample.label, class: sample.class, language: sample.language, flagged: verdict !== 'pass', classes, findings };
}

export interface RateRow { key: string; n: number; flagged: number; classCorrect: number }

export function tabulate(results: SampleResult[], keyOf: (r: SampleResult) => string): RateRow[] {
  const rows = new Map<string, RateRow>();
  for (const r of results) {
    const key = keyOf(r);
    const row = rows.get(key) ?? { key, n: 0, flagged: 0, classCorrect: 0 };
    row.n += 1;
    if (r.flagged) row.flagged += 1;
    if (r.flagged && r.classes.includes(r.class)) row.classCorrect += 1;
    rows.set(key, row);
  }
  return [...rows.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

export interface Evaluation {
  train: SampleResult[];
  blind: SampleResult[];
  /** Benign real packages not used for training (isHeldOutPackage). */
  heldOutPackages: SampleResult[];
  trainPackages: SampleResult[];
  errors: string[];
}

/** Runs the scanner over every split of the corpus directory (test/scan/corpus/data). */
export function runEvaluation(corpusDir: string, rules: RuleSet, splits: { blind: boolean } = { blind: true }): Evaluation {
  const train = loadCorpus(join(corpusDir, 'train'));
  const blind = splits.blind ? loadCorpus(join(corpusDir, 'blind')) : { samples: [], errors: [] };
  const packages = loadCorpus(join(corpusDir, 'benign-packages'));
  const held = packages.samples.filter((s) => isHeldOutPackage(s.source?.package ?? s.id));
  const trainPackages = packages.samples.filter((s) => !isHeldOutPackage(s.source?.package ?? s.id));
  return {
    train: train.samples.map((s) => evaluateSample(s, rules)),
    blind: blind.samples.map((s) => evaluateSample(s, rules)),
    heldOutPackages: held.map((s) => evaluateSample(s, rules)),
    trainPackages: trainPackages.map((s) => evaluateSample(s, rules)),
    errors: [...train.errors, ...blind.errors, ...packages.errors],
  };
}

export function rateOf(results: SampleResult[], label: CorpusSample['label']): { n: number; flagged: number; rate: number } {
  const sel = results.filter((r) => r.label === label);
  const flagged = sel.filter((r) => r.flagged).length;
  return { n: sel.length, flagged, rate: sel.length === 0 ? 0 : flagged / sel.length };
}

/** The table `npm run eval:scan` prints: detection per attack class on train and blind, false positives by language. */
export function formatEvaluation(e: Evaluation): string {
  const pct = (a: number, b: number): string => (b === 0 ? '   -  ' : `${((100 * a) / b).toFixed(1).padStart(5)}%`);
  const lines: string[] = ['Detection per attack class (flagged = verdict review or block; "class ok" = a finding names the sample\'s class)', '', 'class                    | train n | train det | class ok | blind n | blind det | class ok', '-------------------------|---------|-----------|----------|---------|-----------|---------'];
  const trainRows = new Map(tabulate(e.train.filter((r) => r.label === 'malicious'), (r) => r.class).map((r) => [r.key, r]));
  const blindRows = new Map(tabulate(e.blind.filter((r) => r.label === 'malicious'), (r) => r.class).map((r) => [r.key, r]));
  const classes = [...new Set([...trainRows.keys(), ...blindRows.keys()])].sort();
  for (const c of classes) {
    const t = trainRows.get(c) ?? { n: 0, flagged: 0, classCorrect: 0 };
    const b = blindRows.get(c) ?? { n: 0, flagged: 0, classCorrect: 0 };
    lines.push(`${c.padEnd(24)} | ${String(t.n).padStart(7)} | ${pct(t.flagged, t.n).padStart(9)} | ${pct(t.classCorrect, t.n).padStart(8)} | ${String(b.n).padStart(7)} | ${pct(b.flagged, b.n).padStart(9)} | ${pct(b.classCorrect, b.n).padStart(8)}`);
  }
  const tm = rateOf(e.train, 'malicious');
  const bm = rateOf(e.blind, 'malicious');
  lines.push(`${'ALL'.padEnd(24)} | ${String(tm.n).padStart(7)} | ${pct(tm.flagged, tm.n).padStart(9)} |          | ${String(bm.n).padStart(7)} | ${pct(bm.flagged, bm.n).padStart(9)} |`);
  lines.push('', 'False positives (benign samples flagged)', '', 'set                          | language | n    | flagged | rate', '-----------------------------|----------|------|---------|------');
  const fpRows = (name: string, results: SampleResult[]): void => {
    for (const row of tabulate(results.filter((r) => r.label === 'benign'), (r) => r.language)) lines.push(`${name.padEnd(28)} | ${row.key.padEnd(8)} | ${String(row.n).padStart(4)} | ${String(row.flagged).padStart(7)} | ${pct(row.flagged, row.n)}`);
    const all = rateOf(results, 'benign');
    lines.push(`${name.padEnd(28)} | ${'ALL'.padEnd(8)} | ${String(all.n).padStart(4)} | ${String(all.flagged).padStart(7)} | ${pct(all.flagged, all.n)}`);
  };
  fpRows('benign packages (held out)', e.heldOutPackages);
  fpRows('benign packages (train)', e.trainPackages);
  fpRows('hard negatives (train)', e.train);
  fpRows('hard negatives (blind)', e.blind);
  const tools = (rs: SampleResult[]): number => rs.length;
  lines.push('', `samples: train ${tools(e.train)}, blind ${tools(e.blind)}, packages held out ${e.heldOutPackages.length}, packages train ${e.trainPackages.length}${e.errors.length ? `; ${e.errors.length} malformed lines skipped` : ''}`);
  return lines.join('\n');
}
