import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { OAuthConfig } from '../config/index.js';
import type { Identity } from '../pipeline/index.js';
import { tokenFingerprint } from './tokens.js';

/** Why a bearer token was refused; `description` goes into the WWW-Authenticate header. */
export class TokenRejected extends Error {
  constructor(readonly description: string) {
    super(description);
    this.name = 'TokenRejected';
  }
}

/**
 * Validates OAuth 2.1 access tokens (JWTs) for this gateway as a resource server: signature
 * against the issuer's JWKS, algorithm allow-list, issuer, audience (Bastion's own URL, so a
 * token minted for another service is refused), expiry with bounded clock skew, the token
 * type (RFC 9068 access tokens, not ID tokens) and a maximum lifetime.
 */
export class OAuthVerifier {
  private readonly keys: JWTVerifyGetKey;

  constructor(
    private readonly config: OAuthConfig,
    private readonly audience: string,
    baseDir: string,
  ) {
    if (config.jwksFile !== undefined) {
      const jwks = JSON.parse(readFileSync(resolve(baseDir, config.jwksFile), 'utf8')) as Parameters<typeof createLocalJWKSet>[0];
      this.keys = createLocalJWKSet(jwks);
    } else if (config.jwksUrl !== undefined) {
      const url = new URL(config.jwksUrl);
      if (url.protocol !== 'https:' && !isLoopback(url.hostname)) throw new Error(`auth.oauth.jwksUrl must use https (plain http only on loopback): ${config.jwksUrl}`);
      this.keys = createRemoteJWKSet(url, { cooldownDuration: 30_000, cacheMaxAge: 600_000 });
    } else {
      throw new Error('auth.oauth needs jwksUrl or jwksFile');
    }
  }

  async verify(token: string): Promise<Identity> {
    try {
      const { payload, protectedHeader } = await jwtVerify(token, this.keys, {
        issuer: this.config.issuer,
        audience: this.audience,
        algorithms: this.config.algorithms,
        clockTolerance: this.config.clockSkewSeconds,
        requiredClaims: ['exp', 'sub'],
      });
      checkTokenType(protectedHeader.typ, this.config.tokenTypes ?? DEFAULT_TOKEN_TYPES);
      checkLifetime(payload.exp as number, payload.iat, this.config.maxLifetimeSeconds ?? DEFAULT_MAX_LIFETIME_SECONDS, this.config.clockSkewSeconds);
      const value = payload[this.config.agentClaim];
      if (typeof value !== 'string' || value === '') throw new TokenRejected(`the token has no '${this.config.agentClaim}' claim naming the agent`);
      return { agentId: oauthAgentId(this.config, value), tokenFingerprint: tokenFingerprint(token), method: 'oauth', subject: String(payload.sub) };
    } catch (error) {
      throw new TokenRejected(describe(error));
    }
  }
}

/** RFC 9068 access tokens; an ID token (typ JWT) is not an access token and is refused by default. */
const DEFAULT_TOKEN_TYPES = ['at+jwt'];
const DEFAULT_MAX_LIFETIME_SECONDS = 24 * 60 * 60;

/** `typ` values compare case-insensitively and without the `application/` prefix (RFC 7515 4.1.9). */
function normalizeType(typ: string): string {
  const lower = typ.toLowerCase();
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower;
}

function checkTokenType(typ: unknown, accepted: readonly string[]): void {
  const allowed = accepted.map(normalizeType);
  if (typ === undefined) {
    if (allowed.includes('untyped')) return;
    throw new TokenRejected(`the token has no 'typ' header; access tokens are typed ${accepted.join(' or ')} (RFC 9068)`);
  }
  if (typeof typ !== 'string' || !allowed.includes(normalizeType(typ))) {
    throw new TokenRejected(`the token's type '${String(typ)}' is not an accepted access token type (${accepted.join(', ')}); an ID token is not an access token`);
  }
}

/** A stolen token is useful until it expires: tokens may not live longer than the configured maximum. */
function checkLifetime(exp: number, iat: unknown, maxSeconds: number, skewSeconds: number): void {
  const now = Math.floor(Date.now() / 1000);
  if (exp - now > maxSeconds + skewSeconds) throw new TokenRejected(`the token expires more than ${maxSeconds} seconds from now (auth.oauth.maxLifetimeSeconds)`);
  if (typeof iat === 'number') {
    if (iat > now + skewSeconds) throw new TokenRejected('the token was issued in the future');
    if (exp - iat > maxSeconds) throw new TokenRejected(`the token's lifetime (exp - iat) is over ${maxSeconds} seconds (auth.oauth.maxLifetimeSeconds)`);
  }
}

/**
 * The agent an OAuth identity is. A subject listed in `auth.oauth.subjects` is the agent it is
 * mapped to; any other is its own agent, named by issuer and subject, which cannot collide with
 * an API-token agent id (those contain no '/' or '#').
 */
export function oauthAgentId(config: Pick<OAuthConfig, 'issuer' | 'subjects'>, subject: string): string {
  const subjects = config.subjects ?? {};
  const mapped = Object.hasOwn(subjects, subject) ? subjects[subject] : undefined;
  return mapped ?? `oauth:${config.issuer}#${subject}`;
}

function describe(error: unknown): string {
  if (error instanceof TokenRejected) return error.description;
  if (error instanceof errors.JWTExpired) return 'the token has expired';
  if (error instanceof errors.JWTClaimValidationFailed) return `claim '${error.claim}' is not acceptable (${error.reason})`;
  if (error instanceof errors.JOSEAlgNotAllowed) return 'the token is signed with an algorithm that is not allowed';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'the token signature is invalid';
  if (error instanceof errors.JWKSNoMatchingKey) return 'no key of the issuer matches the token';
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) return 'the token is malformed';
  return 'the token could not be validated';
}

function isLoopback(hostname: string): boolean {
  return hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]';
}

/** A JWT has three base64url parts; anything else is treated as an API token. */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}
