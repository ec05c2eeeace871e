import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { ApiTokenVerifier, hashToken } from '../../src/auth/index.js';
import { configYaml, firstText, fixture, httpClient, startGateway, tempDir, TEST_TOKEN, type RunningGateway, type TempDir } from '../helpers/gateway.js';

const ISSUER = 'https://idp.test.example';
const AUDIENCE = 'https://bastion.test.example/mcp';

describe('API tokens', () => {
  test('a token maps to its agent; the stored hash is never the token', () => {
    const verifier = new ApiTokenVerifier([{ agent: 'ci-bot', sha256: hashToken('right-token') }]);
    assert.equal(verifier.verify('right-token')?.agentId, 'ci-bot');
    assert.equal(verifier.verify('right-tokeN'), undefined);
    assert.equal(verifier.verify(''), undefined);
    const fingerprint = verifier.verify('right-token')?.tokenFingerprint ?? '';
    assert.match(fingerprint, /^sha256:[0-9a-f]{16}$/);
    assert.ok(!fingerprint.includes('right-token'));
  });
});

describe('OAuth 2.1 bearer tokens (JWT against a JWKS)', () => {
  let gw: RunningGateway;
  let dir: TempDir | undefined;
  let upstream: ChildProcess;
  let privateKey: CryptoKey;
  let strangerKey: CryptoKey;

  before(async () => {
    const pair = await generateKeyPair('ES256');
    privateKey = pair.privateKey as CryptoKey;
    strangerKey = (await generateKeyPair('ES256')).privateKey as CryptoKey;
    const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    dir = tempDir();
    writeFileSync(join(dir.path, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
    upstream = spawn(process.execPath, [fixture('http-upstream')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const upstreamUrl = await new Promise<string>((resolve) => createInterface({ input: upstream.stdout as NodeJS.ReadableStream }).once('line', resolve));
    process.env['BASTION_TEST_UPSTREAM_KEY'] = 'upstream-credential-from-env';
    const servers = `  remote:\n    transport: http\n    url: ${upstreamUrl}\n    trust: unsigned\n    headers:\n      X-Api-Key: { fromEnv: BASTION_TEST_UPSTREAM_KEY }\n`;
    gw = await startGateway(configYaml(servers).replace('auth:\n', `auth:\n  oauth:\n    issuer: ${ISSUER}\n    jwksFile: ${JSON.stringify(join(dir.path, 'jwks.json'))}\n    audience: ${AUDIENCE}\n    algorithms: [ES256]\n    clockSkewSeconds: 5\n`));
  });

  after(async () => {
    await gw?.stop();
    upstream?.kill();
    dir?.cleanup();
  });

  async function token(claims: Record<string, unknown> = {}, options: { key?: CryptoKey; audience?: string; issuer?: string; expiresIn?: string | number; alg?: string; typ?: string | null; issuedAt?: number | null } = {}): Promise<string> {
    const typ = options.typ === undefined ? 'at+jwt' : options.typ;
    const jwt = new SignJWT({ ...claims })
      .setProtectedHeader({ alg: options.alg ?? 'ES256', kid: 'k1', ...(typ === null ? {} : { typ }) })
      .setSubject('agent-carol')
      .setIssuer(options.issuer ?? ISSUER)
      .setAudience(options.audience ?? AUDIENCE)
      .setExpirationTime(options.expiresIn ?? '5m');
    if (options.issuedAt !== null) jwt.setIssuedAt(options.issuedAt);
    return jwt.sign(options.key ?? privateKey);
  }

  async function status(jwt: string): Promise<{ status: number; challenge: string }> {
    const response = await fetch(gw.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
    });
    await response.text();
    return { status: response.status, challenge: response.headers.get('www-authenticate') ?? '' };
  }

  test('a valid token for this gateway is accepted and the call reaches a remote upstream', async () => {
    const client = await httpClient(gw.url, await token());
    assert.equal(firstText(await client.callTool({ name: 'remote.add', arguments: { a: 2, b: 3 } })), '5');
    await client.close();
  });

  test('the client\'s token is never forwarded upstream; the upstream gets only its own configured credential', async () => {
    const jwt = await token();
    const client = await httpClient(gw.url, jwt);
    const seen = JSON.parse(firstText(await client.callTool({ name: 'remote.headers', arguments: {} }))) as Record<string, string>;
    await client.close();
    assert.equal(seen['authorization'], undefined);
    assert.equal(seen['x-api-key'], 'upstream-credential-from-env');
    assert.ok(!JSON.stringify(seen).includes(jwt));
  });

  test('an expired token is refused with invalid_token', async () => {
    const answer = await status(await token({}, { expiresIn: Math.floor(Date.now() / 1000) - 60 }));
    assert.equal(answer.status, 401);
    assert.match(answer.challenge, /error="invalid_token", error_description="the token has expired"/);
  });

  test('a token minted for another service (wrong audience) is refused', async () => {
    const answer = await status(await token({}, { audience: 'https://other-service.example' }));
    assert.equal(answer.status, 401);
    assert.match(answer.challenge, /aud/);
  });

  test('a token from another issuer is refused', async () => {
    assert.equal((await status(await token({}, { issuer: 'https://evil-idp.example' }))).status, 401);
  });

  test('a token signed by a key the issuer does not publish is refused', async () => {
    const answer = await status(await token({}, { key: strangerKey }));
    assert.equal(answer.status, 401);
    assert.match(answer.challenge, /signature is invalid/);
  });

  test('an algorithm outside the allow-list is refused (no alg confusion)', async () => {
    const hmac = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('x').setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('5m').sign(new TextEncoder().encode('a-shared-secret-of-32-bytes-long!!'));
    const answer = await status(hmac);
    assert.equal(answer.status, 401);
    assert.match(answer.challenge, /algorithm/);
  });

  test('an ID token (typ JWT) presented as an access token is refused', async () => {
    const answer = await status(await token({}, { typ: 'JWT' }));
    assert.equal(answer.status, 401);
    assert.match(answer.challenge, /type 'JWT' is not an accepted access token type/);
  });

  test('a token without a typ header is refused; application/at+jwt is accepted', async () => {
    const untyped = await status(await token({}, { typ: null }));
    assert.equal(untyped.status, 401);
    assert.match(untyped.challenge, /no 'typ' header/);
    assert.equal((await status(await token({}, { typ: 'application/at+jwt' }))).status, 200);
  });

  test('a token that lives longer than 24 hours (exp - iat) is refused', async () => {
    const now = Math.floor(Date.now() / 1000);
    const answer = await status(await token({}, { issuedAt: now - 3600, expiresIn: now + 24 * 3600 }));
    assert.equal(answer.status, 401);
    assert.match(answer.challenge, /lifetime \(exp - iat\) is over 86400 seconds/);
  });

  test('a token without iat that expires days from now is refused', async () => {
    const answer = await status(await token({}, { issuedAt: null, expiresIn: '3d' }));
    assert.equal(answer.status, 401);
    assert.match(answer.challenge, /expires more than 86400 seconds from now/);
  });

  test('an unsigned token (alg none) is refused', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ sub: 'x', iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 60 })).toString('base64url');
    assert.equal((await status(`${header}.${payload}.`)).status, 401);
  });
});

