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
 * token minted for another service is refused), expiry with bounded clock skew.
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
      const { payload } = await jwtVerify(token, this.keys, {
        issuer: this.config.issuer,
        audience: this.audience,
        algorithms: this.config.algorithms,
        clockTolerance: this.config.clockSkewSeconds,
        requiredClaims: ['exp', 'sub'],
      });
      const agent = payload[this.config.agentClaim];
      if (typeof agent !== 'string' || agent === '') throw new TokenRejected(`the token has no '${this.config.agentClaim}' claim naming the agent`);
      return { agentId: agent, tokenFingerprint: tokenFingerprint(token), method: 'oauth', subject: String(payload.sub) };
    } catch (error) {
      throw new TokenRejected(describe(error));
    }
  }
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
