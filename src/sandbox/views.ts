// The sandbox's process view: the server must not be able to open its init's /proc/1/mem (or
// environ, maps...). bwrap's own init is a forked bwrap, dumpable and of the server's uid, so
// ptrace-mode access checks let the server in. Instead the sandbox's pid 1 is dumb-init, executed
// from a copy the server's uid may execute but not read: the kernel marks a process that execs an
// unreadable file non-dumpable (and moves its mm to a user namespace where the server holds no
// capability), so /proc/1/* that need ptrace access refuse the server. dumb-init reaps orphans and
// forwards signals as bwrap's init did, and reports a child killed by signal N as exit 128+N.
import { chmodSync, copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary } from './host.js';

/** Inside the sandbox. */
export const SANDBOX_INIT = '/run/bastion/init';

let prepared: string | undefined;

/** Host path of the execute-only init, made once per process; undefined when dumb-init is not installed. */
export function executeOnlyInit(): string | undefined {
  if (prepared !== undefined) return prepared;
  const source = findBinary('dumb-init');
  if (!source) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'bastion-init-'));
  chmodSync(dir, 0o711);
  const copy = join(dir, 'init');
  copyFileSync(source, copy);
  chmodSync(copy, 0o111);
  prepared = copy;
  return copy;
}

/** bwrap arguments that make the execute-only init pid 1 (before `--`), and the command prefix (after). */
export function initArgs(initPath: string | undefined): { bwrap: string[]; command: string[] } {
  if (initPath === undefined) return { bwrap: [], command: [] };
  return { bwrap: ['--as-pid-1', '--ro-bind', initPath, SANDBOX_INIT], command: [SANDBOX_INIT] };
}
