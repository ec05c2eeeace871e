import { discoverAuthorizationServerMetadata, discoverOAuthServerInfo, extractResourceMetadataUrl, registerClient } from '@modelcontextprotocol/sdk/client/auth.js';
import type { AuthorizationServerMetadata, OAuthClientInformationMixed } from '@modelcontextprotocol/sdk/shared/auth.js';
import { resolveValue, type UpstreamAuthConfig } from '../config/index.js';
import type { CredentialVault } from './vault.js';

/** What discovery found for one remote server. */
export interface DiscoveredAuthority {
  /** The authorization server's issuer URL. */
  issuer: string;
  metadata: AuthorizationServerMetadata;
  /** The resource indicator (RFC 8707) tokens for this server are bound to. */
  resource: string;
}

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

/**
 * One remote server's authorization setup: where its authorization server is (RFC 9728
 * protected-resource metadata, found from the server's 401 or its well-known URL, then RFC 8414
 * or OIDC discovery), and the client Bastion is there (pre-registered, or registered once
 * with RFC 7591 and kept in the vault).
 */
export class ServerAuthority {
  private discovered: Promise<DiscoveredAuthority> | undefined;
  private registering: Promise<OAuthClientInformationMixed> | undefined;

  constructor(
    readonly server: string,
    readonly url: string,
    readonly auth: UpstreamAuthConfig,
    private readonly vault: CredentialVault,
    private readonly baseDir: string,
    private readonly redirectUri: () => string,
  ) {}

  /** Cached once it succeeds; a failure is retried on the next use. */
  discover(): Promise<DiscoveredAuthority> {
    this.discovered ??= this.runDiscovery().catch((error: unknown) => {
      this.discovered = undefined;
      throw error;
    });
    return this.discovered;
  }

  /** Forgets discovery (the server's 401 named other metadata): found again on next use. */
  rediscover(): void {
    this.discovered = undefined;
  }

  client(): Promise<OAuthClientInformationMixed> {
    if (this.auth.clientId !== undefined) {
      const secret = this.auth.clientSecret === undefined ? undefined : resolveValue(this.auth.clientSecret, `servers.${this.server}.auth.clientSecret`, this.baseDir);
      return Promise.resolve({ client_id: this.auth.clientId, ...(secret === undefined ? {} : { client_secret: secret }) });
    }
    this.registering ??= this.registeredClient().finally(() => {
      this.registering = undefined;
    });
    return this.registering;
  }

  private async registeredClient(): Promise<OAuthClientInformationMixed> {
    const { issuer, metadata } = await this.discover();
    const redirectUri = this.redirectUri();
    const stored = this.vault.client(this.server);
    if (stored !== undefined && stored.issuer === issuer && stored.redirectUri === redirectUri) {
      return { client_id: stored.clientId, ...(stored.clientSecret === undefined ? {} : { client_secret: stored.clientSecret }) };
    }
    if (metadata.registration_endpoint === undefined) {
      throw new Error(`the authorization server ${issuer} of server '${this.server}' offers no dynamic client registration: register Bastion there and set servers.${this.server}.auth.clientId (and clientSecret)`);
    }
    const exchange = this.auth.type === 'token-exchange';
    const registered = await registerClient(issuer, {
      metadata,
      clientMetadata: {
        client_name: 'Bastion MCP gateway',
        redirect_uris: exchange ? [] : [redirectUri],
        grant_types: exchange ? [TOKEN_EXCHANGE_GRANT] : ['authorization_code', 'refresh_token'],
        response_types: exchange ? [] : ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        ...(this.auth.scopes === undefined ? {} : { scope: this.auth.scopes.join(' ') }),
      },
    });
    await this.vault.saveClient(this.server, { clientId: registered.client_id, ...(registered.client_secret === undefined ? {} : { clientSecret: registered.client_secret }), redirectUri, issuer });
    return registered;
  }

  private async runDiscovery(): Promise<DiscoveredAuthority> {
    // An unauthenticated request shows where the server's metadata is (WWW-Authenticate
    // resource_metadata, RFC 9728 section 5.1); without it the well-known URL is tried.
    const resourceMetadataUrl = await probeResourceMetadataUrl(this.url);
    const info = await discoverOAuthServerInfo(this.url, resourceMetadataUrl === undefined ? {} : { resourceMetadataUrl });
    const issuer = this.auth.authorizationServer ?? info.authorizationServerUrl;
    const metadata = this.auth.authorizationServer === undefined ? info.authorizationServerMetadata : await discoverAuthorizationServerMetadata(issuer);
    if (metadata === undefined) throw new Error(`server '${this.server}': no authorization server metadata at ${issuer} (RFC 8414 or OpenID discovery)`);
    const resource = info.resourceMetadata?.resource ?? this.url;
    checkResource(this.server, this.url, resource);
    // The MCP authorization spec: a client must refuse an authorization server that does not advertise PKCE S256.
    if (this.auth.type === 'oauth' && !(metadata.code_challenge_methods_supported ?? []).includes('S256')) {
      throw new Error(`server '${this.server}': the authorization server ${issuer} does not advertise PKCE S256 (code_challenge_methods_supported); refusing to use it`);
    }
    for (const endpoint of [metadata.token_endpoint, metadata.authorization_endpoint, metadata.registration_endpoint]) {
      if (!isSecureUrl(endpoint)) throw new Error(`server '${this.server}': the authorization server endpoint ${endpoint} is not https (plain http only on loopback)`);
    }
    return { issuer, metadata, resource };
  }
}

/**
 * RFC 9728 section 3.3: the metadata's `resource` must be the server it was fetched for,
 * otherwise a server could have tokens minted for another audience.
 */
function checkResource(server: string, url: string, resource: string): void {
  const target = new URL(url);
  let declared: URL;
  try {
    declared = new URL(resource);
  } catch {
    throw new Error(`server '${server}': its protected-resource metadata names an invalid resource ${JSON.stringify(resource)}`);
  }
  const path = declared.pathname.endsWith('/') ? declared.pathname : `${declared.pathname}/`;
  const matches = declared.origin === target.origin && (target.pathname === declared.pathname || `${target.pathname}/`.startsWith(path));
  if (!matches) throw new Error(`server '${server}': its protected-resource metadata is for ${resource}, not ${url}; refusing to ask for tokens for another resource`);
}

async function probeResourceMetadataUrl(url: string): Promise<URL | undefined> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'bastion-auth-probe', method: 'ping' }),
      redirect: 'error',
      signal: AbortSignal.timeout(10_000),
    });
    await response.body?.cancel();
    return response.status === 401 ? extractResourceMetadataUrl(response) : undefined;
  } catch {
    return undefined;
  }
}

export function isSecureUrl(value: string | undefined): boolean {
  if (value === undefined) return true;
  const url = new URL(value);
  return url.protocol === 'https:' || ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}
