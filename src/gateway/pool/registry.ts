import type { Identity } from '../../pipeline/index.js';
import { largestRequestCap } from '../limits.js';
import { LATEST_PROTOCOL_VERSION } from '../protocol.js';
import type { GatewayRuntime } from '../session.js';
import type { ProcessSubject } from '../upstream/channel.js';
import type { InitializeParams } from '../upstream/connection.js';
import type { ManagedUpstreamOptions } from '../upstream/managed.js';
import { PoolLease } from './lease.js';
import { PooledProcess } from './process.js';
import { DEFAULT_IDLE_SECONDS, DEFAULT_MAX_PROCESSES, isolationOf, type PoolClientEvents } from './types.js';

/** What every upstream of `server` is started with, pooled or not (sizes derive from the config's caps). */
export function upstreamBaseOptions(runtime: GatewayRuntime, server: string): Omit<ManagedUpstreamOptions, 'events' | 'initialize' | 'logger' | 'restartOnDemand'> {
  const { config } = runtime;
  const serverConfig = config.servers[server];
  if (serverConfig === undefined) throw new Error(`unknown server '${server}'`);
  const caps = [serverConfig.limits?.maxOutputBytes, ...Object.values(serverConfig.tools ?? {}).map((tool) => tool.limits?.maxOutputBytes), config.limits.maxOutputBytes, 16 * 1024 * 1024];
  return {
    name: server,
    config: serverConfig,
    gateway: config,
    baseDir: runtime.baseDir,
    launcher: runtime.launcher,
    maxMessageBytes: Math.max(...caps.filter((cap): cap is number => cap !== undefined)),
    maxQueuedInputBytes: Math.max(8 * 1024 * 1024, 4 * largestRequestCap(config)),
  };
}

/**
 * How a pooled upstream is initialized (once per process, not per session): the gateway's newest
 * protocol revision, and the client capabilities the gateway can route (sampling and elicitation
 * go to the session whose call caused them, which must itself have declared them; roots are
 * answered from the agent's grants).
 */
export function pooledInitialize(runtime: GatewayRuntime, pool: string): InitializeParams {
  return {
    protocolVersion: LATEST_PROTOCOL_VERSION,
    capabilities: { sampling: {}, elicitation: {}, roots: {} },
    clientInfo: { name: 'bastion', version: runtime.version, title: `Bastion gateway (pool ${pool})` },
  };
}

/** How UpstreamPools.drainServer drains. */
export interface DrainOptions {
  /** Why (the upstream.recycled audit record carries it). */
  reason: string;
  /** Longest wait for the calls in flight; absent: until they end by their own answer or timeout. */
  deadlineMs?: number;
  /** Which processes of the server; absent: all of them. */
  select?: (process: PooledProcess) => boolean;
  /** restart: the next call starts the process again; stop: the process is stopped and forgotten. */
  then: 'restart' | 'stop';
}

export interface DrainResult {
  /** Processes drained. */
  processes: number;
  /** Calls still running at the deadline, cancelled. */
  cancelledCalls: number;
}

/**
 * Every pooled upstream process of one gateway, keyed by server and pool key (the agent id at
 * isolation agent, `*` at shared). Processes start on first use and stay warm after their last
 * session goes, until their idle time runs out, so a new session on a warm pool spawns nothing.
 */
export class UpstreamPools {
  private readonly processes = new Map<string, PooledProcess[]>();
  private readonly identities = new Map<string, Identity>();
  private stopped = false;

  constructor(private readonly runtime: GatewayRuntime) {}

