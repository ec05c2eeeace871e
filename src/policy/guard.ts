// The policy guard and the hooks the gateway calls for lists and server-to-client requests.
// Each reads the store's current evaluator once, so a reload never splits one decision.
import { ErrorCode, failure, type CallContext, type Guard, type Identity, type Next, type Outcome } from '../pipeline/index.js';
import type { Decision, FilesystemTouch, ServerRequestKind } from './evaluator.js';
import { PathLocks } from './path-locks.js';
import { filterRoots } from './roots.js';
import type { PolicyStore } from './store.js';

export const POLICY_GUARD_NAME = 'policy';

export interface PolicyGuardOptions {
  /**
   * The gateway's server names: logging/setLevel reaches all of them, so it needs a grant for
   * each. A function is read per call (a config reload changes the servers).
   */
  servers?: readonly string[] | (() => readonly string[]);
  /** Told when a call waits for paths another call holds (tests use it to order calls). */
  onPathWait?: () => void;
}

/** How often a call re-checks when its paths resolved differently once it held them. */
const MAX_RECHECKS = 3;

/**
 * Every method that reads or changes upstream state is checked: tools/call, prompts/get,
 * resources/read, resources/subscribe and unsubscribe, completion/complete, logging/setLevel.
 * Lists are filtered elsewhere (createListFilter); initialize and ping touch no upstream state.
 */
export function createPolicyGuard(store: PolicyStore, options: PolicyGuardOptions = {}): Guard {
  const locks = new PathLocks();
  return {
    name: POLICY_GUARD_NAME,
    // Synchronous unless the call touches files and must hold its paths.
    handle(ctx, next) {
      const decision = decide(store, ctx, options);
      if (decision === undefined) return next(ctx);
      if (!decision.allow) return denied(ctx, decision);
      if (decision.touched === undefined) return next(ctx);
      return holdingPaths(store, locks, ctx, next, decision, options);
    },
  };
}

async function holdingPaths(store: PolicyStore, locks: PathLocks, ctx: CallContext, next: Next, first: Decision, options: PolicyGuardOptions): Promise<Outcome> {
  let decision = first;
  // A call that touches files holds its paths from the final check until its answer is back,
  // so no other call through this gateway can rename something onto them in between.
  for (let attempt = 0; decision.touched !== undefined; attempt += 1) {
    const held = decision.touched;
    let release: () => void;
    try {
      release = await locks.acquire(held, ctx.signal, options.onPathWait);
    } catch {
      return failure(ErrorCode.InvalidRequest, 'the request was cancelled while it waited for its paths', { reason: 'cancelled' });
    }
    try {
      const atUse = decide(store, ctx, options) as Decision;
      if (!atUse.allow) return denied(ctx, atUse);
      if (covered(atUse.touched, held)) {
        const outcome = await next(ctx);
        // Changes made outside the gateway are not stopped by the lock: if a path now
        // resolves somewhere the agent may not go, the answer is withheld.
        const after = decide(store, ctx, options) as Decision;
        if (!after.allow && outcome.ok) return denied(ctx, { ...after, message: `a path changed while the call ran: ${after.message}` });
        return outcome;
      }
      if (attempt + 1 >= MAX_RECHECKS) return denied(ctx, { allow: false, reason: 'path_changed', message: 'the paths of this call kept changing while it waited; retry', rules: [] });
      decision = atUse;
    } finally {
      release();
    }
  }
  return next(ctx);
}

/** Every path of `now` is among the paths already held. */
function covered(now: readonly FilesystemTouch[] | undefined, held: readonly FilesystemTouch[]): boolean {
  return (now ?? []).every((touch) => held.some((lock) => lock.path === touch.path && (lock.write || !touch.write)));
}

function decide(store: PolicyStore, ctx: CallContext, options: PolicyGuardOptions): Decision | undefined {
  const policy = store.current;
  const agentId = ctx.identity?.agentId;
  switch (ctx.method) {
    case 'tools/call': {
      const target = targetOf(ctx);
      return typeof target === 'string' ? unknownTarget(target) : policy.decideTool(agentId, target.server, target.name, argumentsOf(ctx));
    }
    case 'prompts/get': {
      const target = targetOf(ctx);
      return typeof target === 'string' ? unknownTarget(target) : policy.decidePrompt(agentId, target.server, target.name, argumentsOf(ctx));
    }
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe': {
      // A subscription delivers notifications about the resource: it needs the read grant.
      const target = targetOf(ctx);
      return typeof target === 'string' ? unknownTarget(target) : policy.decideResource(agentId, target.server, target.name);
    }
    case 'completion/complete': {
      const target = targetOf(ctx);
      if (typeof target === 'string') return unknownTarget(target);
      const ref = ctx.params?.['ref'];
      const type = ref !== null && typeof ref === 'object' && (ref as Record<string, unknown>)['type'] === 'ref/prompt' ? 'prompt' : 'resource';
      return policy.decideCompletion(agentId, target.server, { type, name: target.name });
    }
    case 'logging/setLevel':
      return policy.decideLogging(agentId, typeof options.servers === 'function' ? options.servers() : options.servers);
    default:
      return undefined;
  }
}

