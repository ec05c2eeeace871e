import type { Guard, Next } from '../pipeline/chain.js';
import type { CallContext } from '../pipeline/context.js';
import { ErrorCode, failure, type Outcome } from '../pipeline/outcome.js';
import { analyzeHiddenCharacters, scanText } from './analyzers/metadata.js';
import { matchThreatFeed, type FeedSubject, type ThreatFeed } from './feed.js';
import { verifyCertification, type CertificationLevel } from './certify.js';
import { loadRules, type RuleSet } from './rules.js';
import type { TrustedKey } from './signing.js';
import { severityRank, type Finding, type Severity } from './types.js';

export interface OutputInspectionOptions {
  rules?: RuleSet;
  /** Withhold an output with a finding at or above this severity (default high). */
  blockAt?: Severity;
  /** Methods whose results reach the model as context (default tools/call, prompts/get, resources/read). */
  methods?: string[];
  /**
   * Rule categories that apply to outputs (default: instructions aimed at the model). Outputs
   * routinely name credential files (a directory listing, an error message), so the `secrets`
   * category, meant for tool descriptions, would withhold ordinary results.
   */
  categories?: string[];
}

const OUTPUT_CATEGORIES = ['hidden-instruction', 'shadowing', 'exfiltration'];

/** Every text a result carries to the model: tool content, structured content, resource contents, prompt messages. */
export function resultTexts(result: unknown): string[] {
  const out: string[] = [];
  const visit = (value: unknown, depth: number): void => {
    if (depth > 8 || out.length > 500) return;
    if (typeof value === 'string') { out.push(value); return; }
    if (Array.isArray(value)) { for (const v of value) visit(v, depth + 1); return; }
    if (typeof value === 'object' && value !== null) {
      for (const [key, v] of Object.entries(value)) if (key !== 'blob' && key !== 'data' && key !== '_meta') visit(v, depth + 1);
    }
  };
  visit(result, 0);
  return out;
}

/**
 * Output inspection: scans what an upstream returns with the same rules as tool metadata (indirect
 * prompt injection, hidden characters) and withholds outputs that carry instructions to the model.
 * Place it inside the audit guard and after dispatch, so the denial is audited.
 */
export function createOutputInspectionGuard(options: OutputInspectionOptions = {}): Guard {
  const allRules = options.rules ?? loadRules();
  const categories = new Set(options.categories ?? OUTPUT_CATEGORIES);
  const rules = { ...allRules, metadata: allRules.metadata.filter((rule) => categories.has(rule.category)) };
  const blockAt = options.blockAt ?? 'high';
  const methods = new Set(options.methods ?? ['tools/call', 'prompts/get', 'resources/read']);
  return {
    name: 'output-inspection',
    async handle(ctx: CallContext, next: Next): Promise<Outcome> {
      const outcome = await next(ctx);
      if (!outcome.ok || !methods.has(ctx.method)) return outcome;
      const subject = `${ctx.target?.server ?? 'upstream'}:${ctx.target?.name ?? ctx.method}`;
      const findings: Finding[] = [];
      for (const text of resultTexts(outcome.result)) {
        const location = { subject, field: 'result' };
        findings.push(...scanText(text, location, rules, 'behaviour'), ...analyzeHiddenCharacters({ text, location, isIdentifier: false }, rules));
      }
      const blocking = findings.filter((f) => severityRank(f.severity) >= severityRank(blockAt));
      if (blocking.length === 0) return outcome;
      const ruleIds = [...new Set(blocking.map((f) => f.ruleId))];
      ctx.audit.decision = 'deny';
      ctx.audit.deniedBy = 'output-inspection';
      ctx.audit.reason = `output carries instructions to the model (${ruleIds.join(', ')})`;
      return failure(ErrorCode.Forbidden, `Bastion withheld the output of ${subject}: it carries instructions aimed at the model (${blocking[0]?.title}). An operator can review it in the audit log.`, { reason: 'output-injection', ruleIds });
    },
  };
}

export interface BootCheckInput {
  server: string;
  feed?: ThreatFeed;
  subject?: FeedSubject;
  /** Required level (0 = none). */
  minCertificationLevel?: number;
  certification?: unknown;
  manifestDigest?: string;
  artifactDigest?: string;
  trustedCertifiers?: TrustedKey[];
  now?: Date;
}

export interface BootCheckResult {
  ok: boolean;
  level: CertificationLevel;
  reasons: string[];
  feedMatches: Finding[];
}

/** What the gateway runs per server before starting it: threat feed first, then the certification level. Fails closed. */
export function checkServerAtBoot(input: BootCheckInput): BootCheckResult {
  const reasons: string[] = [];
  const feedMatches = input.feed && input.subject ? matchThreatFeed(input.feed, input.subject) : [];
  for (const f of feedMatches) reasons.push(`${input.server}: threat feed match: ${f.location.subject} ${f.evidence}`);
  let level: CertificationLevel = 0;
  const min = input.minCertificationLevel ?? 0;
  if (min > 0) {
    if (input.certification === undefined || !input.manifestDigest || !input.artifactDigest) {
      reasons.push(`${input.server}: certification level ${min} required but no certification (or manifest/artifact digest) is configured; run bastion certify`);
    } else {
      const check = verifyCertification(input.certification, input.manifestDigest, input.artifactDigest, input.trustedCertifiers ?? [], input.now);
      level = check.level;
      if (check.level < min) reasons.push(`${input.server}: certification level ${check.level} is below the required ${min} (${check.reason})`);
    }
  }
  return { ok: reasons.length === 0, level, reasons, feedMatches };
}
