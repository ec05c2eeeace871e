import { ErrorCode, failure, type Guard } from '../pipeline/index.js';

/**
 * Refuses any request that reached the chain without an identity. Transports authenticate
 * (bearer token, OAuth JWT, or the stdio launch identity); this guard makes a transport bug
 * fail closed instead of letting an anonymous call through.
 */
export const authenticationGuard: Guard = {
  name: 'authn',
  handle(ctx, next) {
    if (ctx.identity === undefined || ctx.identity.agentId === '') {
      ctx.audit.decision = 'deny';
      ctx.audit.reason = 'unauthenticated';
      ctx.audit.deniedBy = 'authn';
      return failure(ErrorCode.Unauthenticated, 'authentication required: present a valid bearer token', { reason: 'unauthenticated' });
    }
    return next(ctx);
  },
};
