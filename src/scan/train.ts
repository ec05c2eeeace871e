import { createHash } from 'node:crypto';
import { analyzeDirectives, documentText } from './directives.js';
import { buildDocuments } from './documents.js';
import type { CorpusSample } from './evaluate.js';
import { DEFAULT_DIMS, featurize, score, type FeatureVector, type ModelFile } from './model.js';
import type { RuleSet } from './rules.js';
import type { ServerMetadata } from './types.js';

/** A small deterministic PRNG (mulberry32): the same seed gives the same shuffles, so the same weights. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Example { x: FeatureVector; y: 0 | 1; id: string }

function docsOf(server: ServerMetadata, output: string | undefined): ReturnType<typeof buildDocuments> {
  const docs = buildDocuments(server);
  if (output !== undefined) docs.push({ subject: 'output', fields: [{ text: output, location: { subject: 'output' } }], ownNames: [], siblingTools: server.tools.map((t) => t.name), purpose: '' });
  return docs;
}

function changedSubjects(previous: ServerMetadata, current: ServerMetadata): Set<string> {
  const text = (s: ServerMetadata): Map<string, string> => new Map(buildDocuments(s).map((d) => [d.subject, JSON.stringify(d.fields.map((f) => f.text))]));
  const before = text(previous);
  return new Set([...text(current)].filter(([subject, t]) => before.get(subject) !== t).map(([subject]) => subject));
}

export interface TrainOptions { seed: number; epochs: number; learningRate: number; l2: number; dims?: number }

/** The options `npm run train:scan` and scripts/cv-scan.mjs both train with, so CV measures the shipped model. */
export const DEFAULT_TRAIN_OPTIONS = { seed: 18, epochs: 20, learningRate: 0.5, l2: 1e-4, maxPackageFp: 0.02, maxHardNegativeFp: 0.03 } as const;

function sgd(examples: Example[], dims: number, o: TrainOptions): { weights: Float64Array; bias: number } {
  const weights = new Float64Array(dims);
  let bias = 0;
  const pos = examples.filter((e) => e.y === 1).length;
  const neg = examples.length - pos;
  // Balanced classes: poisoned documents are few next to the honest documents of real packages.
  const wPos = examples.length / (2 * Math.max(1, pos));
  const wNeg = examples.length / (2 * Math.max(1, neg));
  const random = mulberry32(o.seed);
  const order = examples.map((_, i) => i);
  for (let epoch = 0; epoch < o.epochs; epoch += 1) {
    for (let i = order.length - 1; i > 0; i -= 1) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    const lr = o.learningRate / (1 + epoch * 0.2);
    for (const index of order) {
      const e = examples[index] as Example;
      const p = score({ bias, weights: weights as unknown as Float32Array }, e.x);
      const g = (p - e.y) * (e.y === 1 ? wPos : wNeg);
      bias -= lr * g;
      for (let k = 0; k < e.x.indices.length; k += 1) {
        const f = e.x.indices[k] as number;
        weights[f] = (weights[f] as number) * (1 - lr * o.l2) - lr * g * (e.x.values[k] as number);
      }
    }
  }
  return { weights, bias };
}


interface SampleExamples { id: string; fold: number; label: 0 | 1; isPackage: boolean; docs: FeatureVector[] }

/**
 * The key a sample is folded by: generated phrasings (scripts/gen-scan-phrasings.mjs) place each phrasing
 * twice (`phr-…-07a`, `phr-…-07b`, each with a clean `-twin`); all of them go to the same fold, or cross-validation would score a
 * phrasing the model was trained on.
 */
export function foldKey(id: string): string {
  return id.replace(/^(phr-.*\d)[ab](-twin)?$/, '$1');
}

const CLASS_FILE = /^[a-z]+(-[a-z]+)*\.jsonl$/;

/**
 * The group a sample is held out with in grouped cross-validation (scripts/cv-scan.mjs --group):
 * `language`, or `source`, the writer family of its file. own.jsonl and phrasings.jsonl are each one
 * writer; `<class>-w2.jsonl`-style files (a second writer's batch) group by their suffix; the other
 * hand-written per-class files are one family. Real packages are `packages`.
 */
export function groupOfSample(s: Pick<CorpusSample, 'file' | 'language' | 'source'>, by: 'source' | 'language'): string {
  if (by === 'language') return s.language;
  if (s.source !== undefined) return 'packages';
  const base = s.file.replace(/\.jsonl$/, '');
  if (base === 'own' || base === 'phrasings') return base;
  const suffix = /-(w\d+|[a-z]+\d+)$/.exec(base);
  if (suffix) return suffix[1] as string;
  return CLASS_FILE.test(s.file) ? 'per-class' : base;
}

function foldOf(id: string, folds: number): number {
  return (createHash('sha256').update(foldKey(id)).digest()[0] ?? 0) % folds;
}

