import assert from 'node:assert/strict';
import { test } from 'node:test';
import { foldKey, groupOfSample } from '../../src/scan/train.js';

// Grouped cross-validation (scripts/cv-scan.mjs --group) holds out a whole writer family at a time;
// these are the families it must tell apart, or a phrasing family would sit on both sides.
test('groupOfSample: writer families by file, language by tag, packages on their own', () => {
  const s = (file: string, language = 'en'): { file: string; language: string } => ({ file, language });
  assert.equal(groupOfSample(s('own.jsonl'), 'source'), 'own');
  assert.equal(groupOfSample(s('phrasings.jsonl'), 'source'), 'phrasings');
  assert.equal(groupOfSample(s('secrecy.jsonl'), 'source'), 'per-class');
  assert.equal(groupOfSample(s('tool-redirection.jsonl'), 'source'), 'per-class');
  assert.equal(groupOfSample(s('tool-redirection-w2.jsonl'), 'source'), 'w2');
  assert.equal(groupOfSample(s('secrecy-w2.jsonl'), 'source'), groupOfSample(s('exfiltration-w2.jsonl'), 'source'));
  assert.notEqual(groupOfSample(s('secrecy-w2.jsonl'), 'source'), groupOfSample(s('secrecy-w3.jsonl'), 'source'));
  assert.equal(groupOfSample({ file: 'a.jsonl', language: 'en', source: { package: 'x' } }, 'source'), 'packages');
  assert.equal(groupOfSample(s('own.jsonl', 'de'), 'language'), 'de');
});

test('foldKey keeps both placements of a generated phrasing and their twins together', () => {
  assert.equal(foldKey('phr-secrecy-07a'), foldKey('phr-secrecy-07b'));
  assert.equal(foldKey('phr-secrecy-07a-twin'), foldKey('phr-secrecy-07b'));
  assert.notEqual(foldKey('phr-secrecy-07a'), foldKey('phr-secrecy-08a'));
});
