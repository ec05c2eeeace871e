import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

/**
 * Append-only storage for the audit segments (Linux): the active segment carries FS_APPEND_FL
 * (`chattr +a`: writes only at the end; no truncate, rename or unlink) and sealed segments
 * FS_IMMUTABLE_FL (`chattr +i`: no change at all). Only a process with CAP_LINUX_IMMUTABLE can
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
 * Sets and lifts the attributes on one log's segments. Disabled (every method a no-op) when the
 * mode is off or, in auto mode, where the probe failed. Only the writer calls it: to repair the
 * tail at open, at rotation, and in retention, which records what it lifted.
 */
export class SegmentAttributes {
  private constructor(readonly enabled: boolean, readonly support: AppendOnlySupport) {}

  static disabled(): SegmentAttributes {
    return new SegmentAttributes(false, { supported: false, detail: 'audit.appendOnly is off' });
  }

  /** Probes `dir`; `required` without support throws (the gateway refuses to start), `auto` warns. */
  static prepare(mode: AppendOnlyMode, dir: string): SegmentAttributes {
    if (mode === 'off') return SegmentAttributes.disabled();
    const support = probeAppendOnly(dir);
    if (support.supported) return new SegmentAttributes(true, support);
    if (mode === 'required') throw new Error(`audit.appendOnly is 'required' but the audit segments in ${dir} cannot be made append-only: ${support.detail}. Run Bastion as root with CAP_LINUX_IMMUTABLE on ext4 or xfs, or set audit.appendOnly: auto to run without it`);
    process.emitWarning(`audit.appendOnly: the audit segments in ${dir} stay ordinary files (${support.detail}); a root process can rewrite them, which verification detects but does not prevent`, { code: 'BASTION_AUDIT_NOT_APPEND_ONLY' });
    return new SegmentAttributes(false, support);
  }

  /** Lifts both attributes (recovery at open, a tamper restart's move to quarantine, retention). */
  release(paths: readonly string[]): void {
    if (!this.enabled || paths.length === 0) return;
    execFileSync('chattr', ['-a', '-i', ...paths.map((path) => resolve(path))], { stdio: 'pipe', timeout: EXEC_TIMEOUT_MS });
  }

  /** The state after open: every sealed segment immutable, the active one append-only. */
  protect(sealed: readonly string[], active: string): void {
    if (!this.enabled) return;
    if (sealed.length > 0) execFileSync('chattr', ['-a', '+i', ...sealed.map((path) => resolve(path))], { stdio: 'pipe', timeout: EXEC_TIMEOUT_MS });
    if (active !== '') execFileSync('chattr', ['+a', resolve(active)], { stdio: 'pipe', timeout: EXEC_TIMEOUT_MS });
  }

  /** At rotation: the closed segment becomes immutable, the new one append-only. */
  async rotated(closed: string, opened: string): Promise<void> {
    if (!this.enabled) return;
    if (closed !== '') await run('chattr', ['-a', '+i', resolve(closed)], { timeout: EXEC_TIMEOUT_MS });
    await run('chattr', ['+a', resolve(opened)], { timeout: EXEC_TIMEOUT_MS });
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
