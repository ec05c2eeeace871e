import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeTree } from '../helpers/tmp.js';

/** The repository root (works from test/ under tsx and from dist/test/). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'data', 'scan'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the repository root above the test');
    dir = up;
  }
  return dir;
}

export const corpusDir = (): string => join(repoRoot(), 'test', 'scan', 'corpus');

export function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-scan-test-'));
  return fn(dir).finally(() => removeTree(dir));
}

export function referenceServerEntry(name: 'everything' | 'filesystem' | 'memory'): string {
  return join(repoRoot(), 'node_modules', '@modelcontextprotocol', `server-${name}`, 'dist', 'index.js');
}