function targetOf(ctx: CallContext): { server: string; name: string } | string {
  const server = ctx.target?.server;
  const name = ctx.target?.name;
  if (server === undefined || name === undefined) return `the gateway did not resolve the target of ${ctx.method}`;
  return { server, name };
}

function unknownTarget(message: string): Decision {
  return { allow: false, reason: 'unknown_target', message, rules: [] };
}

function argumentsOf(ctx: CallContext): Record<string, unknown> {
  const args = ctx.params?.['arguments'];
  return args !== null && typeof args === 'object' && !Array.isArray(args) ? (args as Record<string, unknown>) : {};
}

function denied(ctx: CallContext, decision: Decision): Outcome {
  ctx.audit.decision = 'deny';
  ctx.audit.reason = decision.reason;
  ctx.audit.deniedBy = POLICY_GUARD_NAME;
  const failed = decision.rules.find((rule) => rule.effect === 'deny');
  return failure(ErrorCode.Forbidden, `denied by policy: ${decision.message}`, {
    reason: decision.reason,
    ...(failed === undefined ? {} : { requirement: failed.requirement }),
  });
}

/** Items as they come from an upstream list. */
export interface ListItem {
  name?: unknown;
  uri?: unknown;
  uriTemplate?: unknown;
}

export type ListKind = 'tools' | 'prompts' | 'resources' | 'resourceTemplates';

/** Shaped like the gateway's ListFilter, so it plugs in directly. */
const MAX_MEMO_KEYS = 10_000;

export function createListFilter(store: PolicyStore): <T extends ListItem>(identity: Identity | undefined, server: string, kind: ListKind, items: T[]) => T[] {
  const filter = <T extends ListItem>(agentId: string | undefined, server: string, kind: ListKind, items: T[]): T[] => {
    switch (kind) {
      case 'tools':
        return store.filterTools(agentId, server, items);
      case 'prompts':
        return store.filterPrompts(agentId, server, items);
      case 'resources':
        return store.filterResources(agentId, server, items);
      case 'resourceTemplates':
        return store.filterResourceTemplates(agentId, server, items);
    }
  };
  // Per policy version (an evaluator never changes; a reload makes a new one) and agent: every
  // session of an agent lists the same frozen upstream list, so it is filtered once, not per session.
  const memo = new WeakMap<object, Map<string, WeakMap<object, ListItem[]>>>();
  return <T extends ListItem>(identity: Identity | undefined, server: string, kind: ListKind, items: T[]): T[] => {
    const agentId = identity?.agentId;
    if (!Object.isFrozen(items)) return filter(agentId, server, kind, items);
    const policy = store.current;
    let byAgent = memo.get(policy);
    if (byAgent === undefined) memo.set(policy, (byAgent = new Map()));
    const key = JSON.stringify([agentId ?? null, server, kind]);
    let byList = byAgent.get(key);
    if (byList === undefined) {
      // Agent ids come from tokens and OAuth claims: the memo is bounded whatever they are.
      if (byAgent.size >= MAX_MEMO_KEYS) byAgent.clear();
      byAgent.set(key, (byList = new WeakMap()));
    }
    let visible = byList.get(items) as T[] | undefined;
    if (visible === undefined) {
      visible = Object.freeze(filter(agentId, server, kind, items)) as T[];
      byList.set(items, visible);
    }
    return visible;
  };
}

const REQUEST_KIND: Record<string, ServerRequestKind> = {
  'sampling/createMessage': 'sampling',
  'elicitation/create': 'elicitation',
  'roots/list': 'roots',
};

/** Shaped like the gateway's ServerRequestPolicy: why a server may not ask, and what of the client's answer it may see. */
export interface ServerRequestDecider {
  (identity: Identity | undefined, server: string, method: string): string | undefined;
  /** The client's answer as the server may see it: roots/list answers are narrowed to the agent's filesystem grants. */
  answerFilter(identity: Identity | undefined, server: string, method: string, result: unknown): unknown;
}

export function createServerRequestPolicy(store: PolicyStore): ServerRequestDecider {
  const decide = (identity: Identity | undefined, server: string, method: string): string | undefined => {
    const kind = REQUEST_KIND[method];
    if (kind === undefined) return `'${method}' is not a server-to-client request the policy knows`;
    const decision = store.mayServerRequest(identity?.agentId, server, kind);
    return decision.allow ? undefined : decision.message;
  };
  const answerFilter = (identity: Identity | undefined, _server: string, method: string, result: unknown): unknown =>
    method === 'roots/list' ? filterRoots(result, store.current.filesystemGrants(identity?.agentId)) : result;
  return Object.assign(decide, { answerFilter });
}
