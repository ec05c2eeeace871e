// The default backend: bubblewrap with every namespace unshared, a read-only minimal system
// view, the server's declared paths, a seccomp filter, rlimits, a per-server cgroup and, when
// Bastion is root, a dedicated unprivileged uid taken *before* bwrap runs.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import { nprocLimit, resolveSandboxConfig, type SandboxConfig, type SandboxLimits } from './config.js';
import { sandboxViewFromScopes, type SandboxView } from './scopes.js';
import { seccompFilterBytes } from './seccomp.js';
import { hostCgroupLayout, ServerCgroup } from './cgroups.js';
import { dropPrivilegesArgs, findBinary, isRoot, nodeInstallPrefix, probeUserNamespaces, processHardLimit, serverUid } from './host.js';
import { startEgressBroker, type EgressBroker } from './broker.js';
import { accessProblems, type AccessCheck } from './access.js';
import { nameExit } from './exit.js';
import { executeOnlyInit, initArgs } from './views.js';
import { originalDestination, prepareEgressNamespace, transparentEgressFor, type EgressNamespace } from './netns.js';
import type { SandboxBackend, SandboxEvents, SandboxHandle, SandboxSpec } from './types.js';

/** Inside the sandbox: where the broker socket and the relay appear. */
export const SANDBOX_EGRESS_SOCKET = '/run/bastion/egress.sock';
export const SANDBOX_RELAY = '/run/bastion/relay.mjs';
export const RELAY_PORT = 3128;

const SECCOMP_FD = 3;
const INFO_FD = 4;
const BLOCK_FD = 5;

/** Host directories every sandbox sees read-only, when present. /etc is not bound whole. */
const SYSTEM_DIRS = ['/usr', '/lib', '/lib64', '/lib32', '/libx32', '/bin', '/sbin'];
const SYSTEM_FILES = ['/etc/ld.so.cache', '/etc/ssl', '/etc/ca-certificates', '/etc/localtime', '/etc/alternatives'];

export interface BwrapPlan {
  /** The program Node spawns, and its full argv: [nsenter ->] prlimit -> [setpriv ->] bwrap -> server. */
  file: string;
  argv: string[];
  /**
   * The server's whole environment. It is handed to the spawn (prlimit, setpriv and bwrap pass
   * it through untouched) instead of bwrap --setenv, because argv is readable by every local
   * user in /proc/PID/cmdline and env values may be secrets.
   */
  env: Record<string, string>;
  uid: number | undefined;
  view: SandboxView;
  limits: SandboxLimits;
  seccomp: Buffer;
}

export interface BwrapPlanInput {
  spec: SandboxSpec;
  config: SandboxConfig;
  root: boolean;
  binaries: { bwrap: string; prlimit: string; setpriv?: string };
  /** Host path of the broker socket, when the server has network grants. */
  egressSocket?: string;
  /** Host path of the compiled relay script. */
  relayScript?: string;
  /** Host path of the resolv.conf naming the relay's DNS stub. */
  resolvConf?: string;
  /** Host path of the execute-only init (views.ts); without it bwrap's own init is pid 1. */
  init?: string;
  /**
   * The launcher that runs the whole chain inside a network namespace prepared for transparent
   * egress (netns.ts); bwrap then joins it instead of making its own with --unshare-net.
   */
  netnsPrefix?: string[];
}

/** /lib -> usr/lib style links are recreated as links; real directories are bound read-only. */
function systemView(): string[] {
  const args: string[] = [];
  for (const dir of SYSTEM_DIRS) {
    if (!existsSync(dir)) continue;
    const stat = lstatSync(dir);
    if (stat.isSymbolicLink()) args.push('--symlink', readlinkSync(dir), dir);
    else args.push('--ro-bind', dir, dir);
  }
  for (const file of SYSTEM_FILES) args.push('--ro-bind-try', file, file);
  return args;
}

