import { plainDigest } from '../audit/index.js';
import { Authenticator } from '../auth/index.js';
import type { ApiTokenConfig, LimitsConfig, LoadedConfig } from '../config/index.js';
import { authenticationGuard, createValidationGuard, requestSizeGuard } from '../guards/index.js';
import type { Logger } from '../observability/index.js';
import type { Guard, Identity } from '../pipeline/index.js';
import { publishEverything, type DefinitionInspector, type ListFilter } from './catalog.js';
import { HttpListener } from './downstream/http.js';
import { StdioListener } from './downstream/stdio.js';
import { poolsFor, type UpstreamPools } from './pool/registry.js';
import { reconfigureServers, type ServerTableResult, type ServerTableUpdate } from './reconfigure.js';
import type { ServerRequestPolicy } from './server-requests.js';
import type { GatewayEventSink, GatewayRuntime, RequestStateSealing } from './session.js';
import { directLauncher, type ProcessLauncher } from './upstream/launcher.js';
import { UpstreamCredentials } from '../credentials/index.js';
import { curationFromConfig, type CurationSource } from '../curation/index.js';

export interface GatewayOptions {
  loaded: LoadedConfig;
  logger: Logger;
  version: string;
  launcher?: ProcessLauncher;
  /** Extra guards from other modules, placed by the pipeline order in docs/pipeline.md. */
  extraGuards?: { outermost?: Guard[]; beforeRouting?: Guard[]; afterRouting?: Guard[] };
  listFilter?: ListFilter;
  inspectDefinitions?: DefinitionInspector;
  serverRequestPolicy?: ServerRequestPolicy;
  events?: GatewayEventSink;
  /** The audit log's keyed digest (AuditLog.digestText); without it, plain SHA-256. */
  auditDigest?: (canonicalJson: string) => string;
  /** The key of a process's sandbox view now (src/app/sandbox.ts); without it, views never change. */
  sandboxViewKey?: GatewayRuntime['sandboxViewKey'];
  /** Replicas: requestStates sealed with the cluster's key and spent in its Redis (src/cluster). */
  requestStates?: RequestStateSealing;
  /** Tool curation; default: from servers.NAME.tools and servers.NAME.agents in the config. */
  curation?: CurationSource;
}

/**
 * The gateway's guard order (docs/pipeline.md). The outermost guards (audit) see every
 * outcome; authentication comes next so nothing unauthenticated reaches any other control;
 * size before any parsing-heavy work; routing before the guards that need to know the server
 * and tool; argument validation last, right before dispatch.
 */
export function buildRuntime(options: GatewayOptions): GatewayRuntime {
  const { loaded } = options;
  return {
    config: loaded.config,
    baseDir: loaded.baseDir,
    logger: options.logger,
    launcher: options.launcher ?? directLauncher,
    version: options.version,
    guardsBeforeRouting: [...(options.extraGuards?.outermost ?? []), authenticationGuard, requestSizeGuard, ...(options.extraGuards?.beforeRouting ?? [])],
    guardsAfterRouting: [...(options.extraGuards?.afterRouting ?? []), createValidationGuard()],
    listFilter: options.listFilter ?? ((_identity, _server, _kind, items) => items),
    inspectDefinitions: options.inspectDefinitions ?? publishEverything,
    serverRequestPolicy: options.serverRequestPolicy ?? (() => undefined),
    events: options.events ?? (() => undefined),
    auditDigest: options.auditDigest ?? plainDigest,
    ...(options.sandboxViewKey === undefined ? {} : { sandboxViewKey: options.sandboxViewKey }),
    ...(options.requestStates === undefined ? {} : { requestStates: options.requestStates }),
    curation: options.curation ?? curationOfConfig(loaded.config.servers, options),
    // Per-agent upstream identity (docs/credentials.md); a bad vault key stops the start here.
    ...(UpstreamCredentials.needed(loaded.config) ? { credentials: new UpstreamCredentials(loaded.config, loaded.baseDir, options.events ?? (() => undefined)) } : {}),
  };
}

