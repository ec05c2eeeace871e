// Path canonicalization for filesystem scopes (the physical walk is in resolve.ts). The gateway must judge the same file the
// server will open, so every trick that makes two readings of a path differ is either
// resolved (`.`, `..`, `//`, symlinks) or refused (NUL and control characters, non-NFC
// Unicode, percent-encoding, backslashes, relative paths). Refusing is the safe answer
// whenever the gateway cannot be sure what the server would see.
import { resolvePhysical, type ResolveRejection } from './resolve.js';

export { resolvePhysical } from './resolve.js';

export type PathRejection =
  | 'path_empty'
  | 'path_too_long'
  | 'path_control_character'
  | 'path_not_nfc'
  | 'path_backslash'
  | 'path_percent_encoded'
  | 'path_relative'
  | 'path_ambiguous'
  | ResolveRejection;

export type PathResult = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly reason: PathRejection; readonly message: string };

/** Longer than Linux PATH_MAX: no legitimate argument needs more. */
const MAX_PATH_LENGTH = 4096;
const PERCENT_ESCAPE = /%[0-9a-fA-F]{2}/;
const DOT_DOT_SEGMENT = /(^|\/)\.\.(\/|$)/;

/** C0 controls (NUL included), DEL and C1 controls; with `spaceToo`, also the space. */
export function hasControlCharacter(text: string, spaceToo = false): boolean {
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f) || (spaceToo && code === 0x20)) return true;
  }
  return false;
}

function reject(reason: PathRejection, message: string): PathResult {
  return { ok: false, reason, message };
}

/**
 * Refuses what must never be interpreted, then resolves `.`, `..` and repeated slashes as
 * strings. `..` at the root stays at the root, as in POSIX. Case is kept as is: Linux file
 * names are case-sensitive, so no case folding can widen a grant.
 */
export function canonicalizeLexical(raw: string): PathResult {
  if (raw.length === 0) return reject('path_empty', 'the path is empty');
  if (raw.length > MAX_PATH_LENGTH) return reject('path_too_long', `the path is longer than ${MAX_PATH_LENGTH} characters`);
  const scan = scanCharacters(raw);
  if (scan === 'control') return reject('path_control_character', 'the path contains a NUL byte or a control character');
  // ASCII is always NFC; only other text pays for normalization.
  if (scan === 'non-ascii' && raw.normalize('NFC') !== raw) {
    return reject('path_not_nfc', 'the path is not in Unicode NFC form; the kernel does not normalize names, so the gateway would check a different file than the server opens');
  }
  if (raw.includes('\\')) return reject('path_backslash', 'the path contains a backslash, which some servers treat as a separator');
  if (PERCENT_ESCAPE.test(raw)) return reject('path_percent_encoded', 'the path contains a percent-encoded sequence (e.g. %2e); file paths are not URLs and are never decoded');
  if (!raw.startsWith('/')) return reject('path_relative', 'the path is not absolute; relative paths (and ~) are resolved by the server against a directory the gateway cannot see');
  return { ok: true, path: isAlreadyCanonical(raw) ? raw : joinSegments(raw.split('/')) };
}

function scanCharacters(text: string): 'ascii' | 'non-ascii' | 'control' {
  let ascii = true;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return 'control';
    if (code > 0x7f) ascii = false;
  }
  return ascii ? 'ascii' : 'non-ascii';
}

/** No empty, `.` or `..` segment and no trailing slash: the common case skips split and join. */
function isAlreadyCanonical(path: string): boolean {
  if (path.length > 1 && path.endsWith('/')) return false;
  return !path.includes('//') && !path.includes('/./') && !path.includes('/../') && !path.endsWith('/.') && !path.endsWith('/..');
}

function joinSegments(segments: readonly string[]): string {
  const stack: string[] = [];
  for (const segment of segments) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') stack.pop();
    else stack.push(segment);
  }
  return `/${stack.join('/')}`;
}

/**
 * Full canonicalization: lexical checks, then symlink resolution. When the path contains `..`,
 * a server that normalizes strings first (path.resolve) and the kernel (which follows a
 * symlink before applying `..`) may reach different files: if they do, the path is refused.
 */
export function canonicalizePath(raw: string, followSymlinks: boolean): PathResult {
  const lexical = canonicalizeLexical(raw);
  if (!lexical.ok || !followSymlinks) return lexical;
  const physical = resolvePhysical(lexical.path);
  if (!physical.ok || !DOT_DOT_SEGMENT.test(raw)) return physical;
  const kernel = resolvePhysical(raw.replace(/\/+/g, '/'));
  if (!kernel.ok) return kernel;
  if (kernel.path !== physical.path) {
    return reject('path_ambiguous', `'..' crosses a symlink: the kernel reaches ${kernel.path} but string normalization reaches ${physical.path}`);
  }
  return physical;
}

/** Subtree containment on canonical paths: /tmp/x covers /tmp/x and /tmp/x/a, never /tmp/xy. */
export function pathCovers(granted: string, requested: string): boolean {
  if (granted === '/') return true;
  return requested === granted || (requested.startsWith(granted) && requested.charCodeAt(granted.length) === 47);
}

/** The path and each of its ancestors, nearest first, ending with '/'. */
export function* selfAndAncestors(path: string): Generator<string> {
  let current = path;
  yield current;
  while (current !== '/') {
    const cut = current.lastIndexOf('/');
    current = cut <= 0 ? '/' : current.slice(0, cut);
    yield current;
  }
}
