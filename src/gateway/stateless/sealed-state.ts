// The requestState a client holds between the rounds of an input_required request: sealed with
// AES-256-GCM under a key every replica shares, so any replica can open it, and nobody else can
// read or forge one. It is bound to the agent it was issued to, to the request (method, name and
// a digest of its arguments), and to a deadline; it names the replica and the local handle of the
// held upstream call, and the input requests it answers, so a replica that does not hold the call
// can re-issue it (docs/protocol.md, "Replicas"). Single use is enforced by a ledger: in memory for
// one gateway, Redis SET NX across replicas.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const VERSION = 'bs1';
const AAD = Buffer.from('bastion requestState v1');
const IV_BYTES = 12;
const TAG_BYTES = 16;
/**
 * A requestState carries the client's earlier answers (a sampling result can be long); the
 * request size cap of the listener bounds it first, this bounds the work of opening one.
 */
const MAX_TOKEN_CHARS = 1_048_576;

export interface SealedState {
  /** The replica holding the upstream call, and its handle there. */
  replica: string;
  handle: string;
  agentId: string;
  /** Epoch milliseconds after which the state is refused. */
  deadline: number;
  method: string;
  name?: string;
  /** sha256 of the request's arguments (canonical JSON, without envelope and _meta). */
  digest: string;
  /** The input requests the state answers: [key, method] in the order the upstream sent them. */
  asked: Array<[string, string]>;
  /** The answers of the earlier rounds, [method, answer] in order: a replica re-issuing the call replays them. */
  answered: Array<[string, unknown]>;
}

/** Canonical JSON (sorted keys), so a retry with the same arguments in another key order digests the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') return `{${Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`).join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

/** The digest a state binds: the arguments the stateful machinery sees, without `_meta` (progress tokens change per round). */
export function requestDigest(params: Record<string, unknown> | undefined): string {
  const rest = { ...(params ?? {}) };
  delete rest['_meta'];
  return createHash('sha256').update(canonicalJson(rest)).digest('base64url');
}

export class StateSealer {
  private readonly key: Buffer;

  /** `key`: 32 bytes shared by the replicas; without one a random key (this process only). */
  constructor(key?: Buffer) {
    if (key !== undefined && key.length !== 32) throw new Error('the requestState seal key must be 32 bytes (64 hex digits)');
    this.key = key ?? randomBytes(32);
  }

  seal(state: SealedState): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(AAD);
    const body = Buffer.concat([cipher.update(JSON.stringify(state), 'utf8'), cipher.final()]);
    return `${VERSION}.${Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url')}`;
  }

  /** The state inside a token, or undefined for anything not sealed by this key (forged, altered, truncated). */
  open(token: unknown): SealedState | undefined {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS || !token.startsWith(`${VERSION}.`)) return undefined;
    const raw = Buffer.from(token.slice(VERSION.length + 1), 'base64url');
    if (raw.length < IV_BYTES + TAG_BYTES + 2) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES));
      decipher.setAAD(AAD);
      decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
      const text = Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString('utf8');
      return shaped(JSON.parse(text) as unknown);
    } catch {
      return undefined;
    }
  }
}

function shaped(value: unknown): SealedState | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const state = value as Partial<SealedState>;
  const strings = [state.replica, state.handle, state.agentId, state.method, state.digest].every((item) => typeof item === 'string');
  if (!strings || typeof state.deadline !== 'number' || !Array.isArray(state.asked) || !Array.isArray(state.answered)) return undefined;
  if (!state.answered.every((pair) => Array.isArray(pair) && pair.length === 2 && typeof pair[0] === 'string')) return undefined;
  if (state.name !== undefined && typeof state.name !== 'string') return undefined;
  if (!state.asked.every((pair) => Array.isArray(pair) && pair.length === 2 && typeof pair[0] === 'string' && typeof pair[1] === 'string')) return undefined;
  return state as SealedState;
}

/** Where spent requestStates are remembered until their deadline. */
export interface SpentLedger {
  /** true the first time a token is spent; false when it was spent before. Throws when it cannot tell (fail closed). */
  spend(token: string, ttlMs: number): Promise<boolean>;
  /** Tells the replica holding a call that another replica took it over (it cancels its copy). */
  takenOver(replica: string, handle: string): void;
  /** Called with the handles of this replica's calls that another replica took over. */
  onTakenOver(handler: (handle: string) => void): void;
}

export const tokenDigest = (token: string): string => createHash('sha256').update(token).digest('base64url');

/** One gateway: spent tokens in memory, until their deadline. */
export class MemorySpentLedger implements SpentLedger {
  private readonly spent = new Map<string, number>();

  spend(token: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    for (const [digest, until] of this.spent) if (until <= now) this.spent.delete(digest);
    const digest = tokenDigest(token);
    if (this.spent.has(digest)) return Promise.resolve(false);
    this.spent.set(digest, now + Math.max(1, ttlMs));
    return Promise.resolve(true);
  }

  takenOver(): void {}

  onTakenOver(): void {}
}
