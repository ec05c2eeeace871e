// What this host offers the sandbox: binaries, user namespaces, seccomp, cgroups. Used by the
// backends (to refuse rather than run unconfined) and by `bastion doctor` (to report).
import { execFile } from 'node:child_process';
import { accessSync, constants, readFileSync, realpathSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { hostCgroupLayout, type CgroupLayout } from './cgroups.js';

const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Absolute path of a system binary, searched in the fixed system PATH only (never the caller's). */
export function findBinary(name: string): string | undefined {
  for (const dir of SYSTEM_PATH) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Next directory.
    }
  }
  return undefined;
}

export function runFile(file: string, args: string[], timeoutMs = 5000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

export const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

/** A stable per-server uid in [base, base+count): distinct per server unless two names collide. */
export function serverUid(serverName: string, base = 61000, count = 1000): number {
  const digest = createHash('sha256').update(serverName).digest();
  return base + (digest.readUInt32BE(0) % count);
}

/** The directory that must be visible for the running node binary to start (its install prefix). */
export function nodeInstallPrefix(): string {
  return dirname(dirname(realpathSync(process.execPath)));
}

function readSysctl(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export interface HostReport {
  root: boolean;
  bwrap?: { path: string; version: string };
  setpriv?: string;
  prlimit?: string;
  runc?: string;
  /** Whether an unprivileged user can create a user namespace through bwrap here. */
  userNamespaces: { works: boolean; detail: string };
  seccomp: { works: boolean; detail: string };
  cgroups: CgroupLayout;
  sysctl: Record<string, string | undefined>;
}

let cachedUserns: Promise<{ works: boolean; detail: string }> | undefined;

/** Really tries it: bwrap with a fresh user namespace, as an unprivileged uid when we are root. */
export function probeUserNamespaces(): Promise<{ works: boolean; detail: string }> {
  cachedUserns ??= (async () => {
    const bwrap = findBinary('bwrap');
    if (!bwrap) return { works: false, detail: 'bwrap is not installed (Debian: apt-get install bubblewrap)' };
    const inner = [bwrap, '--unshare-user', '--unshare-pid', '--unshare-net', '--ro-bind', '/usr', '/usr', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64', '--', '/usr/bin/true'];
    let file = bwrap;
    let args = inner.slice(1);
    if (isRoot()) {
      const setpriv = findBinary('setpriv');
      if (!setpriv) return { works: false, detail: 'running as root but setpriv (util-linux) is missing, so privileges cannot be dropped' };
      file = setpriv;
      args = [...dropPrivilegesArgs(65534, 65534), ...inner];
    }
    const result = await runFile(file, args);
    if (result.code === 0) return { works: true, detail: isRoot() ? 'unprivileged user namespaces work (probed as uid 65534)' : 'user namespaces work' };
    return { works: false, detail: `bwrap could not create a user namespace: ${result.stderr.trim() || `exit ${String(result.code)}`} (check kernel.unprivileged_userns_clone, user.max_user_namespaces, AppArmor restrict_unprivileged_userns)` };
  })();
  return cachedUserns;
}

/** setpriv arguments that leave no way back to root: new uid/gid, no groups, no capabilities. */
export function dropPrivilegesArgs(uid: number, gid: number): string[] {
  return ['--reuid', String(uid), '--regid', String(gid), '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--'];
}

export async function hostReport(): Promise<HostReport> {
  const bwrapPath = findBinary('bwrap');
  let bwrap: HostReport['bwrap'];
  if (bwrapPath) {
    const version = await runFile(bwrapPath, ['--version']);
    bwrap = { path: bwrapPath, version: version.stdout.trim() || 'unknown' };
  }
  const actions = readSysctl('/proc/sys/kernel/seccomp/actions_avail');
  const report: HostReport = {
    root: isRoot(),
    userNamespaces: await probeUserNamespaces(),
    seccomp: {
      works: actions !== undefined && actions.includes('errno') && actions.includes('kill_process'),
      detail: actions ? `kernel seccomp actions: ${actions}` : 'kernel reports no seccomp support (/proc/sys/kernel/seccomp missing)',
    },
    cgroups: hostCgroupLayout(),
    sysctl: {
      'kernel.unprivileged_userns_clone': readSysctl('/proc/sys/kernel/unprivileged_userns_clone'),
      'user.max_user_namespaces': readSysctl('/proc/sys/user/max_user_namespaces'),
      'kernel.apparmor_restrict_unprivileged_userns': readSysctl('/proc/sys/kernel/apparmor_restrict_unprivileged_userns'),
    },
  };
  if (bwrap) report.bwrap = bwrap;
  const setpriv = findBinary('setpriv');
  if (setpriv) report.setpriv = setpriv;
  const prlimit = findBinary('prlimit');
  if (prlimit) report.prlimit = prlimit;
  const runc = findBinary('runc');
  if (runc) report.runc = runc;
  return report;
}

let processHardLimitRead: { value: number | undefined } | undefined;

/**
 * The hard RLIMIT_NPROC this gateway runs under (undefined: unlimited or unknown). Raising a hard
 * limit takes CAP_SYS_RESOURCE, which containers usually drop: prlimit above it fails with EPERM.
 */
export function processHardLimit(): number | undefined {
  if (processHardLimitRead !== undefined) return processHardLimitRead.value;
  let value: number | undefined;
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((entry) => entry.startsWith('Max processes'));
    const hard = line?.trim().split(/\s+/)[3];
    value = hard !== undefined && /^\d+$/.test(hard) ? Number(hard) : undefined;
  } catch {
    value = undefined;
  }
  processHardLimitRead = { value };
  return value;
}
