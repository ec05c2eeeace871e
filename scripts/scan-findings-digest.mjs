#!/usr/bin/env node
// Prints every finding analyzeMetadata reports on the whole scan corpus (test/scan/corpus/data: train,
// blind and the benign real packages), one JSON line per sample, and their digest. A speed change to the
// scanner must leave them identical: run it on a build from before the change and on one from after,
// e.g. `node scripts/scan-findings-digest.mjs /path/to/old-checkout > old.txt` and compare with diff.
// The corpus is read from this checkout; the scanner (dist) and rules (data/scan) from ROOT (default: here).
import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const root = resolve(process.argv[2] ?? here);
const { loadRules } = await import(join(root, 'dist/src/scan/rules.js'));
const { analyzeMetadata } = await import(join(root, 'dist/src/scan/analyzers/metadata.js'));
const rules = loadRules(join(root, 'data/scan'));

const { loadCorpus, runEvaluation } = await import(join(root, 'dist/src/scan/evaluate.js'));
const corpus = join(here, 'test/scan/corpus/data');
const hash = createHash('sha256');
let lines = 0;
let findings = 0;
const emit = (record, found) => {
  const out = `${JSON.stringify({ ...record, findings: found })}\n`;
  hash.update(out);
  process.stdout.write(out);
  lines += 1;
  findings += found.length;
};
// analyzeMetadata on each sample's server, then the evaluation's own per-sample findings (collisions, previous listings, outputs).
for (const split of readdirSync(corpus).sort().filter((d) => statSync(join(corpus, d)).isDirectory())) {
  const { samples, errors } = loadCorpus(join(corpus, split));
  if (errors.length > 0) throw new Error(errors.join('\n'));
  for (const sample of samples) emit({ split, id: sample.id }, analyzeMetadata(sample.server, rules));
}
const evaluation = runEvaluation(corpus, rules, { blind: true });
for (const [set, results] of Object.entries(evaluation)) {
  if (!Array.isArray(results)) continue;
  for (const r of results) emit({ evaluation: set, id: r.id, flagged: r.flagged }, r.findings ?? []);
}
process.stderr.write(`${lines} lines, ${findings} findings, sha256 ${hash.digest('hex')}\n`);
