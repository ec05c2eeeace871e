import type { AdminListenerConfig } from '../admin/config.js';
import type { DeepPartial, AuditConfig } from '../audit/config.js';
import type { QuotasConfig } from '../limits/config.js';
import type { ClusterConfig } from '../cluster/config.js';
import type { PolicyConfig } from '../policy/config.js';
import type { TrustConfig } from '../integrity/trust.js';
import type { SandboxOverride } from '../sandbox/config.js';
import type { ScanConfig } from '../scan/config.js';
import type { ServerDefinitionInspection } from '../inspection/config.js';
import type { TracingConfig } from '../observability/tracing/config.js';
import type { AgentCurationConfig, ToolCurationConfig } from '../curation/config.js';

/** A secret value: read from the environment or a file at start, never written inline. */
export type SecretRef = { fromEnv: string } | { fromFile: string };

/** A value that may be given inline (not secret) or through a secret reference. */
export type ValueOrSecret = string | SecretRef;

export interface LimitsConfig {
  /** Wall-clock limit for one call, in milliseconds. */
  timeoutMs: number;
  /** Largest response (serialized JSON) an upstream may return for one call. */
  maxOutputBytes: number;
  /** Largest request (serialized JSON) a client may send. */
  maxRequestBytes: number;
}

/** A tool's scopes and limits, and how it is shown (rename, title, description, hidden: src/curation). */
export interface ToolConfig extends ToolCurationConfig {
  limits?: Partial<LimitsConfig>;
  /** Scopes this tool needs, when no manifest declares them (see docs/policy.md). */
  scopes?: string[];
}

export type UpstreamIsolation = 'session' | 'agent' | 'shared';

export interface UpstreamPoolConfig {
  /** Processes per pool key; sessions are spread over them (default 1). */
  maxProcesses: number;
  /** A process idle this long (no call in flight, no subscription) is stopped and restarted on demand (default 600). */
  idleSeconds: number;
}

interface ServerCommon {
  /** Per-server limits; each field widens or narrows the global default. */
  limits?: Partial<LimitsConfig>;
  tools?: Record<string, ToolConfig>;
  /** Per-agent curation of this server's tools; each field wins over the tools entry (docs/configuration). */
  agents?: Record<string, AgentCurationConfig>;
  /** Path to the server's manifest (see docs/integrity.md). */
  manifest?: string;
  /** `unsigned` starts a server without a verified manifest; logged as a warning at every start. */
  trust?: 'signed' | 'unsigned';
  /** The server's code on disk, pinned in the hash lock and checked before every start (docs/integrity.md). */
  artifact?: string;
  /** Runtime definition inspection for this server, over integrity.definitions (docs/scan.md). */
  definitions?: ServerDefinitionInspection;
  /** Free-form description shown in logs. */
  description?: string;
  /** false: the server's tools, prompts and resource URIs keep their own names (at most one server). */
  namespaced: boolean;
  /** Who shares one upstream process (docs/pipeline.md, "Upstream pools"); unset: agent. */
  isolation?: UpstreamIsolation;
  /** Pool sizing at isolation agent or shared. */
  pool?: Partial<UpstreamPoolConfig>;
  /** Scopes of the server process itself (its sandbox view and egress). */
  scopes?: string[];
  /** Certification attestation (bastion certify) and the level required to start the server. */
  certification?: string;
  minCertificationLevel?: 0 | 1 | 2 | 3;
  /** This server's notification rate to one session (defaults: upstream.notifications). */
  notifications?: Partial<NotificationLimits>;
  /** Overrides of the global sandbox section for this server. */
  sandbox?: SandboxOverride & { packageDirs?: string[] };
}

export interface StdioServerConfig extends ServerCommon {
  transport: 'stdio';
  command: string;
  args: string[];
  env: Record<string, ValueOrSecret>;
  cwd?: string;
}

export interface HttpServerConfig extends ServerCommon {
  transport: 'http';
  url: string;
  headers: Record<string, ValueOrSecret>;
  /** true: the server offers only the deprecated HTTP+SSE transport (2024-11-05); url is its GET /sse endpoint. */
  legacySse?: boolean;
  /** How Bastion authenticates to this server per agent (docs/credentials.md). */
  auth?: UpstreamAuthConfig;
}

export interface UpstreamAuthConfig {
  type: 'oauth' | 'token-exchange';
  clientId?: string;
  clientSecret?: ValueOrSecret;
  scopes?: string[];
  authorizationServer?: string;
  audience?: string;
}

/** The upstream credential vault (docs/credentials.md). */
export interface CredentialsConfig {
  key: SecretRef;
  file: string;
  callbackUrl?: string;
  consentTtlSeconds: number;
}

export type ServerConfig = StdioServerConfig | HttpServerConfig;

export interface NotificationLimits {
  perSecond: number;
  burst: number;
}

export interface ApiTokenConfig {
  agent: string;
  /** Hex SHA-256 of the token. The token itself is never stored. */
  sha256: string;
  description?: string;
}

