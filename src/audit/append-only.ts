import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { CHECKPOINTS_DIR, SEGMENTS_DIR, checkpointFilePaths, listSegments } from './layout.js';

/**
 * Append-only storage for the audit log (Linux): the active segment carries FS_APPEND_FL
 * (`chattr +a`: writes only at the end; no truncate, rename or unlink); sealed segments and
 * checkpoint notes (and their mirror copies) FS_IMMUTABLE_FL (`chattr +i`: no change at all). Only a process with CAP_LINUX_IMMUTABLE can
 * set or clear them, so root processes without that capability cannot rewrite the log. Node has
 * no FS_IOC_SETFLAGS binding; chattr and lsattr from e2fsprogs are run without a shell.
 */

export type AppendOnlyMode = 'auto' | 'required' | 'off';

export interface AppendOnlySupport {
  supported: boolean;
  /** What was found: the filesystem, the missing capability, or chattr's own error. */
  detail: string;
}

const run = promisify(execFile);
/** Bit 9 of the capability sets in /proc/self/status (linux/capability.h). */
const CAP_LINUX_IMMUTABLE = 9n;
const EXEC_TIMEOUT_MS = 10_000;
/** statfs f_type values (linux/magic.h) of filesystems named in reports. */
const FILESYSTEMS = new Map<number, string>([
  [0xef53, 'ext2/3/4'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  [0x01021994, 'tmpfs'],
  [0x794c7630, 'overlayfs'],
  [0x6969, 'nfs'],
]);

/** Whether segments in `dir` can carry the attributes: Linux, root with CAP_LINUX_IMMUTABLE, chattr, and a filesystem that keeps them. */
export function probeAppendOnly(dir: string): AppendOnlySupport {
  const filesystem = filesystemOf(dir);
  if (process.platform !== 'linux') return { supported: false, detail: `${process.platform} has no chattr append-only attribute (Linux only)` };
  if (process.getuid?.() !== 0) return { supported: false, detail: 'not running as root: only a process with CAP_LINUX_IMMUTABLE can set the attributes' };
  if (!hasLinuxImmutable()) return { supported: false, detail: 'the process lacks CAP_LINUX_IMMUTABLE (add it to the service\'s capability bounding set)' };
  const probe = join(resolve(dir), `.append-only-probe-${process.pid}`);
  try {
    writeFileSync(probe, '');
    try {
      execFileSync('chattr', ['+a', probe], { stdio: 'pipe', timeout: EXEC_TIMEOUT_MS });
      const listed = execFileSync('lsattr', [probe], { stdio: 'pipe', timeout: EXEC_TIMEOUT_MS, encoding: 'utf8' });
      if (!(listed.split(/\s/)[0] ?? '').includes('a')) return { supported: false, detail: `${filesystem} accepted chattr +a but lsattr does not show it` };
      execFileSync('chattr', ['-a', probe], { stdio: 'pipe', timeout: EXEC_TIMEOUT_MS });
    } finally {
      unlinkSync(probe);
    }
  } catch (error) {
    return { supported: false, detail: `${filesystem}: ${execError(error)}` };
  }
  return { supported: true, detail: `${filesystem} keeps FS_APPEND_FL and FS_IMMUTABLE_FL; this process holds CAP_LINUX_IMMUTABLE` };
}

/**
 * Sets and lifts the attributes on the files of one directory. Disabled (every method a no-op)
 * when the mode is off or, in auto mode, where the probe failed.
 */
export class SegmentAttributes {
  private constructor(readonly enabled: boolean, readonly support: AppendOnlySupport) {}

  static disabled(detail = 'audit.appendOnly is off'): SegmentAttributes {
    return new SegmentAttributes(false, { supported: false, detail });
  }

  /** What an earlier probe found (a log taken over from another thread), not probed again. */
  static known(enabled: boolean, detail: string): SegmentAttributes {
    return new SegmentAttributes(enabled, { supported: enabled, detail });
  }

  /**
   * Probes `dir`; `required` without support throws (the gateway refuses to start); `auto`
   * without support returns a disabled instance whose `support.detail` says why (the gateway
   * logs it in one line: most hosts, containers and every non-root run lack the capability).
   */
  static prepare(mode: AppendOnlyMode, dir: string): SegmentAttributes {
    if (mode === 'off') return SegmentAttributes.disabled();
    const support = probeAppendOnly(dir);
    if (support.supported) return new SegmentAttributes(true, support);
    if (mode === 'required') throw new Error(`audit.appendOnly is 'required' but the audit files in ${dir} cannot be made append-only: ${support.detail}. Run Bastion as root with CAP_LINUX_IMMUTABLE on ext4 or xfs, or set audit.appendOnly: auto to run without it`);
    return new SegmentAttributes(false, support);
  }

  /** Lifts both attributes (recovery at open, a tamper restart's move to quarantine, retention). */
  release(paths: readonly string[]): void {
    if (this.enabled) chattrSync(['-a', '-i'], paths);
  }

  /** The state after open: sealed segments and checkpoint notes immutable, the active segment append-only. */
  protect(immutable: readonly string[], active: string): void {
    if (!this.enabled) return;
    chattrSync(['-a', '+i'], immutable);
    if (active !== '') chattrSync(['+a'], [active]);
  }

  /** At rotation: the closed segment becomes immutable, the new one append-only. */
  async rotated(closed: string, opened: string): Promise<void> {
    if (!this.enabled) return;
    if (closed !== '') await run('chattr', ['-a', '+i', resolve(closed)], { timeout: EXEC_TIMEOUT_MS });
    await run('chattr', ['+a', resolve(opened)], { timeout: EXEC_TIMEOUT_MS });
  }

  /** A file written whole and synced (a checkpoint note): immutable from now on. */
  async freeze(path: string): Promise<void> {
    if (this.enabled) await run('chattr', ['+i', resolve(path)], { timeout: EXEC_TIMEOUT_MS });
  }
}

/** What `bastion` logs and `gateway.start` records about the attributes of one log. */
export interface AppendOnlyStatus {
  enabled: boolean;
  detail: string;
  /** The checkpoint mirror directory's own state, when audit.checkpoint.mirrorDir is set. */
  mirror?: { enabled: boolean; detail: string };
}

/**
 * The attributes of one audit log: its segments and checkpoint notes, and the copies in the
 * checkpoint mirror (which may sit on another filesystem, so it is probed on its own, under the
 * same mode). Only the writer calls it: to repair the tail at open, at rotation, after each
 * checkpoint, and in retention, which records what it lifted.
 */
export class LogProtection {
  private constructor(
    private readonly dir: string,
    private readonly log: SegmentAttributes,
    private readonly mirrorDir: string | undefined,
    private readonly mirror: SegmentAttributes,
  ) {}

  static disabled(dir: string): LogProtection {
    return new LogProtection(dir, SegmentAttributes.disabled(), undefined, SegmentAttributes.disabled());
  }

  /** The protection of a log opened on another thread (src/audit/thread): its status then, not probed again. */
  static adopted(dir: string, mirrorDir: string | undefined, status: AppendOnlyStatus): LogProtection {
    const mirror = status.mirror === undefined ? SegmentAttributes.disabled() : SegmentAttributes.known(status.mirror.enabled, status.mirror.detail);
    return new LogProtection(dir, SegmentAttributes.known(status.enabled, status.detail), mirrorDir, mirror);
  }

  static prepare(mode: AppendOnlyMode, dir: string, mirrorDir: string | undefined): LogProtection {
    const log = SegmentAttributes.prepare(mode, join(dir, SEGMENTS_DIR));
    if (mirrorDir !== undefined) mkdirSync(mirrorDir, { recursive: true, mode: 0o700 });
    const mirror = mirrorDir === undefined ? SegmentAttributes.disabled() : SegmentAttributes.prepare(mode, mirrorDir);
    return new LogProtection(dir, log, mirrorDir, mirror);
  }

  get enabled(): boolean {
    return this.log.enabled;
  }

  get status(): AppendOnlyStatus {
    const own = { enabled: this.log.enabled, detail: this.log.support.detail };
    return this.mirrorDir === undefined ? own : { ...own, mirror: { enabled: this.mirror.enabled, detail: this.mirror.support.detail } };
  }

  /** Every segment becomes writable, for the tail check and repair at open. */
  releaseSegments(): void {
    this.log.release(listSegments(this.dir).map((segment) => segment.path));
  }

  /**
   * Runs the tail repair at open. Files protected by an earlier run cannot be cut where this
   * run does not hold the capability (or has audit.appendOnly off): say so, instead of EPERM.
   */
  repairing<T>(repair: () => T): T {
    try {
      return repair();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EPERM' || this.log.enabled) throw error;
      throw new Error(`the audit log ${this.dir} needs its tail repaired, but its segments carry the append-only or immutable attribute from an earlier run and this process cannot lift it (${this.log.support.detail}). Restore CAP_LINUX_IMMUTABLE (audit.appendOnly: auto or required), or, with Bastion stopped, lift them as root with the capability: chattr -R -a -i ${resolve(this.dir)}`, { cause: error });
    }
  }

  /** Before the log's files are moved aside (a tamper restart, an old format's archive): renaming needs them plain. */
  releaseCheckpoints(): void {
    this.log.release(checkpointFilePaths(join(this.dir, CHECKPOINTS_DIR)));
  }

  /** Before a tamper restart moves the mirror's notes to superseded/. */
  releaseMirror(): void {
    if (this.mirrorDir !== undefined) this.mirror.release(checkpointFilePaths(this.mirrorDir));
  }

  /** Superseded mirror notes stay evidence: immutable again in their new place. */
  freezeSuperseded(dir: string): void {
    this.mirror.protect(checkpointFilePaths(dir), '');
  }

  /** The state after open: sealed segments and every checkpoint note immutable, the active segment append-only. */
  protect(active: string): void {
    const sealed = listSegments(this.dir).map((segment) => segment.path).filter((path) => path !== active);
    this.log.protect([...sealed, ...checkpointFilePaths(join(this.dir, CHECKPOINTS_DIR))], active);
    if (this.mirrorDir !== undefined) this.mirror.protect(checkpointFilePaths(this.mirrorDir), '');
  }

  rotated(closed: string, opened: string): Promise<void> {
    return this.log.rotated(closed, opened);
  }

  /** A checkpoint note just written (and its mirror copy): immutable, like a sealed segment. */
  async checkpointWritten(local: string, mirrored: string | undefined): Promise<void> {
    await this.log.freeze(local);
    if (mirrored !== undefined) await this.mirror.freeze(mirrored);
  }

  /** Retention, the only path that lifts a sealed segment's attribute while the gateway runs. */
  retire(segment: string): void {
    this.log.release([segment]);
  }
}

/** Paths per chattr run: far under ARG_MAX even for long paths, and a year of checkpoints is a few hundred runs. */
const PATHS_PER_RUN = 1000;

function chattrSync(flags: readonly string[], paths: readonly string[]): void {
  for (let start = 0; start < paths.length; start += PATHS_PER_RUN) {
    const batch = paths.slice(start, start + PATHS_PER_RUN).map((path) => resolve(path));
    execFileSync('chattr', [...flags, ...batch], { stdio: 'pipe', timeout: EXEC_TIMEOUT_MS });
  }
}

function filesystemOf(dir: string): string {
  try {
    const type = statfsSync(dir).type;
    return FILESYSTEMS.get(type) ?? `filesystem type 0x${type.toString(16)}`;
  } catch {
    return 'an unknown filesystem';
  }
}

function hasLinuxImmutable(): boolean {
  try {
    const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((entry) => entry.startsWith('CapEff:'));
    return line !== undefined && ((BigInt(`0x${line.slice('CapEff:'.length).trim()}`) >> CAP_LINUX_IMMUTABLE) & 1n) === 1n;
  } catch {
    return false;
  }
}

function execError(error: unknown): string {
  const { code, stderr, message } = error as { code?: string; stderr?: Buffer | string; message?: string };
  if (code === 'ENOENT') return 'chattr/lsattr not found (install e2fsprogs)';
  const text = String(stderr ?? '').trim();
  return text === '' ? (message ?? String(error)) : text;
}
