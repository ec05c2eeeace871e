import type { UpstreamAuthorizationRequired } from '../../credentials/errors.js';
import type { ServerConfig, UpstreamIsolation } from '../../config/index.js';
import type { Outcome } from '../../pipeline/index.js';
import type { JsonRpcNotification, JsonRpcRequest } from '../jsonrpc.js';
import type { UpstreamConnection } from '../upstream/connection.js';

/**
 * One server as a session sees it: its own process (isolation `session`, a ManagedUpstream) or
 * its lease on a pooled process (isolation `agent` or `shared`, a PoolLease).
 */
export interface SessionUpstream {
  readonly name: string;
  /** The connection if the server is up now. */
  readonly current: UpstreamConnection | undefined;
  readonly lastError: string | undefined;
  /** Set while the agent's user must authorize (consent) before this server can be used (per-session upstreams only). */
  readonly authorizationRequired?: UpstreamAuthorizationRequired | undefined;
  /** Set on a pooled lease: the level it was pooled at. */
  readonly isolation?: UpstreamIsolation;
  start(): Promise<UpstreamConnection | undefined>;
  ready(waitMs: number): Promise<UpstreamConnection | undefined>;
  /**
   * The connection `ready()` would resolve with at once, without waiting; undefined when
   * `ready()` has something to wait for or to refuse (the caller then calls it). Saves the hot
   * path a promise per call when the server is simply up.
   */
  readyNow?(): UpstreamConnection | undefined;
  /** The session is done with it (a session's own process stops; a lease is released). */
  stop(): Promise<void>;
  /** Marks one call of this session as running on the process (pooled: server requests are attributed by it). */
  trackCall?(): () => void;
  /** Pooled subscriptions: the upstream is asked once per URI, whatever the number of sessions. */
  subscription?(method: 'resources/subscribe' | 'resources/unsubscribe', uri: string, forward: () => Promise<Outcome>): Promise<Outcome>;
}

/** What a session hands its lease: where the pooled process's traffic for this session goes. */
export interface PoolClientEvents {
  onServerRequest(server: string, request: JsonRpcRequest): void;
  onNotification(server: string, notification: JsonRpcNotification): void;
  onReady(server: string, restarted: boolean): void;
}

/** Stdio servers and remote HTTP servers both default to `agent` (docs/pipeline.md, "Upstream pools"). */
export function isolationOf(config: ServerConfig): UpstreamIsolation {
  // A remote server reached with per-agent credentials (src/credentials) gets a connection per
  // session, which carries its owner's token: a pooled connection would carry one agent's token
  // for others. Pools keyed by agent with a per-agent bearer are future work.
  if (config.transport === 'http' && config.auth !== undefined) return 'session';
  return config.isolation ?? 'agent';
}

export const DEFAULT_MAX_PROCESSES = 1;
export const DEFAULT_IDLE_SECONDS = 600;