export interface OAuthConfig {
  issuer: string;
  /** Where the issuer publishes its keys (https, or http on loopback only). */
  jwksUrl?: string;
  /** A local JWKS file, for air-gapped deployments and tests. */
  jwksFile?: string;
  /** Expected `aud`; defaults to the HTTP listener's public URL. */
  audience?: string;
  algorithms: string[];
  clockSkewSeconds: number;
  /** Claim that identifies the caller (default sub); its value is looked up in `subjects`. */
  agentClaim: string;
  /** Which agent each OAuth subject (value of agentClaim) is; an unmapped one is the agent `oauth:<issuer>#<subject>`. */
  subjects?: Record<string, string>;
  /** Accepted JWT `typ` headers (default [at+jwt], RFC 9068); `untyped` accepts tokens without one. */
  tokenTypes?: string[];
  /** Longest accepted token lifetime, exp - iat, and furthest exp from now, in seconds (default 86400). */
  maxLifetimeSeconds?: number;
  /** Scopes advertised in the protected-resource metadata. */
  scopesSupported: string[];
}

export interface StdioListenerConfig {
  /** The agent id used for the one client that launched Bastion over stdio. */
  agent: string;
}

export interface HttpListenerConfig {
  host: string;
  port: number;
  path: string;
  /** The URL clients use to reach Bastion; the OAuth audience and metadata resource. */
  publicUrl?: string;
  /** Host header values accepted (DNS-rebinding defence). Defaults to the bind address and localhost. */
  allowedHosts?: string[];
  /** Origin header values accepted; requests without Origin are accepted (non-browser clients). */
  allowedOrigins: string[];
  maxSessions: number;
  sessionIdleSeconds: number;
  /** Sessions one agent may hold; undefined means a quarter of maxSessions (at least 1). */
  maxSessionsPerAgent?: number;
  /** Clients of the stateless 2026-07-28 revision: contexts per agent, requestState lifetime. */
  stateless?: { maxContextsPerAgent?: number; inputTimeoutSeconds?: number };
  /** A session that made no call after initialize ends after this much idle time. */
  unusedSessionIdleSeconds?: number;
  /** Time to receive a request's headers, and the whole request (slow-drip defence). */
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** Open connections in total and per client address; more are closed on accept. */
  maxConnections?: number;
  maxConnectionsPerAddress?: number;
  /** Refused authentications are audited once per source address and window, with a count. */
  authFailureWindowSeconds?: number;
  /** The deprecated HTTP+SSE transport (2024-11-05) beside Streamable HTTP; off unless enabled. */
  legacySse?: { enabled: boolean; ssePath?: string; messagesPath?: string };
}

export interface ReloadConfig {
  /** Reload when the config file changes (SIGHUP always reloads). */
  watch: boolean;
  /** Quiet time after the last change before the reload runs. */
  debounceMs: number;
  /** How long a removed or changed server's calls in flight may run before they are cancelled. */
  drainSeconds: number;
}

export interface BastionConfig {
  version: 1;
  /** Where Bastion keeps its state (audit log, keys, caches). */
  stateDir: string;
  /** The upstream credential vault; needed when a server has `auth`. */
  credentials?: CredentialsConfig;
  listeners: {
    stdio?: StdioListenerConfig;
    http?: HttpListenerConfig;
    /** Metrics, health and the admin API, for operators (src/admin). */
    admin?: AdminListenerConfig;
  };
  /** Traces (docs/observability.md). */
  observability: { tracing: TracingConfig };
  auth: {
    apiTokens: ApiTokenConfig[];
    oauth?: OAuthConfig;
  };
  limits: LimitsConfig;
  upstream: {
    /** First restart delay after a crash; doubles up to maxBackoffMs. */
    restartBackoffMs: number;
    maxBackoffMs: number;
    /** How long to wait for an upstream's initialize answer. */
    startTimeoutMs: number;
    /** Server-to-client sampling: the most context a request may ask for (more is lowered to this). */
    sampling: { maxIncludeContext: 'none' | 'thisServer' | 'allServers' };
    /** Notification control (docs/security.md): token buckets per server and session, coalescing window. */
    notifications: NotificationLimits & { sessionPerSecond: number; sessionBurst: number; coalesceMs: number };
  };
  /** Reloading the whole config on SIGHUP and file change (docs: README, "Reloading"). */
  reload: ReloadConfig;
  /** The audit log (docs/audit.md); resolved against stateDir by the audit module. */
  audit: DeepPartial<AuditConfig>;
  /** Signed manifests, trusted signers and the hash lock (docs/integrity.md). */
  integrity: TrustConfig;
  /** Rate limits, CPU budgets, concurrency, chain length and circuit breakers (docs/limits.md). */
  quotas: QuotasConfig;
  /** Replicas behind a load balancer sharing a Redis (docs/replicas.md); absent: one gateway. */
  cluster?: ClusterConfig;
  /** How stdio servers are confined (docs/sandbox.md). */
  sandbox: SandboxOverride;
  /** Marketplace verification at boot and output inspection (docs/scan.md). */
  scan: ScanConfig & { outputInspection: { enabled: boolean; blockAt: 'info' | 'low' | 'medium' | 'high' | 'critical'; maxInspectedBytes: number; offloadBytes: number; offloadThreads: number; reviewMaxEntries: number; reviewMaxBytes: number } };
  /** Least privilege (docs/policy.md). */
  policy: PolicyConfig & { enforce: boolean };
  servers: Record<string, ServerConfig>;
}

/** A loaded config plus where it came from, for messages. */
export interface LoadedConfig {
  config: BastionConfig;
  /** File path, or `<embedded default>`. */
  source: string;
  /** The directory relative paths in the config are resolved against. */
  baseDir: string;
}
