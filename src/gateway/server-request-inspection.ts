import { join, resolve } from 'node:path';
import { canonicalJson } from '../audit/canonical.js';
import type { BastionConfig } from '../config/index.js';
import { DEFAULT_REVIEW_LIMITS, newReviewId, ReviewStore, TextInspector } from '../scan/index.js';

/**
 * What a server asks the client's model (sampling) or user (elicitation) is model input written
 * by the server: the same output inspection applies to it before it is relayed, and the context
 * a sampling request may pull in is capped by the config.
 */

export type IncludeContext = 'none' | 'thisServer' | 'allServers';
const CONTEXT_ORDER: IncludeContext[] = ['none', 'thisServer', 'allServers'];

export interface ServerRequestVerdict {
  /** Why the request is refused, or undefined to relay it. */
  refusal: string | undefined;
  ruleIds: string[];
  /** The params to relay (includeContext possibly downgraded). */
  params: Record<string, unknown> | undefined;
  /** The includeContext the server asked for, when it was lowered. */
  downgradedFrom: string | undefined;
  /** sha256 of the canonical JSON of { messages, systemPrompt } (sampling only). */
  promptDigest: string | undefined;
  reviewId: string | undefined;
}

interface Inspection {
  inspector: TextInspector;
  review: ReviewStore;
}

const inspections = new WeakMap<BastionConfig, Inspection | null>();

function inspectionFor(config: BastionConfig, baseDir: string): Inspection | undefined {
  let found = inspections.get(config);
  if (found === undefined) {
    const settings = config.scan.outputInspection;
    found = settings.enabled
      ? {
          inspector: new TextInspector({ blockAt: settings.blockAt, maxInspectedBytes: settings.maxInspectedBytes }),
          review: new ReviewStore({ dir: join(resolve(baseDir, config.stateDir), 'review'), maxEntries: settings.reviewMaxEntries, maxTotalBytes: settings.reviewMaxBytes, maxEntryBytes: DEFAULT_REVIEW_LIMITS.maxEntryBytes }),
        }
      : null;
    inspections.set(config, found);
  }
  return found ?? undefined;
}

/** The texts of a request that reach the model or the user. */
function promptParts(method: string, params: Record<string, unknown>): unknown {
  if (method === 'sampling/createMessage') return { messages: params['messages'] ?? null, systemPrompt: params['systemPrompt'] ?? null };
  if (method === 'elicitation/create') return { message: params['message'] ?? null, requestedSchema: params['requestedSchema'] ?? null, url: params['url'] ?? null };
  return null;
}

function safeCanonicalJson(value: unknown): string {
  try {
    return canonicalJson(value);
  } catch {
    return canonicalJson(JSON.parse(JSON.stringify(value)) as unknown);
  }
}

/** What inspecting a server request needs from the gateway: its config, and the audit log's keyed digest. */
export interface ServerRequestContext {
  config: BastionConfig;
  baseDir: string;
  auditDigest: (canonicalJson: string) => string;
}

export function inspectServerRequest(context: ServerRequestContext, server: string, method: string, params: Record<string, unknown> | undefined): ServerRequestVerdict {
  const { config, baseDir } = context;
  const verdict: ServerRequestVerdict = { refusal: undefined, ruleIds: [], params, downgradedFrom: undefined, promptDigest: undefined, reviewId: undefined };
  if (method !== 'sampling/createMessage' && method !== 'elicitation/create') return verdict;
  const body = params ?? {};
  const parts = promptParts(method, body);
  if (method === 'sampling/createMessage') {
    verdict.promptDigest = context.auditDigest(safeCanonicalJson(parts));
    const maximum = config.upstream.sampling.maxIncludeContext;
    const asked = body['includeContext'];
    if (asked !== undefined && (typeof asked !== 'string' || CONTEXT_ORDER.indexOf(asked as IncludeContext) === -1 || CONTEXT_ORDER.indexOf(asked as IncludeContext) > CONTEXT_ORDER.indexOf(maximum))) {
      verdict.downgradedFrom = String(asked);
      verdict.params = { ...body, includeContext: maximum };
    }
  }
  const inspection = inspectionFor(config, baseDir);
  if (inspection === undefined) return verdict;
  const result = inspection.inspector.inspect(parts, `${server}:${method}`, 'prompt');
  if (result.blocking.length === 0 && !result.overBudget) return verdict;
  verdict.ruleIds = result.overBudget ? ['inspection-budget'] : [...new Set(result.blocking.map((f) => f.ruleId))];
  verdict.refusal = result.overBudget
    ? `the request holds more text than output inspection reads (${inspection.inspector.maxInspectedBytes} bytes)`
    : `the ${method === 'sampling/createMessage' ? 'prompt' : 'message'} carries instructions aimed at the model (${result.blocking[0]?.title ?? verdict.ruleIds[0]})`;
  const id = newReviewId();
  try {
    inspection.review.put(id, {
      server,
      subject: `${server}:${method}`,
      method,
      session_id: null,
      request_id: null,
      agent_id: null,
      reason: verdict.refusal,
      rule_ids: verdict.ruleIds,
      findings: result.blocking.slice(0, 50).map((f) => ({ ruleId: f.ruleId, severity: f.severity, title: f.title, evidence: f.evidence })),
      withheld: parts,
    });
    verdict.reviewId = id;
  } catch {
    // The request stays refused; the audit record still names the rules.
  }
  return verdict;
}
