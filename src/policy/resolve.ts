// Physical path resolution, component by component, the way the kernel and the filesystem
// server will open the path. Two readings of one name are closed here:
//
// - Unicode: Linux stores names as bytes, but the filesystem server (and macOS, and any
//   server that compares names after normalizing) matches a requested name against a
//   directory entry in another normalization form (NFC `café` opens the NFD entry
//   `cafe\u0301`). So a component that does not exist byte for byte is looked up among
//   the entries that are canonically equivalent, and that entry (a symlink, maybe) is
//   followed. A component that exists in more than one form is refused: which one a
//   consumer opens is its choice, not ours.
// - Symlinks: every component is lstat'ed; a link is read and its target walked the same
//   way (at most 40 links, as the kernel). A link whose target does not exist (dangling)
//   is refused: a write through it would create a file wherever it points.
import { lstatSync, readdirSync, readlinkSync, realpathSync, type Stats } from 'node:fs';

export type ResolveRejection = 'path_unresolvable' | 'path_unicode_ambiguous' | 'path_dangling_symlink';

export type ResolveResult = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly reason: ResolveRejection; readonly message: string };

/** Linux's MAXSYMLINKS: more links than this in one resolution is a loop (ELOOP). */
const MAX_SYMLINKS = 40;

function reject(reason: ResolveRejection, message: string): ResolveResult {
  return { ok: false, reason, message };
}

function isAscii(text: string): boolean {
  for (let index = 0; index < text.length; index += 1) if (text.charCodeAt(index) > 0x7f) return false;
  return true;
}

function child(directory: string, name: string): string {
  return directory === '/' ? `/${name}` : `${directory}/${name}`;
}

function parent(directory: string): string {
  const cut = directory.lastIndexOf('/');
  return cut <= 0 ? '/' : directory.slice(0, cut);
}

/** Appends not-yet-existing components: `.` and empty ones vanish, `..` pops (nothing below exists to follow). */
function appendLexically(directory: string, names: readonly string[]): string {
  const stack = directory === '/' ? [] : directory.slice(1).split('/');
  for (const name of names) {
    if (name === '' || name === '.') continue;
    if (name === '..') stack.pop();
    else stack.push(name);
  }
  return `/${stack.join('/')}`;
}

class Unresolvable extends Error {
  constructor(
    readonly reason: ResolveRejection,
    message: string,
  ) {
    super(message);
  }
}

function lstatOrMissing(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new Unresolvable('path_unresolvable', `the path cannot be resolved (${code ?? 'error'} at ${path})`);
  }
}

/** Directory entries canonically equivalent to `name` (the exact spelling included, if present). */
function equivalentEntries(directory: string, name: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(directory);
  } catch (error) {
    throw new Unresolvable('path_unresolvable', `the path cannot be resolved (${(error as NodeJS.ErrnoException).code ?? 'error'} reading ${directory})`);
  }
  const wanted = name.normalize('NFC');
  return entries.filter((entry) => entry === name || entry.normalize('NFC') === wanted);
}

/**
 * The path as the kernel and a normalizing server resolve it: symlinks followed, `..` taken
 * physically, names matched up to Unicode canonical equivalence. Components that do not exist
 * in any form (a file about to be written) are appended to the real path of the deepest
 * existing ancestor. An all-ASCII path that exists byte for byte takes one realpath call:
 * every consumer opens an exact ASCII match as it is.
 */
export function resolvePhysical(absolute: string): ResolveResult {
  if (isAscii(absolute)) {
    try {
      return { ok: true, path: realpathSync.native(absolute) };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') return reject('path_unresolvable', `the path cannot be resolved (${code ?? 'error'} at ${absolute})`);
    }
  }
  try {
    return { ok: true, path: walk(absolute) };
  } catch (error) {
    if (error instanceof Unresolvable) return reject(error.reason, error.message);
    throw error;
  }
}

/** One pending component, and whether it came from a symlink's target (then it must exist). */
interface Pending {
  name: string;
  fromLink: boolean;
}

function pushComponents(stack: Pending[], path: string, fromLink: boolean): void {
  const names = path.split('/');
  for (let index = names.length - 1; index >= 0; index -= 1) {
    const name = names[index] as string;
    if (name !== '' && name !== '.') stack.push({ name, fromLink });
  }
}

function walk(absolute: string): string {
  const stack: Pending[] = [];
  pushComponents(stack, absolute, false);
  let current = '/';
  let links = 0;
  while (stack.length > 0) {
    const next = stack.pop() as Pending;
    if (next.name === '..') {
      current = parent(current);
      continue;
    }
    let entry = next.name;
    let stats = lstatOrMissing(child(current, entry));
    if (stats === undefined || !isAscii(entry)) {
      const matches = equivalentEntries(current, entry);
      if (matches.length > 1) {
        throw new Unresolvable('path_unicode_ambiguous', `'${entry}' exists in ${matches.length} Unicode normalization forms in ${current}; which one a server opens is its choice, so the path is refused`);
      }
      const match = matches[0];
      if (match === undefined) {
        if (next.fromLink || stack.some((pending) => pending.fromLink)) {
          throw new Unresolvable('path_dangling_symlink', `a symlink on the path points to something that does not exist (${child(current, entry)}); writing through it would create a file wherever it points`);
        }
        return appendLexically(current, [entry, ...stack.reverse().map((pending) => pending.name)]);
      }
      entry = match;
      stats = lstatOrMissing(child(current, entry));
      if (stats === undefined) throw new Unresolvable('path_unresolvable', `${child(current, entry)} vanished while it was resolved`);
    }
    if (stats.isSymbolicLink()) {
      links += 1;
      if (links > MAX_SYMLINKS) throw new Unresolvable('path_unresolvable', `the path cannot be resolved (ELOOP: more than ${MAX_SYMLINKS} symlinks)`);
      let target: string;
      try {
        target = readlinkSync(child(current, entry));
      } catch (error) {
        throw new Unresolvable('path_unresolvable', `the path cannot be resolved (${(error as NodeJS.ErrnoException).code ?? 'error'} reading the link ${child(current, entry)})`);
      }
      if (target.startsWith('/')) current = '/';
      pushComponents(stack, target, true);
      continue;
    }
    if (stack.length > 0 && !stats.isDirectory()) {
      throw new Unresolvable('path_unresolvable', `the path cannot be resolved (ENOTDIR at ${child(current, entry)})`);
    }
    current = child(current, entry);
  }
  return current;
}
