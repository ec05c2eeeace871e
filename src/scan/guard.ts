import type { Guard, Next } from '../pipeline/chain.js';
import type { CallContext } from '../pipeline/context.js';
import { ErrorCode, failure, type Outcome } from '../pipeline/outcome.js';
import { analyzeHiddenCharacters, scanText } from './analyzers/metadata.js';
import { matchThreatFeed, type FeedSubject, type ThreatFeed } from './feed.js';
import { verifyCertification, type CertificationLevel } from './certify.js';
import { loadRules, type RuleSet } from './rules.js';
import type { TrustedKey } from './signing.js';
import { severityRank, type Finding, type Severity } from './types.js';
import { collectTexts } from './output-texts.js';
import { newReviewId, type ReviewStore } from './review.js';
import { InspectionWorkers } from './inspect-offload.js';

export interface OutputInspectionOptions {
  rules?: RuleSet;
  /** Withhold an output with a finding at or above this severity (default high). */
  blockAt?: Severity;
  /** Methods whose results reach the model as context (default tools/call, prompts/get, resources/read, completion/complete). */
  methods?: string[];
  /**
   * Rule categories that apply to outputs (default: instructions aimed at the model). Outputs
   * routinely name credential files (a directory listing, an error message), so the `secrets`
   * category, meant for tool descriptions, would withhold ordinary results.
   */
  categories?: string[];
  /** Most bytes of text inspected per answer; an answer with more is withheld, never passed unchecked (default 16 MiB). */
  maxInspectedBytes?: number;
  /** Where withheld outputs are kept for an operator (bastion review); without one they are only audited. */
  review?: ReviewStore;
  /** Called when a withheld output could not be stored (the output stays withheld). */
  onReviewError?: (error: unknown) => void;
  /**
   * Answers with more text than this are inspected on a worker thread, so that a large answer
   * does not hold the event loop (default 256 KiB; 0 inspects everything on the event loop).
   * Custom `rules` always run on the event loop.
   */
  offloadBytes?: number;
  /** Worker threads for offloaded inspection (default 1). */
  offloadThreads?: number;
  /** The worker pool to use instead of the guard's own (tests). */
  workers?: InspectionWorkers;
}

const OUTPUT_CATEGORIES = ['hidden-instruction', 'shadowing', 'exfiltration'];
export const DEFAULT_MAX_INSPECTED_BYTES = 16 * 1024 * 1024;
export const DEFAULT_OFFLOAD_BYTES = 256 * 1024;

/** Every text a result carries to the model, at any depth and count (no budget: for tests and tools). */
export function resultTexts(result: unknown): string[] {
  return collectTexts(result, Number.POSITIVE_INFINITY).texts;
}

/** What inspecting one message found. */
export interface InspectionVerdict {
  findings: Finding[];
  blocking: Finding[];
  /** The message had more text than the budget: it was not fully inspected and must be withheld. */
  overBudget: boolean;
  /** Why inspection itself failed (a worker thread died): the message must be withheld. */
  failed?: string;
  /** Where the texts were scanned. */
  inspectedOn: 'event-loop' | 'worker';
}

/** Scans every string of a message with the output rules; shared by output inspection and server-to-client requests. */
export class TextInspector {
  private readonly rules: RuleSet;
  private readonly blockAt: Severity;
  readonly maxInspectedBytes: number;

  constructor(options: Pick<OutputInspectionOptions, 'rules' | 'blockAt' | 'categories' | 'maxInspectedBytes'> = {}) {
    const allRules = options.rules ?? loadRules();
    const categories = new Set(options.categories ?? OUTPUT_CATEGORIES);
    this.rules = { ...allRules, metadata: allRules.metadata.filter((rule) => categories.has(rule.category)) };
    this.blockAt = options.blockAt ?? 'high';
    this.maxInspectedBytes = options.maxInspectedBytes ?? DEFAULT_MAX_INSPECTED_BYTES;
  }

  inspect(value: unknown, subject: string, field: string): InspectionVerdict {
    const collected = collectTexts(value, this.maxInspectedBytes);
    return this.verdict(this.inspectTexts(collected.texts, subject, field), collected.exhausted, 'event-loop');
  }

  /** The findings of each text, as `inspect` gathers them. */
  inspectTexts(texts: readonly string[], subject: string, field: string): Finding[] {
    const findings: Finding[] = [];
    const location = { subject, field };
    for (const text of texts) {
      findings.push(...scanText(text, location, this.rules, 'behaviour'), ...analyzeHiddenCharacters({ text, location, isIdentifier: false }, this.rules));
    }
    return findings;
  }

  verdict(findings: Finding[], overBudget: boolean, inspectedOn: InspectionVerdict['inspectedOn']): InspectionVerdict {
    const blocking = findings.filter((f) => severityRank(f.severity) >= severityRank(this.blockAt));
    return { findings, blocking, overBudget, inspectedOn };
  }
}

