import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import canonicalize from 'canonicalize';
import { buildLine, canonicalJson, encodeLine, chainMembers, recordHashInPlace, recordHashOfLine } from '../../src/audit/canonical.js';
import { inclusionProof, leafHash, leafDigestInPlace, MerkleFrontier, rootFromInclusionProof, subtreeRoot } from '../../src/audit/merkle.js';
import { AUDIT_SCHEMA, RECORD_KEYS_IN_ORDER, type AuditFields, type JsonValue } from '../../src/audit/schema.js';

const jsonValue = fc.jsonValue({ maxDepth: 4 }) as fc.Arbitrary<JsonValue>;

test('canonical JSON is byte-identical to the canonicalize package (RFC 8785) for arbitrary JSON data', () => {
  fc.assert(
    fc.property(jsonValue, (value) => {
      assert.equal(canonicalJson(value), canonicalize(value));
    }),
    { numRuns: 2000 },
  );
});

test('a lone surrogate is refused rather than written in a non-canonical form', () => {
  assert.throws(() => canonicalJson({ text: 'a\uD800b' }), /Lone surrogate/);
  assert.equal(canonicalJson('a\\ud800 is only text'), JSON.stringify('a\\ud800 is only text'));
});

test('a line is the canonical record, and its hash is SHA-256 of the canonical record without the hash member', () => {
  const fieldsArbitrary = fc.record(
    {
      agent_id: fc.string(),
      method: fc.constantFrom('tools/call', 'resources/read', 'prompts/get'),
      decision: fc.constantFrom('allow', 'deny', 'error'),
      reason: fc.string(),
      exec_duration_ms: fc.double({ noNaN: true, noDefaultInfinity: true, min: 0, max: 1e6 }),
      tools_invoked: fc.array(fc.string()),
      input: jsonValue,
      info: fc.dictionary(fc.string(), jsonValue),
      task_id: fc.string(),
    },
    { requiredKeys: [] },
  );
  fc.assert(
    fc.property(fieldsArbitrary, fc.nat(), (partial, seq) => {
      const fields = { kind: 'request', ts: '2026-01-01T00:00:00.000Z', ...partial } as AuditFields & { ts: string };
      const prev = createHash('sha256').update(String(seq)).digest('hex');
      const { line, hash } = buildLine(fields, seq, prev);
      const parsed = JSON.parse(line) as Record<string, unknown>;
      assert.equal(line, canonicalize(parsed));
      const { hash: stored, ...withoutHash } = parsed;
      assert.equal(stored, hash);
      assert.equal(hash, createHash('sha256').update(canonicalize(withoutHash) as string).digest('hex'));
      const members = chainMembers(Buffer.from(line));
      assert.ok(typeof members !== 'string', String(members));
      assert.equal(members.seq, seq);
      assert.equal(members.prev, prev);
      assert.equal(recordHashOfLine(Buffer.from(line), members.hashAt), hash);
      // The workers' in-place forms, on a line between others in a shared buffer.
      const start = 1 + (seq % 7);
      const shared = Buffer.concat([Buffer.alloc(start, 0x0a), Buffer.from(line), Buffer.from('\n{"next":1}\n')]);
      const end = start + Buffer.byteLength(line);
      assert.equal(leafDigestInPlace(shared, start, end), leafHash(Buffer.from(line)).toString('latin1'));
      assert.equal(recordHashInPlace(shared, start, end, members.hashAt), hash);
      assert.equal(shared.subarray(end).toString(), '\n{"next":1}\n', 'nothing after the line is touched');
    }),
    { numRuns: 500 },
  );
});

test('a line keeps members that the one-pass encoding cannot order (array-index keys, __proto__) and refuses lone surrogates', () => {
  const prev = 'ab'.repeat(32);
  const inputs: Array<[string, RegExp]> = [
    ['{"b":1,"10":"ten","":0,"2":{"a":[{"9":true}]}}', /"input":\{"":0,"10":"ten","2":\{"a":\[\{"9":true\}\]\},"b":1\}/],
    ['{"z":{"__proto__":{"x":1},"a":2},"__proto__":"own member"}', /"input":\{"__proto__":"own member","z":\{"__proto__":\{"x":1\},"a":2\}\}/],
  ];
  for (const [json, expected] of inputs) {
    const fields = { kind: 'request', ts: '2026-01-01T00:00:00.000Z', input: JSON.parse(json) as JsonValue } as AuditFields & { ts: string };
    const { line, hash } = buildLine(fields, 7, prev);
    const parsed = JSON.parse(line) as Record<string, unknown>;
    assert.equal(line, canonicalize(parsed));
    assert.match(line, expected);
    const { hash: stored, ...withoutHash } = parsed;
    assert.equal(stored, hash);
    assert.equal(hash, createHash('sha256').update(canonicalize(withoutHash) as string).digest('hex'));
    assert.equal(encodeLine(fields, fields.ts, 7, prev).bytes.toString(), `${line}\n`);
  }
  assert.throws(() => buildLine({ kind: 'request', ts: '2026-01-01T00:00:00.000Z', input: { text: 'a\uD800b' } }, 7, prev), /Lone surrogate/);
});

test('a line carries every member of the record schema, in canonical order', () => {
  // Built from the schema's own key list, so a field added to the schema is covered here at once.
  const prev = 'cd'.repeat(32);
  const fields: Record<string, unknown> = {};
  for (const [index, key] of RECORD_KEYS_IN_ORDER.entries()) {
    if (key === 'schema' || key === 'seq' || key === 'prev') continue;
    fields[key] = index % 3 === 0 ? { z: index, a: [key, { y: true, b: null }] } : index % 3 === 1 ? `${key}-value` : index + 0.5;
  }
  fields['ts'] = '2026-01-01T00:00:00.000Z';
  const { line, hash } = buildLine(fields as unknown as AuditFields & { ts: string }, 11, prev);
  const expected = { ...fields, schema: AUDIT_SCHEMA, seq: 11, prev };
  assert.equal(line, canonicalize({ ...expected, hash }));
  assert.equal(hash, createHash('sha256').update(canonicalize(expected) as string).digest('hex'));
  assert.deepEqual(Object.keys(JSON.parse(line) as object), [...RECORD_KEYS_IN_ORDER, 'hash'].sort());
});

test('Merkle roots and inclusion proofs follow RFC 6962 for every leaf of trees of 1 to 70 leaves', () => {
  const leaves = Array.from({ length: 70 }, (_, index) => leafHash(Buffer.from(`record ${index}`)));
  for (let size = 1; size <= 70; size += 1) {
    const frontier = new MerkleFrontier();
    for (const leaf of leaves.slice(0, size)) frontier.append(leaf.toString('hex'));
    const root = subtreeRoot(leaves, 0, size);
    assert.ok(frontier.root().equals(root), `frontier root for ${size}`);
    for (let index = 0; index < size; index += 1) {
      const proof = inclusionProof(leaves, index, size);
      assert.ok(rootFromInclusionProof(leaves[index] as Buffer, index, size, proof).equals(root), `proof ${index}/${size}`);
      if (size > 1) assert.ok(!rootFromInclusionProof(leaves[(index + 1) % size] as Buffer, index, size, proof).equals(root), 'a proof does not fit another leaf');
    }
  }
  // RFC 6962 test vector: the empty tree's root is SHA-256 of nothing.
  assert.equal(new MerkleFrontier().root().toString('hex'), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});