/**
 * Curation from servers.NAME.tools and servers.NAME.agents. An entry naming a tool the server
 * does not list is logged and audited (an operator's typo would otherwise go unnoticed).
 */
function curationOfConfig(servers: LoadedConfig['config']['servers'], options: Pick<GatewayOptions, 'logger' | 'events'>): CurationSource {
  return curationFromConfig(servers, (server, agent, tool) => {
    options.logger.warn({ server, agent: agent ?? null, tool }, 'curation names a tool this server does not list; the entry has no effect until it does');
    options.events?.('curation.unknown_tool', { server, agent: agent ?? null, tool });
  });
}

/** A running gateway: its listeners and how to stop them. */
export class Gateway {
  readonly runtime: GatewayRuntime;
  http: HttpListener | undefined;
  stdio: StdioListener | undefined;

  /** Curation is rebuilt from the config on reload unless the options gave one of their own. */
  private readonly curationFromConfig: boolean;

  constructor(private readonly options: GatewayOptions) {
    this.runtime = buildRuntime(options);
    this.curationFromConfig = options.curation === undefined;
  }

  /** Starts the HTTP listener; resolves with its URL. Refuses to run it without any credential. */
  async startHttp(authenticator?: Authenticator): Promise<string> {
    const listenerConfig = this.runtime.config.listeners.http;
    if (listenerConfig === undefined) throw new Error('no listeners.http in the config');
    const hostForUrl = listenerConfig.host.includes(':') ? `[${listenerConfig.host}]` : listenerConfig.host;
    const audience = listenerConfig.publicUrl ?? `http://${hostForUrl}:${listenerConfig.port}${listenerConfig.path}`;
    const auth = authenticator ?? new Authenticator(this.runtime.config, audience, this.runtime.baseDir);
    if (auth.empty) throw new Error('the HTTP listener needs credentials: add auth.apiTokens (see bastion token new) or auth.oauth');
    this.http = new HttpListener(this.runtime, listenerConfig, auth);
    return this.http.listen();
  }

  /** Serves the client that launched this process over stdin/stdout. */
  startStdio(identity: Identity): StdioListener {
    this.stdio = new StdioListener(this.runtime, identity);
    return this.stdio;
  }

  /** The pooled upstream processes (isolation agent and shared). */
  get pools(): UpstreamPools {
    return poolsFor(this.runtime);
  }

  /**
   * The policy changed: every pooled process whose sandbox view is no longer what its agent's
   * grants give is drained (its calls in flight finish) and restarted with the new view.
   * Resolves with how many were restarted.
   */
  policyChanged(): Promise<number> {
    return poolsFor(this.runtime).refreshViews('the policy changed the sandbox view');
  }

  /**
   * A config reload (src/app/reload.ts): the server table changes under the running sessions
   * (src/gateway/reconfigure.ts), curation is derived again, and the HTTP listener checks the
   * new API tokens from its next request on. Resolves once drained servers have stopped.
   */
  async reconfigure(update: ServerTableUpdate & { apiTokens?: ApiTokenConfig[]; limits?: LimitsConfig }): Promise<ServerTableResult> {
    if (update.apiTokens !== undefined) {
      this.runtime.config.auth.apiTokens = update.apiTokens;
      this.http?.replaceApiTokens(update.apiTokens);
    }
    if (update.limits !== undefined) Object.assign(this.runtime.config.limits, update.limits);
    // The new views are made from the new table: the table is swapped first, then the curation, then sessions hear of it.
    const rebuildCuration = this.curationFromConfig ? () => { this.runtime.curation = curationOfConfig(this.runtime.config.servers, this.options); } : undefined;
    const result = reconfigureServers(this.runtime, update, rebuildCuration);
    this.http?.configChanged();
    return result;
  }

  /** Closes every session and stops every upstream process. */
  async stop(): Promise<void> {
    await Promise.all([this.http?.close(), this.stdio?.close()]);
    await poolsFor(this.runtime).stopAll();
  }
}
