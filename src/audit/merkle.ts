import { createHash, hash as oneShotHash } from 'node:crypto';

/** RFC 6962 / RFC 9162 Merkle tree hashing over record lines. */

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);
export const EMPTY_ROOT: Buffer = oneShotHash('sha256', Buffer.alloc(0), 'buffer');

export function leafHash(line: Buffer): Buffer {
  return createHash('sha256').update(LEAF_PREFIX).update(line).digest();
}

export function nodeHash(left: Buffer, right: Buffer): Buffer {
  return oneShotHash('sha256', Buffer.concat([NODE_PREFIX, left, right], 65), 'buffer');
}

// The hot paths (append, verify) hash through reused scratch buffers with hex output: Node's
// one-shot hash is markedly cheaper with a string result than with a fresh Buffer.
let leafScratch = Buffer.alloc(64 * 1024);
const nodeScratch = Buffer.alloc(65);

/** leafHash, as hex. */
export function leafHashHex(line: Buffer): string {
  if (line.length + 1 > leafScratch.length) leafScratch = Buffer.alloc(line.length + 1024);
  leafScratch[0] = 0x00;
  line.copy(leafScratch, 1);
  return oneShotHash('sha256', leafScratch.subarray(0, line.length + 1), 'hex');
}

/**
 * The leaf hash of the line at data[start, end) as a 32-character latin1 string (one character
 * per byte, Node's 'binary' encoding: the cheapest digest form it returns), without copying the
 * line: writes the leaf prefix over the byte before the line (the previous line's newline, or a
 * spare byte), which the caller must own and no longer need.
 */
export function leafDigestInPlace(data: Buffer, start: number, end: number): string {
  if (start < 1) throw new RangeError('the leaf prefix needs a byte before the line');
  data[start - 1] = 0x00;
  return oneShotHash('sha256', data.subarray(start - 1, end), 'binary');
}

/** nodeHash over latin1 digests, as a latin1 digest. */
function nodeDigest(left: string, right: string): string {
  nodeScratch[0] = 0x01;
  nodeScratch.write(left, 1, 32, 'latin1');
  nodeScratch.write(right, 33, 32, 'latin1');
  return oneShotHash('sha256', nodeScratch, 'binary');
}

/** nodeHash over hex inputs, as hex. */
export function nodeHashHex(left: string, right: string): string {
  nodeScratch[0] = 0x01;
  nodeScratch.write(left, 1, 'hex');
  nodeScratch.write(right, 33, 'hex');
  return oneShotHash('sha256', nodeScratch, 'hex');
}

/**
 * The roots of the perfect subtrees that make up a tree of `size` leaves, largest first: enough to
 * append further leaves and compute the root, without keeping the leaves.
 */
export class MerkleFrontier {
  /** Hex subtree roots. */
  private readonly hashes: string[];
  private readonly heights: number[];
  size: number;

  constructor(size = 0, hashes: readonly string[] = []) {
    this.size = size;
    this.hashes = [...hashes];
    this.heights = [];
    let remaining = size;
    for (let bit = 52; bit >= 0; bit -= 1) {
      const span = 2 ** bit;
      if (remaining >= span) {
        this.heights.push(bit);
        remaining -= span;
      }
    }
    if (this.heights.length !== this.hashes.length) throw new Error(`Merkle frontier for ${size} leaves needs ${this.heights.length} hashes, got ${this.hashes.length}`);
  }

  /** Appends a leaf hash given as hex: a subtree of height 0. */
  append(leaf: string): void {
    this.appendSubtree(leaf, 0);
  }

  /**
   * Appends the root of a perfect subtree of 2^height leaves. Only valid where that subtree is
   * aligned in the whole tree (size a multiple of 2^height): then it merges exactly as its leaves
   * would have, which lets workers hash whole subtrees and send one hash instead of 2^height.
   */
  appendSubtree(hash: string, height: number): void {
    if (!Number.isInteger(height) || height < 0 || this.size % 2 ** height !== 0) throw new RangeError(`a subtree of height ${height} cannot follow ${this.size} leaves`);
    let merged = hash;
    let level = height;
    while (this.heights.length > 0 && this.heights[this.heights.length - 1] === level) {
      this.heights.pop();
      merged = nodeHashHex(this.hashes.pop() as string, merged);
      level += 1;
    }
    this.hashes.push(merged);
    this.heights.push(level);
    this.size += 2 ** height;
  }

  root(): Buffer {
    if (this.hashes.length === 0) return EMPTY_ROOT;
    let hash = this.hashes[this.hashes.length - 1] as string;
    for (let index = this.hashes.length - 2; index >= 0; index -= 1) hash = nodeHashHex(this.hashes[index] as string, hash);
    return Buffer.from(hash, 'hex');
  }

  clone(): MerkleFrontier {
    return new MerkleFrontier(this.size, this.hashes);
  }

  toJSON(): { size: number; hashes: string[] } {
    return { size: this.size, hashes: [...this.hashes] };
  }

