// Circuit breakers per server or tool. A small state machine rather than a library breaker,
// because it also opens on signals that are not call results (sandbox memory, a runaway call),
// must abort the calls in flight when it does, and reports every transition for the audit log.
import type { BreakerRule } from './config.js';
import { keyPart, selects, type CallSubject } from './match.js';

export type BreakerState = 'closed' | 'open' | 'halfOpen';

export type TripCause = 'consecutive_failures' | 'consecutive_timeouts' | 'error_rate' | 'memory' | 'runaway' | 'probe_failed';

export interface Transition {
  breaker: string;
  /** What the breaker guards: `server` or `server.tool`. */
  target: string;
  from: BreakerState;
  to: BreakerState;
  /** `replica`: another replica opened it (cluster sharing); `detail` names which. */
  cause: TripCause | 'open_elapsed' | 'probes_succeeded' | 'replica';
  detail?: string;
}

export interface CallResult {
  failed: boolean;
  timedOut: boolean;
  durationMs: number;
}

export type Admission = { ok: true; probe: boolean } | { ok: false; retryAfterMs: number; state: BreakerState };

/** One breaker instance: one rule applied to one server or tool. */
export class Breaker {
  state: BreakerState = 'closed';
  private openedAt = 0;
  private failures = 0;
  private timeouts = 0;
  private samples: Array<{ at: number; failed: boolean }> = [];
  private probesInFlight = 0;
  private probeSuccesses = 0;
  private readonly aborters = new Set<(reason: string) => void>();

  constructor(
    readonly name: string,
    readonly target: string,
    readonly rule: BreakerRule,
    private readonly emit: (transition: Transition) => void,
    private readonly now: () => number,
  ) {}

  /** Whether a call may go now; a half-open breaker lets `halfOpenProbes` calls through at a time. */
  admit(): Admission {
    if (this.state === 'open') {
      const waited = this.now() - this.openedAt;
      if (waited < this.rule.openMs) return { ok: false, retryAfterMs: this.rule.openMs - waited, state: 'open' };
      this.move('halfOpen', 'open_elapsed');
    }
    if (this.state === 'halfOpen') {
      if (this.probesInFlight >= this.rule.halfOpenProbes - this.probeSuccesses) return { ok: false, retryAfterMs: Math.max(1, Math.min(this.rule.openMs, 1000)), state: 'halfOpen' };
      this.probesInFlight += 1;
      return { ok: true, probe: true };
    }
    return { ok: true, probe: false };
  }

  /** Gives back a probe slot taken by `admit` for a call that did not run (another control refused it). */
  abandon(probe: boolean): void {
    if (probe) this.probesInFlight = Math.max(0, this.probesInFlight - 1);
  }

  /** Registers an in-flight call so that a trip on memory or a runaway can abort it. */
  watch(abort: (reason: string) => void): () => void {
    this.aborters.add(abort);
    return () => this.aborters.delete(abort);
  }

  record(result: CallResult, probe: boolean): void {
    const failed = result.failed || result.timedOut || (this.rule.slowCallMs !== undefined && result.durationMs > this.rule.slowCallMs);
    if (probe) {
      this.probesInFlight = Math.max(0, this.probesInFlight - 1);
      if (this.state !== 'halfOpen') return;
      if (failed) {
        this.trip('probe_failed', result.timedOut ? 'the probe timed out' : 'the probe failed');
        return;
      }
      this.probeSuccesses += 1;
      if (this.probeSuccesses >= this.rule.halfOpenProbes) this.move('closed', 'probes_succeeded');
      return;
    }
    if (this.state !== 'closed') return;
    const now = this.now();
    this.failures = failed ? this.failures + 1 : 0;
    this.timeouts = result.timedOut ? this.timeouts + 1 : 0;
    const rate = this.rule.errorRate;
    if (rate !== undefined) {
      this.samples.push({ at: now, failed });
      const cutoff = now - rate.windowMs;
      let drop = 0;
      while (drop < this.samples.length && (this.samples[drop] as { at: number }).at <= cutoff) drop += 1;
      if (drop > 0) this.samples.splice(0, drop);
    }
    if (this.rule.consecutiveTimeouts !== undefined && this.timeouts >= this.rule.consecutiveTimeouts) {
      this.trip('consecutive_timeouts', `${this.timeouts} timeouts in a row`);
    } else if (this.rule.consecutiveFailures !== undefined && this.failures >= this.rule.consecutiveFailures) {
      this.trip('consecutive_failures', `${this.failures} failures in a row`);
    } else if (rate !== undefined && this.samples.length >= rate.minCalls) {
      const failedCount = this.samples.filter((sample) => sample.failed).length;
      if (failedCount / this.samples.length >= rate.threshold) this.trip('error_rate', `${failedCount} of the last ${this.samples.length} calls failed`);
    }
  }

