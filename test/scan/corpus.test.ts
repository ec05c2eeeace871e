import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeCode, analyzeMetadata, computeScore, loadRules, runYara, yaraFindings, type Finding } from '../../src/scan/index.js';
import { benign, poisoned, type ToolCase } from './corpus/tools.js';
import { holdoutBenign, holdoutPoisoned } from './corpus/tools-holdout.js';
import { blindBenign, blindPoisoned } from './corpus/tools-blind.js';
import { blind2Benign, blind2Poisoned } from './corpus/tools-blind2.js';
import { corpusDir } from './helpers.js';
import { removeTree } from '../helpers/tmp.js';

const rules = loadRules();

/** "Flagged" means what an operator sees: the verdict is review or block, not pass. */
function flaggedTools(c: ToolCase): boolean {
  return computeScore(analyzeMetadata(c.server, rules), rules.thresholds).verdict !== 'pass';
}

interface CodeSample { name: string; malicious: boolean; category: string }

async function flaggedCode(dir: string, sample: string): Promise<{ flagged: boolean; findings: Finding[] }> {
  const work = mkdtempSync(join(tmpdir(), 'bastion-corpus-'));
  try {
    const real = sample.replace(/\.txt$/, '').replace(/^.*\.package\.json$/, 'package.json');
    const content = readFileSync(join(dir, sample), 'utf8');
    writeFileSync(join(work, real), content);
    const code = analyzeCode([{ path: real, content, bytes: Buffer.byteLength(content) }], rules);
    const yara = yaraFindings(await runYara(rules.yaraFiles, [join(work, real)]), work);
    const findings = [...code.findings, ...yara];
    return { flagged: computeScore(findings, rules.thresholds).verdict !== 'pass', findings };
  } finally {
    removeTree(work);
  }
}

interface Row { set: string; category: string; label: string; total: number; flagged: number }

function rate(rows: Row[], label: string): number {
  const sel = rows.filter((r) => r.label === label);
  const total = sel.reduce((n, r) => n + r.total, 0);
  return total === 0 ? 0 : sel.reduce((n, r) => n + r.flagged, 0) / total;
}

function tabulate(set: string, cases: { category: string; label: string; flagged: boolean }[]): Row[] {
  const rows = new Map<string, Row>();
  for (const c of cases) {
    const key = `${c.label}|${c.category}`;
    const row = rows.get(key) ?? { set, category: c.category, label: c.label, total: 0, flagged: 0 };
    row.total += 1;
    if (c.flagged) row.flagged += 1;
    rows.set(key, row);
  }
  return [...rows.values()].sort((a, b) => (a.label + a.category < b.label + b.category ? -1 : 1));
}

