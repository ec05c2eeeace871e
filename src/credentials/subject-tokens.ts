import type { Identity } from '../pipeline/index.js';

/**
 * The bearer token an OAuth-authenticated client presented, kept beside its identity in memory
 * only (never on the Identity itself, which goes to logs and audit records), for RFC 8693 token
 * exchange. It is never forwarded upstream: only exchanged at the authorization server.
 */
const tokens = new WeakMap<Identity, string>();

export function rememberSubjectToken(identity: Identity, token: string): void {
  tokens.set(identity, token);
}

export function subjectTokenOf(identity: Identity | undefined): string | undefined {
  return identity === undefined ? undefined : tokens.get(identity);
}
