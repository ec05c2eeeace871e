export { Authenticator } from './authenticator.js';
export type { AuthResult } from './authenticator.js';
export { ApiTokenVerifier, hashToken, tokenFingerprint } from './tokens.js';
export { OAuthVerifier, TokenRejected, looksLikeJwt, oauthAgentId } from './oauth.js';