function rlimitArgs(limits: SandboxLimits, instances: number | undefined): string[] {
  const pair = (n: number): string => `${n}:${n}`;
  return [
    `--cpu=${pair(limits.cpuSeconds)}`,
    `--nofile=${pair(limits.openFiles)}`,
    `--fsize=${pair(limits.fileSizeBytes)}`,
    // The cgroup pids limit is the precise one, per copy (it reports refusals); RLIMIT_NPROC counts
    // all copies under the uid together, so it is the aggregate backstop when cgroups are unavailable.
    // Never above the gateway's own hard limit: raising it needs CAP_SYS_RESOURCE (often dropped
    // in containers, where prlimit then fails with EPERM), and the host's limit binds anyway.
    `--nproc=${pair(Math.min(nprocLimit(limits, instances), processHardLimit() ?? Number.MAX_SAFE_INTEGER))}`,
    '--core=0:0',
  ];
}

/** Pure: everything about one spawn that can be decided before running anything. */
export function planBwrap(input: BwrapPlanInput): BwrapPlan {
  const { spec, config, root, binaries } = input;
  const limits: SandboxLimits = { ...config.limits, ...spec.limits };
  const view = sandboxViewFromScopes(spec.scopes);
  const uid = root ? serverUid(spec.serverName, config.uidBase, config.uidCount) : undefined;
  const network = view.egress.length > 0 && input.egressSocket !== undefined;
  const env: Record<string, string> = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: '/tmp',
    TMPDIR: '/tmp',
    LANG: 'C.UTF-8',
    ...spec.env,
  };
  if (network) {
    const proxy = `http://127.0.0.1:${RELAY_PORT}`;
    Object.assign(env, { HTTPS_PROXY: proxy, HTTP_PROXY: proxy, https_proxy: proxy, http_proxy: proxy, BASTION_EGRESS_SOCKET: SANDBOX_EGRESS_SOCKET });
  }

  const bwrap: string[] = [
    '--unshare-user', '--unshare-ipc', '--unshare-pid', ...(input.netnsPrefix ? [] : ['--unshare-net']), '--unshare-uts', '--unshare-cgroup',
    '--disable-userns',
    '--die-with-parent', '--new-session', '--cap-drop', 'ALL',
    '--hostname', 'sandbox',
  ];
  bwrap.push(...systemView());
  // The private /tmp first: a later bind of a host path under /tmp (a node installed there, a
  // granted directory) must land on top of it, not be hidden by it.
  bwrap.push('--proc', '/proc', '--dev', '/dev', '--size', String(limits.tmpBytes), '--tmpfs', '/tmp');
  const nodePrefix = nodeInstallPrefix();
  if (!nodePrefix.startsWith('/usr')) bwrap.push('--ro-bind', nodePrefix, nodePrefix);
  for (const path of [...config.readOnlyPaths, ...spec.packageDirs]) {
    const real = realpathSync(path);
    bwrap.push('--ro-bind', real, real);
  }
  // Before the binds: a granted directory below a hidden one is bound on top of the empty one.
  for (const path of spec.hiddenPaths ?? []) bwrap.push('--perms', '0555', '--dir', path);
  for (const grant of view.paths) bwrap.push(grant.writable ? '--bind' : '--ro-bind', grant.path, grant.path);
  if (network && input.egressSocket) bwrap.push('--ro-bind', input.egressSocket, SANDBOX_EGRESS_SOCKET);
  if (network && input.relayScript) bwrap.push('--ro-bind', input.relayScript, SANDBOX_RELAY);
  if (network && input.resolvConf) bwrap.push('--ro-bind', input.resolvConf, '/etc/resolv.conf');
  const init = initArgs(input.init);
  bwrap.push(...init.bwrap);
  bwrap.push('--chdir', spec.cwd ?? '/tmp');
  bwrap.push('--seccomp', String(SECCOMP_FD), '--info-fd', String(INFO_FD), '--block-fd', String(BLOCK_FD));
  if (uid !== undefined) bwrap.push('--uid', String(uid), '--gid', String(uid));
  bwrap.push('--', ...init.command);
  if (network && input.relayScript) bwrap.push(realpathSync(process.execPath), SANDBOX_RELAY, SANDBOX_EGRESS_SOCKET, String(RELAY_PORT), '--');
  bwrap.push(spec.command, ...spec.args);

  const argv = [...rlimitArgs(limits, spec.instances), '--'];
  if (uid !== undefined) {
    if (!binaries.setpriv) throw new Error('sandbox: Bastion runs as root but setpriv (util-linux) is missing, so the server cannot be moved to an unprivileged uid; install util-linux');
    argv.push(binaries.setpriv, ...dropPrivilegesArgs(uid, uid));
  }
  argv.push(binaries.bwrap, ...bwrap);
  const seccomp = seccompFilterBytes({ allowInet: network });
  const [file, ...launcher] = [...(input.netnsPrefix ?? []), binaries.prlimit];
  return { file: file as string, argv: [...launcher, ...argv], env, uid, view, limits, seccomp };
}