/** Positive documents of a poisoned sample: the first model's top-scoring candidate when there are several. */
function fit(samples: SampleExamples[], dims: number, o: TrainOptions): { bias: number; weights: Float32Array } {
  const negatives: Example[] = [];
  const single: Example[] = [];
  const multi: SampleExamples[] = [];
  for (const s of samples) {
    if (s.label === 0) for (const x of s.docs) negatives.push({ x, y: 0, id: s.id });
    else if (s.docs.length === 1) single.push({ x: s.docs[0] as FeatureVector, y: 1, id: s.id });
    else if (s.docs.length > 1) multi.push(s);
  }
  const first = sgd([...negatives, ...single], dims, o);
  const firstModel = { bias: first.bias, weights: Float32Array.from(first.weights) };
  const picked: Example[] = multi.map((m) => {
    let best = m.docs[0] as FeatureVector;
    let bestP = -1;
    for (const x of m.docs) {
      const p = score(firstModel, x);
      if (p > bestP) { bestP = p; best = x; }
    }
    return { x: best, y: 1, id: m.id };
  });
  const final = sgd([...negatives, ...single, ...picked], dims, o);
  return { bias: final.bias, weights: Float32Array.from(final.weights) };
}

const maxScore = (model: { bias: number; weights: Float32Array }, docs: FeatureVector[]): number => docs.reduce((m, x) => Math.max(m, score(model, x)), 0);

/**
 * Trains the learned scorer. Honest documents are negatives. A poisoned sample carries its attack in
 * one place: a one-document sample is a positive; for several documents (or a rug pull's changed
 * ones) a first model picks the document that scores highest, and only that one is a positive.
 * Name-overlap samples are left out (the attack is the name, which the collision check judges).
 * The thresholds come from k-fold cross-validation on the training data (out-of-fold scores), so
 * they are set on scores the model did not fit: high is the lowest threshold at which at most
 * `maxPackageFp` of the real packages and `maxHardNegativeFp` of the hard negatives are flagged.
 */
export function trainModel(samples: CorpusSample[], rules: RuleSet, o: TrainOptions & { folds?: number; maxPackageFp?: number; maxHardNegativeFp?: number }): { file: ModelFile; report: string[] } {
  const dims = o.dims ?? DEFAULT_DIMS;
  const folds = o.folds ?? 5;
  const examples: SampleExamples[] = [];
  for (const s of samples) {
    let docs = docsOf(s.server, s.output);
    if (s.label === 'malicious') {
      if (s.class === 'name-overlap') continue;
      if (s.output !== undefined) docs = docs.filter((d) => d.subject === 'output');
      else if (s.previous) {
        const changed = changedSubjects(s.previous, s.server);
        docs = docs.filter((d) => changed.has(d.subject));
      }
    }
    if (docs.length === 0) continue;
    examples.push({ id: s.id, fold: foldOf(s.id, folds), label: s.label === 'malicious' ? 1 : 0, isPackage: s.source !== undefined, docs: docs.map((d) => featurize(documentText(d, rules), analyzeDirectives(d, rules).features, dims)) });
  }
  const oof = new Map<string, number>();
  for (let f = 0; f < folds; f += 1) {
    const model = fit(examples.filter((e) => e.fold !== f), dims, o);
    for (const e of examples.filter((x) => x.fold === f)) oof.set(e.id, maxScore(model, e.docs));
  }
  const at = (t: number): { recall: number; pkgFp: number; hardFp: number } => {
    const pos = examples.filter((e) => e.label === 1);
    const pkg = examples.filter((e) => e.label === 0 && e.isPackage);
    const hard = examples.filter((e) => e.label === 0 && !e.isPackage);
    const rate = (list: SampleExamples[]): number => (list.length === 0 ? 0 : list.filter((e) => (oof.get(e.id) ?? 0) >= t).length / list.length);
    return { recall: rate(pos), pkgFp: rate(pkg), hardFp: rate(hard) };
  };
  let highAt = 0.99;
  for (let t = 0.5; t <= 0.99; t = Math.round((t + 0.01) * 100) / 100) {
    const r = at(t);
    if (r.pkgFp <= (o.maxPackageFp ?? 0.01) && r.hardFp <= (o.maxHardNegativeFp ?? 0.03)) { highAt = t; break; }
  }
  const mediumAt = Math.max(0.5, Math.round((highAt - 0.1) * 100) / 100);
  const final = fit(examples, dims, o);
  const weights: [number, number][] = [];
  final.weights.forEach((w, i) => { if (Math.abs(w) >= 1e-4) weights.push([i, Math.round(w * 1e4) / 1e4]); });
  const digest = createHash('sha256').update(examples.map((e) => `${e.id}:${e.label}`).sort().join('\n')).digest('hex').slice(0, 16);
  const documents = examples.reduce((n, e) => n + e.docs.length, 0);
  const positives = examples.filter((e) => e.label === 1).length;
  const file: ModelFile = { version: 1, dims, bias: Math.round(final.bias * 1e4) / 1e4, mediumAt, highAt,
    trainedOn: { documents, positives, seed: o.seed, digest }, weights };
  const r = at(highAt);
  const report = [
    `samples: ${examples.length} (${positives} poisoned), documents: ${documents}; features kept: ${weights.length}`,
    `${folds}-fold out-of-fold, model alone at high=${highAt}: poisoned recall ${(100 * r.recall).toFixed(1)}%, real packages flagged ${(100 * r.pkgFp).toFixed(1)}%, hard negatives flagged ${(100 * r.hardFp).toFixed(1)}%`,
    ...[0.6, 0.7, 0.8, 0.9].map((t) => { const x = at(t); return `  at ${t}: recall ${(100 * x.recall).toFixed(1)}%, packages ${(100 * x.pkgFp).toFixed(1)}%, hard negatives ${(100 * x.hardFp).toFixed(1)}%`; }),
    `thresholds: medium ${mediumAt}, high ${highAt}`,
  ];
  return { file, report };
}
