import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { regexAtoms } from '../../src/scan/atoms.js';
import { loadRules } from '../../src/scan/index.js';
import { corpusDir } from './helpers.js';

test('regex atoms are literals every match must contain, per top-level alternative', () => {
  assert.deepEqual(regexAtoms('\\bxmrig\\b'), ['xmrig']);
  assert.deepEqual(regexAtoms('stratum\\+(tcp|ssl)://'), ['stratum+']);
  assert.deepEqual(regexAtoms('abc?def'), ['def'], 'a quantified character is not required');
  assert.deepEqual(regexAtoms('colou?r'), ['colo']);
  assert.equal(regexAtoms('ab|c'), undefined, 'an alternative without a usable atom disables the prefilter');
  assert.deepEqual(regexAtoms('Library[/\\\\]Keychains|\\bfind-generic-password\\b'), ['keychains', 'find-generic-password']);
});

test('the atom prefilter never hides a match of any code rule on the corpus (no lost detections)', () => {
  const rules = loadRules();
  const texts: string[] = [];
  // Sample folders may nest (code/python/malicious): read every file below code/.
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(dir, entry.name));
      else texts.push(readFileSync(join(dir, entry.name), 'utf8'));
    }
  };
  walk(join(corpusDir(), 'code'));
  let checked = 0;
  for (const rule of [...rules.code, ...rules.python]) {
    rule.patterns.forEach((pattern, i) => {
      const atoms = rule.atoms[i];
      for (const text of texts) {
        pattern.lastIndex = 0;
        const m = pattern.exec(text);
        if (!m || atoms === undefined) continue;
        checked += 1;
        assert.ok(atoms.some((a) => m[0].toLowerCase().includes(a)), `${rule.id} pattern ${i} matched "${m[0]}" without any of its atoms ${JSON.stringify(atoms)}`);
      }
    });
  }
  assert.ok(checked > 20, `only ${checked} matches were checked`);
});
