// The approval guard, right after policy in the chain (docs/pipeline.md): a tools/call the policy
// allowed through a grant marked `approval: required` waits here for an approver. Only an
// explicit "allow" lets it on; the deadline, a denial, a full queue or the client leaving all
// end it with a denial (fail closed). The outcome goes into the call's audit record.
import { ErrorCode, failure, type CallContext, type Guard, type Next, type Outcome } from '../pipeline/index.js';
import type { PolicyStore } from '../policy/index.js';
import { approvalElicitation, userAllowed } from './elicitation.js';
import { ApprovalNotPendingError, type ApprovalOutcome, type ApprovalQueue, type PendingApproval } from './queue.js';

export interface ApprovalGuardOptions {
  /** Also ask the client's user (approval.channels has elicitation), when the client can be asked. */
  elicitation: boolean;
}

/** Who decided through elicitation, in the audit record's approval_by. */
export const ELICITATION_DECIDER = 'user@elicitation';

export const APPROVAL_GUARD_NAME = 'approval';

const REASONS: Record<Exclude<ApprovalOutcome['verdict'], 'allowed'>, { reason: string; message: string }> = {
  denied: { reason: 'approval_denied', message: 'an approver denied this call' },
  expired: { reason: 'approval_expired', message: 'no approver decided on this call before its deadline, so it is denied' },
  withdrawn: { reason: 'approval_withdrawn', message: 'the call was cancelled while it waited for approval' },
};

export function createApprovalGuard(policy: PolicyStore, queue: ApprovalQueue, options: ApprovalGuardOptions = { elicitation: false }): Guard {
  return {
    name: APPROVAL_GUARD_NAME,
    handle: (ctx, next) => hold(ctx, next, policy, queue, options),
  };
}

/** Passes a call that needs no approval straight on, without a promise of its own. */
function hold(ctx: CallContext, next: Next, policy: PolicyStore, queue: ApprovalQueue, options: ApprovalGuardOptions): Outcome | Promise<Outcome> {
  const server = ctx.target?.server;
  const tool = ctx.target?.name;
  const agent = ctx.identity?.agentId;
  if (ctx.method !== 'tools/call' || server === undefined || tool === undefined || agent === undefined) return next(ctx);
  const requirement = policy.current.approvalFor(agent, server, tool);
  if (requirement === undefined) return next(ctx);
  return waitForApproval(ctx, next, queue, options, { agent, server, tool, requirement });
}

async function waitForApproval(ctx: CallContext, next: Next, queue: ApprovalQueue, options: ApprovalGuardOptions, call: { agent: string; server: string; tool: string; requirement: NonNullable<ReturnType<PolicyStore['current']['approvalFor']>> }): Promise<Outcome> {
  const { agent, server, tool, requirement } = call;
  const askUser = options.elicitation ? ctx.session.askUser : undefined;
  // The elicitation races the operators: the first decision wins, and the other is withdrawn.
  const withdraw = new AbortController();
  const outcome = await queue.request(
    { agent, server, tool, ...(ctx.target?.calledAs === undefined ? {} : { calledAs: ctx.target.calledAs }), arguments: ctx.params?.['arguments'], sessionId: ctx.session.sessionId, timeoutSeconds: requirement.timeoutSeconds, grant: requirement.grant, source: requirement.source },
    ctx.signal,
    askUser === undefined ? undefined : (approval) => void askThroughElicitation(approval, askUser, queue, withdraw.signal).catch(() => undefined),
  );
  withdraw.abort();
  ctx.audit.approval = { id: outcome.id, verdict: outcome.verdict, via: outcome.via, waitedMs: outcome.waitedMs, ...(outcome.by === undefined ? {} : { by: outcome.by }) };
  if (outcome.verdict === 'allowed') return next(ctx);
  const { reason, message } = REASONS[outcome.verdict];
  ctx.audit.decision = 'deny';
  ctx.audit.reason = reason;
  ctx.audit.deniedBy = APPROVAL_GUARD_NAME;
  return failure(ErrorCode.Forbidden, `${message} (approval ${outcome.id}, grant ${requirement.grant} at ${requirement.source})`, { reason, approval: outcome.id });
}

/** Sends the elicitation and turns its answer into a decision: accept with approve=true allows; decline, cancel, an error or no stream deny. */
async function askThroughElicitation(approval: PendingApproval, askUser: NonNullable<CallContext['session']['askUser']>, queue: ApprovalQueue, withdrawn: AbortSignal): Promise<void> {
  let allow = false;
  try {
    allow = userAllowed(await askUser(approvalElicitation(approval), withdrawn));
  } catch {
    if (withdrawn.aborted) return; // an operator, the deadline or the client ended the wait first
  }
  try {
    queue.decide(approval.id, allow, ELICITATION_DECIDER, 'elicitation');
  } catch (error) {
    if (!(error instanceof ApprovalNotPendingError)) throw error;
  }
}
