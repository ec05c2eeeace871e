import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RuleFileError } from './rules.js';

/**
 * The learned scorer: logistic regression over hashed features of one document (a tool's, prompt's
 * or resource's text, or the server's instructions). Features are the directive analysis (which
 * demands and out-of-scope objects occur in clauses addressed to the model), word unigrams and
 * bigrams, and character 4-grams. Trained by scripts/train-scan-model.mjs (fixed seed) and stored as
 * data/scan/model.json; inference needs nothing beyond Node.
 */
export interface ScanModel {
  version: 1;
  dims: number;
  bias: number;
  weights: Float32Array;
  /** Probability at or above which a document is a medium / high finding. */
  mediumAt: number;
  highAt: number;
  trainedOn: { documents: number; positives: number; seed: number; digest: string };
}

export interface ModelFile {
  version: 1;
  dims: number;
  bias: number;
  mediumAt: number;
  highAt: number;
  trainedOn: ScanModel['trainedOn'];
  /** Sparse weights: [index, weight] pairs. */
  weights: [number, number][];
}

export const DEFAULT_DIMS = 1 << 18;
const MAX_TEXT = 6000;

/** FNV-1a, 32 bits: a stable hash for feature names (same on every platform). */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u;

/** Lower-cased word tokens; CJK runs become overlapping character bigrams (no spaces to split on). */
export function tokens(text: string): string[] {
  const out: string[] = [];
  for (const m of text.toLowerCase().slice(0, MAX_TEXT).matchAll(/[\p{L}\p{N}_~./-]+|[`<>#$|]/gu)) {
    const word = m[0].replace(/^[./-]+|[./-]+$/g, '');
    if (word.length === 0 && !/[`<>#$|]/.test(m[0])) continue;
    if (CJK.test(word)) {
      const chars = [...word];
      if (chars.length === 1) out.push(word);
      for (let i = 0; i + 1 < chars.length; i += 1) out.push(`${chars[i]}${chars[i + 1]}`);
    } else {
      out.push(word || m[0]);
    }
  }
  return out;
}

export interface FeatureVector {
  indices: Int32Array;
  values: Float32Array;
  /** Feature names by index, for explanations (only filled when asked). */
  names?: Map<number, string>;
}

/**
 * Text features are scaled by 1/sqrt(count) per group so a long honest description does not outweigh
 * a short poisoned one; directive features keep weight 1, they are the evidence that matters most.
 */
export function featurize(text: string, directiveFeatures: string[], dims: number = DEFAULT_DIMS, withNames = false): FeatureVector {
  const acc = new Map<number, number>();
  const names = withNames ? new Map<number, string>() : undefined;
  const add = (name: string, value: number): void => {
    const index = fnv1a(name) % dims;
    acc.set(index, (acc.get(index) ?? 0) + value);
    names?.set(index, name);
  };
  for (const f of directiveFeatures) add(`D:${f}`, 1);
  const words = tokens(text);
  const wordFeatures = new Set<string>();
  for (let i = 0; i < words.length; i += 1) {
    wordFeatures.add(`w:${words[i]}`);
    if (i + 1 < words.length) wordFeatures.add(`b:${words[i]} ${words[i + 1]}`);
  }
  const flat = text.toLowerCase().slice(0, MAX_TEXT).replace(/\s+/g, ' ');
  const grams = new Set<string>();
  for (let i = 0; i + 4 <= flat.length; i += 1) grams.add(`c:${flat.slice(i, i + 4)}`);
  const wordScale = 1 / Math.sqrt(Math.max(1, wordFeatures.size));
  const gramScale = 1 / Math.sqrt(Math.max(1, grams.size));
  for (const f of wordFeatures) add(f, wordScale);
  for (const f of grams) add(f, gramScale);
  add('bias:len', Math.min(1, flat.length / 2000));
  const indices = Int32Array.from(acc.keys());
  const values = Float32Array.from(indices, (i) => acc.get(i) ?? 0);
  return names ? { indices, values, names } : { indices, values };
}

export function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-Math.max(-40, Math.min(40, z))));
}

export function score(model: Pick<ScanModel, 'bias' | 'weights'>, x: FeatureVector): number {
  let z = model.bias;
  for (let k = 0; k < x.indices.length; k += 1) z += (model.weights[x.indices[k] as number] ?? 0) * (x.values[k] as number);
  return sigmoid(z);
}

/** The features that pushed the score up most, by name: what the finding shows as "why". */
export function topContributions(model: ScanModel, x: FeatureVector, n = 6): { name: string; contribution: number }[] {
  const out: { name: string; contribution: number }[] = [];
  for (let k = 0; k < x.indices.length; k += 1) {
    const index = x.indices[k] as number;
    const contribution = (model.weights[index] ?? 0) * (x.values[k] as number);
    if (contribution > 0) out.push({ name: x.names?.get(index) ?? `#${index}`, contribution });
  }
  return out.sort((a, b) => b.contribution - a.contribution || (a.name < b.name ? -1 : 1)).slice(0, n);
}

const models = new Map<string, ScanModel | null>();

/** Loads data/scan/model.json once; no file means no learned scorer (the rules still run). */
export function loadModel(dataDir: string): ScanModel | undefined {
  if (models.has(dataDir)) return models.get(dataDir) ?? undefined;
  const file = join(dataDir, 'model.json');
  if (!existsSync(file)) {
    models.set(dataDir, null);
    return undefined;
  }
  let doc: ModelFile;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8')) as ModelFile;
  } catch (error) {
    throw new RuleFileError(file, 'whole file', `not readable JSON (${(error as Error).message})`);
  }
  if (doc.version !== 1 || !Number.isInteger(doc.dims) || doc.dims <= 0 || !Array.isArray(doc.weights)) throw new RuleFileError(file, 'top level', 'expected {version: 1, dims, bias, weights: [[index, weight]…]}');
  const model = modelFromFile(doc, file);
  models.set(dataDir, model);
  return model;
}

/** The in-memory model of a model file (dense weights); `file` names the source in errors. */
export function modelFromFile(doc: ModelFile, file = 'model'): ScanModel {
  const weights = new Float32Array(doc.dims);
  for (const [index, weight] of doc.weights) {
    if (!Number.isInteger(index) || index < 0 || index >= doc.dims || typeof weight !== 'number') throw new RuleFileError(file, 'weights', `bad entry [${index}, ${weight}]`);
    weights[index] = weight;
  }
  return { version: 1, dims: doc.dims, bias: doc.bias, weights, mediumAt: doc.mediumAt, highAt: doc.highAt, trainedOn: doc.trainedOn };
}

/** The model a rule set scores with: its override (cross-validation), else data/scan/model.json. */
export function modelOf(rules: { dataDir: string; model?: ScanModel | null }): ScanModel | undefined {
  if (rules.model !== undefined) return rules.model ?? undefined;
  return loadModel(rules.dataDir);
}

/** Forgets loaded models (the training script reloads after writing a new one). */
export function clearModelCache(): void {
  models.clear();
}
