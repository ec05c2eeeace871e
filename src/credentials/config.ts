/**
 * Config for upstream identity (docs/credentials.md): the vault (`credentials:` at the top
 * level) and how Bastion authenticates to one remote server (`servers.<name>.auth`).
 */

const secretRef = {
  oneOf: [
    { type: 'object', required: ['fromEnv'], additionalProperties: false, properties: { fromEnv: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'the name of an environment variable' } } },
    { type: 'object', required: ['fromFile'], additionalProperties: false, properties: { fromFile: { type: 'string', minLength: 1, description: 'a path to a file holding the secret' } } },
  ],
};

export const credentialsConfigSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['key'],
  properties: {
    key: { ...secretRef, description: 'the vault key, never inline: { fromEnv: BASTION_VAULT_KEY } or { fromFile: /etc/bastion/vault.key } holding 32 random bytes (openssl rand -base64 32)' },
    file: { type: 'string', minLength: 1, default: 'credentials/vault.json', description: 'the vault file, relative to stateDir' },
    callbackUrl: { type: 'string', pattern: '^https?://', description: 'the public URL of the consent callback, e.g. https://bastion.example.com/oauth/callback (default: /oauth/callback on the HTTP listener)' },
    consentTtlSeconds: { type: 'integer', minimum: 60, maximum: 3600, default: 600, description: 'how long a consent link stays valid, in seconds' },
  },
} as const;

export const serverAuthSchema = {
  type: 'object',
  required: ['type'],
  additionalProperties: false,
  properties: {
    type: { enum: ['oauth', 'token-exchange'], description: "'oauth' (each agent's user consents once, PKCE) or 'token-exchange' (RFC 8693, for agents that sign in with OAuth)" },
    clientId: { type: 'string', minLength: 1, description: 'a pre-registered client id (default: dynamic client registration, RFC 7591)' },
    clientSecret: { oneOf: [{ type: 'string' }, secretRef], description: 'the pre-registered client secret, or { fromEnv: NAME } / { fromFile: PATH }' },
    scopes: { type: 'array', items: { type: 'string', pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$' }, description: 'scopes to ask for, e.g. [tools]' },
    authorizationServer: { type: 'string', pattern: '^https?://', description: 'the issuer to use when the server publishes no protected-resource metadata' },
    audience: { type: 'string', minLength: 1, description: 'token-exchange: the audience to ask for (default: the server\'s resource identifier)' },
  },
} as const;
