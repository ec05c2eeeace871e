// The admin API under /api/v1/ on the admin listener (docs/admin-api.md): JSON over HTTP for
// operators with bearer tokens and roles. Reads need `viewer`; deciding quarantines and approvals
// needs `approver`. Every state-changing request passes the CSRF checks (http.ts) and is recorded
// in the audit log with the operator's name, allowed or refused.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApprovalNotPendingError, type ApprovalChannel } from '../../approval/index.js';
import { QuarantineDecisionError } from '../../integrity/index.js';
import type { AdminListenerConfig, OperatorRole } from '../config.js';
import { OperatorTokens, roleAllows, type Operator } from '../operators.js';
import { queryAudit, recordWithVerification } from './audit-query.js';
import { ApiError, bodyValidator, checkCsrf, dateParam, intParam, readJsonBody, sendJson } from './http.js';
import type { AdminSources } from './sources.js';
import { serveStream } from './stream.js';

export const API_PREFIX = '/api/v1/';

interface DecisionBody {
  via?: 'console' | 'cli' | 'api';
}

interface ExplainBody {
  agent: string;
  tool: string;
  arguments?: Record<string, unknown>;
}

const decisionBody = bodyValidator<DecisionBody>({
  type: 'object',
  additionalProperties: false,
  properties: { via: { enum: ['console', 'cli', 'api'] } },
});

const explainBody = bodyValidator<ExplainBody>({
  type: 'object',
  additionalProperties: false,
  required: ['agent', 'tool'],
  properties: {
    agent: { type: 'string', minLength: 1, maxLength: 256 },
    tool: { type: 'string', pattern: '^[^.]+\\..+$', maxLength: 512 },
    arguments: { type: 'object' },
  },
});

const QUARANTINE_ACTION = /^quarantines\/(q-[0-9a-f]{16})\/(approve|reject)$/;
const APPROVAL_ACTION = /^approvals\/(a-[0-9a-f]{16})\/(allow|deny)$/;

export class AdminApi {
  private readonly tokens: OperatorTokens;

  constructor(
    config: AdminListenerConfig,
    private readonly sources: AdminSources,
  ) {
    this.tokens = new OperatorTokens(config.tokens);
  }

  /** Answers one request under /api/v1/; never throws (errors become JSON answers). */
  async handle(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    try {
      await this.route(request, response, url);
    } catch (error) {
      if (response.headersSent) {
        response.destroy();
        return;
      }
      if (error instanceof ApiError) sendJson(response, error.status, { error: error.message });
      else sendJson(response, 500, { error: `internal error: ${error instanceof Error ? error.message : String(error)}` });
    }
  }

  /** The operator behind a request, if its token is valid (the console's login uses it). */
  authenticate(request: IncomingMessage): Operator | undefined {
    return this.tokens.authenticate(request.headers.authorization);
  }

  private async route(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname.slice(API_PREFIX.length);
    if (request.method === 'POST') return this.act(request, response, path);
    if (request.method !== 'GET') throw new ApiError(405, 'the admin API answers GET (reads) and POST (actions)');
    const operator = this.require(request, 'viewer');
    const params = url.searchParams;
    const { sources } = this;
    switch (path) {
      case 'whoami':
        return sendJson(response, 200, { operator: operator.operator, role: operator.role, may: { approve: roleAllows(operator.role, 'approver'), admin: roleAllows(operator.role, 'admin') } });
      case 'audit':
        return sendJson(response, 200, queryAudit(sources.auditDir, auditQuery(params)));
      case 'audit/stream':
        return serveStream(request, response, params, sources.feed, sources.approvals);
      case 'sessions':
        return sendJson(response, 200, { sessions: sources.sessions(), agents: agentsOf(sources) });
      case 'upstreams':
        return sendJson(response, 200, { servers: sources.servers(), health: sources.health.upstreamStates(), breakers: sources.health.breakerStates() });
      case 'quotas':
        return sendJson(response, 200, await sources.quotas());
      case 'quarantines':
        return sendJson(response, 200, { quarantines: sources.quarantines.list().filter((record) => params.get('status') === null || record.status === params.get('status')) });
      case 'approvals':
        return sendJson(response, 200, { enabled: sources.approvals !== undefined, pending: sources.approvals?.list() ?? [] });
      case 'findings':
        return sendJson(response, 200, findings(sources));
      default:
        break;
    }
    const record = /^audit\/records\/(\d{1,15})$/.exec(path);
    if (record !== null) {
      const found = recordWithVerification(sources.auditDir, Number(record[1]), sources.auditKeys);
      if (found === undefined) throw new ApiError(404, `no audit record with seq ${record[1]}`);
      return sendJson(response, 200, found);
    }
    const quarantine = /^quarantines\/(q-[0-9a-f]{16})$/.exec(path);
    if (quarantine !== null) {
      const found = sources.quarantines.get(quarantine[1] as string);
      if (found === undefined) throw new ApiError(404, `no quarantine ${quarantine[1]}`);
      return sendJson(response, 200, found);
    }
    throw new ApiError(404, `no such admin API endpoint: GET ${url.pathname}`);
  }

