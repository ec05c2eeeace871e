/** Operator roles, each allowing what the one before it allows and more. */
export const OPERATOR_ROLES = ['viewer', 'approver', 'admin'] as const;
export type OperatorRole = (typeof OPERATOR_ROLES)[number];

export interface OperatorTokenConfig {
  /** Who the operator is; audit records of admin actions name them. */
  operator: string;
  /** SHA-256 (hex) of the bearer token; the token itself is never stored. */
  sha256: string;
  role: OperatorRole;
}

/** The admin listener: metrics, health and (later) the admin API, apart from the MCP listener. */
export interface AdminListenerConfig {
  host: string;
  port: number;
  tokens: OperatorTokenConfig[];
  metrics: {
    /** Label calls with the agent id (one series per agent: turn off with very many agents). */
    agentLabel: boolean;
    /** Let anyone who reaches the listener scrape /metrics without a token (e.g. a sidecar on loopback). */
    public: boolean;
  };
}

export const adminListenerSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'the admin listener (metrics, health): listeners.admin: { port: 9464, tokens: [...] }',
  properties: {
    host: { type: 'string', default: '127.0.0.1', description: 'an address to bind; loopback by default, since operators reach it, not agents' },
    port: { type: 'integer', minimum: 0, maximum: 65535, default: 9464 },
    tokens: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['operator', 'sha256', 'role'],
        properties: {
          operator: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$', description: 'the operator name recorded with their actions' },
          sha256: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'the token SHA-256 in hex (bastion token hash)' },
          role: { enum: [...OPERATOR_ROLES], description: 'viewer (read), approver (also decide quarantines and approvals) or admin' },
        },
      },
    },
    metrics: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        agentLabel: { type: 'boolean', default: true },
        public: { type: 'boolean', default: false },
      },
    },
  },
} as const;
