import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AtomIndex } from '../../src/scan/atom-index.js';
import { loadRules } from '../../src/scan/rules.js';
import { mulberry32 as prng } from '../../src/scan/train.js';

function expected(atoms: readonly string[], text: string): number[] {
  return atoms.map((atom) => (text.includes(atom) ? 1 : 0));
}

test('reports exactly the atoms that includes() finds, on random texts over a small alphabet (overlaps, nesting, non-ASCII)', () => {
  const random = prng(20261202);
  const alphabet = ['a', 'b', 'c', 'ab', ' ', 'é', 'ж', '\u{1F600}', 'A'];
  const pick = (n: number): string => Array.from({ length: n }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
  for (let round = 0; round < 300; round += 1) {
    const atoms = Array.from({ length: 1 + Math.floor(random() * 12) }, () => pick(1 + Math.floor(random() * 4)));
    const index = new AtomIndex(atoms);
    for (let t = 0; t < 10; t += 1) {
      const text = pick(Math.floor(random() * 60));
      assert.deepEqual([...index.scan(text)], expected(index.atoms, text), `atoms ${JSON.stringify(index.atoms)} text ${JSON.stringify(text)}`);
    }
  }
});

test('the rule set\'s own atoms: the index agrees with includes() on texts that hold some of them', () => {
  const atoms = loadRules().metadata.flatMap((rule) => rule.atoms.flatMap((list) => list ?? []));
  const index = new AtomIndex(atoms);
  assert.ok(index.atoms.length > 50, 'the rules have atoms to index');
  const random = prng(7);
  for (let round = 0; round < 200; round += 1) {
    const parts = Array.from({ length: 1 + Math.floor(random() * 6) }, () => (random() < 0.5 ? (index.atoms[Math.floor(random() * index.atoms.length)] as string) : 'lorem ipsum, '));
    const text = parts.join(random() < 0.5 ? '' : ' ');
    assert.deepEqual([...index.scan(text)], expected(index.atoms, text));
  }
});

test('duplicate and empty atoms are ignored; an unknown atom has no id; an empty index finds nothing', () => {
  const index = new AtomIndex(['ignore', '', 'ignore', 'previous']);
  assert.deepEqual(index.atoms, ['ignore', 'previous']);
  assert.equal(index.idOf('nothing'), undefined);
  assert.deepEqual([...index.scan('please ignore all previous text')], [1, 1]);
  assert.deepEqual([...new AtomIndex([]).scan('anything')], []);
});

test('a search after another does not keep the previous text\'s findings', () => {
  const index = new AtomIndex(['secret', 'token']);
  assert.deepEqual([...index.scan('the secret token')], [1, 1]);
  assert.deepEqual([...index.scan('nothing here')], [0, 0]);
  assert.deepEqual([...index.scan('a token only')], [0, 1]);
});

test('base64Runs finds exactly what the regex it replaces finds', async () => {
  const { base64Runs } = await import('../../src/scan/text.js');
  const random = prng(99);
  const alphabet = ['a', 'Z', '0', '+', '/', '_', '-', '=', '==', ' ', '.', 'é', 'aGVsbG8gd29ybGQ'];
  for (let round = 0; round < 2000; round += 1) {
    const text = Array.from({ length: Math.floor(random() * 40) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
    const viaRegex = [...text.matchAll(/[A-Za-z0-9+/_-]{20,}={0,2}/g)].map((m) => m[0]);
    assert.deepEqual(base64Runs(text), viaRegex, JSON.stringify(text));
  }
});
