// A config reload's changes to the server table of a running gateway (issue 22 item 6). Sessions
// are never dropped: each loses the servers that went and gains the ones that came, and hears
// list_changed. Removed and redefined servers are drained: calls in flight may finish for up to
// the drain time, then they are cancelled and the process is stopped.
import type { ServerChanges, ServerConfig } from '../config/index.js';
import { liveSessions } from './live-sessions.js';
import { poolsFor } from './pool/registry.js';
import type { SessionUpstream } from './pool/types.js';
import type { GatewayRuntime } from './session.js';
import { forgetServerStartState } from './upstream/start-state.js';

export interface ServerTableUpdate {
  /** The new definitions of every server the gateway offers (refused servers already left out). */
  servers: Record<string, ServerConfig>;
  changes: ServerChanges;
  /** How long a drained server's calls in flight may run before they are cancelled. */
  drainMs: number;
}

export interface ServerTableResult {
  /** Calls cancelled at the drain deadline, per server. */
  cancelledCalls: Record<string, number>;
}

/**
 * Swaps the server table. The runtime's config object keeps its identity (everything that holds
 * it reads the new definitions from now on); what was derived per server from the old definition
 * (start backoff, the launcher's sandbox backend) is forgotten. Resolves when every drained
 * server has stopped.
 */
export async function reconfigureServers(runtime: GatewayRuntime, update: ServerTableUpdate, tableSwapped?: () => void): Promise<ServerTableResult> {
  const { changes, drainMs } = update;
  const going = [...changes.removed, ...changes.changed];
  const coming = [...changes.added, ...changes.changed];
  const table = runtime.config.servers;
  for (const name of changes.removed) delete table[name];
  for (const name of [...coming, ...changes.curated]) {
    const definition = update.servers[name];
    if (definition !== undefined) table[name] = definition;
  }
  tableSwapped?.();
  for (const name of going) {
    forgetServerStartState(runtime.config, name);
    runtime.launcher.forget?.(name);
    runtime.inspectDefinitions.forget?.(name);
    runtime.events('server.reload', { server: name, action: 'drain', reason: changes.removed.includes(name) ? 'removed' : 'changed', drain_ms: drainMs });
  }
  // The pools forget the old processes now (before any session leases again), then drain them.
  const waits = new Map<string, Array<Promise<number>>>(going.map((name) => [name, []]));
  const pooled = new Map(going.map((name) => [name, poolsFor(runtime).drainServer(name, { reason: reason(changes, name), deadlineMs: drainMs, then: 'stop' })] as const));
  for (const [name, drained] of pooled) waits.get(name)?.push(drained.then((result) => result.cancelledCalls));
  for (const session of [...liveSessions(runtime)]) {
    // Every session derives its limits again (a server's or the global limits may have changed).
    for (const [name, upstream] of session.reconfigure(going, coming, changes.curated)) {
      // A lease is released once its pool has drained (releasing first would stop counting its calls).
      const drained = pooled.get(name);
      const stopped = upstream.isolation === undefined ? drainOwn(upstream, drainMs) : (drained ?? Promise.resolve()).then(() => upstream.stop()).then(() => 0);
      waits.get(name)?.push(stopped);
    }
  }
  for (const name of changes.added) runtime.events('server.reload', { server: name, action: 'start', reason: 'added' });
  const cancelledCalls: Record<string, number> = {};
  await Promise.all(going.map(async (name) => {
    const counts = await Promise.all(waits.get(name) ?? []);
    const cancelled = counts.reduce((sum, count) => sum + count, 0);
    cancelledCalls[name] = cancelled;
    const why = changes.removed.includes(name) ? 'removed' : 'changed';
    runtime.events('server.reload', { server: name, action: 'stop', reason: why, cancelled_calls: cancelled });
    if (why === 'changed') runtime.events('server.reload', { server: name, action: 'start', reason: 'changed' });
  }));
  return { cancelledCalls };
}

function reason(changes: ServerChanges, name: string): string {
  return `server '${name}' ${changes.removed.includes(name) ? 'removed' : 'changed'} by a config reload`;
}

/**
 * A session's own process of a server that went: its calls in flight may finish until the
 * deadline; whatever still runs then is cancelled by the stop (its client gets an error).
 */
async function drainOwn(upstream: SessionUpstream, drainMs: number): Promise<number> {
  const deadline = Date.now() + drainMs;
  while ((upstream.current?.inFlight ?? 0) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
  const cancelled = upstream.current?.inFlight ?? 0;
  await upstream.stop();
  return cancelled;
}
