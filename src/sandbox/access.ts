// Before a sandbox starts as a dedicated uid: can that uid reach what it will be given? bwrap
// runs as the server's uid, so a bind source it cannot traverse makes bwrap die at setup with a
// terse message; the usual cause is a checkout or build made under `umask 077`. This says which
// path, which directory refused, and what to change, before anything is spawned.
import { spawnSync } from 'node:child_process';
import { statSync, type Stats } from 'node:fs';
import { dirname, parse } from 'node:path';

export type Access = 'read' | 'write';

/** Why `uid` (with only its own gid, as setpriv --clear-groups leaves it) cannot use `path`, or undefined. */
export function modeAccessProblem(path: string, uid: number, want: Access, stat: (p: string) => Stats | undefined = statOrUndefined): string | undefined {
  const target = stat(path);
  if (target === undefined) return `${path} does not exist`;
  const ancestors: string[] = [];
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    ancestors.unshift(dir);
    if (dir === parse(dir).root) break;
  }
  for (const dir of ancestors) {
    const info = stat(dir);
    if (info === undefined) return `${dir} does not exist`;
    if (!allows(info, uid, 0o1)) return `directory ${dir} (mode ${octal(info.mode)}, owner ${info.uid}) cannot be traversed by uid ${uid}`;
  }
  const needed = (want === 'write' ? 0o2 : 0o4) | (target.isDirectory() ? 0o1 : 0);
  if (!allows(target, uid, needed)) {
    return `${path} (mode ${octal(target.mode)}, owner ${target.uid}) cannot be ${want === 'write' ? 'written' : 'read'} by uid ${uid}`;
  }
  return undefined;
}

function allows(info: Stats, uid: number, bits: number): boolean {
  const shift = info.uid === uid ? 6 : info.gid === uid ? 3 : 0;
  return ((info.mode >> shift) & bits) === bits;
}

const octal = (mode: number): string => `0${(mode & 0o7777).toString(8)}`;

function statOrUndefined(path: string): Stats | undefined {
  return statSync(path, { throwIfNoEntry: false });
}

/**
 * The mode bits say no; ACLs may still say yes. Asks the kernel as that uid (only on the
 * rare path where the mode check failed, so a normal start spawns nothing extra).
 */
function kernelAllows(setpriv: string, path: string, uid: number, want: Access): boolean {
  const flag = want === 'write' ? '-w' : '-r';
  const result = spawnSync(setpriv, ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', '--', 'test', flag, path], { stdio: 'ignore', timeout: 5000 });
  return result.status === 0;
}

export interface AccessCheck {
  path: string;
  want: Access;
  /** What the path is to the server, for the message ("its code", "the read grant", ...). */
  role: string;
}

/** Every problem, as one message per path with the fix; empty when the uid can use them all. */
export function accessProblems(checks: readonly AccessCheck[], uid: number, setpriv: string): string[] {
  const problems: string[] = [];
  for (const check of checks) {
    const problem = modeAccessProblem(check.path, uid, check.want);
    if (problem === undefined || kernelAllows(setpriv, check.path, uid, check.want)) continue;
    const fix = check.want === 'write' ? `give uid ${uid} that directory (chown ${uid}:${uid})` : 'make it and its parent directories readable by other users (chmod o+rX), e.g. rebuild or reinstall with umask 022';
    problems.push(`${check.role}: ${problem}; ${fix}`);
  }
  return problems;
}
