// The curation fields of bastion.yaml: what an operator changes about how a server's tools are
// shown to clients. They sit on servers.NAME.tools.TOOL (every agent) and on
// servers.NAME.agents.AGENT.tools.TOOL (one agent; its fields win over the server's, one by one).

/** How one tool is shown. Policy, declarations, limits and the hash lock keep the upstream name. */
export interface ToolCurationConfig {
  /** The name clients see instead of the upstream's (still under the server's prefix). */
  rename?: string;
  /** Replaces the upstream's title; this text is what is scanned and shown. */
  title?: string;
  /** Replaces the upstream's description; this text is what is scanned and shown. */
  description?: string;
  /** true: not listed and not callable (a call gets the unknown-tool error); false undoes a server-wide hide for one agent. */
  hidden?: boolean;
}

export interface AgentCurationConfig {
  tools?: Record<string, ToolCurationConfig>;
}

/** The part of a server's config that curation reads. */
export interface CuratedServerConfig {
  tools?: Record<string, ToolCurationConfig>;
  agents?: Record<string, AgentCurationConfig>;
}

export const CURATION_FIELDS = ['rename', 'title', 'description', 'hidden'] as const;

/** Tool names as the MCP specification recommends them: 1-128 of A-Z a-z 0-9 _ - . */
export const TOOL_NAME_PATTERN = '^[A-Za-z0-9_.-]{1,128}$';

/** Schema properties merged into servers.NAME.tools.TOOL. */
export const toolCurationSchemaProperties = {
  rename: { type: 'string', pattern: TOOL_NAME_PATTERN, description: 'the name clients see, e.g. rename: read (1-128 of A-Z a-z 0-9 _ - .); calls to it reach this tool' },
  title: { type: 'string', maxLength: 1024, description: "a title shown instead of the upstream's (scanned like the upstream's would be)" },
  description: { type: 'string', maxLength: 65_536, description: "a description shown instead of the upstream's (scanned like the upstream's would be)" },
  hidden: { type: 'boolean', description: 'true: the tool is not listed and a call gets the unknown-tool error' },
} as const;

const agentToolSchema = { type: 'object', additionalProperties: false, properties: toolCurationSchemaProperties } as const;

/** Schema of servers.NAME.agents. */
export const agentCurationSchema = {
  type: 'object',
  propertyNames: { pattern: '^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$' },
  additionalProperties: {
    type: 'object',
    additionalProperties: false,
    properties: { tools: { type: 'object', propertyNames: { pattern: '^[^\\s]{1,128}$' }, additionalProperties: agentToolSchema } },
  },
  description: "per-agent curation: agents: { ci-bot: { tools: { write_file: { hidden: true } } } }; each field wins over the server's tools entry",
} as const;
