import { adminListenerSchema } from '../admin/config.js';
import { tracingSchema } from '../observability/tracing/config.js';
import { auditConfigSchema } from '../audit/config.js';
import { serverTrustSchemaProperties, trustConfigSchema } from '../integrity/trust.js';
import { quotasConfigSchema } from '../limits/config.js';
import { clusterConfigSchema } from '../cluster/config.js';
import { policyConfigSchema } from '../policy/config.js';
import { sandboxConfigSchema } from '../sandbox/config.js';
import { scanConfigSchema, serverCertificationSchema } from '../scan/config.js';
import { credentialsConfigSchema, serverAuthSchema } from '../credentials/config.js';
import { agentCurationSchema, toolCurationSchemaProperties } from '../curation/config.js';

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
    ...toolCurationSchemaProperties,
  },
};

const serverCommon = {
  limits,
  tools: { type: 'object', propertyNames: { pattern: '^[^\\s]{1,128}$' }, additionalProperties: toolConfig },
  agents: agentCurationSchema,
  ...serverTrustSchemaProperties,
  description: { type: 'string' },
  namespaced: {
    type: 'boolean',
    default: true,
    description: "true (default: tools and prompts appear as <server>.<name>, resource URIs as <server>+<uri>) or false (this server's own names, for clients that call fixed names; one server at most)",
  },
  ...serverCertificationSchema,
  notifications: {
    type: 'object',
    additionalProperties: false,
    properties: {
      perSecond: { type: 'integer', minimum: 1, maximum: 1_000_000, description: "this server's notifications per second to one session (overrides upstream.notifications.perSecond)" },
      burst: { type: 'integer', minimum: 1, maximum: 1_000_000, description: "this server's notification burst (overrides upstream.notifications.burst)" },
    },
  },
  isolation: {
    enum: ['session', 'agent', 'shared'],
    description: "session (one process per client session, today's behaviour, for servers that keep per-connection state), agent (one process per agent identity, multiplexing that agent's sessions; the default) or shared (one process for everyone, for stateless servers)",
  },
  pool: {
    type: 'object',
    additionalProperties: false,
    properties: {
      maxProcesses: { type: 'integer', minimum: 1, maximum: 32, description: 'processes per pool key (per agent at isolation: agent), e.g. 2 (default 1)' },
      idleSeconds: { type: 'integer', minimum: 1, maximum: 86_400, description: 'seconds a pooled process may sit with no call in flight and no subscription before it is stopped (restarted on the next call), e.g. 600' },
    },
  },
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
    legacySse: { type: 'boolean', default: false, description: 'true for a server that offers only the deprecated HTTP+SSE transport (MCP 2024-11-05); url is then its event-stream endpoint, e.g. http://127.0.0.1:3001/sse' },
    auth: serverAuthSchema,
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
    credentials: credentialsConfigSchema,
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
        admin: adminListenerSchema,
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
            legacySse: {
              type: 'object',
              additionalProperties: false,
              required: ['enabled'],
              description: 'the deprecated HTTP+SSE transport (MCP 2024-11-05) for clients without Streamable HTTP',
              properties: {
                enabled: { type: 'boolean', description: 'serve GET ssePath and POST messagesPath beside Streamable HTTP' },
                ssePath: { type: 'string', pattern: '^/', default: '/sse', description: 'GET opens the event stream' },
                messagesPath: { type: 'string', pattern: '^/', default: '/messages', description: 'POST carries client messages (?sessionId=...)' },
              },
            },
            stateless: {
              type: 'object',
              additionalProperties: false,
              description: 'clients of the stateless 2026-07-28 revision (docs/protocol.md)',
              properties: {
                maxContextsPerAgent: { type: 'integer', minimum: 1, maximum: 1000, default: 4, description: 'gateway-side contexts (each with its upstreams) one agent may hold, one per distinct set of client capabilities' },
                inputTimeoutSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 300, description: 'how long a requestState (input_required) stays redeemable; then the held upstream call is cancelled' },
              },
            },
          },
        },
      },
    },
    observability: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { tracing: tracingSchema },
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
              agent: { type: 'string', pattern: '^(?!oauth:)[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$', description: "an agent id such as ci-bot (not starting with oauth:, which names OAuth identities)" },
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
            agentClaim: { type: 'string', default: 'sub', description: 'the claim that identifies the caller, e.g. sub; its value is looked up in subjects' },
            subjects: {
              type: 'object',
              default: {},
              additionalProperties: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$' },
              description: 'a map of OAuth subjects to agent ids, e.g. subjects: { "auth0|123": ci-bot }; an unmapped subject is the agent oauth:<issuer>#<subject>',
            },
            tokenTypes: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, default: ['at+jwt'], description: 'accepted JWT typ headers, e.g. [at+jwt] (RFC 9068); add JWT only for an issuer that types access tokens so, untyped for one that omits typ' },
            maxLifetimeSeconds: { type: 'integer', minimum: 60, maximum: 2_592_000, default: 86_400, description: 'seconds, e.g. 86400: tokens that live longer (exp - iat) or expire further ahead are refused' },
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
        sampling: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            maxIncludeContext: { enum: ['none', 'thisServer', 'allServers'], default: 'thisServer', description: "the most context a server's sampling request may ask the client to include: none, thisServer (default) or allServers; a request for more is lowered to this" },
          },
        },
        notifications: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            perSecond: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 200, description: 'notifications per second one server may send one session (token bucket refill), e.g. 200' },
            burst: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 1000, description: 'notifications a server may send at once before the rate applies, e.g. 1000' },
            sessionPerSecond: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 500, description: 'notifications per second from all servers together to one session' },
            sessionBurst: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 2000, description: 'notifications at once from all servers together to one session' },
            coalesceMs: { type: 'integer', minimum: 0, maximum: 60_000, default: 100, description: 'window in which repeated list_changed collapse to one and a newer progress replaces an undelivered older one' },
          },
        },
      },
    },
    reload: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        watch: { type: 'boolean', default: true, description: 'true (default) to reload the whole config when its file changes; SIGHUP always reloads' },
        debounceMs: { type: 'integer', minimum: 0, maximum: 60_000, default: 300, description: 'milliseconds to wait after the last change of the file before reloading, e.g. 300 (editors write in several steps)' },
        drainSeconds: { type: 'integer', minimum: 0, maximum: 3600, default: 30, description: 'seconds a removed or changed server is given to finish its calls in flight before they are cancelled and it is stopped, e.g. 30' },
      },
    },
    audit: auditConfigSchema,
    cluster: clusterConfigSchema,
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
            maxInspectedBytes: { type: 'integer', minimum: 4096, maximum: 1_073_741_824, default: 16 * 1024 * 1024, description: 'bytes of text inspected per answer; a larger answer is withheld (fail closed), e.g. 16777216' },
            offloadBytes: { type: 'integer', minimum: 0, maximum: 1_073_741_824, default: 256 * 1024, description: 'answers with more text than this are inspected on a worker thread so the event loop keeps serving other sessions; 0 keeps all inspection on the event loop, e.g. 262144' },
            offloadThreads: { type: 'integer', minimum: 1, maximum: 16, default: 1, description: 'worker threads for inspecting large answers, e.g. 1' },
            reviewMaxEntries: { type: 'integer', minimum: 1, maximum: 100_000, default: 500, description: 'withheld outputs kept for bastion review (oldest dropped first)' },
            reviewMaxBytes: { type: 'integer', minimum: 65536, maximum: 10_737_418_240, default: 64 * 1024 * 1024, description: 'bytes of withheld outputs kept for bastion review (oldest dropped first)' },
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
        // Each transport's own schema applies only when transport names it, so a typo in
        // transport is one problem, not a cascade from the other transport's rules.
        if: { required: ['transport'], properties: { transport: { const: 'stdio' } } },
        then: stdioServer,
        else: { if: { required: ['transport'], properties: { transport: { const: 'http' } } }, then: httpServer },
      },
      description: 'a map of server names (lowercase letters, digits and -, starting with a letter) to server definitions',
    },
  },
} as const;
