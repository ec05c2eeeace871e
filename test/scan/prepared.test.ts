import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AtomIndex } from '../../src/scan/atom-index.js';
import { prefilterAtoms, regexAtoms, regexAtomsDeep } from '../../src/scan/atoms.js';
import { conceptSource, directiveSource, patternAtoms, preparedCounts } from '../../src/scan/prepared.js';
import { ASCII_BOUNDARY, fastBoundaries, unicodeBoundaries, UNICODE_WORD_BOUNDARY } from '../../src/scan/regex-speed.js';
import { conceptsIn, loadConceptData } from '../../src/scan/concepts.js';
import { loadRules, RuleFileError } from '../../src/scan/rules.js';
import { mulberry32 as prng } from '../../src/scan/train.js';
import { repoRoot } from './helpers.js';

const scanDist = join(repoRoot(), 'dist', 'src', 'scan');
const preparedJson = join(scanDist, 'prepared-data.json');

/** Runs an ES module script in a fresh Node (no module caches) and returns what it prints as JSON. */
function fresh(script: string): { hits: number; misses: number } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { hits: number; misses: number };
}

const scanScript = (dir: string): string => `
  const prepared = await import(${JSON.stringify(join(dir, 'prepared.js'))});
  const { loadRules } = await import(${JSON.stringify(join(scanDist, 'rules.js'))});
  const { analyzeMetadata } = await import(${JSON.stringify(join(scanDist, 'analyzers', 'metadata.js'))});
  analyzeMetadata({ name: 'notes', tools: [{ name: 'read_note', description: 'Read a note by its id and return its text.' }], prompts: [], resources: [], resourceTemplates: [], scopes: [] }, loadRules());
  process.stdout.write(JSON.stringify(prepared.preparedCounts()));`;

