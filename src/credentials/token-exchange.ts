import type { ServerAuthority } from './authority.js';
import { TOKEN_EXCHANGE_GRANT } from './authority.js';
import { UpstreamAuthorizationRequired } from './errors.js';
import type { CredentialEvents } from './events.js';
import { tokenFingerprint } from '../auth/tokens.js';

const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** An exchanged token this close to expiry is exchanged again before use. */
const RENEW_MARGIN_MS = 30_000;
/** Bounds the cache: entries past expiry are dropped first, then the oldest. */
const MAX_CACHED = 10_000;

interface CachedToken {
  token: string;
  expiresAt: number;
  /** Which client token it was exchanged for: a new sign-in gets a new exchange. */
  subject: string;
}

/**
 * RFC 8693 token exchange for one remote server: the client's own token (the subject token)
 * is exchanged at the authorization server for a token whose audience is this server (resource
 * and audience parameters), cached in memory per agent until shortly before it expires. The
 * client's token is sent only to the authorization server, never to the upstream.
 */
export class TokenExchangeClient {
  private readonly cache = new Map<string, CachedToken>();

  constructor(
    private readonly authority: ServerAuthority,
    private readonly events: CredentialEvents,
  ) {}

  get server(): string {
    return this.authority.server;
  }

  async accessToken(agent: string, subjectToken: string | undefined): Promise<string> {
    if (subjectToken === undefined) {
      throw new UpstreamAuthorizationRequired(this.server, `server '${this.server}' takes the identity of an OAuth-signed-in agent (token exchange); agent '${agent}' did not sign in with OAuth: connect to Bastion with an OAuth access token`, 'no_subject_token');
    }
    const subject = tokenFingerprint(subjectToken);
    const cached = this.cache.get(agent);
    if (cached !== undefined && cached.subject === subject && cached.expiresAt - RENEW_MARGIN_MS > Date.now()) return cached.token;
    return this.exchange(agent, subjectToken, subject);
  }

  /** The server refused the exchanged token: drop it and exchange once more. */
  async rejected(agent: string, token: string, subjectToken: string | undefined): Promise<string> {
    if (this.cache.get(agent)?.token === token) this.cache.delete(agent);
    return this.accessToken(agent, subjectToken);
  }

  private async exchange(agent: string, subjectToken: string, subject: string): Promise<string> {
    try {
      const { metadata, resource } = await this.authority.discover();
      const client = await this.authority.client();
      const body = new URLSearchParams({ grant_type: TOKEN_EXCHANGE_GRANT, subject_token: subjectToken, subject_token_type: ACCESS_TOKEN_TYPE, requested_token_type: ACCESS_TOKEN_TYPE, resource, audience: this.authority.auth.audience ?? resource });
      if (this.authority.auth.scopes !== undefined) body.set('scope', this.authority.auth.scopes.join(' '));
      const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
      if (client.client_secret === undefined) body.set('client_id', client.client_id);
      else headers['authorization'] = `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`).toString('base64')}`;
      const response = await fetch(metadata.token_endpoint, { method: 'POST', headers, body, redirect: 'error', signal: AbortSignal.timeout(15_000) });
      const answer = (await response.json().catch(() => ({}))) as Record<string, unknown>;
      if (!response.ok || typeof answer['access_token'] !== 'string') {
        const reason = typeof answer['error'] === 'string' ? `${answer['error']}${typeof answer['error_description'] === 'string' ? `: ${answer['error_description']}` : ''}` : `HTTP ${response.status}`;
        throw new Error(`the authorization server refused the exchange (${reason.slice(0, 200)})`);
      }
      const expiresIn = typeof answer['expires_in'] === 'number' ? answer['expires_in'] : 300;
      this.remember(agent, { token: answer['access_token'], expiresAt: Date.now() + expiresIn * 1000, subject });
      this.events('credentials.exchange', { agent, server: this.server, expires_in: expiresIn, scopes: typeof answer['scope'] === 'string' ? answer['scope'] : null });
      return answer['access_token'];
    } catch (error) {
      this.events('credentials.failure', { agent, server: this.server, stage: 'exchange', error: (error as Error).message.slice(0, 300) });
      throw new UpstreamAuthorizationRequired(this.server, `server '${this.server}': exchanging agent '${agent}''s token failed (${(error as Error).message}); sign in to Bastion again with a fresh OAuth token, then retry`, 'exchange_failed');
    }
  }

  private remember(agent: string, entry: CachedToken): void {
    const now = Date.now();
    if (this.cache.size >= MAX_CACHED) {
      for (const [key, value] of this.cache) if (value.expiresAt <= now) this.cache.delete(key);
      if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value as string);
    }
    this.cache.delete(agent);
    this.cache.set(agent, entry);
  }
}