/** Inspects on the event loop, or on a worker thread when the answer is large; never throws (a failure is in the verdict). */
async function inspectAnswer(inspector: TextInspector, workers: () => InspectionWorkers | undefined, offloadBytes: number, value: unknown, subject: string, field: string): Promise<InspectionVerdict> {
  const collected = collectTexts(value, inspector.maxInspectedBytes);
  const pool = offloadBytes > 0 && collected.charged > offloadBytes && !collected.exhausted ? workers() : undefined;
  if (pool === undefined) return inspector.verdict(inspector.inspectTexts(collected.texts, subject, field), collected.exhausted, 'event-loop');
  try {
    return inspector.verdict(await pool.inspect(collected.texts, subject, field), false, 'worker');
  } catch (error) {
    return { ...inspector.verdict([], false, 'worker'), failed: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * Output inspection: scans what an upstream returns (result, or error message and data, with
 * `_meta` and structured content) with the same rules as tool metadata (indirect prompt
 * injection, hidden characters) and withholds outputs that carry instructions to the model, or
 * that are too large to inspect. Place it inside the audit guard and after dispatch, so the
 * denial is audited; the withheld output goes to the review store under the id the error names.
 */
export function createOutputInspectionGuard(options: OutputInspectionOptions = {}): Guard {
  const inspector = new TextInspector(options);
  const offloadBytes = options.rules === undefined ? (options.offloadBytes ?? DEFAULT_OFFLOAD_BYTES) : 0;
  let ownWorkers: InspectionWorkers | undefined;
  const workers = (): InspectionWorkers => {
    if (options.workers !== undefined) return options.workers;
    ownWorkers ??= new InspectionWorkers({ blockAt: options.blockAt ?? 'high', threads: options.offloadThreads ?? 1, ...(options.categories ? { categories: options.categories } : {}) });
    return ownWorkers;
  };
  const methods = new Set(options.methods ?? ['tools/call', 'prompts/get', 'resources/read', 'completion/complete']);
  return {
    name: 'output-inspection',
    async handle(ctx: CallContext, next: Next): Promise<Outcome> {
      const outcome = await next(ctx);
      if (!methods.has(ctx.method)) return outcome;
      // Bastion's own refusals carry no upstream text; an upstream's error body does.
      const produced = outcome.ok ? outcome.result : outcome.error;
      const subject = `${ctx.target?.server ?? 'upstream'}:${ctx.target?.name ?? ctx.method}`;
      const verdict = await inspectAnswer(inspector, workers, offloadBytes, produced, subject, outcome.ok ? 'result' : 'error');
      if (verdict.blocking.length === 0 && !verdict.overBudget && verdict.failed === undefined) return outcome;
      const uninspectable = verdict.overBudget || verdict.failed !== undefined;
      const ruleIds = verdict.overBudget ? ['inspection-budget'] : verdict.failed !== undefined ? ['inspection-failed'] : [...new Set(verdict.blocking.map((f) => f.ruleId))];
      const why = verdict.overBudget
        ? `it holds more than the ${inspector.maxInspectedBytes} bytes of text output inspection reads`
        : verdict.failed !== undefined
          ? `it could not be inspected (${verdict.failed})`
          : `it carries instructions aimed at the model (${verdict.blocking[0]?.title ?? ruleIds[0]})`;
      const reviewId = storeForReview(options, ctx, subject, produced, why, ruleIds, verdict.blocking);
      ctx.audit.decision = 'deny';
      ctx.audit.deniedBy = 'output-inspection';
      const withheldFor = verdict.overBudget ? 'over the inspection budget' : verdict.failed !== undefined ? `inspection failed: ${verdict.failed}` : `carries instructions to the model (${ruleIds.join(', ')})`;
      ctx.audit.reason = `output withheld: ${withheldFor}${reviewId === undefined ? '' : `; review ${reviewId}`}`;
      const where = reviewId === undefined ? 'An operator can find the denial in the audit log.' : `An operator can review it with: bastion review show ${reviewId}`;
      return failure(ErrorCode.Forbidden, `Bastion withheld the ${outcome.ok ? 'output' : 'error'} of ${subject}: ${why}. ${where}`, {
        reason: uninspectable ? 'output-uninspectable' : 'output-injection',
        ruleIds,
        ...(reviewId === undefined ? {} : { reviewId }),
      });
    },
  };
}

function storeForReview(options: OutputInspectionOptions, ctx: CallContext, subject: string, produced: unknown, why: string, ruleIds: string[], blocking: Finding[]): string | undefined {
  const store = options.review;
  if (store === undefined) return undefined;
  const id = newReviewId();
  try {
    store.put(id, {
      server: ctx.target?.server ?? null,
      subject,
      method: ctx.method,
      session_id: ctx.session.sessionId,
      request_id: ctx.requestId,
      agent_id: ctx.identity?.agentId ?? null,
      reason: why,
      rule_ids: ruleIds,
      findings: blocking.slice(0, 50).map((f) => ({ ruleId: f.ruleId, severity: f.severity, title: f.title, evidence: f.evidence })),
      withheld: produced,
    });
    return id;
  } catch (error) {
    options.onReviewError?.(error);
    return undefined;
  }
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