  private async act(request: IncomingMessage, response: ServerResponse, path: string): Promise<void> {
    const quarantine = QUARANTINE_ACTION.exec(path);
    const approval = APPROVAL_ACTION.exec(path);
    const needed: OperatorRole = path === 'explain' ? 'viewer' : 'approver';
    if (quarantine === null && approval === null && path !== 'explain') throw new ApiError(404, `no such admin API endpoint: POST /api/v1/${path}`);
    const operator = this.tokens.authenticate(request.headers.authorization);
    if (operator === undefined) throw unauthenticated();
    const action = quarantine !== null ? `quarantine.${quarantine[2]}` : approval !== null ? `approval.${approval[2]}` : 'explain';
    const target = quarantine?.[1] ?? approval?.[1] ?? '';
    const audit = (outcome: string, detail?: string): void => this.sources.recordAction({ operator: operator.operator, role: operator.role, action, target, outcome, ...(detail === undefined ? {} : { detail: detail.slice(0, 500) }) });
    try {
      checkCsrf(request);
      if (!roleAllows(operator.role, needed)) throw new ApiError(403, `operator '${operator.operator}' has role ${operator.role}; ${action} needs ${needed}`);
      const body = await readJsonBody(request);
      if (quarantine !== null) {
        decisionBody(body);
        const status = quarantine[2] === 'approve' ? 'approved' : 'rejected';
        const decided = this.decideQuarantine(quarantine[1] as string, status);
        audit(status, decided.note);
        return sendJson(response, 200, { ...decided, decidedBy: operator.operator });
      }
      if (approval !== null) {
        const via: ApprovalChannel = decisionBody(body).via ?? 'api';
        const decided = this.decideApproval(approval[1] as string, approval[2] === 'allow', operator.operator, via);
        audit(approval[2] === 'allow' ? 'allowed' : 'denied', `${decided.agent} ${decided.server}.${decided.tool} via ${via}`);
        return sendJson(response, 200, { approval: decided, verdict: approval[2] === 'allow' ? 'allowed' : 'denied', decidedBy: operator.operator });
      }
      const explained = this.explain(explainBody(body));
      audit(explained.decision.allow ? 'would-allow' : 'would-deny', `${explainBody(body).agent} ${explainBody(body).tool}`);
      return sendJson(response, 200, explained);
    } catch (error) {
      audit('refused', error instanceof Error ? error.message : String(error));
      throw error;
    }
  }

  private decideQuarantine(id: string, status: 'approved' | 'rejected'): ReturnType<AdminSources['quarantines']['decide']> {
    try {
      return this.sources.quarantines.decide(id, status);
    } catch (error) {
      if (error instanceof QuarantineDecisionError) throw new ApiError(error.kind === 'not-found' ? 404 : 409, error.message);
      throw error;
    }
  }

