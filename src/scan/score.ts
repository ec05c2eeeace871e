import type { Thresholds } from './rules.js';
import { severityRank, type Finding, type Severity } from './types.js';

export type Verdict = 'pass' | 'review' | 'block';

export interface Contribution {
  findingId: string;
  ruleId: string;
  points: number;
}

export interface RiskScore {
  score: number;
  verdict: Verdict;
  contributions: Contribution[];
  /** Why the verdict is what it is, in one line. */
  reason: string;
}

/**
 * score = min(100, Σ points), points = severityPoints[severity] × confidence ÷ n, where n is the
 * finding's rank among findings of the same rule (1 for the first, 2 for the second …), so one noisy
 * rule cannot dominate. Points are rounded to one decimal; the contributions list sums to the score
 * (the last one is trimmed when the cap is reached).
 */
export function computeScore(findings: Finding[], thresholds: Thresholds): RiskScore {
  const ordered = [...findings].sort((a, b) => severityRank(b.severity) - severityRank(a.severity) || b.confidence - a.confidence || (a.id < b.id ? -1 : 1));
  const perRule = new Map<string, number>();
  const contributions: Contribution[] = [];
  let total = 0;
  for (const f of ordered) {
    const n = (perRule.get(f.ruleId) ?? 0) + 1;
    perRule.set(f.ruleId, n);
    let points = Math.round((thresholds.severityPoints[f.severity] * f.confidence * 10) / n) / 10;
    if (points <= 0) continue;
    if (total + points > 100) points = Math.round((100 - total) * 10) / 10;
    if (points <= 0) break;
    total = Math.round((total + points) * 10) / 10;
    contributions.push({ findingId: f.id, ruleId: f.ruleId, points });
  }
  const worst = ordered[0]?.severity;
  return { score: total, contributions, ...decide(total, worst, thresholds) };
}

function decide(score: number, worst: Severity | undefined, t: Thresholds): { verdict: Verdict; reason: string } {
  const { blockAtScore, reviewAtScore, blockOnSeverity, reviewOnSeverity } = t.verdict;
  if (worst !== undefined && severityRank(worst) >= severityRank(blockOnSeverity)) return { verdict: 'block', reason: `a ${worst} finding` };
  if (score >= blockAtScore) return { verdict: 'block', reason: `score ${score} ≥ ${blockAtScore}` };
  if (worst !== undefined && severityRank(worst) >= severityRank(reviewOnSeverity)) return { verdict: 'review', reason: `a ${worst} finding` };
  if (score >= reviewAtScore) return { verdict: 'review', reason: `score ${score} ≥ ${reviewAtScore}` };
  return { verdict: 'pass', reason: worst === undefined ? 'no findings' : `score ${score} < ${reviewAtScore} and nothing at ${reviewOnSeverity} or above` };
}
