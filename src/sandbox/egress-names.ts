// Small pieces of transparent egress kept apart from the broker's socket handling: the synthetic
// addresses granted names resolve to, the scope a refused destination would need, and the rate
// limit on refusal reports (a server looping over connect() must not flood the audit log).
import { isIP } from 'node:net';

/** 127.100.0.0/16: on the sandbox's loopback, never a real host; each address stands for one name. */
const SYNTHETIC_PREFIX = '127.100';
const MAX_NAMES = 4096;
/** Distinct refused destinations remembered at once; past that, new ones are suppressed uncounted. */
const MAX_TRACKED_REFUSALS = 10_000;

export class SyntheticAddresses {
  private readonly byName = new Map<string, string>();
  private readonly byAddress = new Map<string, string>();

  /** The address for `name`, allocated on first use; undefined once MAX_NAMES are taken. */
  addressOf(name: string): string | undefined {
    const known = this.byName.get(name);
    if (known !== undefined) return known;
    if (this.byName.size >= MAX_NAMES) return undefined;
    const index = this.byName.size + 1;
    const address = `${SYNTHETIC_PREFIX}.${index >> 8}.${index & 255}`;
    this.byName.set(name, address);
    this.byAddress.set(address, name);
    return address;
  }

  /** The name a synthetic address stands for (undefined: not one of ours). */
  nameOf(address: string): string | undefined {
    return this.byAddress.get(address);
  }
}

/** The scope an operator would add to allow this destination (port 0: a DNS lookup, any port). */
export function scopeThatWouldAllow(host: string, port: number): string {
  if (host === '?') return 'none (malformed request)';
  const target = isIP(host) === 6 ? `[${host}]` : host;
  return `write:network:${target}:${port === 0 ? 'PORT' : String(port)}`;
}

interface KeyState {
  lastReported: number;
  suppressed: number;
}

/**
 * Each refused destination is reported at most once per window; repeats are counted and the count
 * is carried by the next report of that destination. At most `perWindow` reports per window in
 * all: past that, refusals are counted, not reported, until the window rolls over.
 */
export class RefusalLimiter {
  private readonly keys = new Map<string, KeyState>();
  private windowStart = 0;
  private reportsInWindow = 0;

  constructor(
    private readonly windowMs = 10_000,
    private readonly perWindow = 20,
    private readonly now: () => number = Date.now,
  ) {}

  /** undefined: suppress this one; a number: report it, with that many suppressed since the last report. */
  admit(key: string): number | undefined {
    const now = this.now();
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.reportsInWindow = 0;
      for (const [name, state] of this.keys) if (state.suppressed === 0 && now - state.lastReported >= this.windowMs) this.keys.delete(name);
    }
    let state = this.keys.get(key);
    if (state === undefined) {
      if (this.keys.size >= MAX_TRACKED_REFUSALS) return undefined;
      state = { lastReported: -Infinity, suppressed: 0 };
      this.keys.set(key, state);
    }
    if (now - state.lastReported < this.windowMs || this.reportsInWindow >= this.perWindow) {
      state.suppressed += 1;
      return undefined;
    }
    const suppressed = state.suppressed;
    state.lastReported = now;
    state.suppressed = 0;
    this.reportsInWindow += 1;
    return suppressed;
  }
}