/**
 * API-token agents and OAuth identities live in different namespaces: an OAuth subject is its
 * own agent (oauth:<issuer>#<sub>) unless auth.oauth.subjects maps it to one.
 */
describe('identities are namespaced by how they authenticated', () => {
  let gw: RunningGateway;
  let dir: TempDir | undefined;
  let upstream: ChildProcess;
  let privateKey: CryptoKey;

  before(async () => {
    const pair = await generateKeyPair('ES256');
    privateKey = pair.privateKey as CryptoKey;
    const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    dir = tempDir();
    writeFileSync(join(dir.path, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
    writeFileSync(
      join(dir.path, 'policy.yaml'),
      `version: 1
agents:
  alice:
    grants: ["exec:tools:[remote.add]"]
  carol:
    grants: ["exec:tools:[remote.add]"]
  "oauth:${ISSUER}#dave":
    grants: ["exec:tools:[remote.add]"]
`,
    );
    upstream = spawn(process.execPath, [fixture('http-upstream')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const upstreamUrl = await new Promise<string>((resolve) => createInterface({ input: upstream.stdout as NodeJS.ReadableStream }).once('line', resolve));
    const servers = `  remote:\n    transport: http\n    url: ${upstreamUrl}\n    trust: unsigned\n    tools:\n      add: { scopes: [] }\n`;
    const oauth = `auth:\n  oauth:\n    issuer: ${ISSUER}\n    jwksFile: ${JSON.stringify(join(dir.path, 'jwks.json'))}\n    audience: ${AUDIENCE}\n    algorithms: [ES256]\n    subjects: { carol-sub: carol }\n`;
    gw = await startGateway(configYaml(servers, `policy:\n  files: [${JSON.stringify(join(dir.path, 'policy.yaml'))}]\n`).replace('auth:\n', oauth));
  });

  after(async () => {
    await gw?.stop();
    upstream?.kill();
    dir?.cleanup();
  });

  function oauthToken(subject: string): Promise<string> {
    return new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' }).setSubject(subject).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('5m').sign(privateKey);
  }

  async function post(bearer: string, body: Record<string, unknown>, sessionId?: string): Promise<{ status: number; sessionId: string | null; text: string }> {
    const response = await fetch(gw.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', ...(sessionId === undefined ? {} : { 'mcp-session-id': sessionId }) },
      body: JSON.stringify({ jsonrpc: '2.0', ...body }),
    });
    return { status: response.status, sessionId: response.headers.get('mcp-session-id'), text: await response.text() };
  }

  const denied = (client: Awaited<ReturnType<typeof httpClient>>) => client.callTool({ name: 'remote.add', arguments: { a: 1, b: 2 } }).then(firstText, (error: Error) => error.message);

  test("an OAuth token whose sub equals an API-token agent's id does not get that agent's grants", async () => {
    const impostor = await httpClient(gw.url, await oauthToken('alice'));
    assert.match(await denied(impostor), /denied by policy.*oauth:https:\/\/idp\.test\.example#alice/);
    await impostor.close();
    const alice = await httpClient(gw.url);
    assert.equal(await denied(alice), '3');
    await alice.close();
  });

  test("an OAuth identity with the same bare name can neither use nor delete an API-token agent's session", async () => {
    const init = await post(TEST_TOKEN, { id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
    assert.equal(init.status, 200);
    const sessionId = init.sessionId as string;
    const impostor = await oauthToken('alice');
    assert.equal((await post(impostor, { id: 2, method: 'tools/list', params: {} }, sessionId)).status, 404);
    const deletion = await fetch(gw.url, { method: 'DELETE', headers: { authorization: `Bearer ${impostor}`, 'mcp-session-id': sessionId } });
    await deletion.text();
    assert.equal(deletion.status, 404);
    await post(TEST_TOKEN, { method: 'notifications/initialized' }, sessionId);
    const stillThere = await post(TEST_TOKEN, { id: 3, method: 'tools/list', params: {} }, sessionId);
    assert.equal(stillThere.status, 200);
    assert.match(stillThere.text, /remote\.add/);
  });

  test('a subject mapped in auth.oauth.subjects is that agent; an unmapped one is named by issuer and subject in the policy', async () => {
    const carol = await httpClient(gw.url, await oauthToken('carol-sub'));
    assert.equal(await denied(carol), '3');
    await carol.close();
    const dave = await httpClient(gw.url, await oauthToken('dave'));
    assert.equal(await denied(dave), '3');
    await dave.close();
  });
});
