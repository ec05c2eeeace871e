import type { NotificationLimits } from '../config/index.js';

/**
 * Notification control for one client session. A server may send notifications as fast as it
 * can write; the gateway must not relay them all (a flood fills the client's write queue, the
 * gateway's memory and the event loop other servers' calls need). So:
 * - each server has a token bucket per session, and the session has one over all servers;
 * - repeated `list_changed` of one kind inside the window collapse to one, delivered at the end;
 * - a newer progress for the same call replaces an undelivered older one;
 * - anything else over the rate is dropped and counted, and one audit event per burst says how many.
 */

export type NotificationClass = 'list' | 'progress' | 'other';

export interface NotificationControlOptions {
  serverLimits: (server: string) => NotificationLimits;
  session: NotificationLimits;
  coalesceMs: number;
  /** Called once per burst of drops, when the burst has ended (no drop for a second). */
  onDropped: (server: string, dropped: number, coalesced: number, windowMs: number) => void;
  now?: () => number;
}

class TokenBucket {
  private tokens: number;
  private refilledAt: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.refilledAt = now;
  }

  available(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) * this.perSecond) / 1000);
    this.refilledAt = now;
    return this.tokens >= 1;
  }

  take(): void {
    this.tokens -= 1;
  }

  /** Milliseconds until one token is back. */
  msUntilToken(): number {
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * 1000) / this.perSecond);
  }
}

interface DropBurst {
  dropped: number;
  coalesced: number;
  startedAt: number;
  lastAt: number;
}

/** Most undelivered progress updates kept per session (one per call; calls are bounded by concurrency). */
const MAX_PENDING_PROGRESS = 1024;
const BURST_QUIET_MS = 1000;

export class NotificationControl {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly sessionBucket: TokenBucket;
  private readonly lastListAt = new Map<string, number>();
  /** Undelivered list_changed (by server and method) and progress (by call), in arrival order. */
  private readonly pending = new Map<string, { server: string; cls: NotificationClass; deliver: () => void }>();
  private readonly bursts = new Map<string, DropBurst>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly options: NotificationControlOptions) {
    this.now = options.now ?? Date.now;
    this.sessionBucket = new TokenBucket(options.session.perSecond, options.session.burst, this.now());
  }

  /** Offers one notification; `key` identifies what a newer one replaces (list kind, or progress token). */
  offer(server: string, cls: NotificationClass, key: string, deliver: () => void): void {
    const time = this.now();
    const pendingKey = `${server}\u0000${key}`;
    const waiting = this.pending.get(pendingKey);
    if (waiting !== undefined) {
      // Collapsed into the one already waiting; a newer progress replaces the older.
      if (cls === 'progress') waiting.deliver = deliver;
      this.count(server, time, 'coalesced');
      return;
    }
    if (cls === 'list') {
      const last = this.lastListAt.get(pendingKey);
      if (last !== undefined && time - last < this.options.coalesceMs) {
        this.pending.set(pendingKey, { server, cls, deliver });
        this.schedule(this.options.coalesceMs - (time - last));
        return;
      }
    }
    if (this.take(server, time)) {
      if (cls === 'list') this.lastListAt.set(pendingKey, time);
      deliver();
      return;
    }
    if (cls === 'other' || (cls === 'progress' && this.pending.size >= MAX_PENDING_PROGRESS)) {
      this.count(server, time, 'dropped');
      return;
    }
    this.pending.set(pendingKey, { server, cls, deliver });
    this.schedule(Math.max(this.bucket(server).msUntilToken(), this.sessionBucket.msUntilToken(), 1));
  }

  /** Stops timers and reports open drop bursts (the session is closing). */
  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
    for (const server of [...this.bursts.keys()]) this.endBurst(server);
  }

  private bucket(server: string): TokenBucket {
    let bucket = this.buckets.get(server);
    if (bucket === undefined) {
      const limits = this.options.serverLimits(server);
      bucket = new TokenBucket(limits.perSecond, limits.burst, this.now());
      this.buckets.set(server, bucket);
    }
    return bucket;
  }

  private take(server: string, time: number): boolean {
    const bucket = this.bucket(server);
    if (!bucket.available(time) || !this.sessionBucket.available(time)) return false;
    bucket.take();
    this.sessionBucket.take();
    return true;
  }

  private count(server: string, time: number, what: 'dropped' | 'coalesced'): void {
    let burst = this.bursts.get(server);
    if (burst === undefined) {
      burst = { dropped: 0, coalesced: 0, startedAt: time, lastAt: time };
      this.bursts.set(server, burst);
    }
    burst[what] += 1;
    burst.lastAt = time;
    this.schedule(BURST_QUIET_MS);
  }

  private endBurst(server: string): void {
    const burst = this.bursts.get(server);
    if (burst === undefined) return;
    this.bursts.delete(server);
    if (burst.dropped > 0 || burst.coalesced > 0) this.options.onDropped(server, burst.dropped, burst.coalesced, burst.lastAt - burst.startedAt);
  }

  private schedule(delayMs: number): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => this.flush(), Math.max(1, delayMs));
    this.timer.unref();
  }

  private flush(): void {
    this.timer = undefined;
    const time = this.now();
    for (const [key, entry] of this.pending) {
      const server = entry.server;
      if (entry.cls === 'list') {
        // Already collapsed to one per kind: deliver once its window is over, whatever the rate.
        const last = this.lastListAt.get(key) ?? 0;
        if (time - last < this.options.coalesceMs) continue;
        this.lastListAt.set(key, time);
        this.take(server, time);
      } else if (!this.take(server, time)) {
        continue;
      }
      this.pending.delete(key);
      entry.deliver();
    }
    for (const [server, burst] of this.bursts) if (time - burst.lastAt >= BURST_QUIET_MS) this.endBurst(server);
    if (this.pending.size > 0) this.schedule(Math.min(this.options.coalesceMs || 10, 50));
    else if (this.bursts.size > 0) this.schedule(Math.max(1, ...[...this.bursts.values()].map((burst) => BURST_QUIET_MS - (time - burst.lastAt) + 1)));
  }
}
