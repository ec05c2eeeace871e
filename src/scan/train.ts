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

function quantile(values: number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

/**
 * Trains the learned scorer. Honest documents are negatives. A poisoned sample carries its attack in
 * one place: a one-document sample is a positive; for several documents (or a rug pull's changed
 * ones) a first model picks the document that scores highest, and only that one is a positive.
 * Name-overlap samples are left out (the attack is the name, which the collision check judges).
 */
export function trainModel(samples: CorpusSample[], rules: RuleSet, o: TrainOptions): { file: ModelFile; report: string[] } {
  const dims = o.dims ?? DEFAULT_DIMS;
  const negatives: Example[] = [];
  const single: Example[] = [];
  const multi: { id: string; xs: FeatureVector[] }[] = [];
  for (const s of samples) {
    let docs = docsOf(s.server, s.output);
    const vec = (d: (typeof docs)[number]): FeatureVector => featurize(documentText(d, rules), analyzeDirectives(d, rules).features, dims);
    if (s.label === 'benign') {
      for (const d of docs) negatives.push({ x: vec(d), y: 0, id: `${s.id}/${d.subject}` });
      continue;
    }
    if (s.class === 'name-overlap') continue;
    if (s.output !== undefined) docs = docs.filter((d) => d.subject === 'output');
    else if (s.previous) {
      const changed = changedSubjects(s.previous, s.server);
      docs = docs.filter((d) => changed.has(d.subject));
    }
    if (docs.length === 1) single.push({ x: vec(docs[0] as (typeof docs)[number]), y: 1, id: s.id });
    else if (docs.length > 1) multi.push({ id: s.id, xs: docs.map(vec) });
  }
  const first = sgd([...negatives, ...single], dims, o);
  const picked: Example[] = multi.map((m) => {
    let best = m.xs[0] as FeatureVector;
    let bestP = -1;
    for (const x of m.xs) {
      const p = score({ bias: first.bias, weights: first.weights as unknown as Float32Array }, x);
      if (p > bestP) { bestP = p; best = x; }
    }
    return { x: best, y: 1, id: m.id };
  });
  const all = [...negatives, ...single, ...picked];
  const final = sgd(all, dims, o);
  const model = { bias: final.bias, weights: final.weights as unknown as Float32Array };
  const negScores = negatives.map((e) => score(model, e.x));
  const posScores = [...single, ...picked].map((e) => score(model, e.x));
  // Thresholds sit above nearly all honest training documents (they are many per package, and one is enough to flag a package).
  const highAt = Math.min(0.95, Math.max(0.7, quantile(negScores, 0.998) + 0.05));
  const mediumAt = Math.min(highAt, Math.max(0.5, quantile(negScores, 0.99) + 0.05));
  const weights: [number, number][] = [];
  final.weights.forEach((w, i) => { if (Math.abs(w) >= 1e-4) weights.push([i, Math.round(w * 1e4) / 1e4]); });
  const digest = createHash('sha256').update(all.map((e) => `${e.id}:${e.y}`).sort().join('\n')).digest('hex').slice(0, 16);
  const file: ModelFile = { version: 1, dims, bias: Math.round(final.bias * 1e4) / 1e4, mediumAt: Math.round(mediumAt * 1000) / 1000, highAt: Math.round(highAt * 1000) / 1000,
    trainedOn: { documents: all.length, positives: single.length + picked.length, seed: o.seed, digest }, weights };
  const report = [
    `documents: ${all.length} (${single.length + picked.length} poisoned, ${negatives.length} honest); features kept: ${weights.length}`,
    `thresholds: medium ${file.mediumAt}, high ${file.highAt}`,
    `training fit: poisoned >= high ${posScores.filter((p) => p >= highAt).length}/${posScores.length}, honest >= medium ${negScores.filter((p) => p >= mediumAt).length}/${negScores.length}`,
  ];
  return { file, report };
}

