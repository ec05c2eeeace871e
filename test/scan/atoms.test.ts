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

test('deep atoms look into groups and stay sound: every match of a metadata or directive rule contains one', async () => {
  const { regexAtomsDeep } = await import('../../src/scan/atoms.js');
  assert.deepEqual(regexAtomsDeep('\\b(you|the\\s+model)\\s+must\\b'), ['must']);
  assert.deepEqual(regexAtomsDeep('\\b(send|post)\\b'), ['send', 'post']);
  assert.equal(regexAtomsDeep('\\b(ab|c)\\b'), undefined, 'alternatives too short for an atom disable the prefilter');
  assert.equal(regexAtomsDeep('(?<=secret)\\s+\\w'), undefined, 'lookarounds are not required text');
  assert.deepEqual(regexAtomsDeep('(foo)?barbaz'), ['barbaz'], 'an optional group is not required');
  const rules = loadRules();
  const { loadDirectiveData } = await import('../../src/scan/directives.js');
  const { loadCorpus } = await import('../../src/scan/evaluate.js');
  const { collectTextFields } = await import('../../src/scan/analyzers/metadata.js');
  const data = loadDirectiveData(rules.dataDir);
  const texts = loadCorpus(join(corpusDir(), 'data/train')).samples.flatMap((s) => collectTextFields(s.server).map((f) => f.text));
  const checks: [string, RegExp, string[] | undefined][] = [
    ...rules.metadata.flatMap((r) => r.patterns.map((p, i): [string, RegExp, string[] | undefined] => [r.id, p, r.atoms[i]])),
    ...data.markers.map((p, i): [string, RegExp, string[] | undefined] => ['marker', p, data.markerAtoms[i]]),
    ...data.demands.flatMap((d) => d.patterns.map((p, i): [string, RegExp, string[] | undefined] => [d.kind, p, d.atoms[i]])),
  ];
  let checked = 0;
  for (const [id, pattern, atoms] of checks) {
    if (atoms === undefined) continue;
    for (const text of texts) {
      pattern.lastIndex = 0;
      const m = pattern.exec(text);
      if (!m) continue;
      checked += 1;
      assert.ok(atoms.some((a) => m[0].toLowerCase().includes(a)), `${id} /${pattern.source.slice(0, 60)}/ matched "${m[0]}" without any of ${JSON.stringify(atoms)}`);
    }
  }
  assert.ok(checked > 1000, `the check ran on real matches (${checked})`);
});
