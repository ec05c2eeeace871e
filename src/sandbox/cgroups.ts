// Per-server cgroups on either hierarchy: v1 (one tree per controller) or v2 (unified).
// Bastion creates one cgroup per server under its own cgroup (or a configured parent), moves
// the sandbox's first process into it before that process runs anything, reads CPU time and
// memory from it, and removes it when the server is gone.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type CgroupController = 'memory' | 'pids' | 'cpu' | 'cpuacct';

export interface CgroupLayout {
  version: 1 | 2 | 'none';
  /** v1: controller -> directory of Bastion's own cgroup in that controller's tree. */
  v1: Partial<Record<CgroupController, string>>;
  /** v1: controller -> mount point of its tree (where a configured cgroupParent is resolved). */
  v1Roots: Partial<Record<CgroupController, string>>;
  /** v2: Bastion's own cgroup directory and the controllers its parent lets it enable. */
  v2?: { dir: string; controllers: string[]; mountPoint: string };
}

interface MountEntry {
  mountPoint: string;
  root: string;
  fsType: string;
  superOptions: string[];
}

export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const separator = line.indexOf(' - ');
    if (separator < 0) continue;
    const left = line.slice(0, separator).split(' ');
    const right = line.slice(separator + 3).split(' ');
    entries.push({ root: left[3] ?? '', mountPoint: (left[4] ?? '').replace(/\\040/g, ' '), fsType: right[0] ?? '', superOptions: (right[2] ?? '').split(',') });
  }
  return entries;
}

/** Reads which hierarchies exist and where this process sits in each. Pure over its inputs. */
export function detectCgroups(procSelfCgroup: string, mountinfo: string, readControllers: (dir: string) => string[] | undefined): CgroupLayout {
  const mounts = parseMountinfo(mountinfo);
  const layout: CgroupLayout = { version: 'none', v1: {}, v1Roots: {} };
  const wanted: CgroupController[] = ['memory', 'pids', 'cpu', 'cpuacct'];
  for (const line of procSelfCgroup.split('\n')) {
    const match = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!match) continue;
    const [, id, list, path] = match as unknown as [string, string, string, string];
    if (id === '0' && list === '') {
      const mount = mounts.find((m) => m.fsType === 'cgroup2');
      if (!mount) continue;
      const dir = cgroupDir(mount.mountPoint, relativeTo(mount.root, path));
      const controllers = readControllers(dir) ?? [];
      if (controllers.length > 0) layout.v2 = { dir, controllers, mountPoint: mount.mountPoint };
      continue;
    }
    for (const controller of list.split(',')) {
      if (!(wanted as string[]).includes(controller)) continue;
      const mount = mounts.find((m) => m.fsType === 'cgroup' && m.superOptions.includes(controller));
      if (!mount) continue;
      layout.v1[controller as CgroupController] = cgroupDir(mount.mountPoint, relativeTo(mount.root, path));
      layout.v1Roots[controller as CgroupController] = mount.mountPoint;
    }
  }
  if (Object.keys(layout.v1).length > 0) layout.version = 1;
  else if (layout.v2) layout.version = 2;
  return layout;
}

function cgroupDir(mountPoint: string, relative: string): string {
  const dir = join(mountPoint, relative);
  return dir.length > 1 && dir.endsWith('/') ? dir.slice(0, -1) : dir;
}

function relativeTo(root: string, path: string): string {
  if (root === '/' || root === '') return path;
  return path.startsWith(root) ? path.slice(root.length) || '/' : path;
}

