#!/usr/bin/env node
// Measures false positives on a set of benign real-package records (the jsonl written by
// scripts/collect-benign-corpus.mjs): which packages carry any medium+ finding, which the operator
// would see flagged (verdict review or block), which tools carry medium+ findings, and the rule ids
// that fire most. A measurement tool: it prints rule ids and tool names so a false positive can be
// understood, so run it on held-out or untouched sets for the figure, not while tuning on them.
//
// Usage (after `npm run build --silent`):
//   node scripts/measure-benign-set.mjs [--held-out | --train] [--quiet] FILE.jsonl|DIR ...
// With no FILE, the corpus's benign-packages directory. --held-out/--train keep only the packages
// of that side of the sha256(name) split (isHeldOutPackage in src/scan/evaluate.ts).
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const load = (p) => import(pathToFileURL(join(repo, 'dist/src/scan', p)).href);
const { loadRules } = await load('rules.js');
const { loadCorpus, evaluateSample, isHeldOutPackage } = await load('evaluate.js');

const args = process.argv.slice(2);
const side = args.includes('--held-out') ? 'held-out' : args.includes('--train') ? 'train' : 'all';
const quiet = args.includes('--quiet');
const inputs = args.filter((a) => !a.startsWith('--'));
if (inputs.length === 0) inputs.push(join(repo, 'test/scan/corpus/data/benign-packages'));

const MEDIUM_UP = new Set(['medium', 'high', 'critical']);
const samples = [];
for (const input of inputs) {
  const path = resolve(input);
  if (!existsSync(path)) { console.error(`${input}: no such file or directory`); process.exitCode = 2; continue; }
  // loadCorpus reads a directory; a single file is read as the only jsonl of its directory.
  const isDir = statSync(path).isDirectory();
  const { samples: found, errors } = loadCorpus(isDir ? path : dirname(path));
  for (const e of errors) console.error(`${input}: ${e}`);
  samples.push(...found.filter((s) => isDir || s.file === basename(path)));
}
const packageOf = (s) => s.source?.package ?? s.id;
const selected = samples.filter((s) => s.label === 'benign' && (side === 'all' || (side === 'held-out') === isHeldOutPackage(packageOf(s))));

const rules = loadRules(join(repo, 'data/scan'));
const started = process.cpuUsage();
const results = selected.map((s) => ({ sample: s, result: evaluateSample(s, rules) }));
const cpu = process.cpuUsage(started);

const ruleCount = new Map();
const bump = (map, key) => map.set(key, (map.get(key) ?? 0) + 1);
let withMedium = 0;
let flagged = 0;
let tools = 0;
let toolsFlagged = 0;
const lines = [];
for (const { sample, result } of results) {
  tools += sample.server.tools.length;
  const serious = result.findings.filter((f) => MEDIUM_UP.has(f.severity));
  if (serious.length > 0) withMedium += 1;
  if (result.flagged) flagged += 1;
  const bySubject = new Map();
  for (const f of serious) {
    const subject = f.location.subject ?? '(server)';
    if (!bySubject.has(subject)) bySubject.set(subject, []);
    bySubject.get(subject).push(`${f.ruleId}/${f.severity}`);
  }
  toolsFlagged += [...bySubject.keys()].filter((s) => s.startsWith('tool:')).length;
  for (const id of new Set(serious.map((f) => f.ruleId))) bump(ruleCount, id);
  if (serious.length > 0 && !quiet) {
    lines.push(`${result.flagged ? 'FLAGGED' : 'medium '} ${packageOf(sample)}@${sample.source?.version ?? '?'}`);
    for (const [subject, ids] of bySubject) lines.push(`    ${subject}: ${[...new Set(ids)].join(' ')}`);
  }
}
const pct = (n, d) => (d === 0 ? '0.0' : (100 * n / d).toFixed(1));
if (lines.length > 0) console.log(lines.join('\n'));
console.log(`set: ${side}, ${results.length} packages, ${tools} tools (${inputs.join(', ')})`);
console.log(`packages with a medium+ finding: ${withMedium}/${results.length} (${pct(withMedium, results.length)}%)`);
console.log(`packages flagged (review/block): ${flagged}/${results.length} (${pct(flagged, results.length)}%)`);
console.log(`tools with a medium+ finding: ${toolsFlagged}/${tools} (${pct(toolsFlagged, tools)}%)`);
console.log(`rules by packages they fired on (medium+): ${[...ruleCount].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([id, n]) => `${id} ${n}`).join(', ') || 'none'}`);
console.log(`CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s`);
