import { readFileSync } from 'node:fs';
import { parseYaml } from './yaml.js';
import type { Finding } from './types.js';

export interface Suppression {
  /** The finding's suppressionKey: `<finding id>@sha256:<digest of evidence>`. */
  key: string;
  reason: string;
  reviewer: string;
  /** ISO date after which the suppression no longer applies. */
  expires?: string;
}

export interface SuppressionResult {
  active: Finding[];
  suppressed: { finding: Finding; suppression: Suppression }[];
  /** Suppressions that matched nothing (stale: the code or text changed, or the finding is gone). */
  unused: Suppression[];
  expired: Suppression[];
}

export class SuppressionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SuppressionError';
  }
}

const KEY = /^[A-Z]+-[A-Z0-9:_-]+:[0-9a-f]{12}@sha256:[0-9a-f]{64}$/i;

/** Suppression file (YAML or JSON): `suppressions: [{ key, reason, reviewer, expires? }]`. Every entry must be reviewed. */
export function loadSuppressions(path: string): Suppression[] {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new SuppressionError(`${path}: cannot parse (${(error as Error).message})`);
  }
  const list = (doc as { suppressions?: unknown } | null)?.suppressions;
  if (!Array.isArray(list)) throw new SuppressionError(`${path}: expected "suppressions:" with a list of { key, reason, reviewer }`);
  return list.map((raw, i) => {
    const s = raw as Partial<Suppression>;
    const where = `${path}: suppressions[${i}]`;
    if (typeof s.key !== 'string' || !KEY.test(s.key)) throw new SuppressionError(`${where}.key: expected a finding's suppression key, e.g. BST-M001:0123456789ab@sha256:<64 hex> (copy it from the report)`);
    if (typeof s.reason !== 'string' || s.reason.trim().length < 10) throw new SuppressionError(`${where}.reason: say why this finding is a false positive (at least 10 characters)`);
    if (typeof s.reviewer !== 'string' || s.reviewer.trim().length === 0) throw new SuppressionError(`${where}.reviewer: name who reviewed it`);
    if (s.expires !== undefined && (typeof s.expires !== 'string' || Number.isNaN(Date.parse(s.expires)))) throw new SuppressionError(`${where}.expires: expected an ISO date`);
    return { key: s.key, reason: s.reason, reviewer: s.reviewer, ...(s.expires ? { expires: s.expires } : {}) };
  });
}

/** A suppression applies only while the evidence is unchanged: a new payload at the same place fires again. */
export function applySuppressions(findings: Finding[], suppressions: Suppression[], now = new Date()): SuppressionResult {
  const expired = suppressions.filter((s) => s.expires !== undefined && Date.parse(s.expires) < now.getTime());
  const live = new Map(suppressions.filter((s) => !expired.includes(s)).map((s) => [s.key, s]));
  const used = new Set<string>();
  const active: Finding[] = [];
  const suppressed: SuppressionResult['suppressed'] = [];
  for (const finding of findings) {
    const s = live.get(finding.suppressionKey);
    if (s) {
      used.add(s.key);
      suppressed.push({ finding, suppression: s });
    } else {
      active.push(finding);
    }
  }
  return { active, suppressed, unused: [...live.values()].filter((s) => !used.has(s.key)), expired };
}
