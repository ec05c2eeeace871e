export { ApprovalQueue, ApprovalNotPendingError, type ApprovalChannel, type ApprovalListener, type ApprovalOutcome, type ApprovalRequest, type ApprovalVerdict, type PendingApproval } from './queue.js';
export { APPROVAL_GUARD_NAME, ELICITATION_DECIDER, createApprovalGuard, type ApprovalGuardOptions } from './guard.js';
export { APPROVAL_CHANNELS, approvalConfigSchema, type ApprovalChannelName, type ApprovalConfig } from './config.js';
export { ApprovalJournal, journalPath } from './journal.js';
export { approvalElicitation, summarize, userAllowed } from './elicitation.js';
