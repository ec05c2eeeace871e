import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AlignedSubtreeBuilder, MerkleFrontier, leafHashHex } from '../../src/audit/merkle.js';

const leaves = Array.from({ length: 1100 }, (_, index) => leafHashHex(Buffer.from(`record ${index}`)));
/** The builder takes leaf digests in Node's 'binary' (latin1) form, as leafDigestInPlace returns them. */
const leafDigests = leaves.map((leaf) => Buffer.from(leaf, 'hex').toString('latin1'));

function leafByLeaf(size: number): MerkleFrontier {
  const frontier = new MerkleFrontier();
  for (let index = 0; index < size; index += 1) frontier.append(leaves[index] as string);
  return frontier;
}

/** Builds leaves [start, end) as aligned subtrees, cut at `cuts`, and appends them to a frontier of `start` leaves. */
function bySubtrees(prefix: MerkleFrontier, start: number, end: number, cuts: ReadonlySet<number>, atCut: (frontier: MerkleFrontier) => void = () => undefined): MerkleFrontier {
  const builder = new AlignedSubtreeBuilder(start);
  for (let index = start; index < end; index += 1) {
    builder.add(leafDigests[index] as string);
    if (cuts.has(index + 1)) builder.cut();
  }
  const frontier = prefix.clone();
  for (const subtree of builder.subtrees()) {
    frontier.appendSubtree(subtree.hash, subtree.height);
    if (cuts.has(frontier.size)) atCut(frontier);
  }
  return frontier;
}

test('appending aligned subtrees gives the frontier that appending every leaf gives (random ranges and cuts)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1024 }), fc.integer({ min: 0, max: 70 }), fc.uniqueArray(fc.integer({ min: 0, max: 1100 }), { maxLength: 6 }), (start, length, cutList) => {
      const end = start + length;
      const cuts = new Set(cutList.filter((cut) => cut > start && cut <= end));
      const seen: number[] = [];
      const frontier = bySubtrees(leafByLeaf(start), start, end, cuts, (at) => {
        seen.push(at.size);
        assert.ok(at.root().equals(leafByLeaf(at.size).root()), `root at cut ${at.size}`);
      });
      assert.deepEqual(frontier.toJSON(), leafByLeaf(end).toJSON());
      assert.deepEqual(seen, [...cuts].sort((a, b) => a - b), 'every cut falls on a subtree boundary');
    }),
    { numRuns: 400 },
  );
});

test('a whole range split at random points into runs, each built separately, joins into the leaf-by-leaf frontier', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 1100 }), fc.uniqueArray(fc.integer({ min: 1, max: 1099 }), { maxLength: 12 }), (size, splitList) => {
      const bounds = [0, ...splitList.filter((split) => split < size).sort((a, b) => a - b), size];
      let frontier = new MerkleFrontier();
      for (let index = 0; index + 1 < bounds.length; index += 1) frontier = bySubtrees(frontier, bounds[index] as number, bounds[index + 1] as number, new Set());
      assert.deepEqual(frontier.toJSON(), leafByLeaf(size).toJSON());
      assert.ok(frontier.root().equals(leafByLeaf(size).root()));
    }),
    { numRuns: 200 },
  );
});

test('runs are split into O(log n) subtrees, and a run starting at 0 is the frontier itself', () => {
  const builder = new AlignedSubtreeBuilder(3);
  for (let index = 3; index < 3 + 1000; index += 1) builder.add(leafDigests[index] as string);
  const heights = builder.subtrees().map((subtree) => subtree.height);
  assert.ok(heights.length <= 2 * 11, `${heights.length} subtrees`);
  const fromZero = new AlignedSubtreeBuilder(0);
  for (let index = 0; index < 1000; index += 1) fromZero.add(leafDigests[index] as string);
  assert.deepEqual(fromZero.subtrees().map((subtree) => subtree.hash), leafByLeaf(1000).toJSON().hashes);
});

test('appendSubtree refuses a subtree that is not aligned at the frontier size', () => {
  const frontier = leafByLeaf(6);
  assert.throws(() => frontier.appendSubtree(leaves[0] as string, 2), RangeError);
  assert.throws(() => frontier.appendSubtree(leaves[0] as string, -1), RangeError);
  assert.equal(frontier.size, 6);
  frontier.appendSubtree(leaves[0] as string, 1);
  assert.equal(frontier.size, 8);
});
