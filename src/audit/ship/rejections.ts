import type { JsonValue } from '../schema.js';
import type { Rejection } from './shipper.js';

/** At most one audit record per sink per interval: the record is shipped too, and a receiver that rejects it as well must not make the log feed itself. */
const DEFAULT_INTERVAL_MS = 60_000;
const MAX_MESSAGES = 5;

interface Pending {
  rejected: number;
  deliveries: number;
  fromSeq: number;
  toSeq: number;
  messages: Set<string>;
}

/**
 * Writes `audit.ship_rejected` records for records a receiver took but rejected for good (OTLP
 * partial success): the first at once, later ones summed per sink over an interval.
 */
export class RejectionAudit {
  private readonly pending = new Map<string, Pending>();
  private readonly lastWritten = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly write: (info: { [key: string]: JsonValue }) => Promise<unknown>,
    private readonly onWriteError: (error: Error) => void,
    private readonly intervalMs = DEFAULT_INTERVAL_MS,
  ) {}

  record(rejection: Rejection): void {
    if (rejection.rejected === 0) return;
    const entry = this.pending.get(rejection.sink) ?? { rejected: 0, deliveries: 0, fromSeq: rejection.fromSeq, toSeq: rejection.toSeq, messages: new Set<string>() };
    entry.rejected += rejection.rejected;
    entry.deliveries += 1;
    entry.toSeq = Math.max(entry.toSeq, rejection.toSeq);
    if (rejection.message !== '' && entry.messages.size < MAX_MESSAGES) entry.messages.add(rejection.message);
    this.pending.set(rejection.sink, entry);
    const wait = (this.lastWritten.get(rejection.sink) ?? -Infinity) + this.intervalMs - Date.now();
    if (wait <= 0) this.flush(rejection.sink);
    else if (!this.timers.has(rejection.sink)) {
      const timer = setTimeout(() => this.flush(rejection.sink), wait);
      timer.unref();
      this.timers.set(rejection.sink, timer);
    }
  }

  /** Writes what is summed up (at shutdown, before the log closes). */
  flushAll(): void {
    for (const sink of [...this.pending.keys()]) this.flush(sink);
  }

  private flush(sink: string): void {
    clearTimeout(this.timers.get(sink));
    this.timers.delete(sink);
    const entry = this.pending.get(sink);
    if (entry === undefined) return;
    this.pending.delete(sink);
    this.lastWritten.set(sink, Date.now());
    const info = {
      sink,
      rejected_records: entry.rejected,
      deliveries: entry.deliveries,
      from_seq: entry.fromSeq,
      to_seq: entry.toSeq,
      messages: [...entry.messages],
      outcome: 'rejected for good by the receiver (partial success): kept in this log and in other sinks, not sent to this one again',
    };
    this.write(info).catch((error: unknown) => this.onWriteError(error instanceof Error ? error : new Error(String(error))));
  }
}
