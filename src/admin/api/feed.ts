// The live side of the audit log for the admin API: every call record the gateway appends, and
// every event it records (sessions, upstreams, quarantines, admin actions, approvals), passes
// through here once the log committed it (with the seq and hash the log gave it), so the SSE
// stream shows it at once, without reading files back.
import type { AppendResult, AuditFields, AuditSink, JsonValue } from '../../audit/index.js';

/** A committed record as the feed shows it: the fields plus its chain position. */
export type FeedRecord = AuditFields & { seq: number; hash: string; ts: string };

export type FeedListener = (record: FeedRecord) => void;

/** How many recent records a new subscriber can ask to see first. */
const RECENT = 200;

export class AuditFeed {
  private readonly listeners = new Set<FeedListener>();
  private readonly recent: FeedRecord[] = [];

  /** Wraps a sink: appends go to it unchanged; committed records are published after. */
  tee(sink: AuditSink): AuditSink {
    const publish = (fields: AuditFields, result: AppendResult): AppendResult => {
      if (result.dropped !== true) this.publish({ ...fields, seq: result.seq, hash: result.hash, ts: fields.ts ?? new Date().toISOString() });
      return result;
    };
    const teed: AuditSink = { append: (fields) => sink.append(fields).then((result) => publish(fields, result)) };
    if (sink.digestText !== undefined) teed.digestText = sink.digestText.bind(sink);
    const appendCall = sink.appendCall?.bind(sink);
    // The record is built where the log runs; the feed needs it back to show it.
    if (appendCall !== undefined) {
      teed.appendCall = async (call, capture, _wantFields, alone) => {
        const appended = await appendCall(call, capture, true, alone);
        if (appended.fields !== undefined) publish(appended.fields, appended.result);
        return appended;
      };
    }
    return teed;
  }

  /** An event the log committed (src/app/events.ts calls this after each append). */
  publishEvent(type: string, info: { [key: string]: JsonValue }, result: AppendResult): void {
    if (result.dropped !== true) this.publish({ kind: 'event', event: type, info, seq: result.seq, hash: result.hash, ts: new Date().toISOString() });
  }

  subscribe(listener: FeedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The latest records, oldest first. */
  latest(): readonly FeedRecord[] {
    return this.recent;
  }

  private publish(record: FeedRecord): void {
    this.recent.push(record);
    if (this.recent.length > RECENT) this.recent.shift();
    for (const listener of this.listeners) {
      try {
        listener(record);
      } catch {
        // A stream that failed is dropped by its own close handler; the log goes on.
      }
    }
  }
}
