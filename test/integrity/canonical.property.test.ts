import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { digestJson, generateKeyPair, parseManifest, signDocument, verifyDocument, type KeyPair } from '../../src/integrity/index.js';

/** The same JSON value with every object's keys in a shuffled order. */
function shuffled(value: unknown, seed: number): unknown {
  if (Array.isArray(value)) return value.map((item, index) => shuffled(item, seed + index));
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value);
  const order = entries.map((entry, index) => ({ entry, key: Math.sin(seed * 97 + index) }));
  order.sort((a, b) => a.key - b.key);
  return Object.fromEntries(order.map(({ entry: [key, item] }, index) => [key, shuffled(item, seed + index + 1)]));
}

const manifestArbitrary = fc.record({
  name: fc.constantFrom('io.github.acme/a', 'io.github.acme/b'),
  version: fc.string({ minLength: 1, maxLength: 8 }),
  // A manifest names each tool once (parseManifest refuses duplicates), so names are unique here.
  tools: fc.uniqueArray(
    fc.record({ name: fc.stringMatching(/^[a-z_]{1,12}$/), description: fc.string({ maxLength: 60 }), inputSchema: fc.constant({ type: 'object' }), scopes: fc.array(fc.string({ minLength: 1, maxLength: 20 }), { maxLength: 3 }) }),
    { minLength: 1, maxLength: 4, selector: (tool) => tool.name },
  ),
});

describe('signatures cover the canonical form (property tests)', () => {
  let key: KeyPair;
  before(async () => {
    key = await generateKeyPair('ed25519');
  });

  test('any key order and YAML or JSON text of a signed manifest verifies and has the same digest', () => {
    fc.assert(
      fc.property(manifestArbitrary, fc.integer({ min: 1, max: 1000 }), (manifest, seed) => {
        const signed = signDocument(manifest, key.privateKey);
        const reordered = shuffled(signed, seed) as Record<string, unknown>;
        const fromYaml = parseManifest(stringify(reordered), 'm.yaml').manifest as unknown as Record<string, unknown>;
        assert.equal(verifyDocument(reordered, key.publicKey).ok, true);
        assert.equal(verifyDocument(fromYaml, key.publicKey).ok, true);
        assert.equal(digestJson(reordered), digestJson(signed));
      }),
      { numRuns: 60 },
    );
  });

  test('changing any one character of any tool description breaks the signature', () => {
    fc.assert(
      fc.property(manifestArbitrary, fc.nat(), fc.nat(), fc.string({ minLength: 1, maxLength: 1 }), (manifest, toolPick, charPick, replacement) => {
        const signed = signDocument(manifest, key.privateKey);
        const tampered = structuredClone(signed);
        const tool = tampered.tools[toolPick % tampered.tools.length]!;
        const text = tool.description;
        const at = text.length === 0 ? 0 : charPick % text.length;
        const changed = `${text.slice(0, at)}${replacement}${text.slice(at + 1)}`;
        fc.pre(changed !== text);
        tool.description = changed;
        const result = verifyDocument(tampered, key.publicKey);
        assert.equal(result.ok ? 'ok' : result.reason, 'bad-signature');
      }),
      { numRuns: 100 },
    );
  });
});
