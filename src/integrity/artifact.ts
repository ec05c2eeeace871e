// Artifact digests: a single file (an entry script or a package tarball), or a deterministic tree
// digest of a package directory. Checked before a server process starts, so a package that
// changed on disk does not run.
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { DEFAULT_DIGEST_ALGORITHM, digestJson, digestsEqual, parseDigest, type DigestAlgorithm } from './digest.js';

export type ArtifactKind = 'file' | 'tree';

export interface ArtifactDigest {
  path: string;
  kind: ArtifactKind;
  digest: string;
}

type TreeEntry =
  | { path: string; type: 'dir' }
  | { path: string; type: 'file'; executable: boolean; size: number; digest: string }
  | { path: string; type: 'symlink'; target: string };

/** A package tree larger than this is refused rather than hashed for minutes. */
export const MAX_TREE_ENTRIES = 200_000;

/** Files below this size are read in one call; larger ones are streamed to bound memory. */
const STREAM_ABOVE_BYTES = 4 * 1024 * 1024;

async function fileDigest(file: string, algorithm: DigestAlgorithm, size?: number): Promise<string> {
  const hash = createHash(algorithm);
  if (size !== undefined && size < STREAM_ABOVE_BYTES) return `${algorithm}:${hash.update(readFileSync(file)).digest('hex')}`;
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `${algorithm}:${hash.digest('hex')}`;
}

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

async function walk(root: string, dir: string, algorithm: DigestAlgorithm, entries: TreeEntry[]): Promise<void> {
  for (const name of readdirSync(dir).sort(byteOrder)) {
    const full = join(dir, name);
    const path = relative(root, full).split(sep).join('/');
    const stat = lstatSync(full);
    if (entries.length >= MAX_TREE_ENTRIES) throw new Error(`${root} has more than ${MAX_TREE_ENTRIES} entries; point the artifact at the package directory, not a whole tree`);
    if (stat.isSymbolicLink()) entries.push({ path, type: 'symlink', target: readlinkSync(full) });
    else if (stat.isDirectory()) {
      entries.push({ path, type: 'dir' });
      await walk(root, full, algorithm, entries);
    } else if (stat.isFile()) entries.push({ path, type: 'file', executable: (stat.mode & 0o111) !== 0, size: stat.size, digest: await fileDigest(full, algorithm, stat.size) });
    else throw new Error(`${full} is not a regular file, directory or symlink; a package must not contain devices, sockets or pipes`);
  }
}

/**
 * Tree digest ("bastion-tree-v1"): the digest of the canonical JSON of every entry below the
 * directory, sorted by UTF-8 path, each with its type, and for files the executable bit, size and
 * content digest; symlinks are recorded by target, never followed. Timestamps and owners are left
 * out so a fresh unpack of the same package gives the same digest.
 */
export async function treeDigest(dir: string, algorithm: DigestAlgorithm = DEFAULT_DIGEST_ALGORITHM): Promise<string> {
  const entries: TreeEntry[] = [];
  await walk(dir, dir, algorithm, entries);
  return digestJson({ format: 'bastion-tree-v1', entries }, algorithm);
}

/** Digest of a file or a directory (tree digest); symlinks at the top are followed once. */
export async function artifactDigest(path: string, algorithm: DigestAlgorithm = DEFAULT_DIGEST_ALGORITHM): Promise<ArtifactDigest> {
  const stat = lstatSync(path, { throwIfNoEntry: false }) ?? undefined;
  if (stat === undefined) throw new Error(`artifact ${path} does not exist`);
  const target = stat.isSymbolicLink() ? statSync(path) : stat;
  if (target.isDirectory()) return { path, kind: 'tree', digest: await treeDigest(path, algorithm) };
  if (target.isFile()) return { path, kind: 'file', digest: await fileDigest(path, algorithm) };
  throw new Error(`artifact ${path} is neither a file nor a directory`);
}

export type ArtifactCheck = { ok: true; digest: string } | { ok: false; reason: 'artifact-missing' | 'artifact-changed'; message: string; actual?: string };

/** Recomputes the artifact digest with the algorithm the expected value names. Call before spawning. */
export async function checkArtifact(expected: ArtifactDigest): Promise<ArtifactCheck> {
  const { algorithm } = parseDigest(expected.digest);
  let actual: ArtifactDigest;
  try {
    actual = await artifactDigest(expected.path, algorithm);
  } catch (error) {
    return { ok: false, reason: 'artifact-missing', message: `cannot hash the artifact: ${(error as Error).message}` };
  }
  if (actual.kind === expected.kind && digestsEqual(actual.digest, expected.digest)) return { ok: true, digest: actual.digest };
  return {
    ok: false,
    reason: 'artifact-changed',
    actual: actual.digest,
    message: `the server's code at ${expected.path} changed since it was locked (locked ${expected.digest}, now ${actual.digest}); if the change is approved, run bastion lock --update SERVER`,
  };
}
