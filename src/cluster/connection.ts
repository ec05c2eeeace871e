// One replica's link to the cluster's Redis: a command connection and a subscriber connection
// (Redis puts a subscribed connection in a mode where it can run nothing else). Commands fail at
// once while Redis is away instead of queueing: each user decides what "Redis down" means for it
// (the quarantine store fails closed, breakers keep their local state).
import { Redis } from 'ioredis';

export type ClusterState = 'up' | 'down';

export interface ClusterConnectionOptions {
  url: string;
  replicaId: string;
  keyPrefix: string;
  commandTimeoutMs: number;
  /** Connection state changes, for logs and the audit log. */
  onState?: (state: ClusterState, detail: string) => void;
}

type Handler = (message: string) => void;

export class ClusterConnection {
  readonly replicaId: string;
  readonly prefix: string;
  readonly redis: Redis;
  private readonly subscriber: Redis;
  private readonly handlers = new Map<string, Set<Handler>>();
  private readonly stateListeners = new Set<(state: ClusterState) => void>();
  private commandsUp = false;
  private subscriberUp = false;
  private closed = false;

  constructor(private readonly options: ClusterConnectionOptions) {
    this.replicaId = options.replicaId;
    this.prefix = options.keyPrefix;
    const settings = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs,
      connectTimeout: Math.max(1000, options.commandTimeoutMs),
      retryStrategy: (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 6), 2000),
    };
    this.redis = new Redis(options.url, settings);
    // The subscriber re-subscribes itself after a reconnect (ioredis autoResubscribe).
    this.subscriber = new Redis(options.url, { ...settings, commandTimeout: undefined, autoResubscribe: true });
    this.redis.on('ready', () => this.moved('commands', true, 'connected'));
    this.redis.on('error', (error: Error) => this.moved('commands', false, error.message));
    this.redis.on('close', () => this.moved('commands', false, 'connection closed'));
    this.subscriber.on('ready', () => void this.resubscribed());
    this.subscriber.on('error', (error: Error) => this.moved('subscriber', false, error.message));
    this.subscriber.on('close', () => this.moved('subscriber', false, 'connection closed'));
    this.subscriber.on('message', (channel: string, message: string) => {
      for (const handler of this.handlers.get(channel) ?? []) {
        try {
          handler(message);
        } catch {
          // A malformed message from another replica must not stop this one's delivery.
        }
      }
    });
  }

  /** Both connections are up: writes reach Redis and other replicas' changes reach us. */
  get up(): boolean {
    return this.commandsUp && this.subscriberUp;
  }

  key(name: string): string {
    return this.prefix + name;
  }

  /** Resolves once both connections are up, or false after `timeoutMs`. */
  async ready(timeoutMs: number): Promise<boolean> {
    if (this.up) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.stateListeners.delete(listener);
        resolve(false);
      }, timeoutMs);
      const listener = (state: ClusterState): void => {
        if (state !== 'up') return;
        clearTimeout(timer);
        this.stateListeners.delete(listener);
        resolve(true);
      };
      this.stateListeners.add(listener);
    });
  }

  /** Called on every change of `up`; on 'up' after an outage, users reload what they mirror. */
  onState(listener: (state: ClusterState) => void): void {
    this.stateListeners.add(listener);
  }

  /** Subscribes to a channel (the prefix is added). */
  async subscribe(channel: string, handler: Handler): Promise<void> {
    const full = this.key(channel);
    let set = this.handlers.get(full);
    if (set === undefined) {
      this.handlers.set(full, (set = new Set()));
      if (this.subscriber.status === 'ready') await this.subscriber.subscribe(full);
    }
    set.add(handler);
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.redis.publish(this.key(channel), message);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.redis.disconnect();
    this.subscriber.disconnect();
    return Promise.resolve();
  }

  private async resubscribed(): Promise<void> {
    // Channels registered while the subscriber was down are subscribed now.
    const missing = [...this.handlers.keys()];
    if (missing.length > 0) await this.subscriber.subscribe(...missing).catch(() => undefined);
    this.moved('subscriber', true, 'connected');
  }

  private moved(which: 'commands' | 'subscriber', up: boolean, detail: string): void {
    if (this.closed) return;
    const before = this.up;
    if (which === 'commands') this.commandsUp = up;
    else this.subscriberUp = up;
    if (before === this.up) return;
    const state: ClusterState = this.up ? 'up' : 'down';
    this.options.onState?.(state, detail);
    for (const listener of [...this.stateListeners]) listener(state);
  }
}
