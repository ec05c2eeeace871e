import type { GatewayEventSink } from '../session.js';

interface Window {
  startedAt: number;
  /** Refusals counted since the last record for this address. */
  pending: number;
  lastReason: string;
}

/** Addresses tracked at once; beyond this, refusals are counted under one overflow key. */
const MAX_TRACKED_ADDRESSES = 10_000;
const OVERFLOW_KEY = '*overflow*';

/**
 * Audits refused authentications without letting an unauthenticated client write to the audit
 * log at wire speed: the first refusal from an address in a window is recorded at once (so a
 * single failure is visible), the rest are counted and recorded as one `auth.denied` record with
 * `count` when the window ends (or the listener closes). The sum of `count` over all records is
 * the number of refused requests. Memory is bounded by the number of tracked addresses.
 */
export class AuthFailureAggregator {
  private readonly windows = new Map<string, Window>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly windowMs: number,
    private readonly events: GatewayEventSink,
    private readonly now: () => number = Date.now,
  ) {
    this.timer = setInterval(() => this.flush(false), Math.max(1000, Math.floor(windowMs / 4)));
    this.timer.unref();
  }

  refused(address: string | undefined, reason: string): void {
    let key = address ?? 'unknown';
    if (!this.windows.has(key) && this.windows.size >= MAX_TRACKED_ADDRESSES) key = OVERFLOW_KEY;
    const window = this.windows.get(key);
    if (window === undefined) {
      this.windows.set(key, { startedAt: this.now(), pending: 0, lastReason: reason });
      this.record(key, 1, reason, 'first');
      return;
    }
    window.pending += 1;
    window.lastReason = reason;
  }

  /** Records each window that has ended (or every window, when `all`), and forgets it. */
  flush(all: boolean): void {
    const cutoff = this.now() - this.windowMs;
    for (const [key, window] of this.windows) {
      if (!all && window.startedAt > cutoff) continue;
      this.windows.delete(key);
      if (window.pending > 0) this.record(key, window.pending, window.lastReason, 'window');
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.flush(true);
  }

  private record(remote: string, count: number, reason: string, kind: 'first' | 'window'): void {
    this.events('auth.denied', { reason, remote, transport: 'http', count, aggregated: kind === 'window', window_seconds: Math.round(this.windowMs / 1000) });
  }
}