  /** A lease on a process of `server` for this identity's pool; the least shared process, or a new one while under maxProcesses. */
  lease(server: string, identity: Identity | undefined, events: PoolClientEvents, sessionId: string): PoolLease {
    if (this.stopped) throw new Error('the gateway is stopping');
    const serverConfig = this.runtime.config.servers[server];
    if (serverConfig === undefined) throw new Error(`unknown server '${server}'`);
    const isolation = isolationOf(serverConfig);
    if (isolation === 'session') throw new Error(`server '${server}' is not pooled (isolation: session)`);
    // A session without an identity shares with nobody: it gets a pool of its own (fail closed).
    const agentId = identity?.agentId ?? null;
    const pool = isolation === 'shared' ? '*' : (agentId ?? `session:${sessionId}`);
    const key = `${server}\u0000${pool}`;
    if (identity !== undefined && isolation === 'agent' && !this.identities.has(key)) this.identities.set(key, identity);
    let list = this.processes.get(key);
    if (list === undefined) {
      list = [];
      this.processes.set(key, list);
    }
    const maxProcesses = serverConfig.pool?.maxProcesses ?? DEFAULT_MAX_PROCESSES;
    let chosen = list.reduce<PooledProcess | undefined>((best, candidate) => (best === undefined || candidate.leases.size < best.leases.size ? candidate : best), undefined);
    if (chosen === undefined || (chosen.leases.size > 0 && list.length < maxProcesses)) {
      const idleMs = (serverConfig.pool?.idleSeconds ?? DEFAULT_IDLE_SECONDS) * 1000;
      const serves: ProcessSubject = { isolation, agentId: isolation === 'shared' ? null : agentId };
      chosen = new PooledProcess(
        this.runtime,
        { server, pool, isolation, agentId: serves.agentId },
        () => this.identities.get(key),
        idleMs,
        { ...upstreamBaseOptions(this.runtime, server), initialize: pooledInitialize(this.runtime, pool), logger: this.runtime.logger.child({ pool, index: list.length }), serves },
      );
      chosen.viewKey = this.runtime.sandboxViewKey?.(server, serves);
      list.push(chosen);
    }
    return new PoolLease(server, isolation, chosen, events);
  }

  /** The pooled processes of `server` (every server if omitted), for tests, benchmarks and status. */
  list(server?: string): PooledProcess[] {
    return [...this.processes.entries()].filter(([key]) => server === undefined || key.startsWith(`${server}\u0000`)).flatMap(([, list]) => list);
  }

  /**
   * Re-derives every pooled process's sandbox view (after a policy change): a process whose view
   * differs is drained (calls in flight finish, calls routed meanwhile wait) and restarted with
   * the new one on its next call. Resolves with how many were restarted.
   */
  async refreshViews(reason: string): Promise<number> {
    const viewKey = this.runtime.sandboxViewKey;
    if (viewKey === undefined) return 0;
    const changed = new Set(this.list().filter((process) => {
      const now = viewKey(process.facts.server, { isolation: process.facts.isolation, agentId: process.facts.agentId });
      if (now === process.viewKey) return false;
      process.viewKey = now;
      return true;
    }));
    const servers = new Set([...changed].map((process) => process.facts.server));
    const drained = await Promise.all([...servers].map((server) => this.drainServer(server, { reason, select: (process) => changed.has(process), then: 'restart' })));
    return drained.reduce((sum, result) => sum + result.processes, 0);
  }

  /**
   * Drains pooled processes of `server` (all, or those `select` picks): each waits for its calls
   * in flight, at most `deadlineMs` (then they are cancelled), and is then either restarted on
   * its next call (`restart`: a new sandbox view) or stopped and forgotten (`stop`: the server
   * was removed or redefined by a config reload; the next lease starts a process from the
   * config in force then, and leases still held on the old one see the server unavailable).
   */
  async drainServer(server: string, options: DrainOptions): Promise<DrainResult> {
    const processes = this.list(server).filter((process) => options.select?.(process) ?? true);
    if (options.then === 'stop') {
      for (const [key, list] of [...this.processes.entries()]) {
        if (!key.startsWith(`${server}\u0000`)) continue;
        const kept = list.filter((process) => !processes.includes(process));
        if (kept.length === 0) {
          this.processes.delete(key);
          this.identities.delete(key);
        } else this.processes.set(key, kept);
      }
    }
    const cancelled = await Promise.all(processes.map(async (process) => {
      const left = await process.drain(options.reason, options.deadlineMs);
      if (options.then === 'stop') await process.stop();
      return left;
    }));
    return { processes: processes.length, cancelledCalls: cancelled.reduce((sum, count) => sum + count, 0) };
  }

  async stopAll(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.list().map((process) => process.stop()));
  }
}

const registries = new WeakMap<GatewayRuntime, UpstreamPools>();

/** The pools of the gateway that owns `runtime`. */
export function poolsFor(runtime: GatewayRuntime): UpstreamPools {
  let pools = registries.get(runtime);
  if (pools === undefined) {
    pools = new UpstreamPools(runtime);
    registries.set(runtime, pools);
  }
  return pools;
}
