import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AuditEvent, createAuditGuard, openAuditWriter, resolveAuditConfig, type AuditWriter } from '../audit/index.js';
import type { LoadedConfig } from '../config/index.js';
import { Gateway, type GatewayOptions } from '../gateway/index.js';
import { reportCuration } from '../curation/index.js';
import type { Logger } from '../observability/index.js';
import type { Guard } from '../pipeline/index.js';
import { PolicyStore, createListFilter, createPolicyGuard, createServerRequestPolicy } from '../policy/index.js';
import { policyInputs } from './policy-inputs.js';
import type { SandboxHandle } from '../sandbox/index.js';
import { createSandboxLauncher, sandboxViews } from './sandbox.js';
import { eventRecorder, type RecordEvent } from './events.js';
import { hintWhenAllUndeclared } from './undeclared-hint.js';
import { admitServers, guardLaunches, hashlockInspector, openQuarantineStore } from './integrity.js';
import { createOutputInspectionGuard, DEFAULT_REVIEW_LIMITS, ReviewStore } from '../scan/index.js';
import { createLimits, type Limits } from '../limits/index.js';
import { cursorDirOf, startShipping, type Shipping } from '../audit/ship/index.js';
import { AdminListener, GatewayMetrics, UpstreamReadiness, type AdminListenerConfig, type ReadinessCheck } from '../admin/index.js';
import { createTracing, type Tracing } from '../observability/tracing/index.js';
import { resolveMap } from '../config/index.js';
import { serverStartState } from '../gateway/upstream/start-state.js';
import { ApprovalQueue, createApprovalGuard } from '../approval/index.js';
import { openApprovalJournal, recordApprovalEvents } from './approvals.js';
import { adminConsole } from './admin-console.js';
import { openCluster, type Cluster } from '../cluster/index.js';
import { ConfigReloader, type ReloadOutcome } from './reload.js';

/** How long boot waits for the Redis limit store before serving (calls then meet quotas.store.onFailure). */
const STORE_READY_MS = 5000;

/** A gateway with every control the config asks for, and how to shut it all down. */
export interface Bastion {
  gateway: Gateway;
  audit: AuditWriter;
  policy: PolicyStore | undefined;
  /** The live sandboxes per server, for CPU and memory accounting. */
  sandboxes: SandboxRegistry;
  /** Rate limits, budgets, concurrency, chain length and breakers; undefined when quotas.enabled is false. */
  limits: Limits | undefined;
  /** Prometheus metrics; undefined without listeners.admin. */
  metrics: GatewayMetrics | undefined;
  /** Live audit shipping; undefined without audit.sinks. */
  shipping: Shipping | undefined;
  /** OpenTelemetry traces; undefined unless observability.tracing.enabled. */
  tracing: Tracing | undefined;
  /** Calls waiting for an operator's approval; undefined when the policy is not enforced. */
  approvals: ApprovalQueue | undefined;
  /** The link to the other replicas (cluster:); undefined for a single gateway. */
  cluster: Cluster | undefined;
  /**
   * Re-reads the config file and applies it, or refuses it (SIGHUP and file changes call it;
   * src/app/reload.ts). Without a config file (the embedded demo) it refuses: there is nothing to read.
   */
  reload(why?: string): Promise<ReloadOutcome>;
  /** Starts the admin listener (metrics, health, admin API, console) when the config has one; resolves with its URL. */
  startAdmin(): Promise<string | undefined>;
  /** Stops listeners and upstreams, then writes the stop record and closes the audit log. */
  close(): Promise<void>;
}

export interface BastionOptions {
  loaded: LoadedConfig;
  logger: Logger;
  version: string;
  /** What `serve` changes in a config after loading it (e.g. --port); applied to every reloaded config too. */
  adjust?: (config: LoadedConfig['config']) => void;
}

/**
 * The composition root: builds each control from its config section and hands them to the
 * gateway in the order docs/pipeline.md gives. Anything that cannot be set up safely throws,
 * and the gateway does not start (fail closed).
 */
