import type { CallContext } from './context.js';
import type { Outcome } from './outcome.js';

/**
 * The rest of the chain. A guard that can decide without waiting returns its outcome directly;
 * only a guard that really waits (an approval, a shared limit store, the upstream) returns a
 * promise. Each async hop costs a promise and a microtask turn per call, so a guard that has
 * nothing to wait for passes on whatever `next` returned instead of awaiting it.
 */
export type Next = (ctx: CallContext) => Outcome | Promise<Outcome>;

/**
 * One control in the request path. A guard may deny (return a failure), adjust the context
 * (for example narrow limits), or call `next` and inspect what comes back.
 */
export interface Guard {
  readonly name: string;
  handle(ctx: CallContext, next: Next): Outcome | Promise<Outcome>;
}

/**
 * Composes guards into one handler, first guard outermost. The order is the security model:
 * see docs/pipeline.md, which lists it and says why.
 */
export function compose(guards: readonly Guard[], terminal: Next): Next {
  let handler = terminal;
  for (let index = guards.length - 1; index >= 0; index -= 1) {
    const guard = guards[index] as Guard;
    const inner = handler;
    // With tracing on, each guard runs inside its own span; off, this is one property check.
    handler = (ctx) => (ctx.trace === undefined ? guard.handle(ctx, inner) : ctx.trace.guard(guard, ctx, inner));
  }
  return handler;
}