  /** Opens the breaker now; memory and runaway trips also abort every call in flight through it. */
  trip(cause: TripCause, detail: string): void {
    if (this.state === 'open') return;
    this.openedAt = this.now();
    this.move('open', cause, detail);
    if (cause === 'memory' || cause === 'runaway') {
      for (const abort of [...this.aborters]) abort(`circuit breaker '${this.name}' opened (${cause}): ${detail}`);
    }
  }

  /**
   * Opens the breaker because another replica opened its twin, for what remains of that
   * replica's open time. Calls in flight here are left alone: only this replica's own signals
   * (memory, a runaway) abort them. Then half-open probes run here as for a local trip.
   */
  openFor(remainingMs: number, detail: string): void {
    if (this.state === 'open' || remainingMs <= 0) return;
    this.openedAt = this.now() - Math.max(0, this.rule.openMs - Math.min(remainingMs, this.rule.openMs));
    this.move('open', 'replica', detail);
  }

  private move(to: BreakerState, cause: Transition['cause'], detail?: string): void {
    const from = this.state;
    this.state = to;
    this.failures = 0;
    this.timeouts = 0;
    this.samples = [];
    this.probeSuccesses = 0;
    if (to !== 'halfOpen') this.probesInFlight = 0;
    this.emit({ breaker: this.name, target: this.target, from, to, cause, ...(detail === undefined ? {} : { detail }) });
  }
}

/**
 * How breakers of several replicas share their open state (src/cluster). A breaker opened here is
 * announced with its open time; one opened elsewhere opens its twin here for the time left.
 */
export interface BreakerSharing {
  opened(breaker: SharedBreaker, openMs: number, cause: string): void;
  listen(handler: (breaker: SharedBreaker, remainingMs: number, from: string) => void): void;
}

/** Which breaker: its instance key, and the rule name and target to create it where it does not exist yet. */
export interface SharedBreaker {
  key: string;
  name: string;
  target: string;
}

/** Every breaker, created on first use per rule and server or tool. */
export class Breakers {
  private readonly rules: Array<{ rule: BreakerRule; name: string }>;
  private readonly instances = new Map<string, Breaker>();
  /** Opened by other replicas, by key: applied when the breaker exists (or is created later). */
  private readonly remote = new Map<string, { until: number; from: string }>();

  constructor(
    rules: readonly BreakerRule[],
    private readonly emit: (transition: Transition) => void,
    private readonly now: () => number = Date.now,
    private readonly sharing?: BreakerSharing,
  ) {
    this.rules = rules.map((rule, index) => ({ rule, name: rule.name ?? `breakers[${index}]` }));
    sharing?.listen(({ key, name, target }, remainingMs, from) => {
      this.remote.set(key, { until: this.now() + remainingMs, from });
      let breaker = this.instances.get(key);
      // Created now, so that this replica's status, metrics and audit log show it open at once.
      const rule = this.rules.find((candidate) => candidate.name === name)?.rule;
      if (breaker === undefined && rule !== undefined) {
        breaker = new Breaker(name, target, rule, (transition) => this.transitioned(key, rule, transition), this.now);
        this.instances.set(key, breaker);
      }
      if (breaker !== undefined) this.applyRemote(key, breaker);
    });
  }

  get size(): number {
    return this.rules.length;
  }

  applicable(subject: CallSubject): Breaker[] {
    const found: Breaker[] = [];
    for (const { rule, name } of this.rules) {
      if (!selects(rule.match, subject)) continue;
      const target = rule.scope === 'server' ? subject.server : `${subject.server}.${subject.tool}`;
      const key = `${keyPart(name)}|${rule.scope === 'server' ? keyPart(subject.server) : `${keyPart(subject.server)}|${keyPart(subject.tool)}`}`;
      let breaker = this.instances.get(key);
      if (breaker === undefined) {
        breaker = new Breaker(name, target, rule, (transition) => this.transitioned(key, rule, transition), this.now);
        this.instances.set(key, breaker);
      }
      if (this.remote.size > 0) this.applyRemote(key, breaker);
      found.push(breaker);
    }
    return found;
  }

  private transitioned(key: string, rule: BreakerRule, transition: Transition): void {
    // A breaker opened on this replica's own evidence is announced; one opened by another is not echoed.
    if (transition.to === 'open' && transition.cause !== 'replica') this.sharing?.opened({ key, name: transition.breaker, target: transition.target }, rule.openMs, transition.cause);
    this.emit(transition);
  }

  private applyRemote(key: string, breaker: Breaker): void {
    const entry = this.remote.get(key);
    if (entry === undefined) return;
    this.remote.delete(key);
    breaker.openFor(entry.until - this.now(), `opened by replica ${entry.from}`);
  }

  /** The state of a breaker, for tests and status output. */
  state(name: string, target: string): BreakerState | undefined {
    for (const breaker of this.instances.values()) if (breaker.name === name && breaker.target === target) return breaker.state;
    return undefined;
  }
}
