// Calls waiting for a human: the approval guard parks a call here until an approver decides
// (admin API, console, `bastion approve`, or the client's user through elicitation), the deadline
// passes (denied: fail closed) or the client goes away (withdrawn). The waits themselves live in
// memory; with a journal (journal.ts) each one is on disk before approvers see it, so a gateway
// that dies leaves a trace its next start turns into an `approval.interrupted` audit event.
import { randomBytes } from 'node:crypto';
import { createRedactor } from '../audit/redact.js';
import type { JsonValue } from '../audit/schema.js';
import type { CancelSignal } from '../pipeline/index.js';
import type { ApprovalJournal } from './journal.js';

/** How a wait ended. */
export type ApprovalVerdict = 'allowed' | 'denied' | 'expired' | 'withdrawn';

/** Where the decision came from: an operator through the admin API (console or CLI), the client's user, the clock, or the client leaving. */
export type ApprovalChannel = 'api' | 'console' | 'cli' | 'elicitation' | 'deadline' | 'client';

export interface PendingApproval {
  /** `a-` and 16 hex digits, random. */
  id: string;
  agent: string;
  server: string;
  tool: string;
  /** The tool's name as the agent called it, when curation renamed it. */
  calledAs?: string;
  /** The call's arguments, redacted (the approver sees what the call would do, not the secrets in it). */
  arguments: JsonValue;
  sessionId: string;
  requestedAt: string;
  deadline: string;
  /** The grant that asks for the approval, and where it is written. */
  grant: string;
  source: string;
}

export interface ApprovalOutcome {
  id: string;
  verdict: ApprovalVerdict;
  /** The operator (or `user@elicitation`) who decided; absent for the deadline and a withdrawn call. */
  by?: string;
  via: ApprovalChannel;
  waitedMs: number;
}

export interface ApprovalRequest {
  agent: string;
  server: string;
  tool: string;
  calledAs?: string;
  arguments: unknown;
  sessionId: string;
  timeoutSeconds: number;
  grant: string;
  source: string;
}

export type ApprovalListener = (change: { type: 'pending' | 'decided'; approval: PendingApproval; outcome?: ApprovalOutcome }) => void;

interface Waiting {
  approval: PendingApproval;
  startedAt: number;
  finish: (verdict: ApprovalVerdict, via: ApprovalChannel, by?: string) => void;
}

/** Thrown by decide() for an id that is not waiting (never was, or already decided). */
export class ApprovalNotPendingError extends Error {
  override name = 'ApprovalNotPendingError';
}

export class ApprovalQueue {
  private readonly waiting = new Map<string, Waiting>();
  private readonly listeners = new Set<ApprovalListener>();

  private readonly maxPending: number;
  private readonly journal: ApprovalJournal | undefined;

  /** `maxPending` bounds what agents can park; a call beyond it, or one the journal cannot record, is denied at once (fail closed). */
  constructor(options: { maxPending?: number; journal?: ApprovalJournal } = {}) {
    this.maxPending = options.maxPending ?? 1000;
    this.journal = options.journal;
  }

  get size(): number {
    return this.waiting.size;
  }

  /**
   * Parks a call until it is decided. Resolves (never rejects) with the verdict: `expired` at the
   * deadline, `withdrawn` when `signal` aborts (the client cancelled or closed its session).
   * `onPending` learns the wait's id once approvers can decide it (the elicitation channel races them).
   */
  request(input: ApprovalRequest, signal: CancelSignal, onPending?: (approval: PendingApproval) => void): Promise<ApprovalOutcome> {
    const id = `a-${randomBytes(8).toString('hex')}`;
    if (signal.aborted) return Promise.resolve({ id, verdict: 'withdrawn', via: 'client', waitedMs: 0 });
    if (this.waiting.size >= this.maxPending) return Promise.resolve({ id, verdict: 'denied', via: 'deadline', waitedMs: 0, by: `queue full (${this.maxPending} calls waiting)` });
    const now = Date.now();
    const approval: PendingApproval = {
      id,
      agent: input.agent,
      server: input.server,
      tool: input.tool,
      ...(input.calledAs === undefined ? {} : { calledAs: input.calledAs }),
      arguments: createRedactor().json(input.arguments ?? {}),
      sessionId: input.sessionId,
      requestedAt: new Date(now).toISOString(),
      deadline: new Date(now + input.timeoutSeconds * 1000).toISOString(),
      grant: input.grant,
      source: input.source,
    };
    try {
      this.journal?.pending(approval);
    } catch (error) {
      return Promise.resolve({ id, verdict: 'denied', via: 'deadline', waitedMs: 0, by: `approval journal not writable (${error instanceof Error ? error.message : String(error)})` });
    }
    const startedAt = performance.now();
    return new Promise<ApprovalOutcome>((resolve) => {
      const onAbort = (): void => finish('withdrawn', 'client');
      const timer = setTimeout(() => finish('expired', 'deadline'), input.timeoutSeconds * 1000);
      const finish = (verdict: ApprovalVerdict, via: ApprovalChannel, by?: string): void => {
        if (!this.waiting.delete(id)) return;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.journalEnd(id, verdict);
        const outcome: ApprovalOutcome = { id, verdict, via, waitedMs: Math.round(performance.now() - startedAt), ...(by === undefined ? {} : { by }) };
        this.emit({ type: 'decided', approval, outcome });
        resolve(outcome);
      };
      this.waiting.set(id, { approval, startedAt, finish });
      signal.addEventListener('abort', onAbort, { once: true });
      this.emit({ type: 'pending', approval });
      onPending?.(approval);
    });
  }

  /** The end of a wait in the journal; emptied when nothing waits. A failed write only means a later start reports the call as interrupted. */
  private journalEnd(id: string, verdict: ApprovalVerdict): void {
    try {
      if (this.waiting.size === 0) this.journal?.forget();
      else this.journal?.ended(id, verdict);
    } catch {
      // Reported at the next start as interrupted: an extra denial record, never a lost one.
    }
  }

  list(): PendingApproval[] {
    return [...this.waiting.values()].map((entry) => entry.approval);
  }

  get(id: string): PendingApproval | undefined {
    return this.waiting.get(id)?.approval;
  }

  /** An approver's decision. Throws ApprovalNotPendingError when the call no longer waits. */
  decide(id: string, allow: boolean, by: string, via: ApprovalChannel): PendingApproval {
    const entry = this.waiting.get(id);
    if (entry === undefined) throw new ApprovalNotPendingError(`no call waits for approval under ${id} (decided, expired or withdrawn already)`);
    entry.finish(allow ? 'allowed' : 'denied', via, by);
    return entry.approval;
  }

  /** Tells `listener` about every new and every ended wait; returns how to stop. */
  subscribe(listener: ApprovalListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(change: Parameters<ApprovalListener>[0]): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch {
        // A listener (an SSE stream that went away) must not stop a decision.
      }
    }
  }
}
