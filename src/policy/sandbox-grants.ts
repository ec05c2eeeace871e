// What a sandbox can enforce of an agent's policy: the directories it may read and write and the
// destinations it may reach. A process that serves only this agent is given no more than this
// (src/sandbox/scopes.ts narrows the server's declared view with it), so a path the gateway's
// check let through but that now leads elsewhere (a rename, a planted symlink) is not even there.
import type { PolicyEvaluator } from './evaluator.js';
import type { Grant } from './policy-file.js';
import { resolvePhysical } from './path.js';
import { parseTarget, targetCovers } from './scope.js';

export interface SandboxGrants {
  readonly read: readonly string[];
  readonly write: readonly string[];
  mayConnect(host: string, port: number): boolean;
}

const NONE: SandboxGrants = { read: [], write: [], mayConnect: () => false };

function physicalPaths(grants: readonly Grant[], action: 'read' | 'write'): string[] {
  const paths = new Set<string>();
  for (const grant of grants) {
    const { scope } = grant;
    if (scope.resource !== 'filesystem' || scope.action !== action || scope.target.kind !== 'path') continue;
    if (scope.target.any) {
      paths.add('/');
      continue;
    }
    // Where the grant really is: the kernel binds the resolved location, never the link.
    const physical = resolvePhysical(scope.target.path);
    if (physical.ok) paths.add(physical.path);
  }
  return [...paths];
}

/** The agent's filesystem and network grants as the sandbox sees them (none for an agent without a policy). */
export function sandboxGrants(policy: PolicyEvaluator, agentId: string | undefined): SandboxGrants {
  if (agentId === undefined) return NONE;
  const grants = policy.grantsFor(agentId);
  if (grants.length === 0) return NONE;
  // The egress broker treats read:network and write:network alike: both open outbound connections.
  const network = grants.filter((grant) => grant.scope.resource === 'network');
  return {
    read: physicalPaths(grants, 'read'),
    write: physicalPaths(grants, 'write'),
    mayConnect: (host, port) => {
      const target = parseTarget('network', host === '*' ? String(port) : `${host.includes(':') ? `[${host}]` : host}:${port}`, host === '*' ? 'grant' : 'concrete');
      return target.ok && network.some((grant) => targetCovers(grant.scope.target, target.value));
    },
  };
}

/**
 * The agents that may reach `server` at all: a tool or prompt grant naming it (or any server),
 * or any resource grant (resource grants are not tied to a server). A shared process binds only
 * what every one of them may use.
 */
export function agentsReaching(policy: PolicyEvaluator, server: string): string[] {
  return policy.agentIds().filter((agentId) =>
    policy.grantsFor(agentId).some(({ scope }) => {
      if (scope.resource === 'resources') return true;
      if ((scope.resource !== 'tools' && scope.resource !== 'prompts') || scope.target.kind !== 'names') return false;
      return scope.target.any || scope.target.names.some((name) => name.server === undefined || name.server === server);
    }),
  );
}
