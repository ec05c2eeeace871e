import type { UpstreamIsolation } from '../../config/index.js';
import { success, type Outcome } from '../../pipeline/index.js';
import type { UpstreamConnection } from '../upstream/connection.js';
import type { PooledProcess } from './process.js';
import type { PoolClientEvents, SessionUpstream } from './types.js';

/**
 * One session's use of a pooled process. The connection's own id and progress-token remapping
 * keep the sessions' calls apart on the wire; the lease adds what the process needs to know about
 * sessions: which one has calls in flight (server requests are routed by it), and which URIs each
 * one subscribed to.
 */
export class PoolLease implements SessionUpstream {
  private released = false;

  constructor(
    readonly name: string,
    readonly isolation: UpstreamIsolation,
    readonly process: PooledProcess,
    readonly events: PoolClientEvents,
  ) {
    process.attach(this);
  }

  get current(): UpstreamConnection | undefined {
    return this.released ? undefined : this.process.upstream.current;
  }

  get lastError(): string | undefined {
    return this.process.upstream.lastError;
  }

  start(): Promise<UpstreamConnection | undefined> {
    return this.released ? Promise.resolve(undefined) : this.process.upstream.start();
  }

  /** Only outside a drain: during one, `ready()` waits for the restarted process. */
  readyNow(): UpstreamConnection | undefined {
    if (this.released || this.process.draining !== undefined) return undefined;
    return this.process.upstream.readyNow();
  }

  async ready(waitMs: number): Promise<UpstreamConnection | undefined> {
    if (this.released) return undefined;
    const draining = this.process.draining;
    if (draining === undefined) return this.process.upstream.ready(waitMs);
    // A call routed during a drain goes to the restarted process (the new view), never the old one.
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([draining.then(() => true), new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), waitMs); })]);
    clearTimeout(timer);
    if (!drained || this.released) return undefined;
    return this.process.upstream.ready(Math.max(1, waitMs - (Date.now() - started)));
  }

  trackCall(): () => void {
    return this.process.trackCall(this);
  }

  /**
   * The first session to subscribe to a URI subscribes the process; later ones are only recorded.
   * The last one to leave unsubscribes it. Updates reach only the sessions recorded for the URI.
   */
  async subscription(method: 'resources/subscribe' | 'resources/unsubscribe', uri: string, forward: () => Promise<Outcome>): Promise<Outcome> {
    const { subscriptions } = this.process;
    if (method === 'resources/subscribe') {
      const subscribers = subscriptions.get(uri);
      if (subscribers !== undefined && subscribers.size > 0) {
        subscribers.add(this);
        return success({});
      }
      const outcome = await forward();
      if (outcome.ok && !this.released) {
        const now = subscriptions.get(uri) ?? new Set<PoolLease>();
        now.add(this);
        subscriptions.set(uri, now);
      }
      return outcome;
    }
    const subscribers = subscriptions.get(uri);
    if (subscribers === undefined || !subscribers.delete(this)) return success({});
    if (subscribers.size > 0) return success({});
    subscriptions.delete(uri);
    return forward();
  }

  /** The session is done: its calls and subscriptions leave the process (which stays warm for the next session). */
  async stop(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const orphaned = this.process.detach(this);
    const connection = this.process.upstream.current;
    if (connection === undefined) return;
    await Promise.all(orphaned.map((uri) => connection.request('resources/unsubscribe', { uri }, { timeoutMs: 5000, maxOutputBytes: 1024 * 1024 })));
  }
}
