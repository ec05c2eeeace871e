import { exchangeAuthorization, refreshAuthorization, startAuthorization } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { ServerAuthority } from './authority.js';
import type { PendingConsent, PendingConsents } from './consent.js';
import { UpstreamAuthorizationRequired } from './errors.js';
import type { CredentialEvents } from './events.js';
import type { CredentialVault, StoredTokens } from './vault.js';

/** A token this close to its expiry is refreshed before use, so it does not expire in flight. */
const REFRESH_MARGIN_MS = 30_000;

/**
 * Bastion as an OAuth 2.1 client of one remote MCP server, per agent: the authorization code
 * grant with PKCE (S256) for the user's consent, resource indicators (RFC 8707) on every
 * authorization and token request so tokens are bound to this server, refresh with rotation
 * (the vault keeps only the newest tokens), and no fallback: when there is no usable token
 * the caller gets the consent link, never another agent's or a shared token.
 */
export class OAuthUpstreamClient {
  /** Agents whose authorization lapsed (refresh failed), and why: the next calls keep saying so until consent. */
  private readonly lapsed = new Map<string, string>();

  constructor(
    private readonly authority: ServerAuthority,
    private readonly vault: CredentialVault,
    private readonly consents: PendingConsents,
    private readonly redirectUri: () => string,
    private readonly events: CredentialEvents,
  ) {}

  get server(): string {
    return this.authority.server;
  }

  /** A valid access token for this agent, refreshed if it is (nearly) expired; else the consent link as an error. */
  async accessToken(agent: string): Promise<string> {
    const stored = this.readTokens(agent);
    if (stored === undefined) throw await this.noTokens(agent);
    if (stored.expiresAt === undefined || stored.expiresAt - REFRESH_MARGIN_MS > Date.now()) return stored.accessToken;
    return this.refresh(agent, stored, 'expired');
  }

  /** The server refused `token` (401): refresh once; if that fails too, the user must consent again. */
  async rejected(agent: string, token: string): Promise<string> {
    const stored = this.readTokens(agent);
    if (stored === undefined) throw await this.noTokens(agent);
    // Another request may have refreshed meanwhile: use its token rather than refreshing again.
    if (stored.accessToken !== token) return stored.accessToken;
    return this.refresh(agent, stored, 'rejected');
  }

  /** Completes a consent from the callback: exchanges the code (with the PKCE verifier) and stores the tokens. */
  async completeConsent(consent: PendingConsent, code: string): Promise<void> {
    const { issuer, metadata, resource } = await this.authority.discover();
    const tokens = await exchangeAuthorization(issuer, {
      metadata,
      clientInformation: await this.authority.client(),
      authorizationCode: code,
      codeVerifier: consent.codeVerifier,
      redirectUri: this.redirectUri(),
      resource: new URL(resource),
    });
    await this.vault.saveTokens(consent.agent, this.server, toStored(tokens));
    this.lapsed.delete(consent.agent);
    this.events('credentials.consent', { agent: consent.agent, server: this.server, scopes: tokens.scope ?? null, expires_in: tokens.expires_in ?? null, refreshable: tokens.refresh_token !== undefined });
  }

  private noTokens(agent: string): Promise<UpstreamAuthorizationRequired> {
    const lapsed = this.lapsed.get(agent);
    return lapsed === undefined
      ? this.consentRequired(agent, 'consent_required', `server '${this.server}' needs your authorization before agent '${agent}' can use it`)
      : this.consentRequired(agent, 'refresh_failed', lapsed);
  }

  private readTokens(agent: string): StoredTokens | undefined {
    try {
      return this.vault.tokens(agent, this.server);
    } catch (error) {
      this.events('credentials.failure', { agent, server: this.server, stage: 'vault', error: (error as Error).message });
      throw new UpstreamAuthorizationRequired(this.server, (error as Error).message, 'vault_error');
    }
  }

