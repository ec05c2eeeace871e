// The `oci` backend: an OCI runtime bundle (config.json) with the same view as the bwrap
// backend, run by runc (rootless when Bastion is not root). Also renders the equivalent
// `docker run` / `podman run` flags for servers published as images, for hosts with an engine.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { chownSync, existsSync, lstatSync, mkdirSync, readlinkSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { nprocLimit, type SandboxConfig, type SandboxLimits } from './config.js';
import { sandboxViewFromScopes } from './scopes.js';
import { ociSeccompProfile, seccompPolicy, type OciSeccompProfile, type SyscallRule } from './seccomp.js';
import { findBinary, isRoot, nodeInstallPrefix, runFile, serverUid } from './host.js';
import { hostCgroupLayout, ServerCgroup } from './cgroups.js';
import { startEgressBroker, type EgressBroker } from './broker.js';
import type { ContainerNetwork } from './gvisor-net.js';
import { nameExit } from './exit.js';
import { RELAY_PROXY_PORT } from './netns.js';
import type { SandboxBackend, SandboxEvents, SandboxHandle, SandboxSpec } from './types.js';

/** Inside the container: where the broker socket and the relay appear (as under bwrap). */
const CONTAINER_EGRESS_SOCKET = '/run/bastion/egress.sock';
const CONTAINER_RELAY = '/run/bastion/relay.mjs';

interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export interface OciRuntimeConfig {
  ociVersion: string;
  process: {
    terminal: false;
    user: { uid: number; gid: number; additionalGids: number[] };
    args: string[];
    env: string[];
    cwd: string;
    noNewPrivileges: true;
    capabilities: { bounding: []; effective: []; inheritable: []; permitted: []; ambient: [] };
    rlimits: Array<{ type: string; hard: number; soft: number }>;
  };
  root: { path: string; readonly: true };
  hostname: string;
  mounts: OciMount[];
  linux: {
    namespaces: Array<{ type: string }>;
    uidMappings?: Array<{ containerID: number; hostID: number; size: number }>;
    gidMappings?: Array<{ containerID: number; hostID: number; size: number }>;
    resources: {
      memory: { limit: number; swap: number };
      pids: { limit: number };
      cpu: { quota: number; period: number };
    };
    seccomp: OciSeccompProfile & { defaultErrnoRet?: number };
    maskedPaths: string[];
    readonlyPaths: string[];
    cgroupsPath?: string;
  };
}

const bind = (source: string, destination: string, writable: boolean): OciMount => ({
  destination,
  type: 'bind',
  source,
  options: ['rbind', 'nosuid', 'nodev', writable ? 'rw' : 'ro'],
});

function systemMounts(): OciMount[] {
  const mounts: OciMount[] = [];
  for (const dir of ['/usr', '/lib', '/lib64', '/bin', '/sbin']) {
    // Symlinked top-level dirs (merged /usr) are part of the bound /usr; the rootfs gets links.
    if (existsSync(dir) && !lstatSync(dir).isSymbolicLink()) mounts.push(bind(dir, dir, false));
  }
  for (const file of ['/etc/ld.so.cache', '/etc/ssl', '/etc/ca-certificates', '/etc/localtime']) {
    if (existsSync(file)) mounts.push(bind(realpathSync(file), file, false));
  }
  return mounts;
}

export interface OciBundleOptions {
  /** Host path of the compiled relay: a networked server runs behind it, with HTTPS_PROXY set (as under bwrap). */
  relayScript?: string;
  /** The rules as this runtime can enforce them (runsc: see gvisor.ts). */
  seccompRules?: (rules: SyscallRule[]) => SyscallRule[];
  /** Host path of the broker's resolv.conf (naming the relay's DNS stub), bound as /etc/resolv.conf. */
  resolvConf?: string;
  /**
   * The container joins the runtime's own network namespace (one Bastion prepared) instead of a
   * new one, and has no user namespace: runsc runs a `--network=host` sandbox in the container's
   * user namespace, where its re-exec as an unmapped uid would lose the capabilities it needs to
   * build its chroot ("error converting mounts: operation not permitted"). The server then runs
   * as its host uid directly (gVisor's users are its own; the gofer creates files as that uid).
   */
  inheritNetwork?: boolean;
}