export async function createBastion(options: BastionOptions): Promise<Bastion> {
  const { loaded, logger } = options;
  const { config } = loaded;
  const stateDir = resolve(loaded.baseDir, config.stateDir);
  const auditConfig = resolveAuditConfig(config.audit, stateDir);
  const audit = await openAuditWriter(config.cluster === undefined ? auditConfig : { ...auditConfig, replica: config.cluster.replicaId });
  logAppendOnly(audit, logger);
  let cluster: Cluster | undefined;
  try {
    await audit.event(AuditEvent.ConfigLoad, { source: loaded.source, servers: Object.keys(config.servers) });
    cluster = openCluster(loaded, logger, (type, info) => void audit.event(type, info).catch(() => undefined));
    if (cluster !== undefined && !(await cluster.quarantines.ready(STORE_READY_MS).catch(() => false))) logger.error(`the cluster Redis did not answer within ${STORE_READY_MS} ms; serving anyway: quarantine approvals read as held and decisions are refused until it does`);
    const admissions = await admitServers(loaded, audit, logger);
    let shipping: Shipping | undefined;
    const metrics = config.listeners.admin === undefined ? undefined : createMetrics(config.listeners.admin, audit, () => gateway, () => shipping);
    const operatorConsole = config.listeners.admin === undefined ? undefined : adminConsole(Object.keys(config.servers));
    // A refused server is not offered at all: no process, no connection, no tools.
    const servers = Object.fromEntries(Object.entries(config.servers).filter(([name]) => !admissions.refused.has(name)));
    const gatewayConfig: LoadedConfig = { ...loaded, config: { ...config, servers } };
    // One store for the catalog's inspector and the admin API: a console decision reaches the next call at once.
    const quarantines = cluster?.quarantines ?? openQuarantineStore(loaded);
    const upstreamReadiness = new UpstreamReadiness(() => Object.keys(servers), (server) => serverStartState(gatewayConfig.config, server));
    const record = observedBy(metrics, upstreamReadiness, eventRecorder(audit, logger, operatorConsole?.feed.publishEvent.bind(operatorConsole.feed)), operatorConsole?.health.observe.bind(operatorConsole.health));
    reportCuration(servers, (server) => admissions.admitted.get(server)?.lockEntry, record, logger);
    const tracing = config.observability.tracing.enabled ? await openTracing(options) : undefined;
    const policy = openPolicy(options, record);
    // Tracing outermost (its span covers everything, metrics and audit included); metrics outside
    // audit, so that a call the audit log refuses is counted too. The console's live feed sees
    // each record once the log has committed it.
    const outermost: Guard[] = [...(tracing === undefined ? [] : [tracing.guard()]), ...(metrics === undefined ? [] : [metrics.guard()]), createAuditGuard(operatorConsole === undefined ? audit : operatorConsole.feed.tee(audit), auditConfig.capture)];
    const afterRouting: Guard[] = policy === undefined ? [] : [createPolicyGuard(policy, { servers: () => Object.keys(servers) })];
    // Right after policy: only a call the policy allows can wait for a human, and it spends no quota while it waits.
    const journal = policy === undefined ? undefined : await openApprovalJournal(loaded, stateDir, audit);
    const approvals = policy === undefined ? undefined : new ApprovalQueue({ maxPending: config.approval.maxPending, ...(journal === undefined ? {} : { journal }) });
    if (policy !== undefined && approvals !== undefined) {
      afterRouting.push(createApprovalGuard(policy, approvals, { elicitation: config.approval.channels.includes('elicitation') }));
      recordApprovalEvents(approvals, record);
    }
    const sandboxes = new SandboxRegistry();
    // Each process's sandbox binds only the grants of whom it serves, read from the policy in force at its start.
    const views = sandboxViews(config, () => policy?.current);
    // After policy, so that calls the policy denies spend no quota; before output inspection, so
    // that the breaker and the concurrency slot cover the whole upstream call.
    const limits = await openLimits(options, record, sandboxes, cluster);
    if (limits !== undefined) afterRouting.push(limits.guard);
    const inspection = config.scan.outputInspection;
    const review = new ReviewStore({ dir: join(stateDir, 'review'), maxEntries: inspection.reviewMaxEntries, maxTotalBytes: inspection.reviewMaxBytes, maxEntryBytes: DEFAULT_REVIEW_LIMITS.maxEntryBytes });
    const onReviewError = (error: unknown): void => logger.error({ err: error }, 'could not store a withheld output for review (it stays withheld)');
    if (inspection.enabled) afterRouting.push(createOutputInspectionGuard({ blockAt: inspection.blockAt, maxInspectedBytes: inspection.maxInspectedBytes, offloadBytes: inspection.offloadBytes, offloadThreads: inspection.offloadThreads, review, onReviewError }));
    const gatewayOptions: GatewayOptions = {
      loaded: gatewayConfig,
      logger,
      version: options.version,
      launcher: guardLaunches(createSandboxLauncher(config, record, logger, (server, handle) => sandboxes.add(server, handle), views), loaded, admissions, audit, logger),
      sandboxViewKey: (server, serves) => views.keyFor(server, serves),
      inspectDefinitions: hashlockInspector(admissions, record, logger, loaded, quarantines),
      extraGuards: { outermost, afterRouting },
      events: record,
      auditDigest: (canonicalJson) => audit.digestText(canonicalJson),
      ...(cluster === undefined ? {} : { requestStates: cluster.requestStates }),
      ...(policy === undefined ? {} : { listFilter: hintWhenAllUndeclared(createListFilter(policy), policy, logger, record), serverRequestPolicy: createServerRequestPolicy(policy) }),
    };
    const gateway = new Gateway(gatewayOptions);
    // A reload that changes an agent's grants restarts that agent's pooled processes with the new view.
    policy?.onReloaded(() => void gateway.policyChanged().catch((error: unknown) => logger.error({ err: error }, 'could not restart pooled processes with the new sandbox views')));
    // Only a config read from a file can be re-read (not the embedded demo, not a text given in code).
    const reloader = !isConfigFile(loaded.source) ? undefined : new ConfigReloader({ loaded, gateway, audit, logger, record, admissions, policy, limits, ...(options.adjust === undefined ? {} : { adjust: options.adjust }) });
    reloader?.handleSighup();
    if (reloader !== undefined && config.reload.watch) reloader.watch();
    await audit.event(AuditEvent.GatewayStart, { version: options.version, policy: policy !== undefined, pid: process.pid, servers: Object.keys(servers), refused: [...admissions.refused.keys()], append_only: audit.appendOnly.enabled });
    // Sinks read the committed log files from their cursors; they start after the start record is on disk.
    if (auditConfig.sinks.length > 0) shipping = startShipping({ sinks: auditConfig.sinks, audit, cursorDir: cursorDirOf(stateDir), logger });
    let admin: AdminListener | undefined;
    return {
      gateway,
      audit,
      policy,
      sandboxes,
      limits,
      metrics,
      shipping,
      tracing,
      approvals,
      cluster,
      reload: (why = 'requested') => reloader?.reload(why) ?? Promise.resolve({ status: 'refused', problems: ['the gateway runs the embedded demo config: there is no config file to reload (SIGHUP still reloads the policy)'] }),
      startAdmin: async () => {
        if (config.listeners.admin === undefined || metrics === undefined) return undefined;
        const routes = operatorConsole?.routes({ loaded, config: config.listeners.admin, auditDir: auditConfig.dir, auditKeys: audit, policy, approvals, limits, review, admissions, gateway, record, quarantines }) ?? [];
        admin = new AdminListener({ config: config.listeners.admin, metrics, readiness: [...readinessChecks(audit, limits, gateway), upstreamReadiness], logger, routes });
        return admin.listen();
      },
      close: async () => {
        reloader?.close();
        await admin?.close();
        await gateway.stop();
        policy?.close();
        await limits?.close().catch(() => undefined);
        await cluster?.close();
        await tracing?.shutdown().catch((error: unknown) => logger.warn({ err: error }, 'trace export did not finish at shutdown'));
        journal?.close();
        shipping?.recordPending();
        await audit.event(AuditEvent.GatewayStop, { pid: process.pid }).catch(() => undefined);
        await audit.close();
        // After the stop record and the last checkpoint, so that the sinks get them too.
        await shipping?.stop();
      },
    };
  } catch (error) {
    await cluster?.close();
    await audit.close().catch(() => undefined);
    throw error;
  }
}