test('an atom index loaded from its tables finds what the built one finds, on random atoms and texts and on the rules\' atoms', () => {
  const random = prng(20261204);
  const alphabet = ['a', 'b', 'c', 'ab', ' ', 'é', 'ж', '\u{1F600}', 'A'];
  const pick = (n: number): string => Array.from({ length: n }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
  const ruleAtoms = loadRules().metadata.flatMap((rule) => rule.atoms.flatMap((list) => list ?? []));
  const sets = [ruleAtoms, ...Array.from({ length: 200 }, () => Array.from({ length: 1 + Math.floor(random() * 12) }, () => pick(1 + Math.floor(random() * 4))))];
  for (const atoms of sets) {
    const built = new AtomIndex(atoms);
    const loaded = new AtomIndex(atoms, built.tables());
    assert.deepEqual(loaded.atoms, built.atoms);
    for (let t = 0; t < 10; t += 1) {
      const text = atoms === ruleAtoms ? `${ruleAtoms[Math.floor(random() * ruleAtoms.length)] as string} é ${pick(20)}` : pick(Math.floor(random() * 60));
      assert.deepEqual([...loaded.scan(text)], atoms.length === 0 ? [] : built.atoms.map((a) => (text.includes(a) ? 1 : 0)), `atoms ${JSON.stringify(built.atoms)} text ${JSON.stringify(text)}`);
      assert.deepEqual(loaded.scanIds(text), built.scanIds(text));
    }
  }
  assert.throws(() => new AtomIndex(['abc', 'abd'], new AtomIndex(['abc']).tables()), /inconsistent prepared tables/);
});

test('every prepared answer is what the code computes now (the build\'s file is up to date)', () => {
  const file = JSON.parse(readFileSync(preparedJson, 'utf8')) as {
    strings: { concept: Record<string, string>; directive: Record<string, string> };
    atoms: { pattern: Record<string, string[] | null>; rule: Record<string, string[] | null> };
    indexes: { atoms: string[] }[];
  };
  assert.ok(Object.keys(file.strings.concept).length > 50 && Object.keys(file.strings.directive).length > 20 && file.indexes.length >= 3, 'the shipped rules were prepared');
  for (const [source, out] of Object.entries(file.strings.concept)) assert.equal(out, unicodeBoundaries(fastBoundaries(source, UNICODE_WORD_BOUNDARY)), source);
  for (const [source, out] of Object.entries(file.strings.directive)) assert.equal(out, fastBoundaries(source, ASCII_BOUNDARY), source);
  for (const [source, out] of Object.entries(file.atoms.pattern)) assert.deepEqual(out ?? undefined, prefilterAtoms(source), source);
  for (const [source, out] of Object.entries(file.atoms.rule)) assert.deepEqual(out ?? undefined, regexAtoms(source) ?? regexAtomsDeep(source), source);
  // The loaded indexes are checked against built ones by what they find (above); here only that each one's atoms are the rules'.
  for (const entry of file.indexes) assert.ok(entry.atoms.length > 0);
});

test('a pattern that was not prepared is computed, and counted as a miss', () => {
  const before = preparedCounts();
  const source = '\\bunprepared-xyzzy\\b(?:zork|\\bplugh)';
  assert.equal(conceptSource(source), unicodeBoundaries(fastBoundaries(source, UNICODE_WORD_BOUNDARY)));
  assert.equal(directiveSource(source), fastBoundaries(source, ASCII_BOUNDARY));
  assert.deepEqual(patternAtoms(source), prefilterAtoms(source));
  assert.equal(preparedCounts().misses, before.misses + 3);
});

test('a scan of the shipped rules takes every derivation from the prepared file; a file made by other code is ignored', () => {
  const shipped = fresh(scanScript(scanDist));
  assert.equal(shipped.misses, 0, 'nothing derived at start-up');
  assert.ok(shipped.hits > 500, `hits ${shipped.hits}`);
  // A copy of the modules with the prepared file: used as is, then ignored once one of the code files differs.
  const dir = mkdtempSync(join(tmpdir(), 'bastion-prepared-'));
  const preparedSource = Object.keys((JSON.parse(readFileSync(preparedJson, 'utf8')) as { strings: { concept: Record<string, string> } }).strings.concept)[0] as string;
  const probe = (): { hits: number; misses: number } => fresh(`const m = await import(${JSON.stringify(join(dir, 'prepared.js'))});
    m.conceptSource(${JSON.stringify(preparedSource)}); m.conceptSource('\\bunprepared\\b'); process.stdout.write(JSON.stringify(m.preparedCounts()));`);
  try {
    for (const name of ['prepared.js', 'regex-speed.js', 'atoms.js', 'atom-index.js', 'pattern-filter.js', 'prepared-data.json']) copyFileSync(join(scanDist, name), join(dir, name));
    assert.deepEqual(probe(), { hits: 1, misses: 1 }, 'the copy answers the prepared pattern');
    appendFileSync(join(dir, 'regex-speed.js'), '\n// changed\n');
    assert.deepEqual(probe(), { hits: 0, misses: 2 }, 'a prepared pattern is computed again when the code changed');
    copyFileSync(join(scanDist, 'regex-speed.js'), join(dir, 'regex-speed.js'));
    writeFileSync(join(dir, 'prepared-data.json'), '{"format":99}');
    assert.deepEqual(probe(), { hits: 0, misses: 2 }, 'a file of another format is ignored');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('concept patterns: a prepared one is compiled on first use and matches as compiled eagerly; a broken unprepared one fails at load', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-prepared-concepts-'));
  try {
    const shipped = JSON.parse(readFileSync(join(loadRules().dataDir, 'concepts.json'), 'utf8')) as { concepts: Record<string, string[]> };
    const [name, sources] = Object.entries(shipped.concepts)[0] as [string, string[]];
    writeFileSync(join(dir, 'concepts.json'), JSON.stringify({ concepts: { [name]: sources, OWN: ['\\bunprepared-own\\b'] } }));
    const data = loadConceptData(dir);
    const eager = sources.map((s) => new RegExp(unicodeBoundaries(fastBoundaries(s, UNICODE_WORD_BOUNDARY)), 'iu'));
    assert.deepEqual(data.flat.map((f) => f.re.source), [...eager.map((re) => re.source), new RegExp(conceptSource('\\bunprepared-own\\b'), 'iu').source]);
    assert.equal(data.flat[0]?.re, data.concepts[0]?.patterns[0], 'one compiled RegExp per pattern');
    assert.ok(conceptsIn('see unprepared-own here', data.concepts).has('OWN'));
    const broken = mkdtempSync(join(dir, 'broken-'));
    writeFileSync(join(broken, 'concepts.json'), JSON.stringify({ concepts: { BAD: ['\\bunclosed(group'] } }));
    assert.throws(() => loadConceptData(broken), (e: unknown) => e instanceof RuleFileError && /concepts\.BAD\[0\]/.test(e.message) && /invalid regular expression/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