  static fromJSON(value: unknown): MerkleFrontier {
    if (value === null || typeof value !== 'object') throw new Error('Merkle frontier is not an object');
    const { size, hashes } = value as { size?: unknown; hashes?: unknown };
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new Error('Merkle frontier size is not a non-negative integer');
    if (!Array.isArray(hashes) || !hashes.every((item) => typeof item === 'string' && /^[0-9a-f]{64}$/.test(item))) throw new Error('Merkle frontier hashes are not hex SHA-256 values');
    return new MerkleFrontier(size, hashes as string[]);
  }
}

/** Root of the perfect subtree over leaves [start, start + 2^height), as hex. */
export interface AlignedSubtree {
  hash: string;
  height: number;
}

/**
 * Hashes a run of leaves that starts at any leaf index into the largest perfect subtrees that are
 * aligned in the whole tree (a subtree of height h covers leaves [k·2^h, (k+1)·2^h)). Appending
 * them in order to a MerkleFrontier of `start` leaves gives the same frontier as appending every
 * leaf. `cut()` closes the open subtrees, so that some later frontier size (a checkpoint) falls
 * on a subtree boundary.
 */
export class AlignedSubtreeBuilder {
  private readonly closed: AlignedSubtree[] = [];
  /** Open subtree roots as latin1 digests (see leafDigestInPlace); hex only once closed. */
  private readonly digests: string[] = [];
  private readonly heights: number[] = [];
  private next: number;

  constructor(start: number) {
    this.next = start;
  }

  /** Appends a leaf hash given as a latin1 digest (leafDigestInPlace). */
  add(leaf: string): void {
    let digest = leaf;
    let height = 0;
    let start = this.next;
    // Merge with the left neighbour only when the pair forms an aligned subtree one level up.
    while (this.heights.length > 0 && this.heights[this.heights.length - 1] === height && (start - 2 ** height) % 2 ** (height + 1) === 0) {
      this.heights.pop();
      digest = nodeDigest(this.digests.pop() as string, digest);
      start -= 2 ** height;
      height += 1;
    }
    this.digests.push(digest);
    this.heights.push(height);
    this.next += 1;
  }

  /** Leaf index the next leaf gets. */
  get size(): number {
    return this.next;
  }

  cut(): void {
    for (let index = 0; index < this.digests.length; index += 1) this.closed.push({ hash: Buffer.from(this.digests[index] as string, 'latin1').toString('hex'), height: this.heights[index] as number });
    this.digests.length = 0;
    this.heights.length = 0;
  }

  /** Every subtree so far, closed or open, in leaf order. */
  subtrees(): AlignedSubtree[] {
    this.cut();
    return [...this.closed];
  }
}

/** MTH(D[start:end]) for leaves already hashed. */
export function subtreeRoot(leaves: readonly Buffer[], start: number, end: number): Buffer {
  const count = end - start;
  if (count === 0) return EMPTY_ROOT;
  if (count === 1) return leaves[start] as Buffer;
  const split = largestPowerOfTwoBelow(count);
  return nodeHash(subtreeRoot(leaves, start, start + split), subtreeRoot(leaves, start + split, end));
}

function largestPowerOfTwoBelow(count: number): number {
  let split = 1;
  while (split * 2 < count) split *= 2;
  return split;
}

/** RFC 6962 section 2.1.1 PATH(m, D[n]): the audit path for leaf `index` in the first `size` leaves. */
export function inclusionProof(leaves: readonly Buffer[], index: number, size: number): Buffer[] {
  if (!(index >= 0 && index < size && size <= leaves.length)) throw new RangeError(`leaf ${index} is not in a tree of ${size} leaves`);
  const path: Buffer[] = [];
  let start = 0;
  let end = size;
  let target = index;
  const stack: Buffer[] = [];
  while (end - start > 1) {
    const split = largestPowerOfTwoBelow(end - start);
    if (target < split) {
      stack.push(subtreeRoot(leaves, start + split, end));
      end = start + split;
    } else {
      stack.push(subtreeRoot(leaves, start, start + split));
      start += split;
      target -= split;
    }
  }
  // Collected top-down; the proof lists siblings from the leaf upwards.
  for (let index2 = stack.length - 1; index2 >= 0; index2 -= 1) path.push(stack[index2] as Buffer);
  return path;
}

/** RFC 9162 section 2.1.3.2: recomputes the root from a leaf hash and its inclusion proof. */
export function rootFromInclusionProof(leaf: Buffer, index: number, size: number, proof: readonly Buffer[]): Buffer {
  if (!(index >= 0 && index < size)) throw new RangeError(`leaf ${index} is not in a tree of ${size} leaves`);
  let fn = index;
  let sn = size - 1;
  let result = leaf;
  for (const sibling of proof) {
    if (sn === 0) throw new Error('inclusion proof is longer than the tree is deep');
    if (fn % 2 === 1 || fn === sn) {
      result = nodeHash(sibling, result);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      result = nodeHash(result, sibling);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error('inclusion proof is shorter than the tree is deep');
  return result;
}
