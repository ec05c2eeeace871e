export { CallContext } from './context.js';
export type { Identity, SessionInfo, CallLimits, CallTarget, AuditFacts, CallContextInit, CallTrace, UpstreamCallTrace, TransportTraceContext } from './context.js';
export { compose } from './chain.js';
export { CallCancellation } from './cancellation.js';
export type { CancelSignal } from './cancellation.js';
export type { Guard, Next } from './chain.js';
export { ErrorCode, success, failure } from './outcome.js';
export type { Outcome, JsonRpcErrorBody } from './outcome.js';
export { shareResult, isSharedResult, sharedText, deepFreeze } from './shared-result.js';
