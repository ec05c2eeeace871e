// Upstream health, breakers and definition-inspection verdicts as the gateway's own audit events
// report them: the tracker watches the events on their way to the log, so no module has to expose
// its internals to the admin API.
import type { JsonValue } from '../../audit/index.js';

export interface UpstreamState {
  server: string;
  /** up (started), restarting, down (gave up or exited), or unknown (no process yet). */
  state: 'unknown' | 'up' | 'restarting' | 'down';
  lastEvent?: string;
  lastEventAt?: string;
  detail?: string;
  starts: number;
  restarts: number;
}

export interface BreakerView {
  breaker: string;
  target: string;
  state: string;
  cause?: string;
  since: string;
}

export interface ServerEvent {
  ts: string;
  event: string;
  info: { [key: string]: JsonValue };
}

const STATE_BY_EVENT: Record<string, UpstreamState['state']> = {
  'upstream.start': 'up',
  'upstream.restart': 'restarting',
  'upstream.down': 'down',
  'upstream.exit': 'down',
  'upstream.killed': 'down',
};

/** Events kept per server for the findings view (inspection verdicts, quarantines, protocol violations). */
const EVENTS_PER_SERVER = 50;

export class HealthTracker {
  private readonly upstreams = new Map<string, UpstreamState>();
  private readonly breakers = new Map<string, BreakerView>();
  private readonly events = new Map<string, ServerEvent[]>();

  constructor(servers: readonly string[]) {
    for (const server of servers) this.upstreams.set(server, { server, state: 'unknown', starts: 0, restarts: 0 });
  }

  observe(type: string, info: { [key: string]: JsonValue }): void {
    const ts = new Date().toISOString();
    if (type === 'limits.breaker') {
      const breaker = String(info['breaker'] ?? '');
      const target = String(info['target'] ?? '');
      this.breakers.set(`${breaker}\u0000${target}`, { breaker, target, state: String(info['to'] ?? 'unknown'), ...(info['cause'] === undefined ? {} : { cause: String(info['cause']) }), since: ts });
      return;
    }
    const server = typeof info['server'] === 'string' ? info['server'] : undefined;
    if (server === undefined) return;
    // A config reload adds and removes servers: the view follows (src/gateway/reconfigure.ts).
    if (type === 'server.reload' && info['action'] === 'start' && info['reason'] === 'added') this.upstreams.set(server, { server, state: 'unknown', starts: 0, restarts: 0 });
    if (type === 'server.reload' && info['action'] === 'stop' && info['reason'] === 'removed') this.upstreams.delete(server);
    const next = STATE_BY_EVENT[type];
    const upstream = this.upstreams.get(server);
    if (next !== undefined && upstream !== undefined) {
      upstream.state = next;
      upstream.lastEvent = type;
      upstream.lastEventAt = ts;
      const detail = info['reason'] ?? info['detail'] ?? info['error'];
      if (detail !== undefined) upstream.detail = String(detail).slice(0, 500);
      else delete upstream.detail;
      if (type === 'upstream.start') upstream.starts += 1;
      if (type === 'upstream.restart') upstream.restarts += 1;
      return;
    }
    let list = this.events.get(server);
    if (list === undefined) this.events.set(server, (list = []));
    list.push({ ts, event: type, info });
    if (list.length > EVENTS_PER_SERVER) list.shift();
  }

  upstreamStates(): UpstreamState[] {
    return [...this.upstreams.values()].map((upstream) => ({ ...upstream }));
  }

  breakerStates(): BreakerView[] {
    return [...this.breakers.values()];
  }

  eventsOf(server: string): ServerEvent[] {
    return [...(this.events.get(server) ?? [])];
  }
}
