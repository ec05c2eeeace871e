import { auditConfigSchema } from '../audit/config.js';
import { serverTrustSchemaProperties, trustConfigSchema } from '../integrity/trust.js';
import { quotasConfigSchema } from '../limits/config.js';
import { policyConfigSchema } from '../policy/config.js';
import { sandboxConfigSchema } from '../sandbox/config.js';
import { scanConfigSchema, serverCertificationSchema } from '../scan/config.js';

/**
 * JSON Schema of bastion.yaml. `description` texts double as the fix hints in error messages,
 * and `default`s are applied by ajv, so every limit has a safe value unless widened explicitly.
 */

const secretRef = {
  oneOf: [
    { type: 'object', required: ['fromEnv'], additionalProperties: false, properties: { fromEnv: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'the name of an environment variable' } } },
    { type: 'object', required: ['fromFile'], additionalProperties: false, properties: { fromFile: { type: 'string', minLength: 1, description: 'a path to a file holding the secret' } } },
  ],
};

const valueOrSecret = { oneOf: [{ type: 'string' }, secretRef], description: 'a string, or { fromEnv: NAME } or { fromFile: PATH }' };

const limits = {
  type: 'object',
  additionalProperties: false,
  properties: {
    timeoutMs: { type: 'integer', minimum: 1, maximum: 3_600_000, description: 'milliseconds, e.g. 30000' },
    maxOutputBytes: { type: 'integer', minimum: 1024, maximum: 1_073_741_824, description: 'bytes, e.g. 4194304' },
    maxRequestBytes: { type: 'integer', minimum: 1024, maximum: 268_435_456, description: 'bytes, e.g. 1048576' },
  },
};

const toolConfig = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limits,
    scopes: { type: 'array', items: { type: 'string', minLength: 3 }, description: 'scope strings such as read:filesystem:${path}' },
  },
};

const serverCommon = {
  limits,
  tools: { type: 'object', propertyNames: { pattern: '^[^\\s]{1,128}$' }, additionalProperties: toolConfig },
  ...serverTrustSchemaProperties,
  description: { type: 'string' },
  namespaced: {
    type: 'boolean',
    default: true,
    description: "true (default: tools and prompts appear as <server>.<name>, resource URIs as <server>+<uri>) or false (this server's own names, for clients that call fixed names; one server at most)",
  },
  ...serverCertificationSchema,
  scopes: { type: 'array', items: { type: 'string', minLength: 3 }, description: 'scopes of the server process itself, e.g. [read:filesystem:/srv/data]: its sandbox view and egress' },
  sandbox: {
    ...sandboxConfigSchema,
    properties: {
      ...sandboxConfigSchema.properties,
      packageDirs: { type: 'array', items: { type: 'string', pattern: '^/' }, description: 'absolute paths of the code the server needs, bound read-only (default: derived from command and args)' },
    },
  },
};

const stdioServer = {
  type: 'object',
  required: ['transport', 'command'],
  additionalProperties: false,
  properties: {
    transport: { const: 'stdio' },
    command: { type: 'string', minLength: 1, description: 'the program to run, e.g. command: node (no shell is used)' },
    args: { type: 'array', items: { type: 'string' }, default: [], description: 'a list of arguments, e.g. args: [server.js, --port, "0"]' },
    env: { type: 'object', additionalProperties: valueOrSecret, default: {}, description: 'a map of variable names to values or secret references' },
    cwd: { type: 'string', minLength: 1 },
    ...serverCommon,
  },
};

const httpServer = {
  type: 'object',
  required: ['transport', 'url'],
  additionalProperties: false,
  properties: {
    transport: { const: 'http' },
    url: { type: 'string', pattern: '^https?://', description: 'the server\'s Streamable HTTP endpoint, e.g. https://mcp.example.com/mcp' },
    headers: { type: 'object', additionalProperties: valueOrSecret, default: {}, description: 'a map of header names to values or secret references' },
    ...serverCommon,
  },
};