/** One line at start on the audit files' attributes (audit.appendOnly); auto on a host without support is normal, so info, not a warning. */
function logAppendOnly(audit: AuditWriter, logger: Logger): void {
  const { enabled, detail, mirror } = audit.appendOnly;
  const mirrorNote = mirror === undefined ? '' : `; checkpoint mirror: ${mirror.enabled ? 'immutable' : `ordinary files (${mirror.detail})`}`;
  if (enabled) logger.info(`audit log ${audit.dir}: active segment append-only, sealed segments and checkpoints immutable (${detail})${mirrorNote}`);
  else logger.info(`audit log ${audit.dir}: segments and checkpoints are ordinary files (${detail}); a root process can rewrite them, which verification detects but does not prevent${mirrorNote}`);
}

function isConfigFile(source: string): boolean {
  try {
    return statSync(resolve(source)).isFile();
  } catch {
    return false;
  }
}

function createMetrics(config: AdminListenerConfig, audit: AuditWriter, gateway: () => Gateway, shipping: () => Shipping | undefined): GatewayMetrics {
  return new GatewayMetrics({
    agentLabel: config.metrics.agentLabel,
    sources: {
      sessions: () => [
        { transport: 'http', count: gateway().http?.sessionCount ?? 0 },
        { transport: 'stdio', count: gateway().stdio === undefined ? 0 : 1 },
      ],
      audit: () => ({ ...audit.stats, ...audit.placement }),
      shipping: () => shipping()?.stats() ?? [],
    },
  });
}

