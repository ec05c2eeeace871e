// The `gvisor` backend: the OCI bundle of the `oci` backend (same mounts, uid, limits, seccomp,
// environment, broker socket) run by gVisor's runsc, so the server's system calls are served by
// gVisor's user-space kernel instead of the host's. A server without network scopes gets no
// network (`--network=none`: gVisor's own loopback only). A networked one runs behind the relay
// (HTTPS_PROXY), which forwards to the broker socket, and with transparent egress inside a
// namespace Bastion prepared, with `--network=host` (gvisor-net.ts explains why).
//
// Two things runsc does differently from runc, found by the escape tests:
//  - it ignores `linux.seccomp` unless started with `--oci-seccomp` (then the sentry enforces it);
//  - this release (0.0~20221219.0) ignores `errnoRet` and answers EPERM for every rule. A rule
//    whose errno is the point (clone3 -> ENOSYS, so libc falls back to clone, whose flags the
//    filter can read) would break thread creation; it is left out, and the sentry, which does not
//    implement clone3, answers ENOSYS itself (asserted by test/sandbox/escape.test.ts, so a runsc
//    that starts implementing clone3 fails the tests instead of opening a hole).
import { existsSync } from 'node:fs';
import type { SandboxConfig } from './config.js';
import { findBinary, isRoot, runFile } from './host.js';
import { createOciBackend } from './oci.js';
import { ERRNO, type SyscallRule } from './seccomp.js';
import { prepareGvisorNetwork } from './gvisor-net.js';
import { transparentEgressFor } from './netns.js';
import type { SandboxBackend } from './types.js';

export type GvisorPlatform = 'systrap' | 'ptrace' | 'kvm';

export interface GvisorProbe {
  works: boolean;
  runsc?: string;
  version?: string;
  /** Platforms runsc started a program with here. */
  platforms: GvisorPlatform[];
  /** Per platform: `ok` or runsc's own error. */
  detail: Record<string, string>;
}

/** runsc's global flags for a platform (before the subcommand). */
export function runscGlobalArgs(platform: GvisorPlatform, network: 'none' | 'host' = 'none'): string[] {
  // --host-uds=open: the server may connect to the bound broker socket (no other host socket is bound in).
  // --oci-seccomp: without it runsc does not apply the bundle's seccomp profile at all.
  // --network=host only inside the namespace gvisor-net.ts prepared, for transparent egress.
  return [`--network=${network}`, '--host-uds=open', '--oci-seccomp', `--platform=${platform}`];
}

/** The policy as runsc enforces it: rules that rely on an errno other than EPERM are dropped (see above). */
export function runscSeccompRules(rules: SyscallRule[]): SyscallRule[] {
  return rules.filter((rule) => rule.errno !== ERRNO.ENOSYS);
}

/** Really starts /usr/bin/true with `runsc do` on each platform this runsc may know. */
export async function probeGvisor(): Promise<GvisorProbe> {
  const runsc = findBinary('runsc');
  if (!runsc) return { works: false, platforms: [], detail: { runsc: 'not installed (Debian: apt-get install runsc)' } };
  const version = (await runFile(runsc, ['--version'])).stdout.split('\n')[0]?.trim();
  const candidates: GvisorPlatform[] = ['systrap', 'ptrace'];
  if (existsSync('/dev/kvm')) candidates.push('kvm');
  const platforms: GvisorPlatform[] = [];
  const detail: Record<string, string> = {};
  if (!isRoot()) return { works: false, runsc, ...(version ? { version } : {}), platforms, detail: { root: 'the gvisor backend needs Bastion to run as root (runsc without root needs --rootless, which this backend does not use)' } };
  for (const platform of candidates) {
    // KVM inside a VM without nested virtualisation hangs instead of failing: bounded.
    const timeoutMs = platform === 'kvm' ? 5_000 : 15_000;
    const result = await runFile(runsc, [...runscGlobalArgs(platform), 'do', '/usr/bin/true'], timeoutMs);
    if (result.code === null) {
      detail[platform] = `no answer within ${timeoutMs / 1000} s (runsc hung; for kvm, usually no nested virtualisation)`;
    } else if (result.code === 0) {
      platforms.push(platform);
      detail[platform] = 'ok';
    } else {
      detail[platform] = (result.stderr.trim().split('\n').pop() ?? '') || `exit ${String(result.code)}`;
    }
  }
  return { works: platforms.length > 0, runsc, ...(version ? { version } : {}), platforms, detail };
}

let cachedProbe: Promise<GvisorProbe> | undefined;

/**
 * Refuses (throws at spawn) where runsc cannot run: never a silent fallback to another backend.
 * The platform is the configured one, else the first that works here (systrap, ptrace, kvm).
 */
export function createGvisorBackend(config: SandboxConfig): SandboxBackend {
  const oci = (platform: GvisorPlatform): SandboxBackend => createOciBackend(config, {
      name: 'gvisor',
      runtime: 'runsc',
      globalArgs: (network) => runscGlobalArgs(platform, network),
      seccompRules: runscSeccompRules,
      relay: true,
      bastionCgroup: true,
      network: (serverName, broker, warnings) => prepareGvisorNetwork(serverName, broker, transparentEgressFor(serverName, config.transparentEgress, warnings)),
    });
  return {
    name: 'gvisor',
    async spawn(spec) {
      cachedProbe ??= probeGvisor();
      const probe = await cachedProbe;
      const wanted = config.gvisor?.platform;
      const platform = wanted ?? probe.platforms[0];
      if (!probe.works || platform === undefined || !probe.platforms.includes(platform)) {
        const why = Object.entries(probe.detail).map(([key, text]) => `${key}: ${text}`).join('; ');
        throw new Error(`sandbox: cannot start ${spec.serverName} under gVisor${wanted ? ` (platform ${wanted})` : ''}: ${why || 'runsc did not start a program'}; refusing to run it any other way (choose another sandbox.backend)`);
      }
      return oci(platform).spawn(spec);
    },
  };
}
