import type { ReadinessCheck } from './listener.js';

/** What the gateway knows about starting one server (shared by all sessions: src/gateway/upstream/start-state.ts). */
export interface StartStatus {
  /** Consecutive failed starts; 0 once a start succeeded (or before any was needed). */
  failures: number;
  /** The start breaker: open after repeated failed starts, one probe at a time. */
  breakerOpen: boolean;
}

/**
 * Readiness of the admitted upstreams: each one's last start succeeded (or none was needed yet),
 * its start breaker is closed, and no circuit breaker of the limits (docs/limits.md) on it or
 * one of its tools is open. Breaker states come from the `limits.breaker` events the limits
 * module already emits. A half-open breaker counts as ready: it closes only when calls probe
 * it, and an orchestrator that stopped routing to a not-ready replica would never send them.
 */
export class UpstreamReadiness implements ReadinessCheck {
  readonly name = 'upstreams';
  /** Open breakers by `breaker\u0000target`. */
  private readonly openBreakers = new Map<string, { breaker: string; target: string }>();

  constructor(
    /** The servers offered now (a config reload changes them). */
    private readonly servers: () => readonly string[],
    private readonly startStatus: (server: string) => StartStatus,
  ) {}

  /** Feeds one audit event; only breaker transitions matter here. */
  observe(type: string, info: Record<string, unknown>): void {
    if (type !== 'limits.breaker') return;
    const breaker = typeof info['breaker'] === 'string' ? info['breaker'] : '';
    const target = typeof info['target'] === 'string' ? info['target'] : '';
    const key = `${breaker}\u0000${target}`;
    if (info['to'] === 'open') this.openBreakers.set(key, { breaker, target });
    else this.openBreakers.delete(key);
  }

  check(): Promise<{ ok: boolean; detail: string }> {
    const problems: string[] = [];
    for (const server of this.servers()) {
      const status = this.startStatus(server);
      if (status.breakerOpen) problems.push(`${server}: start breaker open after ${status.failures} failed starts`);
      else if (status.failures > 0) problems.push(`${server}: last start failed (${status.failures} in a row)`);
    }
    for (const { breaker, target } of this.openBreakers.values()) {
      const server = this.serverOf(target);
      if (server !== undefined) problems.push(`${server}: circuit breaker '${breaker}' open for ${target}`);
    }
    const servers = this.servers.length;
    return Promise.resolve(problems.length === 0 ? { ok: true, detail: `${servers} upstream(s) healthy or not started yet` } : { ok: false, detail: problems.join('; ') });
  }

  /** The admitted server a breaker target (`server` or `server.tool`) belongs to; the longest name wins. */
  private serverOf(target: string): string | undefined {
    let found: string | undefined;
    for (const server of this.servers()) {
      if ((target === server || target.startsWith(`${server}.`)) && (found === undefined || server.length > found.length)) found = server;
    }
    return found;
  }
}
