import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError, UrlElicitationRequiredError } from '@modelcontextprotocol/sdk/types.js';
import { CredentialVault, parseVaultKey } from '../../src/credentials/index.js';
import { hashToken } from '../../src/auth/index.js';
import { auditRecords } from '../helpers/audit.js';
import { callError, firstText, httpClient, OTHER_TOKEN, startGateway, TEST_TOKEN, type RunningGateway } from '../helpers/gateway.js';
import { AGENT_APP, BASTION_AUDIENCE, EXCHANGE_CLIENT, startAuthorizationServer, startRemoteMcpServer, type AuthorizationServer, type RemoteMcpServer } from './oauth-servers.js';
import { consentAs } from './user-agent.js';

const KEY_ENV = 'BASTION_TEST_UPSTREAM_VAULT_KEY';
const vaultKey = randomBytes(32).toString('base64');

let authServer: AuthorizationServer;
let remote: RemoteMcpServer;
let exchanged: RemoteMcpServer;
let gateway: RunningGateway;
let vault: CredentialVault;
const clients: Client[] = [];

async function connect(token: string): Promise<Client> {
  const client = await httpClient(gateway.url, token);
  clients.push(client);
  return client;
}

/** The authorization-required error of a call: its code, message and data. */
async function authorizationError(client: Client, tool: string): Promise<{ message: string; data: Record<string, string> }> {
  const error = await callError(client, tool);
  assert.ok(error instanceof McpError, `expected a JSON-RPC error, got ${error.message}`);
  assert.equal(error.code, -32018, error.message);
  return { message: error.message, data: error.data as Record<string, string> };
}

/** The agent's user consents; resolves once the upstream connection is ready for it. */
async function consent(client: Client, agent: string, user: string): Promise<void> {
  const { data } = await authorizationError(client, 'remote.whoami');
  const result = await consentAs(String(data['consent_url']), user);
  assert.equal(result.status, 200, result.page);
  assert.match(result.page, new RegExp(`Agent &#39;${agent}&#39; is now authorized at server &#39;remote&#39;`));
}

