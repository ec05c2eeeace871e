import type { ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import { resolveValue, type BastionConfig } from '../config/index.js';
import type { Identity } from '../pipeline/index.js';
import { ServerAuthority } from './authority.js';
import { renderCallbackPage } from './callback-page.js';
import { PendingConsents } from './consent.js';
import type { CredentialEvents } from './events.js';
import { OAuthUpstreamClient } from './oauth-client.js';
import { subjectTokenOf } from './subject-tokens.js';
import { TokenExchangeClient } from './token-exchange.js';
import { UpstreamAuthorizationRequired } from './errors.js';
import { CredentialVault, parseVaultKey } from './vault.js';

/** Where the authorization server sends the user back after consent (on the MCP HTTP listener). */
export const CALLBACK_PATH = '/oauth/callback';

/** The bearer token one upstream connection sends: one agent's, for one server. */
export interface UpstreamBearer {
  /** A usable token, or UpstreamAuthorizationRequired (with the consent link when there is one). */
  token(): Promise<string>;
  /** The server answered 401 to `token`: a renewed token, or UpstreamAuthorizationRequired. */
  rejected(token: string): Promise<string>;
}

/** Opens the vault the config names; a missing or malformed key is an error (fail closed). */
export function openVault(config: BastionConfig, baseDir: string): CredentialVault {
  const section = config.credentials;
  if (section === undefined) throw new Error('the config has no credentials: section (credentials: { key: { fromEnv: BASTION_VAULT_KEY } })');
  const key = parseVaultKey(resolveValue(section.key, 'credentials.key', baseDir), 'credentials.key');
  return new CredentialVault(resolve(baseDir, config.stateDir, section.file ?? 'credentials/vault.json'), key);
}

/**
 * Per-agent identity toward remote servers that have `auth`: OAuth with the user's consent,
 * or token exchange. Picks the token by the agent of the session (the identity that
 * initialized it), so an upstream connection for agent A only ever carries A's token.
 */
export class UpstreamCredentials {
  readonly vault: CredentialVault;
  private readonly consents: PendingConsents;
  private readonly oauth = new Map<string, OAuthUpstreamClient>();
  private readonly exchange = new Map<string, TokenExchangeClient>();
  private callbackUrl: string | undefined;
  private readonly authorizedListeners = new Set<(agent: string, server: string) => void>();

  constructor(config: BastionConfig, baseDir: string, private readonly events: CredentialEvents) {
    this.vault = openVault(config, baseDir);
    this.callbackUrl = config.credentials?.callbackUrl;
    this.consents = new PendingConsents((config.credentials?.consentTtlSeconds ?? 600) * 1000);
    const redirectUri = (): string => {
      if (this.callbackUrl === undefined) throw new Error('no consent callback URL yet: set credentials.callbackUrl or run the HTTP listener');
      return this.callbackUrl;
    };
    for (const [name, server] of Object.entries(config.servers)) {
      if (server.transport !== 'http' || server.auth === undefined) continue;
      const authority = new ServerAuthority(name, server.url, server.auth, this.vault, baseDir, redirectUri);
      if (server.auth.type === 'oauth') this.oauth.set(name, new OAuthUpstreamClient(authority, this.vault, this.consents, redirectUri, events));
      else this.exchange.set(name, new TokenExchangeClient(authority, events));
    }
  }

  /** True when some server needs per-agent credentials (the gateway then mounts the callback). */
  static needed(config: BastionConfig): boolean {
    return Object.values(config.servers).some((server) => server.transport === 'http' && server.auth !== undefined);
  }

  /** The HTTP listener is up: unless configured, the callback is on it. */
  listenerStarted(publicUrl: string): void {
    this.callbackUrl ??= new URL(CALLBACK_PATH, publicUrl).toString();
  }

  /** Called after a consent completes, so that the agent's waiting upstream connects at once. */
  onAuthorized(listener: (agent: string, server: string) => void): () => void {
    this.authorizedListeners.add(listener);
    return () => this.authorizedListeners.delete(listener);
  }

  /**
   * The bearer for `server` on a session of `identity`; undefined when the server has no
   * `auth`. `clientCapabilities` (from initialize) decide whether a consent link goes to the
   * client as a URL-mode elicitation.
   */
  bearer(server: string, identity: Identity | undefined, clientCapabilities: Record<string, unknown> = {}): UpstreamBearer | undefined {
    const agent = identity?.agentId ?? '';
    const elicitation = clientCapabilities['elicitation'];
    const urlElicitation = typeof elicitation === 'object' && elicitation !== null && 'url' in elicitation;
    const forClient = (error: unknown): never => {
      throw error instanceof UpstreamAuthorizationRequired ? error.forClient(urlElicitation) : error;
    };
    const oauth = this.oauth.get(server);
    if (oauth !== undefined) return { token: () => oauth.accessToken(agent).catch(forClient), rejected: (token) => oauth.rejected(agent, token).catch(forClient) };
    const exchange = this.exchange.get(server);
    if (exchange !== undefined) {
      return { token: () => exchange.accessToken(agent, subjectTokenOf(identity)).catch(forClient), rejected: (token) => exchange.rejected(agent, token, subjectTokenOf(identity)).catch(forClient) };
    }
    return undefined;
  }

  /** GET /oauth/callback?code=...&state=... from the user's browser, after consent at the authorization server. */
  async handleCallback(url: URL, response: ServerResponse): Promise<void> {
    const state = url.searchParams.get('state') ?? '';
    const consent = this.consents.take(state);
    if (consent === undefined) {
      this.events('credentials.failure', { agent: null, server: null, stage: 'callback', error: 'unknown, used or expired state' });
      return renderCallbackPage(response, 400, 'This consent link is unknown, already used or expired. Retry the call in your MCP client to get a fresh link.');
    }
    const client = this.oauth.get(consent.server);
    const error = url.searchParams.get('error');
    const code = url.searchParams.get('code');
    if (client === undefined || error !== null || code === null) {
      const why = error === null ? 'no authorization code' : `${error}${url.searchParams.has('error_description') ? `: ${url.searchParams.get('error_description') ?? ''}` : ''}`;
      this.events('credentials.failure', { agent: consent.agent, server: consent.server, stage: 'consent', error: why.slice(0, 300) });
      return renderCallbackPage(response, 400, `Authorization for server '${consent.server}' was not given (${why}). Retry the call to get a new link.`);
    }
    try {
      await client.completeConsent(consent, code);
    } catch (failure) {
      this.events('credentials.failure', { agent: consent.agent, server: consent.server, stage: 'code_exchange', error: (failure as Error).message.slice(0, 300) });
      return renderCallbackPage(response, 502, `Bastion could not complete the authorization for server '${consent.server}' (${(failure as Error).message}). Retry the call to get a new link.`);
    }
    for (const listener of this.authorizedListeners) listener(consent.agent, consent.server);
    return renderCallbackPage(response, 200, `Agent '${consent.agent}' is now authorized at server '${consent.server}'. You can close this page and retry the call.`);
  }
}
