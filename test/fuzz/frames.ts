// Frame generator for the protocol fuzzer: a seeded PRNG (mulberry32, so a failure replays from
// its seed) and frames of every shape a client can send: valid requests, random JSON, malformed
// JSON, wrong types, huge and deep values, batches, odd ids, unknown methods, notifications.

export interface Frame {
  /** The bytes to send (one line over stdio, one body over HTTP); no newline inside. */
  text: string;
  /** The id an answer must carry, when the frame is a request the gateway must answer. */
  expectId?: string | number;
}

export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The largest string argument. 200 KB arguments work but cost about a second of event-loop time
 * each on this loaded 2-core machine, so only one in ten large-argument frames is that big
 * (the others stay under 2 KB); FUZZ_HUGE_BYTES changes the big size.
 */
const HUGE_TEXT_BYTES = Number(process.env['FUZZ_HUGE_BYTES'] ?? 200_000);

/** The deepest nesting sent (FUZZ_DEEP_LEVELS raises it). */
const DEEP_LEVELS = Number(process.env['FUZZ_DEEP_LEVELS'] ?? 3000);

const METHODS = ['ping', 'tools/list', 'tools/call', 'prompts/list', 'resources/list', 'resources/read', 'resources/templates/list', 'completion/complete', 'logging/setLevel', 'initialize', 'no/such/method', 'tools/explode', '', 'rpc.discover'];
const NOTIFICATIONS = ['notifications/initialized', 'notifications/roots/list_changed', 'notifications/progress', 'notifications/whatever', 'notifications/cancelled'];

export class FrameGenerator {
  private readonly random: () => number;
  private counter = 0;

  constructor(seed: number) {
    this.random = prng(seed);
  }

  private int(max: number): number {
    return Math.floor(this.random() * max);
  }

  private pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  private string(max: number): string {
    const alphabet = 'abcxyz019 ."\\\u0000\u00e9\u2028\ud83d\ude00{}[]:,';
    let out = '';
    const length = this.int(max);
    for (let i = 0; i < length; i += 1) out += alphabet[this.int(alphabet.length)];
    return out;
  }

  /** A random JSON value, `depth` levels at most. */
  value(depth: number): unknown {
    const kind = this.int(depth <= 0 ? 5 : 8);
    switch (kind) {
      case 0: return null;
      case 1: return this.random() < 0.5;
      case 2: return this.pick([0, -1, 1.5, 1e308, -1e-308, 2 ** 53 + 1, this.int(1e9)]);
      case 3: return this.string(20);
      case 4: return '';
      case 5: return Array.from({ length: this.int(5) }, () => this.value(depth - 1));
      default: return Object.fromEntries(Array.from({ length: this.int(5) }, () => [this.string(8), this.value(depth - 1)]));
    }
  }

  /** A fresh id of an odd but valid kind; unique per frame so answers can be matched. */
  private id(): string | number {
    this.counter += 1;
    switch (this.int(5)) {
      case 0: return this.counter;
      case 1: return -this.counter;
      case 2: return `s-${this.counter}`;
      case 3: return `${this.string(6)}#${this.counter}`;
      default: return this.counter + 0.5;
    }
  }

  private deep(levels: number): string {
    return '['.repeat(levels) + ']'.repeat(levels);
  }

  next(): Frame {
    const roll = this.int(20);
    if (roll < 7) {
      // A well-formed request with odd params: it must be answered with its id.
      const id = this.id();
      const method = this.pick(METHODS);
      const params = method === 'tools/call'
        ? { name: this.pick(['paced.echo', 'paced.nope', 'nope', '', 'paced.']), arguments: this.random() < 0.7 ? { text: this.string(40) } : this.value(3) }
        : this.random() < 0.5 ? undefined : (this.value(3) as Record<string, unknown>);
      const message: Record<string, unknown> = { jsonrpc: '2.0', id, method };
      if (params !== undefined && params !== null && typeof params === 'object' && !Array.isArray(params)) message['params'] = params;
      return { text: JSON.stringify(message), expectId: id };
    }
    switch (roll) {
      case 7: return { text: JSON.stringify(this.value(4)) };
      case 8: return { text: JSON.stringify({ jsonrpc: '2.0', id: this.id(), method: this.pick(METHODS) }).slice(0, 1 + this.int(30)) };
      case 9: return { text: JSON.stringify({ jsonrpc: this.pick(['1.0', 2, null]), id: this.pick([null, {}, [], true]), method: this.pick([1, null, 'ping']) }) };
      case 10: {
        const id = this.id();
        return { text: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'paced.echo', arguments: { text: 'x'.repeat(this.int(this.random() < 0.1 ? HUGE_TEXT_BYTES : 2000)) } } }), expectId: id };
      }
      case 11: {
        const id = this.id();
        return { text: `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"method":"tools/call","params":{"name":"paced.echo","arguments":{"text":"deep","extra":${this.deep(1 + this.int(this.random() < 0.1 ? DEEP_LEVELS : 50))}}}}`, expectId: id };
      }
      case 12: return { text: JSON.stringify(Array.from({ length: 1 + this.int(4) }, () => ({ jsonrpc: '2.0', id: this.id(), method: 'ping' }))) };
      case 13: return { text: JSON.stringify({ jsonrpc: '2.0', method: this.pick(NOTIFICATIONS), params: this.random() < 0.5 ? { requestId: `never-used-${this.counter}`, progressToken: this.string(5) } : { x: this.value(2) } }) };
      case 14: return { text: JSON.stringify({ jsonrpc: '2.0', id: `resp-${this.id()}`, result: this.value(2) }) };
      case 15: return { text: this.string(60).replace(/\n/g, ' ') };
      case 16: {
        const id = this.id();
        return { text: JSON.stringify({ jsonrpc: '2.0', id, method: 'ping', params: { _meta: { progressToken: this.value(1) } } }), expectId: id };
      }
      case 17: return { text: '{"jsonrpc":"2.0","id":1,"id":2,"method":"ping","method":5}' };
      case 18: return { text: `{"jsonrpc":"2.0","id":9007199254740${993 + this.int(1000)}${'0'.repeat(this.int(3))},"method":"ping"}` };
      default: {
        const id = this.id();
        return { text: JSON.stringify({ jsonrpc: '2.0', id, method: this.pick(METHODS), params: { cursor: this.value(1), uri: this.string(30), name: this.string(10) } }), expectId: id };
      }
    }
  }
}
