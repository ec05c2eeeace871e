import type { JsonRpcMessage } from '../jsonrpc.js';

/** How much a client may leave unread before it loses notifications, and then its connection. */
export interface OutboxLimits {
  /** Unsent bytes on the client's stream past which notifications are dropped (responses and requests still go). */
  dropNotificationsAtBytes: number;
  /** Unsent bytes past which the client is disconnected: nothing it could still read is worth unbounded memory. */
  disconnectAtBytes: number;
}

export const DEFAULT_OUTBOX_LIMITS: OutboxLimits = { dropNotificationsAtBytes: 1024 * 1024, disconnectAtBytes: 16 * 1024 * 1024 };

/** Drops inside one burst are reported together, once the burst has been quiet this long. */
const DROP_REPORT_QUIET_MS = 1000;

export interface OutboxEvents {
  /** Notifications dropped in one burst (one audit event per burst, not per message). */
  onDropped(count: number): void;
  /** The client fell behind past the disconnect limit; the caller closes its connection. */
  onOverflow(queuedBytes: number): void;
}

function isNotification(message: JsonRpcMessage): boolean {
  return 'method' in message && !('id' in message);
}

/**
 * Back-pressure toward one client. Writes to a socket or pipe never block, so a client that
 * stops reading would make the gateway buffer without bound; this decides per message, from the
 * bytes still queued on the stream, whether it goes, is dropped (notifications first), or ends
 * the connection. Gateway memory per client stays under about `disconnectAtBytes`.
 */
export class ClientOutbox {
  private dropped = 0;
  private reportTimer: NodeJS.Timeout | undefined;
  private overflowed = false;

  constructor(
    private readonly limits: OutboxLimits,
    private readonly events: OutboxEvents,
  ) {}

  /** Whether `message` may be written to a stream that already holds `queuedBytes` unsent. */
  admit(message: JsonRpcMessage, queuedBytes: number): boolean {
    if (this.overflowed) return false;
    if (queuedBytes >= this.limits.disconnectAtBytes) {
      this.overflowed = true;
      this.flushReport();
      this.events.onOverflow(queuedBytes);
      return false;
    }
    if (queuedBytes >= this.limits.dropNotificationsAtBytes && isNotification(message)) {
      this.dropped += 1;
      if (this.reportTimer !== undefined) clearTimeout(this.reportTimer);
      this.reportTimer = setTimeout(() => this.flushReport(), DROP_REPORT_QUIET_MS);
      this.reportTimer.unref();
      return false;
    }
    return true;
  }

  /** Reports drops not yet reported (on close, or when the quiet period ends). */
  flushReport(): void {
    if (this.reportTimer !== undefined) clearTimeout(this.reportTimer);
    this.reportTimer = undefined;
    if (this.dropped === 0) return;
    const count = this.dropped;
    this.dropped = 0;
    this.events.onDropped(count);
  }
}