  private decideApproval(id: string, allow: boolean, by: string, via: ApprovalChannel): NonNullable<ReturnType<NonNullable<AdminSources['approvals']>['get']>> {
    const approvals = this.sources.approvals;
    if (approvals === undefined) throw new ApiError(409, 'approvals need an enforced policy (policy.enforce: true)');
    try {
      return approvals.decide(id, allow, by, via);
    } catch (error) {
      if (error instanceof ApprovalNotPendingError) throw new ApiError(404, error.message);
      throw error;
    }
  }

  /** The policy decision for a hypothetical call, with every rule (the code `bastion policy explain` runs). */
  private explain(body: ExplainBody): { decision: ReturnType<NonNullable<AdminSources['policy']>['current']['decideTool']>; approval: ReturnType<NonNullable<AdminSources['policy']>['current']['approvalFor']> | null } {
    const policy = this.sources.policy;
    if (policy === undefined) throw new ApiError(409, 'the policy is not enforced (policy.enforce: false): every authenticated call is allowed');
    const dot = body.tool.indexOf('.');
    const server = body.tool.slice(0, dot);
    const tool = body.tool.slice(dot + 1);
    const evaluator = policy.current;
    const decision = evaluator.decideTool(body.agent, server, tool, body.arguments ?? {});
    return { decision, approval: decision.allow ? (evaluator.approvalFor(body.agent, server, tool) ?? null) : null };
  }

  private require(request: IncomingMessage, needed: OperatorRole): Operator {
    const operator = this.tokens.authenticate(request.headers.authorization);
    if (operator === undefined) throw unauthenticated();
    if (!roleAllows(operator.role, needed)) throw new ApiError(403, `operator '${operator.operator}' has role ${operator.role}; this needs ${needed}`);
    return operator;
  }
}

function unauthenticated(): ApiError {
  return new ApiError(401, 'an operator bearer token is required in the Authorization header (listeners.admin.tokens)');
}

function auditQuery(params: URLSearchParams): Parameters<typeof queryAudit>[1] {
  const query: Parameters<typeof queryAudit>[1] = { limit: intParam(params, 'limit', 50, 1, 500) ?? 50 };
  const since = dateParam(params, 'since');
  const until = dateParam(params, 'until');
  const before = intParam(params, 'before', undefined, 0, Number.MAX_SAFE_INTEGER);
  if (since !== undefined) query.since = since;
  if (until !== undefined) query.until = until;
  if (before !== undefined) query.before = before;
  for (const key of ['agent', 'server', 'tool', 'decision', 'method', 'event'] as const) {
    const value = params.get(key);
    if (value !== null && value !== '') query[key] = value;
  }
  const kind = params.get('kind');
  if (kind === 'request' || kind === 'event') query.kind = kind;
  else if (kind !== null && kind !== '') throw new ApiError(400, "query parameter kind must be 'request' or 'event'");
  return query;
}

function agentsOf(sources: AdminSources): { agent: string; sessions: number; hasPolicy: boolean }[] {
  const counts = new Map<string, number>();
  for (const session of sources.sessions()) counts.set(session.agent, (counts.get(session.agent) ?? 0) + 1);
  const withPolicy = new Set(sources.policy?.current.agentIds() ?? []);
  const names = new Set([...withPolicy, ...counts.keys()]);
  return [...names].sort().map((agent) => ({ agent, sessions: counts.get(agent) ?? 0, hasPolicy: withPolicy.has(agent) }));
}

/** Per server: admission and certification, quarantines with scanner findings, withheld outputs, inspection events. */
function findings(sources: AdminSources): { servers: unknown[] } {
  const quarantines = sources.quarantines.list();
  const withheld = sources.withheld(200);
  return {
    servers: sources.servers().map((server) => ({
      ...server,
      quarantined: quarantines.filter((record) => record.server === server.name).map(({ id, kind, name, cause, status, findings }) => ({ id, kind, name, cause, status, findings })),
      withheld: withheld.filter((entry) => entry.server === server.name),
      events: sources.health.eventsOf(server.name),
    })),
  };
}
