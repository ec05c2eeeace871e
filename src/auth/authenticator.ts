import type { BastionConfig } from '../config/index.js';
import type { Identity } from '../pipeline/index.js';
import { OAuthVerifier, TokenRejected, looksLikeJwt } from './oauth.js';
import { ApiTokenVerifier } from './tokens.js';
import { rememberSubjectToken } from '../credentials/subject-tokens.js';

export type AuthResult = { ok: true; identity: Identity } | { ok: false; status: 401; error: 'invalid_request' | 'invalid_token'; description: string };

/** Turns an Authorization header into an identity, or a reason to answer 401. */
export class Authenticator {
  private apiTokens: ApiTokenVerifier;
  private readonly oauth: OAuthVerifier | undefined;

  constructor(config: BastionConfig, audience: string, baseDir: string) {
    this.apiTokens = new ApiTokenVerifier(config.auth.apiTokens);
    this.oauth = config.auth.oauth === undefined ? undefined : new OAuthVerifier(config.auth.oauth, config.auth.oauth.audience ?? audience, baseDir);
  }

  /** A config reload changed auth.apiTokens: requests from now on are checked against these. */
  replaceApiTokens(tokens: BastionConfig['auth']['apiTokens']): void {
    this.apiTokens = new ApiTokenVerifier(tokens);
  }

  /** True when no credential of any kind is configured: the HTTP listener then refuses to start. */
  get empty(): boolean {
    return this.apiTokens.size === 0 && this.oauth === undefined;
  }

  async authenticate(header: string | undefined): Promise<AuthResult> {
    if (header === undefined || header === '') return { ok: false, status: 401, error: 'invalid_request', description: 'no bearer token: send Authorization: Bearer <token>' };
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match === null) return { ok: false, status: 401, error: 'invalid_request', description: 'the Authorization header must be "Bearer <token>"' };
    const token = match[1] as string;
    if (this.oauth !== undefined && looksLikeJwt(token)) {
      try {
        const identity = await this.oauth.verify(token);
        // Kept in memory for token exchange (RFC 8693) only; never forwarded upstream.
        rememberSubjectToken(identity, token);
        return { ok: true, identity };
      } catch (error) {
        return { ok: false, status: 401, error: 'invalid_token', description: error instanceof TokenRejected ? error.description : 'the token could not be validated' };
      }
    }
    const identity = this.apiTokens.verify(token);
    if (identity !== undefined) return { ok: true, identity };
    return { ok: false, status: 401, error: 'invalid_token', description: 'the token is not valid for this gateway' };
  }
}