  private async refresh(agent: string, stored: StoredTokens, why: 'expired' | 'rejected'): Promise<string> {
    if (stored.refreshToken === undefined) {
      await this.vault.revoke(agent, this.server);
      this.events('credentials.failure', { agent, server: this.server, stage: 'refresh', error: `the access token was ${why} and there is no refresh token` });
      throw await this.lapse(agent, `agent '${agent}''s authorization at server '${this.server}' has ${why === 'expired' ? 'expired' : 'been refused by the server'} and cannot be renewed`);
    }
    try {
      const { issuer, metadata, resource } = await this.authority.discover();
      const tokens = await refreshAuthorization(issuer, { metadata, clientInformation: await this.authority.client(), refreshToken: stored.refreshToken, resource: new URL(resource) });
      // Rotation: the new refresh token replaces the old one; a server that does not rotate keeps the old one valid.
      await this.vault.saveTokens(agent, this.server, toStored({ ...tokens, refresh_token: tokens.refresh_token ?? stored.refreshToken }));
      this.events('credentials.refresh', { agent, server: this.server, reason: why, rotated: tokens.refresh_token !== undefined, expires_in: tokens.expires_in ?? null });
      return tokens.access_token;
    } catch (error) {
      // The refresh token is dead (revoked, expired, reused): drop it, the user consents again.
      await this.vault.revoke(agent, this.server);
      this.events('credentials.failure', { agent, server: this.server, stage: 'refresh', error: (error as Error).message.slice(0, 300) });
      throw await this.lapse(agent, `agent '${agent}''s authorization at server '${this.server}' has ${why === 'expired' ? 'expired' : 'been refused by the server'} and could not be refreshed`);
    }
  }

  private lapse(agent: string, what: string): Promise<UpstreamAuthorizationRequired> {
    if (this.lapsed.size >= 10_000) this.lapsed.clear();
    this.lapsed.set(agent, what);
    return this.consentRequired(agent, 'refresh_failed', what);
  }

  /** The error for the client, with a consent link bound to this agent and server (one pending link at a time). */
  private async consentRequired(agent: string, reason: 'consent_required' | 'refresh_failed', what: string): Promise<UpstreamAuthorizationRequired> {
    let link: string;
    try {
      link = (this.consents.current(agent, this.server) ?? (await this.newConsent(agent))).authorizationUrl;
    } catch (error) {
      this.events('credentials.failure', { agent, server: this.server, stage: 'discovery', error: (error as Error).message.slice(0, 300) });
      return new UpstreamAuthorizationRequired(this.server, `${what}, and Bastion cannot prepare a consent link: ${(error as Error).message}`, 'discovery_failed');
    }
    return new UpstreamAuthorizationRequired(this.server, `${what}: open ${link} in a browser, sign in and approve, then retry the call`, reason, link);
  }

  private async newConsent(agent: string): Promise<PendingConsent> {
    const { issuer, metadata, resource } = await this.authority.discover();
    const state = this.consents.newState();
    const scopes = this.authority.auth.scopes;
    const { authorizationUrl, codeVerifier } = await startAuthorization(issuer, {
      metadata,
      clientInformation: await this.authority.client(),
      redirectUrl: this.redirectUri(),
      state,
      resource: new URL(resource),
      ...(scopes === undefined ? {} : { scope: scopes.join(' ') }),
    });
    this.events('credentials.consent_requested', { agent, server: this.server });
    return this.consents.add(state, { agent, server: this.server, codeVerifier, authorizationUrl: authorizationUrl.toString() });
  }
}

function toStored(tokens: OAuthTokens): StoredTokens {
  return {
    accessToken: tokens.access_token,
    ...(tokens.refresh_token === undefined ? {} : { refreshToken: tokens.refresh_token }),
    ...(tokens.expires_in === undefined ? {} : { expiresAt: Date.now() + tokens.expires_in * 1000 }),
    ...(tokens.scope === undefined ? {} : { scope: tokens.scope }),
  };
}
