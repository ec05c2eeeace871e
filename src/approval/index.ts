export { ApprovalQueue, ApprovalNotPendingError, type ApprovalChannel, type ApprovalListener, type ApprovalOutcome, type ApprovalRequest, type ApprovalVerdict, type PendingApproval } from './queue.js';
export { APPROVAL_GUARD_NAME, createApprovalGuard } from './guard.js';
