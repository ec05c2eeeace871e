// What `bastion doctor` reports: for each control, whether it works on this host, and a real
// end-to-end start of a tiny program through the bwrap backend (seccomp, uid, cgroup).
import { createBwrapBackend } from './bwrap.js';
import { hostReport, type HostReport } from './host.js';
import { probeGvisor } from './gvisor.js';
import { transparentEgressSupport } from './netns.js';

export type CheckStatus = 'ok' | 'degraded' | 'missing';

export interface DoctorCheck {
  control: string;
  status: CheckStatus;
  detail: string;
}

export interface DoctorReport {
  host: HostReport;
  checks: DoctorCheck[];
  /** Backends that can start a server here. */
  usableBackends: Array<'bwrap' | 'oci' | 'gvisor' | 'none'>;
}

async function probeBwrapEndToEnd(): Promise<DoctorCheck> {
  try {
    const handle = await createBwrapBackend({ cgroups: 'degrade' }).spawn({
      serverName: 'bastion-doctor',
      command: '/usr/bin/cat',
      args: ['/proc/self/status'],
      env: {},
      packageDirs: [],
      scopes: [],
    });
    let output = '';
    handle.child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const ended = new Promise((resolve) => handle.child.stdout.once('end', resolve));
    const exited = new Promise((resolve) => (handle.child.exitCode !== null ? resolve(undefined) : handle.child.once('exit', resolve)));
    const timer = setTimeout(() => handle.kill('SIGKILL'), 10_000);
    await Promise.all([ended, exited]);
    clearTimeout(timer);
    const cgroups = handle.warnings.length === 0;
    await handle.dispose();
    const seccomp = /^Seccomp:\s*2$/m.test(output);
    const noNewPrivs = /^NoNewPrivs:\s*1$/m.test(output);
    const caps = /^CapEff:\s*0+$/m.test(output);
    const uid = /^Uid:\s*(\d+)/m.exec(output)?.[1];
    const ok = seccomp && noNewPrivs && caps && uid !== '0';
    return {
      control: 'bwrap end-to-end',
      status: ok ? (cgroups ? 'ok' : 'degraded') : 'missing',
      detail: `started a program: uid ${uid ?? '?'}, seccomp ${seccomp ? 'on' : 'OFF'}, no_new_privs ${noNewPrivs ? 'on' : 'OFF'}, capabilities ${caps ? 'none' : 'PRESENT'}, cgroup ${cgroups ? 'joined' : `not used (${handle.warnings.join('; ')})`}`,
    };
  } catch (error) {
    return { control: 'bwrap end-to-end', status: 'missing', detail: (error as Error).message };
  }
}

export async function doctorReport(): Promise<DoctorReport> {
  const host = await hostReport();
  const checks: DoctorCheck[] = [];
  checks.push(host.bwrap ? { control: 'bubblewrap', status: 'ok', detail: `${host.bwrap.version} at ${host.bwrap.path}` } : { control: 'bubblewrap', status: 'missing', detail: 'install bubblewrap' });
  checks.push({ control: 'user namespaces', status: host.userNamespaces.works ? 'ok' : 'missing', detail: `${host.userNamespaces.detail}; ${Object.entries(host.sysctl).map(([k, v]) => `${k}=${v ?? 'n/a'}`).join(', ')}` });
  checks.push({ control: 'seccomp', status: host.seccomp.works ? 'ok' : 'missing', detail: host.seccomp.detail });
  if (host.root) {
    checks.push(host.setpriv ? { control: 'uid drop (setpriv)', status: 'ok', detail: `${host.setpriv}: servers run as uid 61000-61999, never root` } : { control: 'uid drop (setpriv)', status: 'missing', detail: 'running as root without setpriv: servers cannot be started' });
  } else {
    checks.push({ control: 'uid drop (setpriv)', status: 'ok', detail: `not root: servers run as uid ${process.getuid?.() ?? '?'} (the same as Bastion; one uid for all servers)` });
  }
  checks.push(host.prlimit ? { control: 'rlimits (prlimit)', status: 'ok', detail: `${host.prlimit}: CPU time, open files, file size, processes` } : { control: 'rlimits (prlimit)', status: 'missing', detail: 'install util-linux' });
  const cg = host.cgroups;
  if (cg.version === 1) {
    const controllers = Object.keys(cg.v1);
    const missing = ['memory', 'pids', 'cpu', 'cpuacct'].filter((c) => !controllers.includes(c));
    checks.push({ control: 'cgroups', status: missing.length === 0 ? 'ok' : 'degraded', detail: `v1: ${controllers.join(', ')}${missing.length ? `; missing ${missing.join(', ')}` : ''}` });
  } else if (cg.version === 2) {
    checks.push({ control: 'cgroups', status: 'ok', detail: `v2 at ${cg.v2?.dir}: ${cg.v2?.controllers.join(', ')}` });
  } else {
    checks.push({ control: 'cgroups', status: 'degraded', detail: 'no usable hierarchy: memory, pids and CPU quota are not enforced and CPU time is not measured per server' });
  }
  const endToEnd = await probeBwrapEndToEnd();
  checks.push(endToEnd);
  checks.push(host.runc ? { control: 'oci (runc)', status: 'ok', detail: host.runc } : { control: 'oci (runc)', status: 'missing', detail: 'runc not installed: backend oci refuses to start servers (bundles and docker/podman flags can still be generated)' });
  const gvisor = await probeGvisor();
  const platforms = Object.entries(gvisor.detail).map(([platform, text]) => `${platform}: ${text}`).join('; ');
  checks.push({ control: 'gvisor (runsc)', status: gvisor.works ? 'ok' : 'missing', detail: gvisor.runsc ? `${gvisor.version ?? 'runsc'} at ${gvisor.runsc}; ${platforms}${gvisor.works ? `; backend gvisor uses ${gvisor.platforms[0]} unless sandbox.gvisor.platform says otherwise` : '; backend gvisor refuses to start servers'}` : platforms });
  const transparent = transparentEgressSupport();
  checks.push({ control: 'transparent egress', status: transparent.available ? 'ok' : 'degraded', detail: transparent.detail });
  const usableBackends: DoctorReport['usableBackends'] = [];
  if (endToEnd.status !== 'missing') usableBackends.push('bwrap');
  if (host.runc) usableBackends.push('oci');
  if (gvisor.works) usableBackends.push('gvisor');
  usableBackends.push('none');
  return { host, checks, usableBackends };
}
