#!/usr/bin/env node
// Trains the scanner's learned scorer (src/scan/model.ts) and writes data/scan/model.json.
// Reads ONLY test/scan/corpus/data/train/*.jsonl and the train part of
// test/scan/corpus/data/benign-packages/*.jsonl (packages whose name hash is not held out);
// never the blind split. Deterministic: fixed seed, fixed order, so the same data gives the same weights.
// Usage (after `npm run build --silent`): node scripts/train-scan-model.mjs [--seed N] [--epochs N] [--out FILE]
import { writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { loadRules } = await import(join(repo, 'dist/src/scan/rules.js'));
const { loadCorpus, isHeldOutPackage } = await import(join(repo, 'dist/src/scan/evaluate.js'));
const { trainModel, DEFAULT_TRAIN_OPTIONS } = await import(join(repo, 'dist/src/scan/train.js'));

const args = process.argv.slice(2);
const opt = (name, fallback) => { const i = args.indexOf(name); return i >= 0 ? Number(args[i + 1]) : fallback; };
const seed = opt('--seed', DEFAULT_TRAIN_OPTIONS.seed);
const epochs = opt('--epochs', DEFAULT_TRAIN_OPTIONS.epochs);
const l2 = opt('--l2', DEFAULT_TRAIN_OPTIONS.l2);
const data = join(repo, 'test/scan/corpus/data');
const train = loadCorpus(join(data, 'train'));
const packages = loadCorpus(join(data, 'benign-packages'));
for (const e of [...train.errors, ...packages.errors]) process.stderr.write(`skipped: ${e}\n`);
const packageTrain = packages.samples.filter((s) => !isHeldOutPackage(s.source?.package ?? s.id));
const samples = [...train.samples, ...packageTrain];
process.stdout.write(`train split: ${train.samples.length} samples; benign packages: ${packageTrain.length} for training, ${packages.samples.length - packageTrain.length} held out\n`);
const rules = loadRules(join(repo, 'data/scan'));
const { file, report } = trainModel(samples, rules, { ...DEFAULT_TRAIN_OPTIONS, seed, epochs, l2 });
const out = args.includes('--out') ? resolve(args[args.indexOf('--out') + 1]) : join(repo, 'data/scan/model.json');
// Weights go to a binary file next to model.json (fast to load); model.json keeps the rest.
const { encodeWeights } = await import(join(repo, 'dist/src/scan/model.js'));
const weightsFile = basename(out).replace(/\.json$/, '') + '-weights.bin';
writeFileSync(join(dirname(out), weightsFile), encodeWeights(file.weights));
const { weights, ...rest } = file;
writeFileSync(out, `${JSON.stringify({ ...rest, weightsFile })}\n`);
process.stdout.write(`${report.join('\n')}\nwrote ${out} (${weights.length} weights in ${weightsFile})\n`);
