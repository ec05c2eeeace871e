import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { ApiTokenVerifier, hashToken } from '../../src/auth/index.js';
import { configYaml, firstText, fixture, httpClient, startGateway, tempDir, type RunningGateway } from '../helpers/gateway.js';

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
  let upstream: ChildProcess;
  let privateKey: CryptoKey;
  let strangerKey: CryptoKey;

  before(async () => {
    const pair = await generateKeyPair('ES256');
    privateKey = pair.privateKey as CryptoKey;
    strangerKey = (await generateKeyPair('ES256')).privateKey as CryptoKey;
    const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const dir = tempDir();
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
  });

  async function token(claims: Record<string, unknown> = {}, options: { key?: CryptoKey; audience?: string; issuer?: string; expiresIn?: string | number; alg?: string } = {}): Promise<string> {
    return new SignJWT({ ...claims })
      .setProtectedHeader({ alg: options.alg ?? 'ES256', kid: 'k1' })
      .setSubject('agent-carol')
      .setIssuer(options.issuer ?? ISSUER)
      .setAudience(options.audience ?? AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(options.expiresIn ?? '5m')
      .sign(options.key ?? privateKey);
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

  test('an unsigned token (alg none) is refused', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ sub: 'x', iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 60 })).toString('base64url');
    assert.equal((await status(`${header}.${payload}.`)).status, 401);
  });
});
