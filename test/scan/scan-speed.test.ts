import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prefilterAtoms, regexAtomsDeep } from '../../src/scan/atoms.js';
import { unicodeBoundaries } from '../../src/scan/concepts.js';
import { foldForAtoms, PatternFilter } from '../../src/scan/pattern-filter.js';
import { ASCII_BOUNDARY, fastLeadingBoundaries, UNICODE_WORD_BOUNDARY } from '../../src/scan/regex-speed.js';
import { mulberry32 as prng } from '../../src/scan/train.js';

const dataDir = fileURLToPath(new URL('../../../data/scan', import.meta.url));
const concepts = Object.values(JSON.parse(readFileSync(join(dataDir, 'concepts.json'), 'utf8')).concepts as Record<string, string[]>).flat();
const directives = JSON.parse(readFileSync(join(dataDir, 'directives.json'), 'utf8')) as { markers: string[]; demands: { patterns: string[] }[] };
const directivePatterns = [...directives.markers, ...directives.demands.flatMap((d) => d.patterns)];

/** Random texts built from pieces of the patterns' own literals, separators and characters case folding treats specially. */
function texts(sources: string[], count: number, seed: number): string[] {
  const random = prng(seed);
  const words = [...new Set(sources.flatMap((s) => s.match(/[\p{L}\p{N}]{2,}/gu) ?? []))];
  const odd = [' ', '  ', '.', '-', '_', 'ſ', '\u212a', 'é', 'ж', '\u0345', 'ς', 'İ', '1', '`', '@', '://', '\n', 'X'];
  const pick = (): string => (random() < 0.6 ? (words[Math.floor(random() * words.length)] as string) : (odd[Math.floor(random() * odd.length)] as string));
  const out: string[] = [];
  for (let i = 0; i < count; i += 1) {
    let text = '';
    const n = 1 + Math.floor(random() * 14);
    for (let k = 0; k < n; k += 1) text += (random() < 0.7 ? ' ' : '') + (random() < 0.2 ? pick().toUpperCase() : pick());
    out.push(text);
  }
  return out;
}

test('a leading boundary rewritten to a lookbehind matches exactly where the original does (every concept and directive pattern)', () => {
  let rewritten = 0;
  const check = (original: RegExp, fast: RegExp, samples: string[]): void => {
    for (const text of samples) {
      const a = original.exec(text);
      const b = fast.exec(text);
      assert.equal(b?.index, a?.index, `${original.source} on ${JSON.stringify(text)}`);
      assert.equal(b?.[0], a?.[0], `${original.source} on ${JSON.stringify(text)}`);
    }
  };
  const samples = texts([...concepts, ...directivePatterns], 400, 20261203);
  for (const source of concepts) {
    const fast = fastLeadingBoundaries(source, UNICODE_WORD_BOUNDARY);
    if (fast !== source) rewritten += 1;
    check(new RegExp(unicodeBoundaries(source), 'iu'), new RegExp(unicodeBoundaries(fast), 'iu'), samples);
  }
  for (const source of directivePatterns) {
    const fast = fastLeadingBoundaries(source, ASCII_BOUNDARY);
    if (fast !== source) rewritten += 1;
    check(new RegExp(source, 'iu'), new RegExp(fast, 'iu'), samples);
  }
  assert.ok(rewritten > 20, `the rewrite applies to the data (${rewritten} patterns)`);
});

test('the rewrite leaves what it cannot prove alone', () => {
  assert.equal(fastLeadingBoundaries('\\b(you|the)\\s+must', ASCII_BOUNDARY), '(?<!\\w)(you|the)\\s+must');
  assert.equal(fastLeadingBoundaries('\\bx|\\b(a|b)', ASCII_BOUNDARY), '(?<!\\w)x|(?<!\\w)(a|b)');
  // An optional first element, a group that may be empty, a non-word start, a non-ASCII start under ASCII \b: unchanged.
  for (const source of ['\\b(a)?b', '\\ba*', '\\b(a|)b', '\\b\\s+x', '\\b(?=a)a', '\\bнет', '\\b[a-z]+', '\\b(a|b']) assert.equal(fastLeadingBoundaries(source, ASCII_BOUNDARY), source);
  assert.equal(fastLeadingBoundaries('\\bнет', UNICODE_WORD_BOUNDARY), '(?<![\\p{L}\\p{N}_])нет');
});

test('the pattern filter answers as includes() per atom, with case-folded spellings kept live', () => {
  const sources = [...concepts, ...directivePatterns];
  const atoms = sources.map((s) => prefilterAtoms(s));
  const filter = new PatternFilter(atoms);
  for (const text of texts(sources, 300, 7)) {
    const lowered = text.toLowerCase();
    const live = filter.live(lowered);
    atoms.forEach((list, p) => {
      if (list === undefined || list.some((a) => lowered.includes(a))) assert.equal(live[p], 1, `pattern ${p} on ${JSON.stringify(text)}`);
    });
  }
  // /shell/iu matches "ſhell", whose lower case holds no "shell": the filter must still let the pattern run.
  const shell = new PatternFilter([['shell']]);
  assert.equal(shell.live('ſhell'.toLowerCase())[0], 1);
  assert.ok(/shell/iu.test('ſhell'));
  assert.equal(shell.live('shall')[0], 0);
});

test('short atoms only where a pattern has no long one, and every match of a pattern holds one of its atoms', () => {
  assert.deepEqual(prefilterAtoms('\\b(sudo|su\\s+-)\\b'), ['sudo', 'su']);
  assert.deepEqual(prefilterAtoms('\\b(ignore|disregard)\\s+all'), regexAtomsDeep('\\b(ignore|disregard)\\s+all'));
  const sources = [...concepts, ...directivePatterns];
  for (const text of texts(sources, 200, 99)) {
    for (const source of sources) {
      const atoms = prefilterAtoms(source);
      const m = new RegExp(source, 'iu').exec(text);
      if (m && atoms) assert.ok(atoms.some((a) => foldForAtoms(m[0].toLowerCase()).includes(foldForAtoms(a))), `${source} matched ${JSON.stringify(m[0])} without its atoms ${JSON.stringify(atoms)}`);
    }
  }
});