/** What bwrap binds from the host and the server's uid must therefore be able to read. */
function bindSources(spec: SandboxSpec, config: SandboxConfig, view: SandboxView): AccessCheck[] {
  const checks: AccessCheck[] = [];
  const nodePrefix = nodeInstallPrefix();
  if (!nodePrefix.startsWith('/usr')) checks.push({ path: realpathSync(process.execPath), want: 'read', role: 'the node binary' });
  for (const path of config.readOnlyPaths) checks.push({ path, want: 'read', role: 'sandbox.readOnlyPaths' });
  for (const path of spec.packageDirs) checks.push({ path, want: 'read', role: "the server's code" });
  for (const grant of view.paths) checks.push({ path: grant.path, want: 'read', role: grant.writable ? 'the write grant' : 'the read grant' });
  return checks;
}

function relayScriptPath(): string {
  return join(dirname(fileURLToPath(import.meta.url)), 'relay.js');
}

/** Reads bwrap's --info-fd JSON until it names the sandbox's first process. */
function readChildPid(stream: Readable): Promise<number> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      const match = /"child-pid"\s*:\s*(\d+)/.exec(text);
      if (match) {
        cleanup();
        resolve(Number(match[1]));
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error('bwrap exited before the sandbox started'));
    };
    const cleanup = (): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('close', onEnd);
  });
}

/** How the child ended, waiting up to `waitMs` for it to end on its own. */
async function exitStatus(child: ChildProcessWithoutNullStreams, waitMs: number): Promise<string> {
  const describe = (): string => (child.signalCode !== null ? `killed by ${child.signalCode}` : `exit code ${String(child.exitCode)}`);
  if ((child.exitCode !== null || child.signalCode !== null) && child.stderr.destroyed) return describe();
  let timer: NodeJS.Timeout | undefined;
  const ended = await Promise.race([
    new Promise<boolean>((resolve) => child.once('close', () => resolve(true))),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), waitMs);
    }),
  ]);
  clearTimeout(timer);
  return ended ? describe() : 'still running';
}

function collectStderr(child: ChildProcessWithoutNullStreams): () => string {
  let text = '';
  const onData = (chunk: Buffer): void => {
    if (text.length < 4096) text += chunk.toString('utf8');
  };
  child.stderr.on('data', onData);
  return () => {
    child.stderr.off('data', onData);
    return text.trim();
  };
}

