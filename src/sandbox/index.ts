// Sandboxed execution of MCP servers: one interface, three backends chosen by config.
import { createBwrapBackend } from './bwrap.js';
import { createNoneBackend } from './none.js';
import { createOciBackend } from './oci.js';
import { createGvisorBackend } from './gvisor.js';
import type { SandboxConfig, SandboxOverride } from './config.js';
import { resolveSandboxConfig } from './config.js';
import type { SandboxBackend } from './types.js';

export type { SandboxBackend, SandboxHandle, SandboxSpec, SandboxEvents, EgressEvent, LimitEvent } from './types.js';
export type { SandboxConfig, SandboxLimits, SandboxOverride, SandboxBackendName } from './config.js';
export { DEFAULT_SANDBOX_CONFIG, DEFAULT_SANDBOX_LIMITS, resolveSandboxConfig, sandboxConfigSchema } from './config.js';
export { sandboxViewFromScopes, egressAllowed, narrowScopes, everyAgent, type SandboxView, type PathGrant, type EgressGrant, type AgentSandboxGrants, type NarrowedScopes } from './scopes.js';
export { seccompPolicy, compileSeccomp, encodeBpf, seccompFilterBytes, ociSeccompProfile, type SyscallRule } from './seccomp.js';
export { ociBundleConfig, containerRunFlags } from './oci.js';
export { hostReport, serverUid, type HostReport } from './host.js';
export { sandboxLauncher, type ServerSandboxProfile } from './launcher.js';
export { probeGvisor, runscGlobalArgs, type GvisorProbe, type GvisorPlatform } from './gvisor.js';
export { doctorReport, type DoctorReport, type DoctorCheck } from './doctor.js';

/** The backend the config names. Spawning refuses (throws) when the backend cannot work here. */
export function createSandbox(config?: SandboxOverride): SandboxBackend {
  const resolved: SandboxConfig = resolveSandboxConfig(config);
  switch (resolved.backend) {
    case 'bwrap':
      return createBwrapBackend(resolved);
    case 'oci':
      return createOciBackend(resolved);
    case 'gvisor':
      return createGvisorBackend(resolved);
    case 'none':
      return createNoneBackend();
  }
}
