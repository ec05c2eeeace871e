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
  /** Sparse weights: [index, weight] pairs (in the file itself, or in `weightsFile`). */
  weights?: [number, number][];
  /**
   * The same pairs in a binary file next to model.json (little-endian uint32 index, float32 weight):
   * parsing 100,000+ JSON pairs was most of `bastion scan`'s start-up.
   */
  weightsFile?: string;
}

/** The binary form of sparse weights (see ModelFile.weightsFile). */
export function encodeWeights(pairs: [number, number][]): Buffer {
  const out = Buffer.alloc(pairs.length * 8);
  pairs.forEach(([index, weight], k) => { out.writeUInt32LE(index, k * 8); out.writeFloatLE(weight, k * 8 + 4); });
  return out;
}

function decodeWeights(bytes: Buffer, dims: number, file: string): Float32Array {
  if (bytes.length % 8 !== 0) throw new RuleFileError(file, 'whole file', `length ${bytes.length} is not a multiple of 8 (uint32 index + float32 weight pairs); retrain with npm run train:scan`);
  const weights = new Float32Array(dims);
  // One aligned copy, then typed views: reading pair by pair through Buffer methods is ~10x slower.
  const aligned = new ArrayBuffer(bytes.length);
  new Uint8Array(aligned).set(bytes);
  const view = new DataView(aligned);
  const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  const indices = new Uint32Array(aligned);
  const values = new Float32Array(aligned);
  for (let k = 0; k < indices.length; k += 2) {
    const index = littleEndian ? (indices[k] as number) : view.getUint32(k * 4, true);
    if (index >= dims) throw new RuleFileError(file, `byte ${k * 4}`, `index ${index} is outside dims ${dims}`);
    weights[index] = littleEndian ? (values[k + 1] as number) : view.getFloat32(k * 4 + 4, true);
  }
  return weights;
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

/** fnv1a state after "c:", the prefix of every character-gram feature name. */
const GRAM_PREFIX_HASH = (() => {
  let h = 0x811c9dc5;
  for (const c of 'c:') { h ^= c.charCodeAt(0); h = Math.imul(h, 0x01000193); }
  return h;
})();

const CONCEPT_FEATURE = /^(k|dk|ko|kk):/;

const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u;

const TOKEN = /[\p{L}\p{N}_~./-]+|[`<>#$|]/gu;
const EDGES = /^[./-]+|[./-]+$/g;

/** ".", "/" or "-": trimmed from both ends of a token. */
const isEdge = (unit: number): boolean => unit === 0x2e || unit === 0x2f || unit === 0x2d;

/** Lower-cased word tokens; CJK runs become overlapping character bigrams (no spaces to split on). */
export function tokens(text: string): string[] {
  return loweredTokens(text.toLowerCase().slice(0, MAX_TEXT));
}

function loweredTokens(lowered: string): string[] {
  const out: string[] = [];
  // A text with no CJK character has no CJK token: one test instead of one per token.
  const anyCjk = CJK.test(lowered);
  for (const m of lowered.matchAll(TOKEN)) {
    const raw = m[0];
    const word = isEdge(raw.charCodeAt(0)) || isEdge(raw.charCodeAt(raw.length - 1)) ? raw.replace(EDGES, '') : raw;
    if (word.length === 0 && !/[`<>#$|]/.test(raw)) continue;
    if (anyCjk && CJK.test(word)) {
      const chars = [...word];
      if (chars.length === 1) out.push(word);
      for (let i = 0; i + 1 < chars.length; i += 1) out.push(`${chars[i]}${chars[i + 1]}`);
    } else {
      out.push(word || raw);
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
 * Reused per dims by featurize instead of a Map and a Set per call (they were most of its time): slotOf[index]
 * is the feature's position in `order` while stampOf[index] holds the current call's stamp; gramStamp marks
 * the 4-gram indices already counted. Scoring is synchronous, so one scratch per dims is never shared.
 */
interface Scratch { stampOf: Uint32Array; slotOf: Int32Array; gramStamp: Uint32Array; stamp: number; order: Int32Array; sums: Float64Array; grams: Int32Array }

const scratches = new Map<number, Scratch>();

function scratchFor(dims: number): Scratch {
  let s = scratches.get(dims);
  if (s === undefined) {
    s = { stampOf: new Uint32Array(dims), slotOf: new Int32Array(dims), gramStamp: new Uint32Array(dims), stamp: 0, order: new Int32Array(1024), sums: new Float64Array(1024), grams: new Int32Array(1024) };
    scratches.set(dims, s);
  }
  s.stamp = s.stamp === 0xffffffff ? 1 : s.stamp + 1;
  if (s.stamp === 1) { s.stampOf.fill(0); s.gramStamp.fill(0); }
  return s;
}

function grown<T extends Int32Array | Float64Array>(array: T, needed: number): T {
  if (needed <= array.length) return array;
  const bigger = new (array.constructor as new (n: number) => T)(Math.max(needed, array.length * 2));
  bigger.set(array);
  return bigger;
}

/**
 * Text features are scaled by 1/sqrt(count) per group so a long honest description does not outweigh
 * a short poisoned one; directive features keep weight 1, they are the evidence that matters most.
 * The vector lists indices in the order they were first added and sums each index's values in the order
 * they were added (what a Map accumulator gave), so scores are the same to the last bit.
 */
export function featurize(text: string, directiveFeatures: string[], dims: number = DEFAULT_DIMS, withNames = false): FeatureVector {
  const s = scratchFor(dims);
  const { stampOf, slotOf, gramStamp, stamp } = s;
  let count = 0;
  const names = withNames ? new Map<number, string>() : undefined;
  const addIndex = (index: number, value: number): void => {
    if (stampOf[index] === stamp) {
      const slot = slotOf[index] as number;
      s.sums[slot] = (s.sums[slot] as number) + value;
      return;
    }
    stampOf[index] = stamp;
    slotOf[index] = count;
    s.order = grown(s.order, count + 1);
    s.sums = grown(s.sums, count + 1);
    s.order[count] = index;
    s.sums[count] = value;
    count += 1;
  };
  // x % dims for a power of two is x & (dims - 1), an integer operation (the % is a float modulo).
  const mask = dims > 0 && dims <= 2 ** 31 && (dims & (dims - 1)) === 0 ? dims - 1 : -1;
  const add = (name: string, value: number): void => {
    const h = fnv1a(name);
    const index = mask >= 0 ? h & mask : h % dims;
    addIndex(index, value);
    names?.set(index, name);
  };
  // Concept features (concepts.ts: dk:, ko:, kk:) are a group scaled like the text: a long honest
  // description mentions most concepts somewhere, a short poisoned one few, and unscaled they summed up.
  const concept = directiveFeatures.filter((f) => CONCEPT_FEATURE.test(f));
  const conceptScale = 1 / Math.sqrt(Math.max(1, concept.length));
  for (const f of directiveFeatures) add(`D:${f}`, CONCEPT_FEATURE.test(f) ? conceptScale : 1);
  const lowered = text.toLowerCase().slice(0, MAX_TEXT);
  const words = loweredTokens(lowered);
  const wordFeatures = new Set<string>();
  for (let i = 0; i < words.length; i += 1) {
    wordFeatures.add(`w:${words[i]}`);
    if (i + 1 < words.length) wordFeatures.add(`b:${words[i]} ${words[i + 1]}`);
  }
  const flat = lowered.replace(/\s+/g, ' ');
  // Character 4-grams hashed in place (fnv1a of "c:" + the 4 code units, as add() would compute) without
  // building a string per gram: the hot loop of the scanner. Names are only made when asked for.
  let gramCount = 0;
  for (let i = 0; i + 4 <= flat.length; i += 1) {
    let h = GRAM_PREFIX_HASH;
    for (let k = i; k < i + 4; k += 1) { h ^= flat.charCodeAt(k); h = Math.imul(h, 0x01000193); }
    const index = mask >= 0 ? h & mask : (h >>> 0) % dims;
    if (gramStamp[index] === stamp) continue;
    gramStamp[index] = stamp;
    s.grams = grown(s.grams, gramCount + 1);
    s.grams[gramCount] = index;
    gramCount += 1;
    if (names) names.set(index, `c:${flat.slice(i, i + 4)}`);
  }
  const wordScale = 1 / Math.sqrt(Math.max(1, wordFeatures.size));
  const gramScale = 1 / Math.sqrt(Math.max(1, gramCount));
  for (const f of wordFeatures) add(f, wordScale);
  for (let g = 0; g < gramCount; g += 1) addIndex(s.grams[g] as number, gramScale);
  add('bias:len', Math.min(1, flat.length / 2000));
  const indices = s.order.slice(0, count);
  const values = Float32Array.from(s.sums.subarray(0, count));
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
  if (doc.version !== 1 || !Number.isInteger(doc.dims) || doc.dims <= 0 || (!Array.isArray(doc.weights) && typeof doc.weightsFile !== 'string')) throw new RuleFileError(file, 'top level', 'expected {version: 1, dims, bias, weights: [[index, weight]…] or weightsFile}');
  let model: ScanModel;
  if (typeof doc.weightsFile === 'string') {
    if (!/^[\w.-]+$/.test(doc.weightsFile)) throw new RuleFileError(file, 'weightsFile', 'expected a file name in the same directory');
    const binary = join(dataDir, doc.weightsFile);
    let bytes: Buffer;
    try {
      bytes = readFileSync(binary);
    } catch (error) {
      throw new RuleFileError(binary, 'whole file', `not readable (${(error as Error).message}); retrain with npm run train:scan`);
    }
    model = { version: 1, dims: doc.dims, bias: doc.bias, weights: decodeWeights(bytes, doc.dims, binary), mediumAt: doc.mediumAt, highAt: doc.highAt, trainedOn: doc.trainedOn };
  } else {
    model = modelFromFile(doc, file);
  }
  models.set(dataDir, model);
  return model;
}

/** The in-memory model of a model file (dense weights); `file` names the source in errors. */
export function modelFromFile(doc: ModelFile, file = 'model'): ScanModel {
  const weights = new Float32Array(doc.dims);
  for (const [index, weight] of doc.weights ?? []) {
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
