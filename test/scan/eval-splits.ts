import { join } from 'node:path';
import { evaluateSample, isHeldOutPackage, loadCorpus, type Evaluation, type SampleResult } from '../../src/scan/evaluate.js';
import type { RuleSet } from '../../src/scan/rules.js';
import { repoRoot } from './helpers.js';

// The corpus evaluation is split over test files (eval.test.ts: train; eval-packages-blind.test.ts:
// benign packages and blind) so that the runner evaluates the splits in parallel; each file
// evaluates only its splits, once, the way runEvaluation does.
type Split = 'train' | 'blind' | 'packages';

const corpus = (): string => join(repoRoot(), 'test/scan/corpus/data');

function evaluateAll(samples: ReturnType<typeof loadCorpus>['samples'], rules: RuleSet): SampleResult[] {
  return samples.map((sample) => evaluateSample(sample, rules));
}

/** An Evaluation holding only the named splits (the others empty), as runEvaluation builds it. */
export function evaluateSplits(rules: RuleSet, splits: Split[]): Evaluation {
  const e: Evaluation = { train: [], blind: [], heldOutPackages: [], trainPackages: [], errors: [] };
  if (splits.includes('train')) {
    const train = loadCorpus(join(corpus(), 'train'));
    e.train = evaluateAll(train.samples, rules);
    e.errors.push(...train.errors);
  }
  if (splits.includes('blind')) {
    const blind = loadCorpus(join(corpus(), 'blind'));
    e.blind = evaluateAll(blind.samples, rules);
    e.errors.push(...blind.errors);
  }
  if (splits.includes('packages')) {
    const packages = loadCorpus(join(corpus(), 'benign-packages'));
    e.heldOutPackages = evaluateAll(packages.samples.filter((s) => isHeldOutPackage(s.source?.package ?? s.id)), rules);
    e.trainPackages = evaluateAll(packages.samples.filter((s) => !isHeldOutPackage(s.source?.package ?? s.id)), rules);
    e.errors.push(...packages.errors);
  }
  return e;
}
