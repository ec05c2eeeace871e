import type { GatewaySession } from '../session.js';
import type { HttpSessionSink } from './http-session-sink.js';
import type { LegacySseSink } from './legacy-sse.js';

interface SessionEntry {
  session: GatewaySession;
  owner: string;
  lastSeen: number;
  /** Requests the client made after initialize; a session that never makes one expires early. */
  calls: number;
}

/** A Streamable HTTP session (Mcp-Session-Id). */
export interface StreamableHttpSession extends SessionEntry {
  sink: HttpSessionSink;
  legacySse?: undefined;
}

/** A session of the 2024-11-05 HTTP+SSE transport (`?sessionId=`): it lives as long as its stream. */
export interface LegacySseSession extends SessionEntry {
  sink: LegacySseSink;
  legacySse: true;
}

/** Both transports share one table, so the caps and eviction count every session once. */
export type HttpSession = StreamableHttpSession | LegacySseSession;

export interface SessionCaps {
  /** Sessions in total. */
  total: number;
  /** Sessions one agent may hold. */
  perAgent: number;
}

/** Why a session ends: the audit record's `reason`. */
export type SessionEndReason = 'delete' | 'expired' | 'unused' | 'evicted' | 'shutdown' | 'initialize_failed' | 'slow_client' | 'stream_closed';

/** What admitting a new session takes: nothing, ending one idle session first, or a refusal. */
export type Admission =
  | { ok: true; evict?: { id: string; entry: HttpSession } }
  | { ok: false; reason: 'agent_limit' | 'gateway_full'; message: string };

/**
 * The HTTP listener's sessions, least recently used first (a touch moves a session to the end),
 * with a count per agent. It decides admission: an agent at its own cap gives up its least
 * recently used idle session; a full gateway gives up the least recently used idle session of
 * anyone; only when every candidate is busy is the newcomer refused. So one token can neither
 * take every slot nor keep another agent out with sessions it does not use.
 */
export class SessionTable {
  private readonly entries = new Map<string, HttpSession>();
  private readonly perAgent = new Map<string, number>();

  constructor(private readonly caps: SessionCaps) {}

  get size(): number {
    return this.entries.size;
  }

  get(id: string): HttpSession | undefined {
    return this.entries.get(id);
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  /** Every session, least recently used first. */
  values(): HttpSession[] {
    return [...this.entries.values()];
  }

  countFor(agent: string): number {
    return this.perAgent.get(agent) ?? 0;
  }

  add(id: string, entry: HttpSession): void {
    this.entries.set(id, entry);
    this.perAgent.set(entry.owner, this.countFor(entry.owner) + 1);
  }

  /** Marks a session as just used: it becomes the last to be evicted. */
  touch(id: string, entry: HttpSession, now: number): void {
    entry.lastSeen = now;
    this.entries.delete(id);
    this.entries.set(id, entry);
  }

  remove(id: string): HttpSession | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    this.entries.delete(id);
    const left = this.countFor(entry.owner) - 1;
    if (left <= 0) this.perAgent.delete(entry.owner);
    else this.perAgent.set(entry.owner, left);
    return entry;
  }

  /** Whether `agent` may open one more session, and which idle session must end first. */
  admit(agent: string): Admission {
    if (this.countFor(agent) >= this.caps.perAgent) {
      const victim = this.leastRecentlyUsedIdle((entry) => entry.owner === agent);
      if (victim === undefined) return { ok: false, reason: 'agent_limit', message: `agent ${agent} holds its limit of ${this.caps.perAgent} sessions, all busy; close one (DELETE) or retry later` };
      return { ok: true, evict: victim };
    }
    if (this.entries.size >= this.caps.total) {
      const victim = this.leastRecentlyUsedIdle(() => true);
      if (victim === undefined) return { ok: false, reason: 'gateway_full', message: `the gateway is at its limit of ${this.caps.total} sessions, all busy; retry later` };
      return { ok: true, evict: victim };
    }
    return { ok: true };
  }

  private leastRecentlyUsedIdle(eligible: (entry: HttpSession) => boolean): { id: string; entry: HttpSession } | undefined {
    for (const [id, entry] of this.entries) {
      // A session still initializing or with a request in flight is busy, never a victim.
      if (eligible(entry) && entry.session.initialized && entry.session.inFlightCount === 0) return { id, entry };
    }
    return undefined;
  }
}

/** The per-agent cap when the config names none: a quarter of the total, at least one. */
export function defaultPerAgentCap(total: number): number {
  return Math.max(1, Math.floor(total / 4));
}
