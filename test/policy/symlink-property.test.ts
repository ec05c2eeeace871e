import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { canonicalizePath, pathCovers } from '../../src/policy/index.js';
import { tempDir } from './helpers.js';

/**
 * Random paths through a real tree full of symlinks (in, out, up, to the root, chains, loops).
 * Whenever the policy says a path is inside the grant, both ways a server may open it (the
 * kernel following the raw string, or path.resolve then realpath) must land inside the grant.
 */
describe('canonicalization against the real filesystem (property)', () => {
  const tmp = tempDir('bastion-policy-prop-');
  let granted = '';
  before(() => {
    granted = resolve(tmp.dir, 'granted');
    mkdirSync(resolve(granted, 'sub', 'deep'), { recursive: true });
    mkdirSync(resolve(tmp.dir, 'secret', 'sub'), { recursive: true });
    mkdirSync(resolve(tmp.dir, 'granted-sibling'), { recursive: true });
    writeFileSync(resolve(granted, 'file'), 'ok');
    writeFileSync(resolve(granted, 'sub', 'file'), 'ok');
    writeFileSync(resolve(tmp.dir, 'secret', 'file'), 'secret');
    symlinkSync(resolve(tmp.dir, 'secret'), resolve(granted, 'out'));
    symlinkSync('../secret', resolve(granted, 'out-relative'));
    symlinkSync('sub', resolve(granted, 'in'));
    symlinkSync('..', resolve(granted, 'sub', 'up'));
    symlinkSync('../..', resolve(granted, 'sub', 'upup'));
    symlinkSync('/', resolve(granted, 'root'));
    symlinkSync('out', resolve(granted, 'chain'));
    symlinkSync('loop', resolve(granted, 'loop'));
    symlinkSync(resolve(granted, 'sub'), resolve(tmp.dir, 'secret', 'back'));
  });
  after(() => tmp.cleanup());

  const segment = fc.constantFrom('.', '..', '', 'sub', 'deep', 'file', 'out', 'out-relative', 'in', 'up', 'upup', 'root', 'chain', 'loop', 'back', 'secret', 'granted', 'missing', 'tmp');

  function kernelView(path: string): string | undefined {
    try {
      return realpathSync(path);
    } catch {
      return undefined;
    }
  }

  test('an allowed path is inside the grant however the server resolves it', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.array(segment, { minLength: 1, maxLength: 8 }), (fromGranted, parts) => {
        const raw = `${fromGranted ? granted : tmp.dir}/${parts.join('/')}`;
        const result = canonicalizePath(raw, true);
        assert.ok(result.ok || result.reason === 'path_ambiguous' || result.reason === 'path_unresolvable', `${raw}: ${result.ok ? '' : result.reason}`);
        if (!result.ok || !pathCovers(granted, result.path)) return;
        const byKernel = kernelView(raw);
        if (byKernel !== undefined) assert.ok(pathCovers(granted, byKernel), `kernel reaches ${byKernel} for ${raw}`);
        const byResolveFirst = kernelView(resolve(raw));
        if (byResolveFirst !== undefined) assert.ok(pathCovers(granted, byResolveFirst), `path.resolve+realpath reaches ${byResolveFirst} for ${raw}`);
        assert.ok(!result.path.split('/').includes('..'));
      }),
      { numRuns: 3000 },
    );
  });
});
