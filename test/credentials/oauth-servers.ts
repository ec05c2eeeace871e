// The real parts for the upstream-identity tests, started in the test process:
// - oidc-provider (npm; a certified OpenID Provider) on 127.0.0.1 with dynamic client
//   registration, resource indicators (RFC 8707, JWT access tokens bound to the resource),
//   refresh tokens, revocation and its development login/consent pages. It has no RFC 8693
//   grant, so one is registered with its own registerGrantType API: the token endpoint, client
//   authentication and token minting are still the provider's.
// - a remote MCP server on the SDK's Streamable HTTP transport that publishes RFC 9728
//   protected-resource metadata, answers 401 with WWW-Authenticate, and accepts only JWTs from
//   that provider whose audience is itself (jose + the provider's JWKS).
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, exportJWK, generateKeyPair, jwtVerify, type JWK } from 'jose';
import Provider from 'oidc-provider';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

export const BASTION_AUDIENCE = 'https://bastion.test/mcp';
export const EXCHANGE_CLIENT = { id: 'bastion-exchange', secret: 'exchange-secret-0123456789abcdef' };
export const AGENT_APP = { id: 'carol-app', secret: 'carol-secret-0123456789abcdef' };
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

export interface AuthorizationServer {
  issuer: string;
  /** How many token exchanges the provider performed. */
  exchanges: number;
  /** Access tokens this long-lived (seconds). */
  close(): Promise<void>;
}

export async function startAuthorizationServer(): Promise<AuthorizationServer> {
  const http = createServer();
  const port = await listen(http);
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const privateJwk = { ...(await exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' } as JWK;
  const publicJwks = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: 'test-key', alg: 'RS256' }] });
  const resourceInfo = (resource: string): Record<string, unknown> => ({ scope: 'tools', audience: resource, accessTokenTTL: 300, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } });
  const provider = new Provider(issuer, {
    jwks: { keys: [privateJwk] },
    clients: [
      { client_id: EXCHANGE_CLIENT.id, client_secret: EXCHANGE_CLIENT.secret, grant_types: [TOKEN_EXCHANGE], response_types: [], redirect_uris: [] },
      { client_id: AGENT_APP.id, client_secret: AGENT_APP.secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'tools' },
    ],
    scopes: ['tools'],
    findAccount: (_ctx: unknown, id: string) => ({ accountId: id, claims: () => ({ sub: id }) }),
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      registration: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => resourceInfo(resource),
      },
    },
    issueRefreshToken: (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) => client.grantTypeAllowed('refresh_token'),
    ttl: { AccessToken: 300, Grant: 3600, Session: 3600, Interaction: 600, RefreshToken: 3600, ClientCredentials: 300 },
  } as unknown as ConstructorParameters<typeof Provider>[1]);
  const state: AuthorizationServer = { issuer, exchanges: 0, close: async () => {
    await new Promise<void>((resolve) => {
      http.close(() => resolve());
      http.closeAllConnections();
    });
  } };
  type GrantContext = { oidc: { params: Record<string, string | undefined>; client: unknown }; body: unknown; status: number };
  type OidcProvider = { AccessToken: new (init: Record<string, unknown>) => { resourceServer: unknown; save(): Promise<string>; expiration: number; scope?: string }; ResourceServer: new (id: string, info: Record<string, unknown>) => unknown };
  const oidc = provider as unknown as OidcProvider & { registerGrantType(name: string, handler: (ctx: GrantContext) => Promise<void>, params: string[]): void };
  oidc.registerGrantType(TOKEN_EXCHANGE, async (ctx) => {
    const { params, client } = ctx.oidc;
    const refuse = (description: string): void => {
      ctx.status = 400;
      ctx.body = { error: 'invalid_grant', error_description: description };
    };
    if (params['subject_token_type'] !== 'urn:ietf:params:oauth:token-type:access_token' || params['subject_token'] === undefined || params['resource'] === undefined) return refuse('subject_token, its type and resource are required');
    let subject: string;
    try {
      // The subject token must be an access token this provider issued for Bastion.
      const { payload } = await jwtVerify(params['subject_token'], publicJwks, { issuer, audience: BASTION_AUDIENCE });
      subject = String(payload.sub);
    } catch (error) {
      return refuse(`subject token refused: ${(error as Error).message}`);
    }
    const token = new oidc.AccessToken({ accountId: subject, client, scope: 'tools', grantId: randomUUID(), gty: 'token_exchange' });
    token.resourceServer = new oidc.ResourceServer(params['resource'], resourceInfo(params['resource']));
    const value = await token.save();
    state.exchanges += 1;
    ctx.body = { access_token: value, issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: token.expiration, scope: token.scope };
  }, ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'resource', 'scope']);
  http.on('request', provider.callback());
  return state;
}

export interface RemoteMcpServer {
  url: string;
  /** Every subject that made an authenticated MCP request, in order. */
  subjects: string[];
  /** Every bearer token presented, valid or not. */
  presented: string[];
  close(): Promise<void>;
}

/** A remote MCP server at `/<path>` that trusts only tokens for itself from `issuer`. */
export async function startRemoteMcpServer(issuer: string, paths: string[]): Promise<Record<string, RemoteMcpServer>> {
  const http = createServer();
  const port = await listen(http);
  const origin = `http://127.0.0.1:${port}`;
  const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const servers: Record<string, RemoteMcpServer> = {};
  for (const path of paths) {
    servers[path] = { url: `${origin}/${path}`, subjects: [], presented: [], close: async () => {
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
    } };
  }
  const newServer = (): McpServer => {
    const server = new McpServer({ name: 'oauth-remote', version: '1.0.0' });
    server.registerTool('whoami', { description: 'The subject of the access token of this call', inputSchema: {} }, async (_args, extra) => {
      const header = String(extra.requestInfo?.headers['authorization'] ?? '');
      return { content: [{ type: 'text', text: String(decodeJwt(header.replace(/^Bearer /, '')).sub) }] };
    });
    return server;
  };
  http.on('request', (req: IncomingMessage, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', origin);
      const metadataFor = paths.find((path) => url.pathname === `/.well-known/oauth-protected-resource/${path}`);
      if (metadataFor !== undefined) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ resource: `${origin}/${metadataFor}`, authorization_servers: [issuer], scopes_supported: ['tools'], bearer_methods_supported: ['header'] }));
        return;
      }
      const path = paths.find((candidate) => url.pathname === `/${candidate}`);
      const remote = path === undefined ? undefined : servers[path];
      if (path === undefined || remote === undefined) {
        res.writeHead(404).end();
        return;
      }
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (token !== undefined) remote.presented.push(token);
      try {
        if (token === undefined) throw new Error('no token');
        const { payload } = await jwtVerify(token, jwks, { issuer, audience: remote.url });
        remote.subjects.push(String(payload.sub));
      } catch (error) {
        res.writeHead(401, { 'www-authenticate': `Bearer error="invalid_token", error_description="${(error as Error).message.replace(/"/g, "'")}", resource_metadata="${origin}/.well-known/oauth-protected-resource/${path}"` });
        res.end();
        return;
      }
      const body = chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown) : undefined;
      const sessionId = req.headers['mcp-session-id'];
      let transport = typeof sessionId === 'string' ? transports.get(sessionId) : undefined;
      if (transport === undefined) {
        const created = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (id) => {
          transports.set(id, created);
        } });
        transport = created;
        await newServer().connect(created);
      }
      await transport.handleRequest(req, res, body);
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  return servers;
}
