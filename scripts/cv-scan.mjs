#!/usr/bin/env node
// `npm run cv:scan`: cross-validation of the whole scanner (rules + learned scorer) on the tuning data
// only: test/scan/corpus/data/train and the train part of benign-packages. Each sample falls in one of
// K folds by a hash of its id; the model is trained without the fold (scripts/train-scan-model.mjs's
// options) and the full scanner scores the fold with that model. The result is detection per class and
// false positives on real packages for text the model never fitted: the honest figure to tune against.
// The blind split and the held-out packages are never read.
// Usage (after `npm run build --silent`): node scripts/cv-scan.mjs [--folds 5] [--misses] [--rules-only]
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { loadRules } = await import(join(repo, 'dist/src/scan/rules.js'));
const { loadCorpus, isHeldOutPackage, evaluateSample, tabulate, rateOf } = await import(join(repo, 'dist/src/scan/evaluate.js'));
const { trainModel, foldKey } = await import(join(repo, 'dist/src/scan/train.js'));
const { modelFromFile } = await import(join(repo, 'dist/src/scan/model.js'));

const args = process.argv.slice(2);
const folds = args.includes('--folds') ? Number(args[args.indexOf('--folds') + 1]) : 5;
const rulesOnly = args.includes('--rules-only');
const data = join(repo, 'test/scan/corpus/data');
const train = loadCorpus(join(data, 'train')).samples;
const packages = loadCorpus(join(data, 'benign-packages')).samples.filter((s) => !isHeldOutPackage(s.source?.package ?? s.id));
const samples = [...train, ...packages];
// Both placements of a generated phrasing share a fold (foldKey in src/scan/train.ts).
const foldOf = (id) => (createHash('sha256').update(`cv:${foldKey(id)}`).digest()[0] ?? 0) % folds;
const rules = loadRules(join(repo, 'data/scan'));
const started = process.cpuUsage();
const results = [];
for (let f = 0; f < folds; f += 1) {
  const inFold = samples.filter((s) => foldOf(s.id) === f);
  let model = null;
  if (!rulesOnly) {
    const { file } = trainModel(samples.filter((s) => foldOf(s.id) !== f), rules, { seed: 18, epochs: 20, learningRate: 0.5, l2: 1e-4, maxPackageFp: 0.02, maxHardNegativeFp: 0.03 });
    model = modelFromFile(file, `fold ${f}`);
  }
  for (const s of inFold) results.push({ ...evaluateSample(s, { ...rules, model }), isPackage: s.source !== undefined });
  process.stderr.write(`fold ${f + 1}/${folds} done\n`);
}
const pct = (a, b) => (b === 0 ? '   -  ' : `${((100 * a) / b).toFixed(1).padStart(5)}%`);
const lines = [`${folds}-fold cross-validation on the tuning data (${rulesOnly ? 'rules only' : 'rules + model trained without the fold'})`, '', 'class                    | n    | cv det', '-------------------------|------|-------'];
for (const row of tabulate(results.filter((r) => r.label === 'malicious'), (r) => r.class)) lines.push(`${row.key.padEnd(24)} | ${String(row.n).padStart(4)} | ${pct(row.flagged, row.n)}`);
const all = rateOf(results, 'malicious');
lines.push(`${'ALL'.padEnd(24)} | ${String(all.n).padStart(4)} | ${pct(all.flagged, all.n)}`);
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