async function agentAppToken(): Promise<string> {
  const response = await fetch(`${authServer.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${AGENT_APP.id}:${AGENT_APP.secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'tools', resource: BASTION_AUDIENCE }),
  });
  const body = (await response.json()) as { access_token?: string };
  assert.equal(response.status, 200, JSON.stringify(body));
  return String(body.access_token);
}

before(async () => {
  authServer = await startAuthorizationServer();
  const remotes = await startRemoteMcpServer(authServer.issuer, ['mcp', 'exchanged']);
  remote = remotes['mcp'] as RemoteMcpServer;
  exchanged = remotes['exchanged'] as RemoteMcpServer;
  process.env[KEY_ENV] = vaultKey;
  gateway = await startGateway(`version: 1
stateDir: state
listeners:
  http: { host: 127.0.0.1, port: 0 }
credentials:
  key: { fromEnv: ${KEY_ENV} }
auth:
  apiTokens:
    - { agent: alice, sha256: ${hashToken(TEST_TOKEN)} }
    - { agent: bob, sha256: ${hashToken(OTHER_TOKEN)} }
  oauth:
    issuer: ${authServer.issuer}
    jwksUrl: ${authServer.issuer}/jwks
    audience: ${BASTION_AUDIENCE}
policy: { enforce: false }
sandbox: { backend: none }
servers:
  remote:
    transport: http
    url: ${remote.url}
    trust: unsigned
    auth: { type: oauth, scopes: [tools] }
  exchanged:
    transport: http
    url: ${exchanged.url}
    trust: unsigned
    auth: { type: token-exchange, clientId: ${EXCHANGE_CLIENT.id}, clientSecret: ${EXCHANGE_CLIENT.secret}, scopes: [tools] }
  refused:
    transport: http
    url: ${exchanged.url}
    trust: unsigned
    auth: { type: token-exchange, clientId: ${EXCHANGE_CLIENT.id}, clientSecret: not-the-secret, scopes: [tools] }
`);
  vault = new CredentialVault(join(gateway.dir.path, 'state', 'credentials', 'vault.json'), parseVaultKey(vaultKey, 'test'));
});

after(async () => {
  await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
  await gateway?.stop();
  await remote?.close();
  await authServer?.close();
  delete process.env[KEY_ENV];
});

describe('Bastion as an OAuth client of a remote MCP server (oidc-provider, real)', () => {
  it('discovers the authorization server, registers itself (DCR), and answers with a consent link (PKCE S256, resource, state)', async () => {
    const alice = await connect(TEST_TOKEN);
    const { message, data } = await authorizationError(alice, 'remote.whoami');
    assert.equal(data['reason'], 'upstream_authorization_required');
    assert.equal(data['server'], 'remote');
    const link = new URL(String(data['consent_url']));
    assert.match(message, /open http:\/\/127\.0\.0\.1:\d+\/auth\?.* in a browser/);
    assert.equal(link.origin, authServer.issuer);
    assert.equal(link.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(link.searchParams.get('resource'), remote.url);
    assert.equal(link.searchParams.get('state')?.length, 43);
    assert.match(String(link.searchParams.get('redirect_uri')), /^http:\/\/127\.0\.0\.1:\d+\/oauth\/callback$/);
    // The registration (RFC 7591) is kept in the vault; the same link comes back while it is pending.
    assert.equal(vault.client('remote')?.issuer, authServer.issuer);
    const again = await authorizationError(alice, 'remote.whoami');
    assert.equal(again.data['consent_url'], data['consent_url']);
    // Nothing reached the remote server with any token so far.
    assert.deepEqual(remote.subjects, []);
  });

  it('after the user consents, calls carry that user\'s audience-bound token, and two agents have two identities', async () => {
    const alice = await connect(TEST_TOKEN);
    await consent(alice, 'alice', 'user-alice');
    assert.equal(firstText(await alice.callTool({ name: 'remote.whoami', arguments: {} })), 'user-alice');

    // Bob is not given Alice's identity: he gets his own consent link.
    const bob = await connect(OTHER_TOKEN);
    const bobError = await authorizationError(bob, 'remote.whoami');
    assert.match(bobError.message, /agent 'bob'/);
    await consentAs(String(bobError.data['consent_url']), 'user-bob');
    assert.equal(firstText(await bob.callTool({ name: 'remote.whoami', arguments: {} })), 'user-bob');
    assert.equal(firstText(await alice.callTool({ name: 'remote.whoami', arguments: {} })), 'user-alice');
    assert.ok(remote.subjects.includes('user-alice') && remote.subjects.includes('user-bob'));

    const listed = vault.list().filter((record) => record.kind === 'tokens').map((record) => record.agent).sort();
    assert.deepEqual(listed, ['alice', 'bob']);
    const stateFile = readFileSync(vault.path, 'utf8');
    for (const token of new Set(remote.presented)) assert.ok(!stateFile.includes(token), 'an upstream token is in the vault file in clear');
  });

  it('a used or unknown consent link is refused', async () => {
    const response = await fetch(new URL(`/oauth/callback?state=${'A'.repeat(43)}&code=forged`, gateway.url));
    assert.equal(response.status, 400);
    assert.match(await response.text(), /unknown, already used or expired/);
  });

  it('refreshes an expired token (rotating it in the vault) without asking the user', async () => {
    const before = vault.tokens('alice', 'remote');
    assert.ok(before?.refreshToken !== undefined, 'the provider issued a refresh token');
    await vault.saveTokens('alice', 'remote', { ...before, expiresAt: Date.now() - 1000 });
    const alice = await connect(TEST_TOKEN);
    assert.equal(firstText(await alice.callTool({ name: 'remote.whoami', arguments: {} })), 'user-alice');
    const after = vault.tokens('alice', 'remote');
    assert.notEqual(after?.accessToken, before.accessToken);
    assert.ok((after?.expiresAt ?? 0) > Date.now());
  });

  it('a revoked refresh token: the expired authorization ends in a clear error with a new consent link, never another identity', async () => {
    // A session that is already connected: the expiry is met on its next request.
    const bob = await connect(OTHER_TOKEN);
    assert.equal(firstText(await bob.callTool({ name: 'remote.whoami', arguments: {} })), 'user-bob');
    const stored = vault.tokens('bob', 'remote');
    const client = vault.client('remote');
    assert.ok(stored?.refreshToken !== undefined && client !== undefined, JSON.stringify({ list: vault.list(), bob: stored !== undefined, refresh: stored?.refreshToken !== undefined }));
    const revoked = await fetch(`${authServer.issuer}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret ?? '')}`).toString('base64')}` },
      body: new URLSearchParams({ token: stored.refreshToken, token_type_hint: 'refresh_token' }),
    });
    assert.equal(revoked.status, 200);
    await vault.saveTokens('bob', 'remote', { ...stored, expiresAt: Date.now() - 1000 });
    const seen = remote.subjects.length;
    const { message, data } = await authorizationError(bob, 'remote.whoami');
    assert.equal(data['detail'], 'refresh_failed');
    assert.match(message, /agent 'bob''s authorization at server 'remote' has expired and could not be refreshed: open http.* in a browser/);
    assert.equal(vault.tokens('bob', 'remote'), undefined);
    assert.equal(remote.subjects.length, seen, 'nothing reached the server under any identity');
  });

  it('a client that supports URL-mode elicitation gets the consent link as URLElicitationRequired (-32042)', async () => {
    const bob = await httpClient(gateway.url, OTHER_TOKEN, { elicitation: { url: {} } });
    clients.push(bob);
    const error = await callError(bob, 'remote.whoami');
    assert.ok(error instanceof UrlElicitationRequiredError, `expected URLElicitationRequired, got ${error.message}`);
    const [elicitation] = error.elicitations;
    assert.equal(elicitation?.mode, 'url');
    assert.equal(new URL(String(elicitation?.url)).origin, authServer.issuer);
    const result = await consentAs(String(elicitation?.url), 'user-bob');
    assert.equal(result.status, 200, result.page);
    assert.equal(firstText(await bob.callTool({ name: 'remote.whoami', arguments: {} })), 'user-bob');
  });

  it('credentials revoked in the vault (bastion credentials revoke) make the next call ask for consent again', async () => {
    assert.equal(await vault.revoke('alice', 'remote'), true);
    const alice = await connect(TEST_TOKEN);
    const { data } = await authorizationError(alice, 'remote.whoami');
    assert.equal(data['detail'], 'consent_required');
  });

  it('token exchange (RFC 8693): an OAuth agent reaches the server as itself, its own token never forwarded, cached until expiry', async () => {
    const clientToken = await agentAppToken();
    const carol = await connect(clientToken);
    assert.equal(firstText(await carol.callTool({ name: 'exchanged.whoami', arguments: {} })), AGENT_APP.id);
    assert.equal(firstText(await carol.callTool({ name: 'exchanged.whoami', arguments: {} })), AGENT_APP.id);
    assert.equal(authServer.exchanges, 1, 'the exchanged token is reused until it expires');
    assert.ok(!exchanged.presented.includes(clientToken) && !remote.presented.includes(clientToken), 'the client\'s own token reached an upstream');
    // An agent that did not sign in with OAuth has nothing to exchange: a clear error, no shared identity.
    const alice = await connect(TEST_TOKEN);
    const { data } = await authorizationError(alice, 'exchanged.whoami');
    assert.equal(data['detail'], 'no_subject_token');
    // The authorization server refuses the exchange (here: a wrong client secret): a clear error, nothing sent upstream.
    const presented = exchanged.presented.length;
    const refused = await authorizationError(carol, 'refused.whoami');
    assert.equal(refused.data['detail'], 'exchange_failed');
    assert.match(refused.message, /exchanging agent 'oauth:.*#carol-app''s token failed \(the authorization server refused the exchange \(invalid_client/);
    assert.equal(exchanged.presented.length, presented);
  });

  it('audits consent, refresh, exchange and failures without token values', async () => {
    await gateway.bastion.audit.flush();
    const records = auditRecords(join(gateway.dir.path, 'state', 'audit'));
    const events = records.map((record) => record.event ?? record.kind);
    for (const event of ['credentials.consent_requested', 'credentials.consent', 'credentials.refresh', 'credentials.exchange', 'credentials.failure']) {
      assert.ok(events.includes(event), `no ${event} record in the audit log (${[...new Set(events)].join(', ')})`);
    }
    const text = JSON.stringify(records);
    for (const token of new Set([...remote.presented, ...exchanged.presented])) assert.ok(!text.includes(token), 'a token value is in the audit log');
  });
});
