#!/usr/bin/env node
// `npm run cv:scan`: cross-validation of the whole scanner (rules + learned scorer) on the tuning data
// only: test/scan/corpus/data/train and the train part of benign-packages. Each sample falls in one of
// K folds by a hash of its id; the model is trained without the fold (scripts/train-scan-model.mjs's
// options) and the full scanner scores the fold with that model. The result is detection per class and
// false positives on real packages for text the model never fitted: the honest figure to tune against.
// The blind split and the held-out packages are never read.
// `--group source|language` holds out whole groups instead of hashed folds, so a phrasing family never
// sits on both sides: `source` makes one fold per writer of the poisoned samples (own.jsonl, the
// template-generated phrasings.jsonl, the hand-written per-class files, the *-w2 files, any other
// file family by its name), `language` one fold per language (en, de, …). Benign samples (hard
// negatives and real packages) are spread over those folds by hash, so every fold still measures false
// positives. That figure, not the random K-fold, is the one that predicts an independently written split.
// Usage (after `npm run build --silent`): node scripts/cv-scan.mjs [--folds 5] [--group source|language] [--misses] [--rules-only]
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { loadRules } = await import(join(repo, 'dist/src/scan/rules.js'));
const { loadCorpus, isHeldOutPackage, evaluateSample, tabulate, rateOf } = await import(join(repo, 'dist/src/scan/evaluate.js'));
const { trainModel, foldKey, DEFAULT_TRAIN_OPTIONS } = await import(join(repo, 'dist/src/scan/train.js'));
const { modelFromFile } = await import(join(repo, 'dist/src/scan/model.js'));

const args = process.argv.slice(2);
const groupBy = args.includes('--group') ? args[args.indexOf('--group') + 1] : undefined;
if (groupBy !== undefined && groupBy !== 'source' && groupBy !== 'language') throw new Error(`--group expects source or language, not ${groupBy}`);
const rulesOnly = args.includes('--rules-only');
// --l2 N: try another regularisation strength against the same folds (the default is the shipped one).
const l2 = args.includes('--l2') ? Number(args[args.indexOf('--l2') + 1]) : DEFAULT_TRAIN_OPTIONS.l2;
const data = join(repo, 'test/scan/corpus/data');
const train = loadCorpus(join(data, 'train')).samples;
const packages = loadCorpus(join(data, 'benign-packages')).samples.filter((s) => !isHeldOutPackage(s.source?.package ?? s.id));
const samples = [...train, ...packages];
const hashOf = (id) => createHash('sha256').update(`cv:${foldKey(id)}`).digest()[0] ?? 0;
const { groupOfSample } = await import(join(repo, 'dist/src/scan/train.js'));
const groups = groupBy === undefined ? [] : [...new Set(samples.filter((s) => s.label === 'malicious').map((s) => groupOfSample(s, groupBy)))].sort();
const folds = groupBy === undefined ? (args.includes('--folds') ? Number(args[args.indexOf('--folds') + 1]) : 5) : groups.length;
// Both placements of a generated phrasing share a fold (foldKey in src/scan/train.ts); grouped, a
// poisoned sample's fold is its group and a benign one's is hashed over the groups.
const foldIndex = new Map(samples.map((s) => [s.id, groupBy !== undefined && s.label === 'malicious' ? groups.indexOf(groupOfSample(s, groupBy)) : hashOf(s.id) % folds]));
const foldOf = (id) => foldIndex.get(id) ?? 0;
const rules = loadRules(join(repo, 'data/scan'));
const started = process.cpuUsage();
const results = [];
for (let f = 0; f < folds; f += 1) {
  const inFold = samples.filter((s) => foldOf(s.id) === f);
  let model = null;
  if (!rulesOnly) {
    const { file } = trainModel(samples.filter((s) => foldOf(s.id) !== f), rules, { ...DEFAULT_TRAIN_OPTIONS, l2 });
    model = modelFromFile(file, `fold ${f}`);
  }
  for (const s of inFold) results.push({ ...evaluateSample(s, { ...rules, model }), isPackage: s.source !== undefined, sample: s });
  process.stderr.write(`fold ${f + 1}/${folds} done\n`);
}
const pct = (a, b) => (b === 0 ? '   -  ' : `${((100 * a) / b).toFixed(1).padStart(5)}%`);
const title = groupBy === undefined ? `${folds}-fold cross-validation` : `grouped cross-validation by ${groupBy} (${groups.join(', ')} held out in turn)`;
const lines = [`${title} on the tuning data (${rulesOnly ? 'rules only' : 'rules + model trained without the fold'})`, '', 'class                    | n    | cv det', '-------------------------|------|-------'];
for (const row of tabulate(results.filter((r) => r.label === 'malicious'), (r) => r.class)) lines.push(`${row.key.padEnd(24)} | ${String(row.n).padStart(4)} | ${pct(row.flagged, row.n)}`);
const all = rateOf(results, 'malicious');
lines.push(`${'ALL'.padEnd(24)} | ${String(all.n).padStart(4)} | ${pct(all.flagged, all.n)}`);
if (groupBy !== undefined) {
  lines.push('', `${groupBy.padEnd(24)} | n    | cv det`);
  for (const row of tabulate(results.filter((r) => r.label === 'malicious'), (r) => groupOfSample(r.sample, groupBy))) lines.push(`${row.key.padEnd(24)} | ${String(row.n).padStart(4)} | ${pct(row.flagged, row.n)}`);
}
const pk = rateOf(results.filter((r) => r.isPackage), 'benign');
const hard = rateOf(results.filter((r) => !r.isPackage), 'benign');
lines.push('', `false positives: train packages ${pk.flagged}/${pk.n} (${pct(pk.flagged, pk.n).trim()}), train hard negatives ${hard.flagged}/${hard.n} (${pct(hard.flagged, hard.n).trim()})`);
const cpu = process.cpuUsage(started);
lines.push(`CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s`);
process.stdout.write(`${lines.join('\n')}\n`);
if (args.includes('--misses')) {
  for (const r of results.filter((x) => (x.label === 'malicious') !== x.flagged)) {
    process.stdout.write(`${r.label === 'malicious' ? 'MISS' : 'FP  '} ${r.class} ${r.id} ${r.findings.filter((f) => f.severity !== 'info').map((f) => `${f.ruleId}/${f.severity}`).join(' ')}\n`);
  }
}