function printTable(title: string, rows: Row[]): void {
  const lines = [`\n${title}`, 'set       | label      | category            | n  | flagged | rate', '----------|------------|---------------------|----|---------|------'];
  for (const r of rows) lines.push(`${r.set.padEnd(9)} | ${r.label.padEnd(10)} | ${r.category.padEnd(19)} | ${String(r.total).padStart(2)} | ${String(r.flagged).padStart(7)} | ${(r.flagged / r.total).toFixed(2)}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

test('poisoned tool definitions are detected and benign ones pass (per-category rates)', () => {
  // tools-holdout.ts was blind once (4/14 caught), then used to generalise the rules: it now counts as tuned.
  const tuned = tabulate('tuned', [...poisoned, ...benign, ...holdoutPoisoned, ...holdoutBenign].map((c) => ({ category: c.category, label: c.label, flagged: flaggedTools(c) })));
  const blind = tabulate('blind', [...blindPoisoned, ...blindBenign].map((c) => ({ category: c.category, label: c.label, flagged: flaggedTools(c) })));
  const blind2 = tabulate('blind-2', [...blind2Poisoned, ...blind2Benign].map((c) => ({ category: c.category, label: c.label, flagged: flaggedTools(c) })));
  printTable('Tool metadata corpus (flagged = verdict review/block). Detection rate for poisoned, false-positive rate for benign.', [...tuned, ...blind, ...blind2]);
  process.stdout.write(`tools: blind-2 (never used for tuning) detection ${rate(blind2, 'poisoned').toFixed(2)}, FP ${rate(blind2, 'benign').toFixed(2)}\n`);
  process.stdout.write(`tools: tuned detection ${rate(tuned, 'poisoned').toFixed(2)}, tuned FP ${rate(tuned, 'benign').toFixed(2)}, blind detection ${rate(blind, 'poisoned').toFixed(2)}, blind FP ${rate(blind, 'benign').toFixed(2)}\n`);
  // The tuned set was written together with the rules: it must be caught almost entirely.
  assert.ok(rate(tuned, 'poisoned') >= 0.95, `tuned detection ${rate(tuned, 'poisoned')}`);
  assert.ok(rate(tuned, 'benign') <= 0.05, `tuned false positives ${rate(tuned, 'benign')}`);
  for (const row of tuned.filter((r) => r.label === 'poisoned')) assert.ok(row.flagged / row.total >= 0.8, `category ${row.category}: ${row.flagged}/${row.total}`);
  // The blind set was never used for tuning; its bar was fixed before its first run.
  assert.ok(rate(blind, 'poisoned') >= 0.5, `blind detection ${rate(blind, 'poisoned')}`);
  assert.ok(rate(blind, 'benign') <= 0.25, `blind false positives ${rate(blind, 'benign')}`);
  // blind-2 has never been used for tuning; its bar was fixed before its first run.
  assert.ok(rate(blind2, 'poisoned') >= 0.3, `blind-2 detection ${rate(blind2, 'poisoned')}`);
  assert.ok(rate(blind2, 'benign') <= 0.2, `blind-2 false positives ${rate(blind2, 'benign')}`);
});

function samples(sub: string, malicious: boolean): CodeSample[] {
  return readdirSync(join(corpusDir(), 'code', sub)).filter((n) => n.endsWith('.txt')).sort().map((name) => ({ name, malicious, category: sub }));
}

test('malicious code samples are detected and benign ones (base64 images, hashes, minified vendor code) pass', async () => {
  const results: { category: string; label: string; flagged: boolean }[] = [];
  const misses: string[] = [];
  for (const sub of ['malicious', 'benign', 'holdout-malicious', 'holdout-benign', 'blind-malicious', 'blind-benign']) {
    const malicious = sub.endsWith('malicious');
    for (const s of samples(sub, malicious)) {
      const { flagged, findings } = await flaggedCode(join(corpusDir(), 'code', sub), s.name);
      // holdout-* was blind once (5/6 caught) and then used for tuning; blind-* never was.
      results.push({ category: sub.startsWith('blind') ? 'blind' : 'tuned', label: malicious ? 'malicious' : 'benign', flagged });
      if (flagged !== malicious) misses.push(`${sub}/${s.name}: ${findings.filter((f) => f.severity !== 'info').map((f) => `${f.ruleId}/${f.severity}`).join(' ') || 'no findings'}`);
    }
  }
  const rows = tabulate('code', results);
  printTable('Code corpus (flagged = verdict review/block).', rows);
  if (misses.length > 0) process.stdout.write(`misclassified:\n  ${misses.join('\n  ')}\n`);
  const get = (label: string, category: string): Row | undefined => rows.find((r) => r.label === label && r.category === category);
  const tunedMal = get('malicious', 'tuned');
  const tunedBen = get('benign', 'tuned');
  assert.ok(tunedMal && tunedMal.flagged / tunedMal.total >= 0.95, 'tuned malicious detection below 95%');
  assert.ok(tunedBen && tunedBen.flagged === 0, 'a tuned benign sample was flagged');
  const blindMal = get('malicious', 'blind');
  const blindBen = get('benign', 'blind');
  assert.ok(blindMal && blindMal.flagged / blindMal.total >= 0.5, 'blind malicious detection below 50%');
  assert.ok(blindBen && blindBen.flagged / blindBen.total <= 0.34, 'blind benign false positives above 1 in 3');
});
