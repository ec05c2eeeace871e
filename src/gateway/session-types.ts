// The shapes a gateway session is built from and talks through: what every session of one
// gateway shares (GatewayRuntime), how it reaches its client (SessionSink), and how the admin API
// lists it. Kept apart from session.ts so that the session class reads on its own.
import type { BastionConfig } from '../config/index.js';
import type { Logger } from '../observability/index.js';
import type { Guard } from '../pipeline/index.js';
import type { DefinitionInspector, DefinitionView, ListFilter } from './catalog.js';
import type { JsonRpcId, JsonRpcMessage } from './jsonrpc.js';
import type { ServerRequestPolicy } from './server-requests.js';
import type { ProcessSubject } from './upstream/channel.js';
import type { ProcessLauncher } from './upstream/launcher.js';
import type { UpstreamCredentials } from '../credentials/index.js';
import type { SpentLedger, StateSealer } from './stateless/sealed-state.js';

/** One downstream session (or stateless context) as the admin API lists it. */
export interface SessionSummary {
  sessionId: string;
  agent: string;
  /** How the client reached the gateway: stdio, http (Streamable HTTP) or sse (the 2024-11-05 transport). */
  transport: 'stdio' | 'http' | 'sse';
  /** A stateful session, or a stateless (2026-07-28) context the gateway keeps per agent. */
  kind: 'session' | 'stateless';
  protocolVersion: string | undefined;
  client: Record<string, unknown>;
  calls: number;
  inFlight: number;
  lastSeen: string;
}

/** How a session talks back to its client. */
export interface SessionSink {
  /**
   * Sends one message. `related` names the client request it belongs to (its response,
   * progress, or a server request made while serving it). Returns false if undeliverable.
   */
  send(message: JsonRpcMessage, related?: JsonRpcId): boolean;
  /** The request `id` ends without a response (cancelled): a transport holding a stream for it closes it. */
  release?(id: JsonRpcId): void;
}

/** A notable event outside any one request (the audit log records these). */
export type GatewayEventSink = (event: string, info: Record<string, string | number | boolean | null>) => void;

/** What all sessions of one gateway share. */
export interface GatewayRuntime {
  config: BastionConfig;
  baseDir: string;
  logger: Logger;
  launcher: ProcessLauncher;
  version: string;
  /** Guards that run before the request is routed to an upstream (authentication, size, ...). */
  guardsBeforeRouting: Guard[];
  /** Guards that need to know the target server and tool (policy, validation, ...). */
  guardsAfterRouting: Guard[];
  listFilter: ListFilter;
  inspectDefinitions: DefinitionInspector;
  serverRequestPolicy: ServerRequestPolicy;
  events: GatewayEventSink;
  /** The audit log's keyed digest of a canonical JSON text (prompt_digest of server requests). */
  auditDigest: (canonicalJson: string) => string;
  /** A key of the sandbox view a process of `server` serving `subject` gets now (pools compare it after a policy change). */
  sandboxViewKey?: (server: string, subject: ProcessSubject) => string;
  /** Per-agent tokens for remote servers with `auth` (src/credentials). */
  credentials?: UpstreamCredentials;
  /** Operator curation of tools per server and agent (src/curation): renames, overrides, hidden tools. */
  curation?: (server: string, agent: string | undefined) => DefinitionView | undefined;
  /** How requestStates are sealed and spent across replicas (src/cluster); absent: this process only. */
  requestStates?: RequestStateSealing;
}

export interface RequestStateSealing {
  replicaId: string;
  sealer: StateSealer;
  ledger: SpentLedger;
}

/** What a session's own upstream processes are initialized with (derived from the client's initialize). */
export interface UpstreamInitialize {
  protocolVersion: string;
  capabilities: Record<string, unknown>;
  clientInfo: Record<string, unknown>;
}

export interface SessionOptions {
  transport: 'stdio' | 'http' | 'sse';
  sessionId?: string;
  /** A stateless (2026-07-28) context: its client is asked only through input_required answers, so the gateway sends it no request of its own. */
  stateless?: boolean;
}
