// The approval queue's life in the audit log: a wait starting and ending are events (the live
// feed shows them; the call's own record carries the outcome too), and a wait a killed gateway
// left in the journal is recorded at the next start as denied.
import type { AuditWriter } from '../audit/index.js';
import { ApprovalJournal, journalPath, type ApprovalQueue } from '../approval/index.js';
import type { LoadedConfig } from '../config/index.js';
import type { RecordEvent } from './events.js';

/** A call a previous process left waiting for approval: denied, since nobody can decide it now. */
export const APPROVAL_INTERRUPTED_EVENT = 'approval.interrupted';
export const APPROVAL_REQUESTED_EVENT = 'approval.requested';
export const APPROVAL_DECIDED_EVENT = 'approval.decided';

/**
 * Opens the approval journal and records every wait a killed gateway left in it as denied
 * (their clients lost their connections with the process), before any new call can wait.
 */
export async function openApprovalJournal(loaded: LoadedConfig, stateDir: string, audit: AuditWriter): Promise<ApprovalJournal> {
  const { journal, interrupted } = ApprovalJournal.open(journalPath(stateDir, loaded.config.cluster?.replicaId));
  for (const approval of interrupted) {
    await audit.event(APPROVAL_INTERRUPTED_EVENT, {
      approval_id: String(approval.id),
      agent: String(approval.agent),
      server: String(approval.server),
      tool: String(approval.tool),
      session_id: String(approval.sessionId),
      requested_at: String(approval.requestedAt),
      deadline: String(approval.deadline),
      grant: String(approval.grant),
      decision: 'deny',
      reason: 'gateway_restarted',
    });
  }
  journal.forget();
  return journal;
}

/** approval.requested when a call starts waiting, approval.decided when the wait ends (any way). */
export function recordApprovalEvents(queue: ApprovalQueue, record: RecordEvent): void {
  queue.subscribe(({ type, approval, outcome }) => {
    const facts = { approval_id: approval.id, agent: approval.agent, server: approval.server, tool: approval.tool, session_id: approval.sessionId, grant: approval.grant };
    if (type === 'pending' || outcome === undefined) record(APPROVAL_REQUESTED_EVENT, { ...facts, deadline: approval.deadline, source: approval.source });
    else record(APPROVAL_DECIDED_EVENT, { ...facts, verdict: outcome.verdict, decision: outcome.verdict === 'allowed' ? 'allow' : 'deny', via: outcome.via, by: outcome.by ?? null, waited_ms: outcome.waitedMs });
  });
}