/** config.json for one server. `hostUid` is the uid the container maps to (the per-server uid as root). */
export function ociBundleConfig(spec: SandboxSpec, limits: SandboxLimits, hostUid: number, egressSocket?: string, options: OciBundleOptions = {}): OciRuntimeConfig {
  const view = sandboxViewFromScopes(spec.scopes);
  const relayed = egressSocket !== undefined && view.egress.length > 0 && options.relayScript !== undefined;
  const env: Record<string, string> = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/tmp', TMPDIR: '/tmp', LANG: 'C.UTF-8', ...spec.env };
  if (relayed) {
    const proxy = `http://127.0.0.1:${RELAY_PROXY_PORT}`;
    Object.assign(env, { HTTPS_PROXY: proxy, HTTP_PROXY: proxy, https_proxy: proxy, http_proxy: proxy, BASTION_EGRESS_SOCKET: CONTAINER_EGRESS_SOCKET });
  }
  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', `size=${limits.tmpBytes}`] },
    ...systemMounts(),
  ];
  const nodePrefix = nodeInstallPrefix();
  if (!nodePrefix.startsWith('/usr')) mounts.push(bind(nodePrefix, nodePrefix, false));
  for (const dir of spec.packageDirs) mounts.push(bind(realpathSync(dir), realpathSync(dir), false));
  for (const grant of view.paths) mounts.push(bind(grant.path, grant.path, grant.writable));
  if (egressSocket && view.egress.length > 0) mounts.push(bind(egressSocket, CONTAINER_EGRESS_SOCKET, false));
  if (relayed && options.relayScript) mounts.push(bind(options.relayScript, CONTAINER_RELAY, false));
  if (relayed && options.resolvConf) mounts.push(bind(options.resolvConf, '/etc/resolv.conf', false));
  // The relay listens on the container's loopback, so it (and the server) need AF_INET; the
  // container has no other interface, so that reaches nothing but the relay.
  const rules = seccompPolicy({ allowInet: relayed });
  const profile = ociSeccompProfile(options.seccompRules ? options.seccompRules(rules) : rules);
  const relayPrefix = relayed ? [realpathSync(process.execPath), CONTAINER_RELAY, CONTAINER_EGRESS_SOCKET, String(RELAY_PROXY_PORT), '--'] : [];
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: options.inheritNetwork ? { uid: hostUid, gid: hostUid, additionalGids: [] } : { uid: 0, gid: 0, additionalGids: [] },
      args: [...relayPrefix, spec.command, ...spec.args],
      env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      cwd: spec.cwd ?? '/tmp',
      noNewPrivileges: true,
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      rlimits: [
        { type: 'RLIMIT_CPU', hard: limits.cpuSeconds, soft: limits.cpuSeconds },
        { type: 'RLIMIT_NOFILE', hard: limits.openFiles, soft: limits.openFiles },
        { type: 'RLIMIT_FSIZE', hard: limits.fileSizeBytes, soft: limits.fileSizeBytes },
        { type: 'RLIMIT_NPROC', hard: nprocLimit(limits, spec.instances), soft: nprocLimit(limits, spec.instances) },
        { type: 'RLIMIT_CORE', hard: 0, soft: 0 },
      ],
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'sandbox',
    mounts,
    linux: {
      namespaces: (options.inheritNetwork ? ['pid', 'ipc', 'uts', 'mount', 'cgroup'] : ['pid', 'network', 'ipc', 'uts', 'mount', 'user', 'cgroup']).map((type) => ({ type })),
      // One uid: container root is the unprivileged server uid on the host (runc needs a mapping
      // for container uid 0 to set up the container). It holds no capabilities, so "root" in
      // here only owns what that host uid owns.
      ...(options.inheritNetwork ? {} : { uidMappings: [{ containerID: 0, hostID: hostUid, size: 1 }], gidMappings: [{ containerID: 0, hostID: hostUid, size: 1 }] }),
      resources: {
        memory: { limit: limits.memoryBytes, swap: limits.memoryBytes },
        pids: { limit: limits.pids },
        cpu: { quota: Math.round(limits.cpus * 100_000), period: 100_000 },
      },
      seccomp: profile,
      maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/**
 * `docker run` / `podman run` arguments for an image-published server (everything after the
 * engine binary). The seccomp profile is written next to the config and passed by path.
 */
export function containerRunFlags(input: { image: string; spec: SandboxSpec; limits: SandboxLimits; uid: number; seccompProfilePath: string; egressSocket?: string }): string[] {
  const { spec, limits } = input;
  const view = sandboxViewFromScopes(spec.scopes);
  const flags = [
    'run', '--rm', '-i',
    '--read-only',
    '--cap-drop', 'ALL',
    '--security-opt', 'no-new-privileges',
    '--security-opt', `seccomp=${input.seccompProfilePath}`,
    '--network', 'none',
    '--user', `${input.uid}:${input.uid}`,
    '--pids-limit', String(limits.pids),
    '--memory', String(limits.memoryBytes),
    '--memory-swap', String(limits.memoryBytes),
    '--cpus', String(limits.cpus),
    '--ulimit', `cpu=${limits.cpuSeconds}:${limits.cpuSeconds}`,
    '--ulimit', `nofile=${limits.openFiles}:${limits.openFiles}`,
    '--ulimit', `fsize=${limits.fileSizeBytes}:${limits.fileSizeBytes}`,
    '--tmpfs', `/tmp:rw,nosuid,nodev,size=${limits.tmpBytes}`,
    '--hostname', 'sandbox',
  ];
  for (const grant of view.paths) flags.push('--mount', `type=bind,source=${grant.path},target=${grant.path}${grant.writable ? '' : ',readonly'}`);
  if (input.egressSocket && view.egress.length > 0) {
    flags.push('--mount', `type=bind,source=${input.egressSocket},target=/run/bastion/egress.sock,readonly`, '--env', 'BASTION_EGRESS_SOCKET=/run/bastion/egress.sock');
  }
  for (const [key, value] of Object.entries(spec.env)) flags.push('--env', `${key}=${value}`);
  flags.push(input.image, ...spec.args);
  return flags;
}

/** Creates the rootfs skeleton: mount points and the merged-/usr links bwrap would make. */
function writeBundle(dir: string, config: OciRuntimeConfig, hostUid: number): void {
  const rootfs = join(dir, 'rootfs');
  mkdirSync(rootfs, { recursive: true });
  // runc's init runs as the mapped server uid and creates the mount points; the rootfs is
  // remounted read-only afterwards (root.readonly), so owning it grants nothing at run time.
  if (isRoot()) chownSync(rootfs, hostUid, hostUid);
  for (const link of ['/lib', '/lib64', '/bin', '/sbin']) {
    if (existsSync(link) && lstatSync(link).isSymbolicLink()) {
      // runc resolves links inside rootfs; a relative target keeps it inside.
      symlinkSync(readlinkSync(link), join(rootfs, link));
    }
  }
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
}

/** Another OCI runtime behind the same bundle (gVisor's runsc): its name, binary and global flags. */
export interface OciRuntimeVariant {
  name: 'gvisor';
  runtime: string;
  /** Global flags for the runtime, given the container's network. */
  globalArgs: (network: ContainerNetwork['mode']) => string[];
  /**
   * Prepares the container's network for a server with a broker (transparent egress where the
   * host allows it, per sandbox.transparentEgress; warnings for what it cannot do).
   */
  network?: (serverName: string, broker: EgressBroker, warnings: string[]) => Promise<ContainerNetwork>;
  /** The seccomp rules as this runtime can enforce them. */
  seccompRules?: (rules: SyscallRule[]) => SyscallRule[];
  /** Run a networked server behind the in-container relay (HTTPS_PROXY on the container's loopback). */
  relay?: boolean;
  /**
   * Bastion creates the server's cgroup (with the limits) and a `runtime` sub-group the runtime
   * runs in: the runtime removes the groups it created when the container ends, and with them the
   * OOM kill counter that names an out-of-memory kill; a group it found in place it leaves.
   */
  bastionCgroup?: boolean;
}

/** The cgroup of one container and how its OOM kills are counted. */
interface ContainerCgroup {
  /** For reading CPU time and memory. */
  group: ServerCgroup | undefined;
  /** linux.cgroupsPath for the runtime. */
  runtimePath: string;
  oomKills: () => number;
  remove: () => Promise<void>;
}

function counterOf(read: () => number): number {
  try {
    return read();
  } catch {
    return 0;
  }
}

/** Bastion's own group with a `runtime` child (variant.bastionCgroup), or the runtime's group at `/<id>`. */
function containerCgroup(config: SandboxConfig, variant: OciRuntimeVariant | undefined, id: string, serverName: string, limits: SandboxLimits): ContainerCgroup {
  const layout = hostCgroupLayout();
  if (!variant?.bastionCgroup) {
    const group = ServerCgroup.attach(layout, `/${id}`);
    return { group, runtimePath: `/${id}`, oomKills: () => (group ? counterOf(() => group.counters().oomKills) : 0), remove: async () => {} };
  }
  let outer: ServerCgroup;
  try {
    outer = ServerCgroup.create(layout, serverName, limits, config.cgroupParent);
  } catch (error) {
    // The runtime would make its own group, which takes the OOM counter with it at exit: never silently.
    throw new Error(`sandbox: cannot start ${serverName} under ${variant.name}: ${(error as Error).message} (Bastion creates the cgroup gVisor runs in)`, { cause: error });
  }
  let inner: ServerCgroup;
  try {
    inner = outer.createChild('runtime');
  } catch (error) {
    void outer.remove().catch(() => {});
    throw new Error(`sandbox: cannot start ${serverName} under ${variant.name}: ${(error as Error).message}`, { cause: error });
  }
  const runtimePath = inner.runtimePath;
  if (runtimePath === undefined) throw new Error(`sandbox: cannot start ${serverName}: no cgroup path for the runtime`);
  // v1 counts an OOM kill only in the victim's group (the child), v2 also in every ancestor: the larger is right on both.
  const oomKills = (): number => Math.max(counterOf(() => outer.counters().oomKills), counterOf(() => inner.counters().oomKills));
  return { group: outer, runtimePath, oomKills, remove: () => outer.remove() };
}

function relayScriptPath(): string {
  return join(dirname(fileURLToPath(import.meta.url)), 'relay.js');
}

export function createOciBackend(config: SandboxConfig, variant?: OciRuntimeVariant): SandboxBackend {
  const backendName = variant?.name ?? 'oci';
  return {
    name: backendName,
    async spawn(spec) {
      const runtimeName = variant?.runtime ?? config.oci.runtime;
      const runtime = findBinary(runtimeName) ?? (runtimeName.startsWith('/') && existsSync(runtimeName) ? runtimeName : undefined);
      if (!runtime) throw new Error(`sandbox: cannot start ${spec.serverName}: OCI runtime "${runtimeName}" is not installed (${variant ? 'Debian: apt-get install runsc' : 'sandbox.oci.runtime; install runc'}) or use backend bwrap (refusing to run unconfined)`);
      const limits = { ...config.limits, ...spec.limits };
      const uid = isRoot() ? serverUid(spec.serverName, config.uidBase, config.uidCount) : (process.getuid?.() ?? 65534);
      const id = `bastion-${spec.serverName.replace(/[^A-Za-z0-9_.-]/g, '_')}-${process.pid}-${randomBytes(4).toString('hex')}`;
      const dir = join(config.oci.bundleDir, id);
      const events = new EventEmitter<SandboxEvents>();
      const view = sandboxViewFromScopes(spec.scopes);
      const warnings: string[] = [];
      const cgroup = containerCgroup(config, variant, id, spec.serverName, limits);
      let broker: EgressBroker | undefined;
      let network: ContainerNetwork | undefined;
      let runtimeArgs: string[] = isRoot() ? [] : ['--rootless', 'true'];
      let child: ChildProcessWithoutNullStreams;
      try {
        broker = view.egress.length > 0 ? await startEgressBroker({ server: spec.serverName, grants: view.egress, onEvent: (event) => events.emit('egress', event), ...(isRoot() ? { owner: { uid, gid: uid } } : {}) }) : undefined;
        network = broker && variant?.network ? await variant.network(spec.serverName, broker, warnings) : undefined;
        if (variant) runtimeArgs = variant.globalArgs(network?.mode ?? 'none');
        const bundle = ociBundleConfig(spec, limits, uid, broker?.socketPath, {
          ...(variant?.relay ? { relayScript: relayScriptPath() } : {}),
          ...(variant?.seccompRules ? { seccompRules: variant.seccompRules } : {}),
          ...(broker && variant?.relay ? { resolvConf: broker.resolvConfPath } : {}),
          ...(network?.mode === 'host' ? { inheritNetwork: true } : {}),
        });
        // An explicit cgroup path, so CPU time, memory and OOM kills can be read the same way as for bwrap.
        bundle.linux.cgroupsPath = cgroup.runtimePath;
        writeBundle(dir, bundle, uid);
        const [file, ...prefix] = [...(network?.prefix ?? []), runtime];
        child = spawn(file as string, [...prefix, ...runtimeArgs, 'run', '--bundle', dir, id], { stdio: ['pipe', 'pipe', 'pipe'], env: {}, shell: false });
        await new Promise<void>((resolve, reject) => {
          child.once('error', (error) => reject(new Error(`sandbox: cannot start ${runtime}: ${error.message}`)));
          child.once('spawn', () => resolve());
        });
        if (child.pid !== undefined) network?.started(child.pid);
      } catch (error) {
        await broker?.close();
        await network?.dispose();
        await cgroup.remove().catch(() => {});
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
      child.on('error', () => {});
      for (const warning of warnings) setImmediate(() => events.emit('warning', warning));
      const group = cgroup.group;
      const oomKillsAtStart = cgroup.oomKills();
      child.once('exit', () => {
        // Read before disposal removes the group: the same `limit` event (audit sandbox.limit) bwrap's watcher sends.
        const kills = cgroup.oomKills() - oomKillsAtStart;
        if (kills > 0) events.emit('limit', { server: spec.serverName, kind: 'memory', detail: `memory limit reached: ${kills} process(es) killed by the OOM killer` });
      });
      const read = (f: () => number): number | undefined => {
        try {
          const value = f();
          return Number.isFinite(value) ? value : undefined;
        } catch {
          return undefined;
        }
      };
      let disposed: Promise<void> | undefined;
      const handle: SandboxHandle = {
        child,
        backend: backendName,
        uid,
        events,
        warnings,
        cpuTimeMs: () => (group ? read(() => group.cpuTimeMs()) : undefined),
        memoryBytes: () => (group ? read(() => group.memoryBytes()) : undefined),
        kill: (signal = 'SIGKILL') => {
          child.kill(signal);
        },
        describeExit: (code, signal) => nameExit(code, signal, cgroup.oomKills() > oomKillsAtStart, limits.memoryBytes, { oomEndsWithAnyCode: variant?.bastionCgroup === true }),
        dispose: () => {
          disposed ??= (async () => {
            // Killing the runc client does not stop the container: ask the runtime to remove it.
            await runFile(runtime, [...runtimeArgs, 'delete', '--force', id]);
            if (child.exitCode === null && child.signalCode === null) {
              const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
              child.kill('SIGKILL');
              await gone;
            }
            await broker?.close();
            await network?.dispose();
            await cgroup.remove();
            rmSync(dir, { recursive: true, force: true });
          })();
          return disposed;
        },
      };
      return handle;
    },
  };
}
