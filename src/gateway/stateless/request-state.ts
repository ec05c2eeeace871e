import { randomBytes } from 'node:crypto';

/** What a requestState stands for: one held upstream call waiting for the client's input. */
export interface HeldInput<T> {
  /** The agent the state was issued to: no other may redeem it. */
  agentId: string;
  /** The method and name of the original request: a retry must repeat them. */
  method: string;
  name: string | undefined;
  /** The input request keys the client must answer. */
  keys: readonly string[];
  call: T;
}

/** Why a requestState was refused (the same answer to the client for each, so states cannot be probed). */
export type RedeemRefusal = 'unknown' | 'not_yours' | 'mismatch';

/**
 * The held calls behind requestStates, by local handle (the client holds the handle sealed with
 * other bindings, sealed-state.ts). A handle is 256 random bits (unguessable),
 * bound to the agent it was issued to, single use (redeeming deletes it, whatever the outcome),
 * and expires: at the deadline `onExpire` runs (the caller cancels the held upstream call).
 */
export class RequestStateStore<T> {
  private readonly states = new Map<string, { held: HeldInput<T>; timer: NodeJS.Timeout }>();

  constructor(
    private readonly ttlMs: number,
    private readonly onExpire: (held: HeldInput<T>) => void,
  ) {}

  get size(): number {
    return this.states.size;
  }

  issue(held: HeldInput<T>): string {
    const state = randomBytes(32).toString('base64url');
    const timer = setTimeout(() => {
      this.states.delete(state);
      this.onExpire(held);
    }, this.ttlMs);
    timer.unref();
    this.states.set(state, { held, timer });
    return state;
  }

  /**
   * Takes a state for `agentId`. Any attempt consumes it: a replay by another agent or a retry
   * that changed the request ends the held call too (the caller cancels it), so a leaked state
   * is worth one failed attempt at most.
   */
  redeem(state: unknown, agentId: string, method: string, name: string | undefined): { ok: true; held: HeldInput<T> } | { ok: false; reason: RedeemRefusal; held?: HeldInput<T> } {
    if (typeof state !== 'string' || state.length > 128) return { ok: false, reason: 'unknown' };
    const entry = this.states.get(state);
    if (entry === undefined) return { ok: false, reason: 'unknown' };
    this.states.delete(state);
    clearTimeout(entry.timer);
    if (entry.held.agentId !== agentId) return { ok: false, reason: 'not_yours', held: entry.held };
    if (entry.held.method !== method || entry.held.name !== name) return { ok: false, reason: 'mismatch', held: entry.held };
    return { ok: true, held: entry.held };
  }

  /** Removes a state whatever its holder, returning what it stood for (it was spent elsewhere). */
  take(state: string): HeldInput<T> | undefined {
    const entry = this.states.get(state);
    if (entry === undefined) return undefined;
    this.states.delete(state);
    clearTimeout(entry.timer);
    return entry.held;
  }

  /** Drops every state of the calls `matches` selects (their context closed). */
  dropWhere(matches: (held: HeldInput<T>) => boolean): void {
    for (const [state, entry] of this.states) {
      if (!matches(entry.held)) continue;
      clearTimeout(entry.timer);
      this.states.delete(state);
    }
  }
}
