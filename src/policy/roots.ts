// The client's answer to a server's roots/list, cut down to the agent's filesystem grants
// before the server sees it. The filesystem server replaces its allowed directories with the
// roots it is given, so an unfiltered answer would widen what the server itself enforces; a
// filtered one makes the server's own checks (at the moment it opens a file) agree with the
// agent's grants: a symlink out of them is refused by the server too.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { canonicalizePath, pathCovers } from './path.js';

interface Root {
  uri: string;
  name?: string;
}

function rootPath(uri: unknown): string | undefined {
  if (typeof uri !== 'string' || !uri.startsWith('file://')) return undefined;
  let path: string;
  try {
    path = fileURLToPath(uri);
  } catch {
    return undefined;
  }
  const canonical = canonicalizePath(path, true);
  return canonical.ok ? canonical.path : undefined;
}

/**
 * The intersection of the client's roots and the agent's granted directories (canonical
 * paths): a root inside a grant is kept; a root above a grant is narrowed to that grant;
 * anything else, non-file URIs and malformed entries included, is dropped. A malformed answer
 * becomes an empty list (fail closed).
 */
export function filterRoots(result: unknown, grants: readonly string[]): { roots: Root[] } {
  const roots: Root[] = [];
  const seen = new Set<string>();
  const add = (path: string, name: unknown): void => {
    if (seen.has(path)) return;
    seen.add(path);
    roots.push({ uri: pathToFileURL(path).href, ...(typeof name === 'string' ? { name } : {}) });
  };
  const given = result !== null && typeof result === 'object' ? (result as Record<string, unknown>)['roots'] : undefined;
  if (!Array.isArray(given)) return { roots };
  for (const entry of given) {
    if (entry === null || typeof entry !== 'object') continue;
    const { uri, name } = entry as Record<string, unknown>;
    const path = rootPath(uri);
    if (path === undefined) continue;
    if (grants.some((grant) => pathCovers(grant, path))) {
      add(path, name);
      continue;
    }
    for (const grant of grants) if (pathCovers(path, grant)) add(grant, name);
  }
  return { roots };
}
