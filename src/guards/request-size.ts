import { ErrorCode, failure, type Guard } from '../pipeline/index.js';

/**
 * Refuses requests over the size cap. Transports already refuse to buffer more than the
 * largest cap; this guard applies the cap that holds for the resolved server and tool.
 */
export const requestSizeGuard: Guard = {
  name: 'request-size',
  handle(ctx, next) {
    if (ctx.requestBytes > ctx.limits.maxRequestBytes) {
      ctx.audit.decision = 'deny';
      ctx.audit.reason = 'request_too_large';
      ctx.audit.deniedBy = 'request-size';
      return failure(ErrorCode.RequestTooLarge, `request of ${ctx.requestBytes} bytes is over the ${ctx.limits.maxRequestBytes}-byte cap`, {
        reason: 'request_too_large',
        bytes: ctx.requestBytes,
        limit: ctx.limits.maxRequestBytes,
      });
    }
    return next(ctx);
  },
};
