import { existsSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, parse, sep } from 'node:path';
import type { BastionConfig, ServerConfig } from '../config/index.js';
import type { LaunchSpec, ProcessLauncher, ProcessSubject } from '../gateway/index.js';
import type { Logger } from '../observability/index.js';
import { agentsReaching, sandboxGrants, type PolicyEvaluator } from '../policy/index.js';
import { createSandbox, everyAgent, narrowScopes, resolveSandboxConfig, type NarrowedScopes, type SandboxBackend, type SandboxHandle, type SandboxOverride } from '../sandbox/index.js';
import type { RecordEvent } from './events.js';

/** Called with each started server's sandbox handle (the limits module reads CPU time from it). */
export type SandboxStartListener = (server: string, handle: SandboxHandle) => void;

/**
 * Starts every stdio server in the sandbox its config asks for, with a filesystem view and
 * egress built from the server's scopes: the same declarations the policy checks per call,
 * enforced a second time by the kernel.
 */
export function createSandboxLauncher(config: BastionConfig, record: RecordEvent, logger: Logger, onStart: SandboxStartListener, views: SandboxViews = sandboxViews(config, () => undefined)): ProcessLauncher {
  const backends = new Map<string, SandboxBackend>();
  const backendFor = (server: string): SandboxBackend => {
    let backend = backends.get(server);
    if (backend === undefined) {
      const serverConfig = config.servers[server];
      backend = createSandbox(resolveSandboxConfig(config.sandbox as SandboxOverride, serverConfig?.sandbox as SandboxOverride | undefined));
      backends.set(server, backend);
    }
    return backend;
  };
  return {
    name: 'sandbox',
    async launch(spec: LaunchSpec) {
      const server = config.servers[spec.server] as ServerConfig;
      const backend = backendFor(spec.server);
      const view = views.viewFor(spec.server, spec.serves);
      if (spec.serves !== undefined) record('sandbox.view', { server: spec.server, isolation: spec.serves.isolation, agent_id: spec.serves.agentId, scopes: view.scopes.length, hidden: view.hidden.length });
      const handle = await backend.spawn({
        serverName: spec.server,
        command: spec.command,
        args: spec.args,
        env: spec.env,
        ...(spec.cwd !== undefined ? { cwd: spec.cwd } : {}),
        packageDirs: server.sandbox?.packageDirs ?? packageDirsFor([spec.command, ...spec.args]),
        scopes: view.scopes,
        ...(view.hidden.length > 0 ? { hiddenPaths: view.hidden } : {}),
        instances: (config.listeners.http?.maxSessions ?? 0) + (config.listeners.stdio === undefined ? 0 : 1),
      });
      for (const warning of handle.warnings) {
        logger.warn({ server: spec.server, backend: backend.name }, warning);
        record('sandbox.warning', { server: spec.server, backend: backend.name, warning });
      }
      handle.events.on('egress', (event) =>
        record('sandbox.egress', {
          server: event.server, host: event.host, port: event.port, decision: event.allowed ? 'allow' : 'deny', reason: event.reason,
          ...(event.via !== undefined ? { via: event.via } : {}),
          ...(event.scope !== undefined ? { scope: event.scope } : {}),
          ...(event.suppressed !== undefined ? { suppressed: event.suppressed } : {}),
        }),
      );
      handle.events.on('limit', (event) => {
        logger.warn({ server: event.server, kind: event.kind }, `sandbox limit reached: ${event.detail}`);
        record('sandbox.limit', { server: event.server, kind: event.kind, detail: event.detail });
      });
      onStart(spec.server, handle);
      return { child: handle.child, dispose: () => handle.dispose(), describeExit: (code, signal) => handle.describeExit(code, signal) };
    },
    // A server removed or redefined by a reload gets a backend from its new definition on its next start.
    forget: (server) => {
      backends.delete(server);
    },
  };
}

/** The sandbox view of each process: the server's declared scopes, narrowed to the grants of whom it serves. */
export interface SandboxViews {
  viewFor(server: string, serves: ProcessSubject | undefined): NarrowedScopes;
  /** A key of the view a process serving `serves` would get now (it changes when the policy changes what it binds). */
  keyFor(server: string, serves: ProcessSubject): string;
}

/**
 * Per-agent views (docs/security.md, "Upstream isolation levels"). `session` and `agent`: the
 * declared scopes narrowed to that agent's grants. `shared`: narrowed to what every agent that may
 * reach the server is granted (the intersection), so no agent's grant widens another's view.
 * Without a policy (policy.enforce false) there is nothing to narrow by: the declared view.
 */
export function sandboxViews(config: BastionConfig, policy: () => PolicyEvaluator | undefined): SandboxViews {
  const viewFor = (server: string, serves: ProcessSubject | undefined): NarrowedScopes => {
    const serverConfig = config.servers[server];
    const declared = serverConfig === undefined ? [] : sandboxScopes(serverConfig);
    const evaluator = policy();
    if (evaluator === undefined || serves === undefined) return { scopes: declared, hidden: [] };
    const grants = serves.isolation === 'shared'
      ? everyAgent(agentsReaching(evaluator, server).map((agentId) => sandboxGrants(evaluator, agentId)))
      : sandboxGrants(evaluator, serves.agentId ?? undefined);
    return narrowScopes(declared, grants);
  };
  return {
    viewFor,
    keyFor: (server, serves) => {
      try {
        return JSON.stringify(viewFor(server, serves));
      } catch (error) {
        return `unusable: ${error instanceof Error ? error.message : String(error)}`;
      }
    },
  };
}

/**
 * What the server process may touch: its own `scopes`, plus every tool scope that names a fixed
 * target. Argument-bound scopes (`${path}`) are checked per call by the policy and cannot widen
 * the sandbox.
 */
export function sandboxScopes(server: ServerConfig): string[] {
  const fixed = Object.values(server.tools ?? {}).flatMap((tool) => (tool.scopes ?? []).filter((scope) => !scope.includes('${')));
  return [...new Set([...(server.scopes ?? []), ...fixed])];
}

/**
 * The read-only code a server needs: for a script inside node_modules, that whole
 * node_modules tree (its dependencies); for a script of a project, its directory, the
 * project's package.json (module type) and node_modules. Never the project root itself,
 * where Bastion's own state and keys may live.
 */
export function packageDirsFor(argv: readonly string[]): string[] {
  const dirs = new Set<string>();
  for (const arg of argv) {
    if (!isAbsolute(arg) || !existsSync(arg) || !statSync(arg).isFile()) continue;
    const real = realpathSync(arg);
    if (real.startsWith('/usr/') || real.startsWith('/bin/')) continue;
    const marker = `${sep}node_modules${sep}`;
    const index = real.indexOf(marker);
    if (index !== -1) {
      dirs.add(real.slice(0, index + marker.length - 1));
      continue;
    }
    dirs.add(dirname(real));
    for (let dir = dirname(real); dir !== parse(dir).root; dir = dirname(dir)) {
      if (existsSync(join(dir, 'package.json'))) {
        dirs.add(join(dir, 'package.json'));
        if (existsSync(join(dir, 'node_modules'))) dirs.add(join(dir, 'node_modules'));
        break;
      }
    }
  }
  return [...dirs];
}