export const configSchema = {
  $id: 'https://bastion.dev/schemas/config.schema.json',
  type: 'object',
  required: ['version', 'servers'],
  additionalProperties: false,
  properties: {
    version: { const: 1, description: 'version: 1' },
    stateDir: { type: 'string', minLength: 1, default: '.bastion', description: 'a directory for the audit log and keys' },
    listeners: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        stdio: {
          type: 'object',
          additionalProperties: false,
          required: ['agent'],
          properties: { agent: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$', description: 'the agent id for the stdio client' } },
        },
        http: {
          type: 'object',
          additionalProperties: false,
          properties: {
            host: { type: 'string', default: '127.0.0.1', description: 'an address to bind, e.g. 127.0.0.1' },
            port: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
            path: { type: 'string', pattern: '^/', default: '/mcp' },
            publicUrl: { type: 'string', pattern: '^https?://' },
            allowedHosts: { type: 'array', items: { type: 'string', minLength: 1 } },
            allowedOrigins: { type: 'array', items: { type: 'string', pattern: '^https?://' }, default: [] },
            maxSessions: { type: 'integer', minimum: 1, maximum: 100000, default: 64 },
            sessionIdleSeconds: { type: 'integer', minimum: 10, maximum: 86400, default: 900 },
            maxSessionsPerAgent: { type: 'integer', minimum: 1, maximum: 100000, description: 'sessions one agent may hold (default: a quarter of maxSessions, at least 1)' },
            unusedSessionIdleSeconds: { type: 'integer', minimum: 5, maximum: 86400, default: 60, description: 'idle time after which a session that made no call since initialize ends' },
            headersTimeoutMs: { type: 'integer', minimum: 1000, maximum: 600000, default: 10000, description: 'time a client has to send its request headers' },
            bodyTimeoutMs: { type: 'integer', minimum: 1000, maximum: 600000, default: 30000, description: 'time a client has to send a whole request (headers and body)' },
            maxConnections: { type: 'integer', minimum: 1, maximum: 100000, default: 512, description: 'open connections in total; more are closed at once' },
            maxConnectionsPerAddress: { type: 'integer', minimum: 1, maximum: 100000, default: 64, description: 'open connections from one client address; more are closed at once' },
            authFailureWindowSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 60, description: 'refused authentications are audited as one record per source address and window' },
          },
        },
      },
    },
    auth: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        apiTokens: {
          type: 'array',
          default: [],
          items: {
            type: 'object',
            required: ['agent', 'sha256'],
            additionalProperties: false,
            properties: {
              agent: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$', description: 'an agent id such as ci-bot' },
              sha256: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'the hex SHA-256 of the token (bastion token hash TOKEN prints it); never the token itself' },
              description: { type: 'string' },
            },
          },
        },
        oauth: {
          type: 'object',
          required: ['issuer'],
          additionalProperties: false,
          properties: {
            issuer: { type: 'string', pattern: '^https?://' },
            jwksUrl: { type: 'string', pattern: '^https?://' },
            jwksFile: { type: 'string', minLength: 1 },
            audience: { type: 'string', minLength: 1 },
            algorithms: { type: 'array', items: { enum: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] }, minItems: 1, default: ['RS256', 'ES256', 'EdDSA'] },
            clockSkewSeconds: { type: 'integer', minimum: 0, maximum: 300, default: 30 },
            agentClaim: { type: 'string', default: 'sub' },
            scopesSupported: { type: 'array', items: { type: 'string' }, default: [] },
          },
        },
      },
    },
    limits: {
      ...limits,
      default: {},
      properties: {
        timeoutMs: { ...limits.properties.timeoutMs, default: 30_000 },
        maxOutputBytes: { ...limits.properties.maxOutputBytes, default: 4 * 1024 * 1024 },
        maxRequestBytes: { ...limits.properties.maxRequestBytes, default: 1024 * 1024 },
      },
    },
    upstream: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        restartBackoffMs: { type: 'integer', minimum: 10, maximum: 600_000, default: 500 },
        maxBackoffMs: { type: 'integer', minimum: 10, maximum: 3_600_000, default: 30_000 },
        startTimeoutMs: { type: 'integer', minimum: 100, maximum: 600_000, default: 30_000 },
      },
    },
    audit: auditConfigSchema,
    integrity: { ...trustConfigSchema, default: {} },
    quotas: quotasConfigSchema,
    sandbox: { ...sandboxConfigSchema, default: {} },
    scan: {
      ...scanConfigSchema,
      default: {},
      properties: {
        ...scanConfigSchema.properties,
        certification: { ...scanConfigSchema.properties.certification, default: {} },
        outputInspection: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            enabled: { type: 'boolean', default: true, description: 'true (default): withhold tool, prompt and resource results that carry instructions to the model' },
            blockAt: { enum: ['info', 'low', 'medium', 'high', 'critical'], default: 'high', description: 'the finding severity at which a result is withheld' },
          },
        },
      },
    },
    policy: {
      ...policyConfigSchema,
      default: {},
      properties: {
        ...policyConfigSchema.properties,
        enforce: { type: 'boolean', default: true, description: 'true (default: every call needs a grant) or false (least privilege off; warned at every start)' },
      },
    },
    servers: {
      type: 'object',
      minProperties: 1,
      propertyNames: { pattern: '^[a-z][a-z0-9-]{0,31}$' },
      additionalProperties: {
        type: 'object',
        required: ['transport'],
        properties: { transport: { enum: ['stdio', 'http'], description: "'stdio' (a local command) or 'http' (a Streamable HTTP URL)" } },
        if: { properties: { transport: { const: 'stdio' } } },
        then: stdioServer,
        else: httpServer,
      },
      description: 'a map of server names (lowercase letters, digits and -, starting with a letter) to server definitions',
    },
  },
} as const;
