// The `sandbox:` section of bastion.yaml (global, and per server to override), its defaults and
// its JSON Schema fragment for the config module to merge.

export type SandboxBackendName = 'bwrap' | 'oci' | 'gvisor' | 'none';

/** Kernel-enforced limits for one server's whole process tree. */
export interface SandboxLimits {
  /** cgroup memory limit (bytes) for the tree. */
  memoryBytes: number;
  /** cgroup pids.max for the tree, and RLIMIT_NPROC for the server's uid. */
  pids: number;
  /** cgroup CPU quota, in CPUs (0.5 = half of one core). */
  cpus: number;
  /** RLIMIT_CPU: CPU seconds any one process may use before SIGXCPU/SIGKILL. */
  cpuSeconds: number;
  /** RLIMIT_NOFILE. */
  openFiles: number;
  /** RLIMIT_FSIZE: largest file a process may write (bytes). */
  fileSizeBytes: number;
  /** Size of the private /tmp (tmpfs, bytes). */
  tmpBytes: number;
}

export interface SandboxConfig {
  backend: SandboxBackendName;
  limits: SandboxLimits;
  /**
   * What to do when cgroups cannot be used on this host: `refuse` (fail closed) or `degrade`
   * (keep rlimits and namespaces, lose memory/pids/CPU-quota accounting; reported by doctor).
   */
  cgroups: 'require' | 'degrade';
  /** First uid/gid of the range servers run as when Bastion is root (61000 + hash % uidCount). */
  uidBase: number;
  uidCount: number;
  /** Extra read-only paths every sandbox sees (e.g. a node install outside /usr). */
  readOnlyPaths: string[];
  /** cgroup under which per-server cgroups are created; default: Bastion's own cgroup. */
  cgroupParent?: string;
  /** OCI backend: runtime binary and where bundles are written. */
  oci: { runtime: string; bundleDir: string };
  /**
   * Plain connect() and DNS to granted destinations (nftables redirect in the sandbox namespace to
   * the relay, decided by the broker). `auto`: where the host allows it (root, nft, ip, nsenter),
   * else HTTPS_PROXY only with a warning; `require`: refuse to start without it; `off`: proxy only.
   */
  transparentEgress: 'auto' | 'require' | 'off';
  /** gvisor backend: the runsc platform (default: the first of systrap, ptrace, kvm that works here). */
  gvisor?: { platform?: 'systrap' | 'ptrace' | 'kvm' };
}

export const DEFAULT_SANDBOX_LIMITS: Readonly<SandboxLimits> = Object.freeze({
  memoryBytes: 512 * 1024 * 1024,
  pids: 128,
  cpus: 1,
  cpuSeconds: 3600,
  openFiles: 1024,
  fileSizeBytes: 64 * 1024 * 1024,
  tmpBytes: 64 * 1024 * 1024,
});

export const DEFAULT_SANDBOX_CONFIG: Readonly<SandboxConfig> = Object.freeze({
  backend: 'bwrap',
  limits: DEFAULT_SANDBOX_LIMITS,
  cgroups: 'degrade',
  uidBase: 61000,
  uidCount: 1000,
  readOnlyPaths: [],
  oci: { runtime: 'runc', bundleDir: '/run/bastion/oci' },
  transparentEgress: 'auto',
});

/** Per-server override: any field of the global section, limits merged field by field. */
export type SandboxOverride = Partial<Omit<SandboxConfig, 'limits'>> & { limits?: Partial<SandboxLimits> };

export function resolveSandboxConfig(global: SandboxOverride | undefined, perServer?: SandboxOverride): SandboxConfig {
  const base = DEFAULT_SANDBOX_CONFIG;
  return {
    ...base,
    ...global,
    ...perServer,
    limits: { ...base.limits, ...global?.limits, ...perServer?.limits },
    oci: { ...base.oci, ...global?.oci, ...perServer?.oci },
    readOnlyPaths: [...(global?.readOnlyPaths ?? []), ...(perServer?.readOnlyPaths ?? [])],
  };
}

const positiveInteger = { type: 'integer', minimum: 1 } as const;

/** JSON Schema fragment for `sandbox:` (global) and `servers.<name>.sandbox:` (override). */
export const sandboxConfigSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    backend: { enum: ['bwrap', 'oci', 'gvisor', 'none'], description: 'none runs servers unconfined and is logged as a warning at every start' },
    cgroups: { enum: ['require', 'degrade'] },
    uidBase: { type: 'integer', minimum: 1000, maximum: 4294900000 },
    uidCount: { type: 'integer', minimum: 1, maximum: 65536 },
    readOnlyPaths: { type: 'array', items: { type: 'string', pattern: '^/' } },
    cgroupParent: { type: 'string', pattern: '^/' },
    transparentEgress: { enum: ['auto', 'require', 'off'], description: 'plain TCP and DNS to granted destinations; auto: where the host allows it (root, nftables, iproute2)' },
    limits: {
      type: 'object',
      additionalProperties: false,
      properties: {
        memoryBytes: { type: 'integer', minimum: 16777216 },
        pids: positiveInteger,
        cpus: { type: 'number', exclusiveMinimum: 0 },
        cpuSeconds: positiveInteger,
        openFiles: { type: 'integer', minimum: 16 },
        fileSizeBytes: positiveInteger,
        tmpBytes: { type: 'integer', minimum: 1048576 },
      },
    },
    gvisor: {
      type: 'object',
      additionalProperties: false,
      properties: { platform: { enum: ['systrap', 'ptrace', 'kvm'], description: 'runsc --platform; default: the first that works here (bastion doctor lists them)' } },
    },
    oci: {
      type: 'object',
      additionalProperties: false,
      properties: { runtime: { type: 'string', minLength: 1 }, bundleDir: { type: 'string', pattern: '^/' } },
    },
  },
} as const;

/** RLIMIT_NPROC is per uid: it must hold every copy of the server that may run at once under it. */
export function nprocLimit(limits: SandboxLimits, instances = 1): number {
  return limits.pids * Math.max(1, instances) + 16;
}
