import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';

/**
 * Deletes a test's temporary directory, audit logs included. Run as root with
 * CAP_LINUX_IMMUTABLE, a gateway with the default audit.appendOnly (auto) leaves its segments
 * and checkpoints append-only or immutable, and those outlive the process: rmSync then fails
 * with EPERM, even for root. The attributes are lifted (chattr -R -a -i, without a shell) and
 * the removal is tried again.
 */
export function removeTree(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true });
    return;
  } catch {
    // EPERM from unlink, which rmSync reports as ENOTDIR after trying rmdir on the file.
  }
  liftAttributes(path);
  rmSync(path, { recursive: true, force: true });
}

/** chattr -R -a -i over a tree; its complaints about sockets and fifos (which carry no attributes) do not matter. */
export function liftAttributes(path: string): void {
  if (process.platform !== 'linux' || !existsSync(path)) return;
  spawnSync('chattr', ['-R', '-a', '-i', path], { stdio: 'ignore', timeout: 60_000 });
}