export function createBwrapBackend(configInput?: Partial<SandboxConfig>): SandboxBackend {
  const baseConfig = resolveSandboxConfig(configInput);
  return {
    name: 'bwrap',
    async spawn(spec) {
      const bwrap = findBinary('bwrap');
      const prlimit = findBinary('prlimit');
      const setpriv = findBinary('setpriv');
      if (!bwrap || !prlimit) throw new Error(`sandbox: cannot start ${spec.serverName}: ${!bwrap ? 'bwrap (bubblewrap)' : 'prlimit (util-linux)'} is not installed; install it or choose another sandbox backend (refusing to run unconfined)`);
      const userns = await probeUserNamespaces();
      if (!userns.works) throw new Error(`sandbox: cannot start ${spec.serverName}: ${userns.detail}; refusing to run unconfined`);
      const config = baseConfig;
      const root = isRoot();
      const events = new EventEmitter<SandboxEvents>();
      const warnings: string[] = [];
      const view = sandboxViewFromScopes(spec.scopes);
      const uid = root ? serverUid(spec.serverName, config.uidBase, config.uidCount) : undefined;
      if (uid !== undefined && setpriv) {
        const refused = accessProblems(bindSources(spec, config, view), uid, setpriv);
        if (refused.length > 0) throw new Error(`sandbox: cannot start ${spec.serverName} as uid ${uid}: ${refused.join('; ')}`);
        const writes = view.paths.filter((grant) => grant.writable).map((grant): AccessCheck => ({ path: grant.path, want: 'write', role: 'the write grant' }));
        for (const problem of accessProblems(writes, uid, setpriv)) warnings.push(`${spec.serverName}: ${problem}; until then its writes there fail`);
      }

      let broker: EgressBroker | undefined;
      if (view.egress.length > 0) {
        broker = await startEgressBroker({
          server: spec.serverName,
          grants: view.egress,
          onEvent: (event) => events.emit('egress', event),
          ...(uid !== undefined ? { owner: { uid, gid: uid } } : {}),
        });
      }
      const planInput: BwrapPlanInput = { spec, config, root, binaries: { bwrap, prlimit, ...(setpriv ? { setpriv } : {}) } };
      const init = executeOnlyInit();
      if (init) planInput.init = init;
      else warnings.push(`${spec.serverName}: dumb-init is not installed, so the sandbox's init is bwrap's own and the server can open its /proc/1/mem (Debian: apt-get install dumb-init)`);
      if (broker) {
        planInput.egressSocket = broker.socketPath;
        planInput.relayScript = relayScriptPath();
        planInput.resolvConf = broker.resolvConfPath;
      }
      const transparent = broker ? transparentEgressFor(spec.serverName, config.transparentEgress, warnings) : undefined;
      let netns: EgressNamespace | undefined;
      if (broker && transparent) {
        // Set up completely before anything of the sandbox runs: from the server's first
        // instruction, every connect() is redirected.
        try {
          netns = await prepareEgressNamespace(transparent);
        } catch (error) {
          await broker.close();
          throw new Error(`sandbox: cannot start ${spec.serverName}: ${(error as Error).message}`, { cause: error });
        }
        planInput.netnsPrefix = netns.prefix;
      }
      const plan = planBwrap(planInput);

      let cgroup: ServerCgroup | undefined;
      try {
        cgroup = ServerCgroup.create(hostCgroupLayout(), spec.serverName, plan.limits, config.cgroupParent);
      } catch (error) {
        if (config.cgroups === 'require') {
          await broker?.close();
          await netns?.dispose();
          throw new Error(`sandbox: cannot start ${spec.serverName}: ${(error as Error).message} (sandbox.cgroups is "require")`, { cause: error });
        }
        warnings.push(`cgroups unavailable for ${spec.serverName}: ${(error as Error).message}; memory, pids and CPU-quota limits are not enforced (rlimits still are)`);
      }

      const cleanup = async (): Promise<void> => {
        await broker?.close();
        await cgroup?.remove();
        await netns?.dispose();
      };
      let spawned: ReturnType<typeof spawn>;
      try {
        spawned = spawn(plan.file, plan.argv, {
          stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
          env: plan.env,
          // The host working directory means nothing inside and may be unreadable to the server uid.
          cwd: '/',
          shell: false,
          windowsHide: true,
        });
      } catch (error) {
        await cleanup();
        throw new Error(`sandbox: cannot start ${spec.serverName}: ${(error as Error).message}`, { cause: error });
      }
      // Out of descriptors (EMFILE/ENFILE) or processes (EAGAIN), Node reports the failure as an
      // 'error' event on the next tick and leaves the stdio streams unset: listen at once (an
      // unheard 'error' ends the process) and turn it into a failed start.
      const spawnFailed = new Promise<never>((_, reject) => spawned.once('error', (error) => reject(new Error(`sandbox: cannot start ${plan.file}: ${error.message}`))));
      spawnFailed.catch(() => undefined);
      const pipes = spawned.stdio as unknown as Array<Readable | Writable | null> | null | undefined;
      if (!Array.isArray(pipes) || pipes.length < 6 || pipes.some((pipe) => pipe === null || pipe === undefined)) {
        const reason = await spawnFailed.then(() => 'no stdio', (error: Error) => error.message);
        await cleanup();
        throw new Error(`sandbox: ${spec.serverName} did not start under bwrap: ${reason}`);
      }
      const extra = pipes as Array<Readable | Writable>;
      const seccompPipe = extra[SECCOMP_FD] as Writable;
      const infoPipe = extra[INFO_FD] as Readable;
      const blockPipe = extra[BLOCK_FD] as Writable;
      // bwrap closes these early; a reset on a pipe nobody reads any more is not an error.
      for (const pipe of [seccompPipe, infoPipe, blockPipe]) pipe.on('error', () => {});
      const child = spawned as unknown as ChildProcessWithoutNullStreams;
      const stderrSoFar = collectStderr(child);

      // A process error after the start (a failed kill, say) must not end the gateway either.
      child.on('error', () => {});
      try {
        await Promise.race([new Promise<void>((resolve) => child.once('spawn', () => resolve())), spawnFailed]);
        seccompPipe.end(plan.seccomp);
        const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`exit ${String(code)}`))));
        const pid = await Promise.race([readChildPid(infoPipe), exited]);
        cgroup?.addProcess(pid);
        if (broker && netns) broker.attachNamespace((clientPort) => originalDestination(pid, clientPort));
        blockPipe.end(Buffer.from([1]));
        // Keep draining: bwrap may still be writing the rest of its info JSON, and closing our
        // end now would kill it with SIGPIPE.
        infoPipe.resume();
      } catch (error) {
        // bwrap's own explanation usually arrives just after the failure shows up here (the
        // sandbox died before it could be put in its cgroup, say): wait briefly for it.
        const status = await exitStatus(child, 1000);
        child.kill('SIGKILL');
        await cleanup();
        const said = stderrSoFar();
        const detail = said ? `${said} (${status}; ${(error as Error).message})` : `${(error as Error).message} (${status})`;
        throw new Error(`sandbox: ${spec.serverName} did not start under bwrap: ${detail}`, { cause: error });
      }
      stderrSoFar();

      for (const warning of warnings) setImmediate(() => events.emit('warning', warning));
      const watch = cgroup ? watchLimits(cgroup, spec.serverName, events) : undefined;
      const oomKillsAtStart = cgroup ? safeRead(() => cgroup.counters().oomKills) : undefined;
      const oomKilled = (): boolean => cgroup !== undefined && (safeRead(() => cgroup.counters().oomKills) ?? 0) > (oomKillsAtStart ?? 0);
      child.once('exit', (code, signal) => {
        if (watch) {
          watch.check();
          clearInterval(watch.timer);
        }
        // bwrap reports a child killed by a signal as 128+signal; 152 = SIGXCPU, 137 = SIGKILL.
        if (code === 128 + 24 || signal === 'SIGXCPU') events.emit('limit', { server: spec.serverName, kind: 'cpu-time', detail: `RLIMIT_CPU (${plan.limits.cpuSeconds}s) reached` });
      });

      let disposed: Promise<void> | undefined;
      const handle: SandboxHandle = {
        child,
        backend: 'bwrap',
        uid: plan.uid,
        events,
        warnings,
        cpuTimeMs: () => (cgroup ? safeRead(() => cgroup.cpuTimeMs()) : undefined),
        memoryBytes: () => (cgroup ? safeRead(() => cgroup.memoryBytes()) : undefined),
        kill: (signal = 'SIGKILL') => {
          child.kill(signal);
        },
        describeExit: (code, signal) => nameExit(code, signal, oomKilled(), plan.limits.memoryBytes),
        dispose: () => {
          disposed ??= (async () => {
            if (watch) clearInterval(watch.timer);
            if (child.exitCode === null && child.signalCode === null) {
              const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
              child.kill('SIGKILL');
              await gone;
            }
            await cleanup();
          })();
          return disposed;
        },
      };
      return handle;
    },
  };
}

function safeRead(read: () => number): number | undefined {
  try {
    const value = read();
    return Number.isFinite(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Polls the cgroup's event counters and reports each new OOM kill or refused fork once. */
function watchLimits(cgroup: ServerCgroup, server: string, events: EventEmitter<SandboxEvents>): { timer: NodeJS.Timeout; check: () => void } {
  let seen = cgroup.counters();
  const check = (): void => {
    const now = cgroup.counters();
    if (now.oomKills > seen.oomKills) events.emit('limit', { server, kind: 'memory', detail: `memory limit reached: ${now.oomKills - seen.oomKills} process(es) killed by the OOM killer` });
    if (now.pidsRefused > seen.pidsRefused) events.emit('limit', { server, kind: 'pids', detail: `process limit reached: ${now.pidsRefused - seen.pidsRefused} fork(s) refused` });
    seen = now;
  };
  const timer = setInterval(check, 250);
  timer.unref();
  return { timer, check };
}