export function hostCgroupLayout(): CgroupLayout {
  try {
    return detectCgroups(readFileSync('/proc/self/cgroup', 'utf8'), readFileSync('/proc/self/mountinfo', 'utf8'), (dir) => {
      try {
        return readFileSync(join(dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);
      } catch {
        return undefined;
      }
    });
  } catch {
    return { version: 'none', v1: {}, v1Roots: {} };
  }
}

export interface CgroupLimits {
  memoryBytes: number;
  pids: number;
  cpus: number;
}

export interface LimitCounters {
  oomKills: number;
  pidsRefused: number;
}

let sequence = 0;

/** Where each controller's per-server groups go: Bastion's own cgroup, or the configured parent. */
function parentDirs(layout: CgroupLayout, parentOverride: string | undefined): Map<CgroupController, string> {
  const parents = new Map<CgroupController, string>();
  if (layout.version === 1) {
    for (const [controller, own] of Object.entries(layout.v1) as Array<[CgroupController, string]>) {
      parents.set(controller, parentOverride === undefined ? own : join(layout.v1Roots[controller] ?? own, parentOverride));
    }
  } else if (layout.version === 2 && layout.v2) {
    const parent = parentOverride === undefined ? layout.v2.dir : join(layout.v2.mountPoint, parentOverride);
    for (const controller of ['memory', 'pids', 'cpu', 'cpuacct'] as const) parents.set(controller, parent);
  }
  return parents;
}

/** One server's cgroup (a directory per v1 controller, or one v2 directory). */
export class ServerCgroup {
  private constructor(
    private readonly version: 1 | 2,
    private readonly dirs: Partial<Record<CgroupController, string>>,
    /** How an OCI runtime started by Bastion names this group: relative to its own cgroups, or from the root. */
    readonly runtimePath?: string,
  ) {}

  /** Creates the cgroup and writes its limits; throws (with the path) if the host refuses. */
  static create(layout: CgroupLayout, name: string, limits: CgroupLimits, parentOverride?: string): ServerCgroup {
    sequence += 1;
    const leaf = `bastion-${name.replace(/[^A-Za-z0-9_.-]/g, '_')}-${process.pid}-${Date.now().toString(36)}${sequence.toString(36)}`;
    const parents = parentDirs(layout, parentOverride);
    if (parents.size === 0) throw new Error('sandbox: no usable cgroup hierarchy on this host (see `bastion doctor`)');
    for (const parent of new Set(parents.values())) sweepStale(parent);
    const dirs: Partial<Record<CgroupController, string>> = {};
    const created: string[] = [];
    try {
      if (layout.version === 2) enableV2Controllers([...parents.values()][0] as string, layout.v2?.controllers ?? []);
      for (const [controller, parent] of parents) {
        const dir = join(parent, leaf);
        if (!created.includes(dir)) {
          mkdirSync(dir, { recursive: true });
          created.push(dir);
        }
        dirs[controller] = dir;
      }
      // A child process (runsc) resolves a relative cgroupsPath below its own cgroup in each
      // hierarchy, which is Bastion's: the same directories as here, whatever they are per controller.
      const runtimePath = parentOverride === undefined ? leaf : join(parentOverride, leaf);
      const group = new ServerCgroup(layout.version === 1 ? 1 : 2, dirs, runtimePath);
      if (layout.version === 1) group.applyV1(limits);
      else group.applyV2(limits);
      return group;
    } catch (error) {
      // Half a group (memory but no pids, say) is worse than none: remove what was made.
      for (const dir of created.reverse()) {
        try {
          rmdirSync(dir);
        } catch {
          // Best effort; sweepStale retries later.
        }
      }
      throw error;
    }
  }

  /**
   * A sub-group without limits of its own (the parent's bind it), for an OCI runtime to run in.
   * Created here, so the runtime treats it as pre-existing and leaves it in place at exit, with
   * its counters: on cgroup v1 an OOM kill is counted only in the victim's own group.
   */
  createChild(name: string): ServerCgroup {
    const dirs: Partial<Record<CgroupController, string>> = {};
    for (const [controller, dir] of Object.entries(this.dirs) as Array<[CgroupController, string]>) {
      dirs[controller] = join(dir, name);
      mkdirSync(join(dir, name), { recursive: true });
    }
    return new ServerCgroup(this.version, dirs, this.runtimePath === undefined ? undefined : join(this.runtimePath, name));
  }

  /** A group someone else created (e.g. runc, from linux.cgroupsPath), for reading only. */
  static attach(layout: CgroupLayout, path: string): ServerCgroup | undefined {
    if (layout.version === 1) {
      const dirs: Partial<Record<CgroupController, string>> = {};
      for (const [controller, root] of Object.entries(layout.v1Roots) as Array<[CgroupController, string]>) dirs[controller] = join(root, path);
      return new ServerCgroup(1, dirs);
    }
    const mount = layout.v2?.mountPoint;
    if (layout.version === 2 && mount) {
      const dir = join(mount, path);
      return new ServerCgroup(2, { memory: dir, pids: dir, cpu: dir, cpuacct: dir });
    }
    return undefined;
  }

  private applyV1(limits: CgroupLimits): void {
    const { memory, pids, cpu } = this.dirs;
    if (memory) {
      writeFileSync(join(memory, 'memory.limit_in_bytes'), String(limits.memoryBytes));
      // Without a swap cap the tree could page out instead of hitting the limit.
      tryWrite(join(memory, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes));
    }
    if (pids) writeFileSync(join(pids, 'pids.max'), String(limits.pids));
    if (cpu) {
      const period = 100_000;
      writeFileSync(join(cpu, 'cpu.cfs_period_us'), String(period));
      writeFileSync(join(cpu, 'cpu.cfs_quota_us'), String(Math.max(1000, Math.round(limits.cpus * period))));
    }
  }

  private applyV2(limits: CgroupLimits): void {
    const dir = this.dirs.memory as string;
    tryWrite(join(dir, 'memory.max'), String(limits.memoryBytes));
    tryWrite(join(dir, 'memory.swap.max'), '0');
    tryWrite(join(dir, 'pids.max'), String(limits.pids));
    tryWrite(join(dir, 'cpu.max'), `${Math.max(1000, Math.round(limits.cpus * 100_000))} 100000`);
  }

  /** Which controllers this group actually has (v1 trees that were present). */
  controllers(): CgroupController[] {
    return Object.keys(this.dirs) as CgroupController[];
  }

  /** Moves a process (and so everything it later starts) into the group. */
  addProcess(pid: number): void {
    for (const dir of new Set(Object.values(this.dirs))) writeFileSync(join(dir, 'cgroup.procs'), String(pid));
  }

  cpuTimeMs(): number {
    if (this.version === 1) {
      const dir = this.dirs.cpuacct;
      return dir ? Number(readFileSync(join(dir, 'cpuacct.usage'), 'utf8')) / 1e6 : Number.NaN;
    }
    const stat = readFileSync(join(this.dirs.cpu as string, 'cpu.stat'), 'utf8');
    const usec = /usage_usec (\d+)/.exec(stat)?.[1];
    return usec === undefined ? Number.NaN : Number(usec) / 1000;
  }

  memoryBytes(): number {
    const dir = this.dirs.memory;
    if (!dir) return Number.NaN;
    return Number(readFileSync(join(dir, this.version === 1 ? 'memory.usage_in_bytes' : 'memory.current'), 'utf8'));
  }

  counters(): LimitCounters {
    const read = (dir: string | undefined, file: string): string => {
      try {
        return dir ? readFileSync(join(dir, file), 'utf8') : '';
      } catch {
        return '';
      }
    };
    const field = (text: string, key: string): number => Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    if (this.version === 1) {
      return {
        oomKills: field(read(this.dirs.memory, 'memory.oom_control'), 'oom_kill'),
        pidsRefused: field(read(this.dirs.pids, 'pids.events'), 'max'),
      };
    }
    return { oomKills: field(read(this.dirs.memory, 'memory.events'), 'oom_kill'), pidsRefused: field(read(this.dirs.pids, 'pids.events'), 'max') };
  }

  /** Processes still in the group or in a sub-group (an OCI runtime's). */
  pids(): number[] {
    const out = new Set<number>();
    for (const dir of new Set(Object.values(this.dirs))) for (const pid of treePids(dir)) out.add(pid);
    return [...out];
  }

  /** Kills whatever is left, then removes the directories (retrying while the kernel reaps). */
  async remove(): Promise<void> {
    for (let attempt = 0; attempt < 50; attempt += 1) {
      for (const pid of this.pids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone already.
        }
      }
      let left = 0;
      for (const dir of new Set(Object.values(this.dirs))) {
        if (!removeTree(dir)) left += 1;
      }
      if (left === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`sandbox: could not remove cgroup ${Object.values(this.dirs).join(', ')}; processes may remain`);
  }
}

function tryWrite(path: string, value: string): void {
  try {
    writeFileSync(path, value);
  } catch {
    // Optional knob (e.g. memsw when swap accounting is off).
  }
}

function enableV2Controllers(parent: string, available: string[]): void {
  const wanted = ['memory', 'pids', 'cpu'].filter((c) => available.includes(c));
  const enabled = readFileSync(join(parent, 'cgroup.subtree_control'), 'utf8').split(/\s+/);
  const missing = wanted.filter((c) => !enabled.includes(c));
  if (missing.length === 0) return;
  try {
    writeFileSync(join(parent, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
  } catch (error) {
    throw new Error(
      `sandbox: cannot enable cgroup v2 controllers ${missing.join(', ')} in ${parent} (${(error as Error).message}); ` +
        'run Bastion in a delegated cgroup with no processes of its own in the parent (e.g. systemd Delegate=yes) or set sandbox.cgroupParent',
      { cause: error },
    );
  }
}

/**
 * Cleans up per-server cgroups left by a Bastion that died without disposing of them. Their
 * sandboxes normally died with it (bwrap --die-with-parent); anything still inside is killed
 * here so nothing outlives its gateway for long. Only groups whose creator pid is gone are
 * touched, so two gateways on one host leave each other's alone.
 */
export function sweepStale(parent: string): void {
  for (const name of listChildren(parent)) {
    const creator = Number(/-(\d+)-[a-z0-9]+$/.exec(name)?.[1] ?? Number.NaN);
    if (!Number.isInteger(creator) || creator === process.pid || existsSync(`/proc/${creator}`)) continue;
    const dir = join(parent, name);
    for (const pid of treePids(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    // Still being reaped when this fails: the next sweep removes it.
    removeTree(dir);
  }
}

/** Sub-groups of a cgroup directory (its other entries are the kernel's control files). */
function subGroups(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => join(dir, entry.name));
  } catch {
    return [];
  }
}

/** Processes in a cgroup and every group below it. */
function treePids(dir: string): number[] {
  const pids: number[] = [];
  try {
    for (const line of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (line.trim()) pids.push(Number(line));
  } catch {
    // Already removed.
  }
  for (const child of subGroups(dir)) pids.push(...treePids(child));
  return pids;
}

/** Removes a cgroup after its sub-groups (rmdir refuses a group that has children); true when gone. */
function removeTree(dir: string): boolean {
  if (!existsSync(dir)) return true;
  for (const child of subGroups(dir)) removeTree(child);
  try {
    rmdirSync(dir);
    return true;
  } catch {
    return false;
  }
}

/** Lists the cgroup directories of a server group; used by doctor and tests. */
export function listChildren(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => n.startsWith('bastion-'));
  } catch {
    return [];
  }
}
