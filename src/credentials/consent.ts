import { randomBytes } from 'node:crypto';

/** A consent link handed out and not used yet: which agent and server it is for, and its PKCE verifier. */
export interface PendingConsent {
  agent: string;
  server: string;
  codeVerifier: string;
  authorizationUrl: string;
  expiresAt: number;
}

/** Bounds memory however many links are asked for; the oldest pending link goes first. */
const MAX_PENDING = 1000;

/**
 * The `state` parameter of each consent link: 256 random bits, bound to one agent and one
 * server, valid for a limited time and for one callback only. A callback with an unknown,
 * used or expired state is refused, so a code cannot be injected into another agent's slot.
 */
export class PendingConsents {
  private readonly pending = new Map<string, PendingConsent>();

  constructor(private readonly ttlMs: number) {}

  /** The link still pending for this agent and server, so repeated calls show one link, not many. */
  current(agent: string, server: string, now = Date.now()): PendingConsent | undefined {
    this.sweep(now);
    for (const entry of this.pending.values()) if (entry.agent === agent && entry.server === server) return entry;
    return undefined;
  }

  newState(): string {
    return randomBytes(32).toString('base64url');
  }

  add(state: string, entry: Omit<PendingConsent, 'expiresAt'>, now = Date.now()): PendingConsent {
    this.sweep(now);
    if (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.keys().next().value as string);
    const stored = { ...entry, expiresAt: now + this.ttlMs };
    this.pending.set(state, stored);
    return stored;
  }

  /** Single use: the entry is gone after this, whatever the callback's outcome. */
  take(state: string, now = Date.now()): PendingConsent | undefined {
    const entry = this.pending.get(state);
    this.pending.delete(state);
    if (entry === undefined || entry.expiresAt <= now) return undefined;
    return entry;
  }

  private sweep(now: number): void {
    for (const [state, entry] of this.pending) if (entry.expiresAt <= now) this.pending.delete(state);
  }
}
