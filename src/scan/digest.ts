import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import canonicalize from 'canonicalize';

/** `sha256:<hex>`, the digest form the integrity module uses. */
export function sha256Digest(data: string | Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new Error('scan: value cannot be canonicalized as JSON (RFC 8785)');
  return text;
}

/** Digest of a manifest document: canonical JSON (RFC 8785) of it without its `proof`. */
export function manifestDigest(doc: unknown): string {
  if (typeof doc === 'object' && doc !== null && !Array.isArray(doc)) {
    const { proof: _proof, ...rest } = doc as Record<string, unknown>;
    return sha256Digest(canonicalJson(rest));
  }
  return sha256Digest(canonicalJson(doc));
}

/** Digest of one tool definition as listed (canonical JSON). Threat-feed tool blocks match on it. */
export function toolDigest(tool: unknown): string {
  return sha256Digest(canonicalJson(tool));
}

/**
 * Digest of an artifact: a tarball's bytes, or for a directory the sha256 of its sorted
 * `sha256sum`-style listing (`<hex>  <relative path>\n`), symlinks recorded by target.
 */
export function artifactDigest(path: string): string {
  const stat = lstatSync(path);
  if (stat.isFile()) return sha256Digest(readFileSync(path));
  const lines: [string, string][] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      if (name === '.git') continue;
      const full = join(dir, name);
      const st = lstatSync(full);
      const rel = relative(path, full).split('\\').join('/');
      if (st.isDirectory()) walk(full);
      else if (st.isSymbolicLink()) lines.push([rel, `symlink  ${rel}`]);
      else if (st.isFile()) lines.push([rel, `${createHash('sha256').update(readFileSync(full)).digest('hex')}  ${rel}`]);
    }
  };
  walk(path);
  lines.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return sha256Digest(lines.map(([, l]) => `${l}\n`).join(''));
}
