export { CredentialVault, VaultError, parseVaultKey, vaultKeyId, type CredentialSummary, type StoredTokens } from './vault.js';
export { UpstreamAuthorizationRequired, AUTHORIZATION_REQUIRED_CODE } from './errors.js';
export { rememberSubjectToken } from './subject-tokens.js';
export { UpstreamCredentials, openVault, CALLBACK_PATH, type UpstreamBearer } from './upstream-credentials.js';
