import type { BastionConfig } from '../../config/index.js';

/** After this many consecutive failed starts the breaker opens: one probe at a time, spaced at the longest backoff. */
export const BREAKER_AFTER_FAILURES = 5;
/** `upstream.down` events for one server are aggregated into at most one per window. */
export const DOWN_REPORT_WINDOW_MS = 60_000;

/**
 * Start failures of one server, shared by every session's copy of it. A server that cannot
 * start (a bad initialize, a crash on boot) fails the same way for every session, so the backoff
 * and the breaker are per server, not per session: N sessions do not mean N times the retries,
 * the processes and the `upstream.down` records.
 */
export class ServerStartState {
  failures = 0;
  private nextAttemptAt = 0;
  private probing = false;
  private lastDownReportAt = Number.NEGATIVE_INFINITY;
  private unreportedDowns = 0;

  constructor(
    private readonly baseBackoffMs: number,
    private readonly maxBackoffMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get breakerOpen(): boolean {
    return this.failures >= BREAKER_AFTER_FAILURES;
  }

  /** How long until a start may be attempted (0: now). */
  waitMs(): number {
    return Math.max(0, this.nextAttemptAt - this.now());
  }

  /** May this session try to start the server now? With the breaker open only one probe runs at a time. */
  tryBegin(): boolean {
    if (this.waitMs() > 0) return false;
    if (this.breakerOpen) {
      if (this.probing) return false;
      this.probing = true;
    }
    return true;
  }

  succeeded(): void {
    this.failures = 0;
    this.nextAttemptAt = 0;
    this.probing = false;
  }

  /** A start that was begun and then given up (the session closed meanwhile): neither success nor failure. */
  abandoned(): void {
    this.probing = false;
  }

  /** Records a failed start; returns the delay before the next attempt by any session. */
  failed(): number {
    this.failures += 1;
    this.probing = false;
    const delay = Math.min(this.baseBackoffMs * 2 ** Math.min(this.failures - 1, 30), this.maxBackoffMs);
    this.nextAttemptAt = Math.max(this.nextAttemptAt, this.now() + delay);
    return delay;
  }

  /** Whether to record this `upstream.down` now, and how many earlier ones it stands for. */
  noteDown(): { report: boolean; aggregated: number } {
    this.unreportedDowns += 1;
    const time = this.now();
    if (time - this.lastDownReportAt < DOWN_REPORT_WINDOW_MS) return { report: false, aggregated: 0 };
    this.lastDownReportAt = time;
    const aggregated = this.unreportedDowns;
    this.unreportedDowns = 0;
    return { report: true, aggregated };
  }
}

const registries = new WeakMap<BastionConfig, Map<string, ServerStartState>>();

/** The start state of `server` for the gateway that owns `config` (one config object per running gateway). */
export function serverStartState(config: BastionConfig, server: string): ServerStartState {
  let byServer = registries.get(config);
  if (byServer === undefined) {
    byServer = new Map();
    registries.set(config, byServer);
  }
  let state = byServer.get(server);
  if (state === undefined) {
    state = new ServerStartState(config.upstream.restartBackoffMs, config.upstream.maxBackoffMs);
    byServer.set(server, state);
  }
  return state;
}

/** A server removed or redefined by a reload: its next start begins with no failures counted. */
export function forgetServerStartState(config: BastionConfig, server: string): void {
  registries.get(config)?.delete(server);
}
