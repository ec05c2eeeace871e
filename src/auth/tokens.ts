import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiTokenConfig } from '../config/index.js';
import type { Identity } from '../pipeline/index.js';

/** Hex SHA-256 of a token: what the config stores instead of the token. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A short, non-reversible name for a credential, safe to log. */
export function tokenFingerprint(token: string): string {
  return `sha256:${hashToken(token).slice(0, 16)}`;
}

/**
 * Checks static API tokens. Every configured hash is compared, in constant time, whatever
 * matches first, so response timing says nothing about which token or how much of it matched.
 */
export class ApiTokenVerifier {
  private readonly entries: Array<{ agent: string; digest: Buffer }>;

  constructor(tokens: readonly ApiTokenConfig[]) {
    this.entries = tokens.map((token) => ({ agent: token.agent, digest: Buffer.from(token.sha256, 'hex') }));
  }

  get size(): number {
    return this.entries.length;
  }

  verify(token: string): Identity | undefined {
    const presented = createHash('sha256').update(token, 'utf8').digest();
    let agent: string | undefined;
    for (const entry of this.entries) {
      if (timingSafeEqual(presented, entry.digest) && agent === undefined) agent = entry.agent;
    }
    if (agent === undefined) return undefined;
    return { agentId: agent, tokenFingerprint: `sha256:${presented.toString('hex').slice(0, 16)}`, method: 'api-token' };
  }
}
