import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { canonicalizeLexical, canonicalizePath, pathCovers } from '../../src/policy/index.js';
import { removeTree } from '../helpers/tmp.js';

const segment = fc.oneof(fc.constantFrom('.', '..', '', 'a', 'b', 'x', 'xy', '...', '.hidden'), fc.stringMatching(/^[a-z0-9_.-]{1,6}$/));
const rawPath = fc.array(segment, { maxLength: 12 }).map((parts) => `/${parts.join('/')}`);

describe('lexical canonicalization (properties)', () => {
  test('a canonical path never contains . or .. segments, empty segments or a trailing slash', () => {
    fc.assert(
      fc.property(rawPath, (raw) => {
        const result = canonicalizeLexical(raw);
        assert.ok(result.ok);
        const parts = result.path.split('/').slice(1);
        assert.ok(result.path === '/' || parts.every((part) => part !== '' && part !== '.' && part !== '..'), result.path);
      }),
      { numRuns: 2000 },
    );
  });

  test('canonicalization is idempotent', () => {
    fc.assert(
      fc.property(rawPath, (raw) => {
        const once = canonicalizeLexical(raw);
        assert.ok(once.ok);
        assert.deepEqual(canonicalizeLexical(once.path), once);
      }),
      { numRuns: 2000 },
    );
  });

  test('.. can never climb out of a grant unless the canonical path is outside it', () => {
    fc.assert(
      fc.property(rawPath, (suffix) => {
        const result = canonicalizeLexical(`/srv/granted${suffix}`);
        assert.ok(result.ok);
        const inside = pathCovers('/srv/granted', result.path);
        assert.equal(inside, result.path === '/srv/granted' || result.path.startsWith('/srv/granted/'));
      }),
      { numRuns: 2000 },
    );
  });

  test('any string with a NUL or control character is refused', () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 0, max: 31 }), fc.string(), (before, code, afterText) => {
        const result = canonicalizeLexical(`/${before}${String.fromCharCode(code)}${afterText}`);
        assert.equal(result.ok, false);
      }),
    );
  });
});

describe('containment (properties)', () => {
  const canonical = rawPath.map((raw) => {
    const result = canonicalizeLexical(raw);
    if (!result.ok) throw new Error('unreachable');
    return result.path;
  });

  test('containment is reflexive and transitive', () => {
    fc.assert(
      fc.property(canonical, canonical, canonical, (a, b, c) => {
        assert.ok(pathCovers(a, a));
        if (pathCovers(a, b) && pathCovers(b, c)) assert.ok(pathCovers(a, c));
      }),
      { numRuns: 3000 },
    );
  });

  test('a grant never covers a sibling that merely shares its prefix (/tmp/x vs /tmp/xy)', () => {
    fc.assert(
      fc.property(canonical, fc.stringMatching(/^[a-z0-9]{1,4}$/), (base, extra) => {
        fc.pre(base !== '/');
        assert.equal(pathCovers(base, base + extra), false);
        assert.ok(pathCovers(base, `${base}/${extra}`));
      }),
    );
  });

  test('a path outside the grant is never covered', () => {
    fc.assert(
      fc.property(canonical, canonical, (grant, other) => {
        fc.pre(grant !== '/');
        const outside = other === grant || other.startsWith(`${grant}/`);
        assert.equal(pathCovers(grant, other), outside);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('attacks on path arguments (real files)', () => {
  let root = '';
  before(() => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'bastion-policy-path-')));
    mkdirSync(join(root, 'granted', 'sub'), { recursive: true });
    mkdirSync(join(root, 'secret'));
    writeFileSync(join(root, 'secret', 'key'), 'k');
    writeFileSync(join(root, 'granted', 'ok.txt'), 'ok');
    symlinkSync(join(root, 'secret'), join(root, 'granted', 'escape'));
    symlinkSync(join(root, 'granted', 'sub'), join(root, 'granted', 'inner'));
  });
  after(() => removeTree(root));

  const check = (raw: string) => {
    const result = canonicalizePath(raw, true);
    return result.ok ? pathCovers(join(root, 'granted'), result.path) : result.reason;
  };

  test('a path inside the granted directory is covered', () => {
    assert.equal(check(join(root, 'granted', 'ok.txt')), true);
    assert.equal(check(`${root}/granted/new-file-not-yet-written`), true);
  });

  test('.. out of the granted directory is denied', () => {
    assert.equal(check(`${root}/granted/../secret/key`), false);
    assert.equal(check(`${root}/granted/sub/../../secret/key`), false);
  });

  test('a symlink out of the granted directory is denied', () => {
    assert.equal(check(`${root}/granted/escape/key`), false);
    assert.equal(check(`${root}/granted/escape/not-yet-there`), false);
  });

  test('.. after a symlink, where the kernel and string normalization disagree, is refused', () => {
    // The kernel goes escape -> secret, then .. -> root; string normalization stays in granted.
    assert.equal(check(`${root}/granted/escape/../granted/ok.txt`), 'path_ambiguous');
  });

  test('a symlink that stays inside the granted directory is allowed', () => {
    assert.equal(check(`${root}/granted/inner/file`), true);
  });

  test('an absolute path elsewhere is denied', () => {
    assert.equal(check('/etc/passwd'), false);
    assert.equal(check(`${root}/secret/key`), false);
  });

  test('a sibling sharing the prefix (granted-evil) is denied', () => {
    mkdirSync(join(root, 'granted-evil'), { recursive: true });
    assert.equal(check(`${root}/granted-evil/x`), false);
  });

  test('percent-encoded dots and slashes are refused, not decoded', () => {
    assert.equal(check(`${root}/granted/%2e%2e/secret/key`), 'path_percent_encoded');
    assert.equal(check(`${root}/granted/..%2fsecret`), 'path_percent_encoded');
    assert.equal(check(`${root}/granted/%252e%252e/secret`), 'path_percent_encoded');
  });

  test('case games do not widen access (Linux names are case-sensitive)', () => {
    assert.equal(check(`${root}/GRANTED/ok.txt`), false);
    assert.equal(check(`${root}/Granted/../granted-evil`), false);
  });

  test('a NUL byte or control character in the path is refused', () => {
    assert.equal(check(`${root}/granted/ok.txt\u0000/../../secret/key`), 'path_control_character');
    assert.equal(check(`${root}/granted/\nx`), 'path_control_character');
    assert.equal(check(`${root}/granted/\u0085x`), 'path_control_character');
  });

  test('relative paths and ~ are refused', () => {
    assert.equal(check('granted/ok.txt'), 'path_relative');
    assert.equal(check('~/secret'), 'path_relative');
    assert.equal(check('./ok.txt'), 'path_relative');
  });

  test('non-NFC Unicode and backslashes are refused', () => {
    assert.equal(check(`${root}/granted/cafe\u0301`), 'path_not_nfc');
    assert.equal(check(`${root}/granted\\..\\secret`), 'path_backslash');
  });

  test('repeated slashes and . segments are resolved', () => {
    assert.equal(check(`${root}//granted/./sub//x`), true);
  });
});