/** Events still go to the audit log; metrics, readiness and the console's health view see them on the way. */
function observedBy(metrics: GatewayMetrics | undefined, readiness: UpstreamReadiness, record: RecordEvent, health?: RecordEvent): RecordEvent {
  return (type, info) => {
    metrics?.observeEvent(type, info);
    readiness.observe(type, info);
    health?.(type, info);
    record(type, info);
  };
}

/** Loads OpenTelemetry (only now: with tracing off no module of it is loaded). */
async function openTracing(options: BastionOptions): Promise<Tracing> {
  const { loaded, logger } = options;
  const config = loaded.config.observability.tracing;
  const headers = resolveMap(config.headers, 'observability.tracing.headers', loaded.baseDir);
  logger.info({ endpoint: config.endpoint, sampleRatio: config.sampleRatio, guardSpans: config.guardSpans }, 'tracing on: OTLP/HTTP export');
  return createTracing({ config, headers, version: options.version, logger });
}

/** Ready when a client can be served: a listener is up, the audit log takes records, the limit store answers. */
function readinessChecks(audit: AuditWriter, limits: Limits | undefined, gateway: Gateway): ReadinessCheck[] {
  return [
    { name: 'listener', check: () => Promise.resolve(gateway.http !== undefined || gateway.stdio !== undefined ? { ok: true, detail: 'serving' } : { ok: false, detail: 'no MCP listener started yet' }) },
    { name: 'audit', check: () => Promise.resolve(audit.failedWith === undefined ? { ok: true, detail: 'writable' } : { ok: false, detail: `the audit log failed: ${audit.failedWith.message}` }) },
    { name: 'limit-store', check: async () => (limits === undefined || (await limits.ready(500)) ? { ok: true, detail: 'reachable' } : { ok: false, detail: 'the Redis limit store does not answer' }) },
  ];
}

async function openLimits(options: BastionOptions, record: RecordEvent, sandboxes: SandboxRegistry, cluster: Cluster | undefined): Promise<Limits | undefined> {
  const { loaded, logger } = options;
  const quotas = loaded.config.quotas;
  if (!quotas.enabled) {
    logger.warn('quotas are OFF (quotas.enabled: false): no rate limits, CPU budgets, concurrency or chain limits, circuit breakers');
    record(AuditEvent.Alert, { alert: 'quotas_disabled' });
    return undefined;
  }
  const limits = createLimits({
    config: quotas,
    baseDir: loaded.baseDir,
    usage: sandboxes,
    logger,
    onEvent: record,
    ...(cluster === undefined ? {} : { breakerSharing: cluster.breakers }),
  });
  if (!(await limits.ready(STORE_READY_MS))) logger.error({ onFailure: quotas.store.onFailure }, `the Redis limit store did not answer within ${STORE_READY_MS} ms; serving anyway, calls meet quotas.store.onFailure until it does`);
  return limits;
}

function openPolicy(options: BastionOptions, record: RecordEvent): PolicyStore | undefined {
  const { loaded, logger } = options;
  const { config } = loaded;
  if (!config.policy.enforce) {
    logger.warn('least privilege is OFF (policy.enforce: false): every authenticated agent may call every tool');
    record(AuditEvent.Alert, { alert: 'policy_not_enforced' });
    return undefined;
  }
  const store = PolicyStore.open({
    ...policyInputs(loaded),
    logger,
    onReload: (why, result) => record(AuditEvent.PolicyChange, { why, accepted: result.ok, problems: result.ok ? [] : result.problems.map((problem) => `${problem.file}:${problem.line ?? '?'}: ${problem.field}: ${problem.message}`) }),
  });
  store.handleSighup();
  if (config.policy.watch) store.watch();
  return store;
}

/** Live sandboxed processes per server (a server runs once per client session). */
export class SandboxRegistry {
  private readonly byServer = new Map<string, Set<SandboxHandle>>();

  add(server: string, handle: SandboxHandle): void {
    let handles = this.byServer.get(server);
    if (handles === undefined) {
      handles = new Set();
      this.byServer.set(server, handles);
    }
    handles.add(handle);
    handle.child.once('exit', () => handles.delete(handle));
  }

  /** CPU time used by the server's live processes, in ms; undefined when no sandbox can tell. */
  cpuTimeMs(server: string): number | undefined {
    return this.sum(server, (handle) => handle.cpuTimeMs());
  }

  /** Memory in use by the server's live processes, in bytes; undefined when no sandbox can tell. */
  memoryBytes(server: string): number | undefined {
    return this.sum(server, (handle) => handle.memoryBytes());
  }

  private sum(server: string, read: (handle: SandboxHandle) => number | undefined): number | undefined {
    let total: number | undefined;
    for (const handle of this.byServer.get(server) ?? []) {
      const value = read(handle);
      if (value !== undefined) total = (total ?? 0) + value;
    }
    return total;
  }
}
