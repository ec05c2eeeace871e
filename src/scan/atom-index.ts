/**
 * Finds which of a fixed set of literal strings ("atoms", see atoms.ts) occur in a text, in one
 * pass over the text (Aho-Corasick). The pattern rules use it as their prefilter: testing each
 * rule's atoms with `includes` costs (number of atoms) passes over the text, which made output
 * inspection cost about a millisecond per KiB and let a large tool answer hold the event loop.
 *
 * Matching is on UTF-16 code units, exactly like `String.prototype.includes`, so the answer is
 * the same as testing every atom with `includes` (the tests check this on random texts).
 */

/** Transitions for ASCII code units are a dense table; others go through per-state maps. */
const DENSE = 128;

/**
 * A built automaton as plain arrays (prepared.ts stores them at build time, so start-up does not rebuild
 * the index). endStart[s]..endStart[s + 1] are the positions in endIds of the atoms ending at state s, and
 * edgeStart[s]..edgeStart[s + 1] those of its trie edges in edgeUnit/edgeNext. The dense table is not
 * stored (128 entries a state, most of the size): loading fills it from the trie and the failure links in
 * `order`, the breadth-first order the build used.
 */
export interface AtomIndexTables {
  fail: Int32Array;
  outputLink: Int32Array;
  endStart: Int32Array;
  endIds: Int32Array;
  order: Int32Array;
  edgeStart: Int32Array;
  edgeUnit: Int32Array;
  edgeNext: Int32Array;
}

export class AtomIndex {
  /** Distinct atoms, by id. */
  readonly atoms: readonly string[];
  private readonly ids = new Map<string, number>();
  /** dense[state * DENSE + unit]: the next state for an ASCII unit, failure links already folded in. */
  private dense: Int32Array = new Int32Array(0);
  /** Trie edges for non-ASCII units (sparse), followed with failure links at search time. */
  private readonly wide: (Map<number, number> | undefined)[] = [];
  private fail: Int32Array = new Int32Array(0);
  /** Atom ids ending exactly at each state: endIds[endStart[s]] up to endIds[endStart[s + 1]]. */
  private endStart: Int32Array = new Int32Array(1);
  private endIds: Int32Array = new Int32Array(0);
  /** Nearest state on the failure chain that ends an atom (-1: none). */
  private outputLink: Int32Array = new Int32Array(0);
  /** Per-state stamp of the last search that reported it, so each state's outputs are walked once per search. */
  private seen: Uint32Array = new Uint32Array(0);
  private stamp = 0;
  /** The trie and breadth-first order, for tables(). */
  private trie: Pick<AtomIndexTables, 'order' | 'edgeStart' | 'edgeUnit' | 'edgeNext'> | undefined;

  /**
   * Builds the automaton, or takes the tables `tables()` exported from an index of the same atoms. The tables
   * are used as they are, so they must come from a trusted build (prepared.ts: generated into the package).
   */
  constructor(atoms: Iterable<string>, tables?: AtomIndexTables) {
    const distinct: string[] = [];
    for (const atom of atoms) {
      if (atom.length === 0 || this.ids.has(atom)) continue;
      this.ids.set(atom, distinct.length);
      distinct.push(atom);
    }
    this.atoms = distinct;
    if (tables === undefined) this.build();
    else this.load(tables);
  }

  /** This index's automaton, to store and give back to the constructor with the same atoms. */
  tables(): AtomIndexTables {
    if (this.trie === undefined) throw new Error('atom index: no tables before build');
    return { fail: this.fail, outputLink: this.outputLink, endStart: this.endStart, endIds: this.endIds, ...this.trie };
  }

  private load(t: AtomIndexTables): void {
    const count = t.fail.length;
    const edges = t.edgeUnit.length;
    if (t.outputLink.length !== count || t.endStart.length !== count + 1 || t.endIds.length !== (t.endStart[count] as number) || t.endIds.length !== this.atoms.length
      || t.order.length !== count || t.edgeStart.length !== count + 1 || t.edgeNext.length !== edges || (t.edgeStart[count] as number) !== edges) {
      throw new Error('atom index: inconsistent prepared tables');
    }
    this.fail = t.fail;
    this.outputLink = t.outputLink;
    this.endStart = t.endStart;
    this.endIds = t.endIds;
    this.trie = { order: t.order, edgeStart: t.edgeStart, edgeUnit: t.edgeUnit, edgeNext: t.edgeNext };
    this.seen = new Uint32Array(count);
    this.dense = new Int32Array(count * DENSE);
    for (let s = 0; s < count; s += 1) this.wide.push(undefined);
    // As build() fills it: each state's row is its failure state's (complete earlier in breadth-first order) with its own edges over it.
    for (let k = 0; k < count; k += 1) {
      const state = t.order[k] as number;
      if (state !== 0) this.dense.copyWithin(state * DENSE, (t.fail[state] as number) * DENSE, (t.fail[state] as number) * DENSE + DENSE);
      let wide: Map<number, number> | undefined;
      for (let e = t.edgeStart[state] as number; e < (t.edgeStart[state + 1] as number); e += 1) {
        const unit = t.edgeUnit[e] as number;
        if (unit < DENSE) this.dense[state * DENSE + unit] = t.edgeNext[e] as number;
        else (wide ??= new Map()).set(unit, t.edgeNext[e] as number);
      }
      this.wide[state] = wide;
    }
  }

  /** The id of an atom given to the constructor (undefined for one it was not given). */
  idOf(atom: string): number | undefined {
    return this.ids.get(atom);
  }

  /** found[id] is 1 when atom `id` occurs in `text`. */
  scan(text: string): Uint8Array {
    const found = new Uint8Array(this.atoms.length);
    if (this.atoms.length > 0) this.walk(text, found);
    return found;
  }

  /** The ids of the atoms that occur in `text`, each once, in the order they are first seen. */
  scanIds(text: string): number[] {
    const ids: number[] = [];
    if (this.atoms.length > 0) this.walk(text, new Uint8Array(this.atoms.length), ids);
    return ids;
  }

  /** One pass of the automaton over `text`; each state's matches are reported once per pass (the stamp). */
  private walk(text: string, found: Uint8Array, ids?: number[]): void {
    this.stamp = this.stamp === 0xffffffff ? 1 : this.stamp + 1;
    if (this.stamp === 1) this.seen.fill(0);
    const { dense, seen, stamp } = this;
    let state = 0;
    for (let i = 0; i < text.length; i += 1) {
      const unit = text.charCodeAt(i);
      state = unit < DENSE ? (dense[state * DENSE + unit] as number) : this.stepWide(state, unit);
      if (seen[state] === stamp) continue;
      seen[state] = stamp;
      this.report(state, found, ids);
    }
  }

  private report(state: number, found: Uint8Array, ids?: number[]): void {
    const { endStart, endIds } = this;
    let at = (endStart[state + 1] as number) > (endStart[state] as number) ? state : (this.outputLink[state] as number);
    while (at > 0) {
      for (let k = endStart[at] as number; k < (endStart[at + 1] as number); k += 1) {
        const id = endIds[k] as number;
        if (ids !== undefined && found[id] === 0) ids.push(id);
        found[id] = 1;
      }
      at = this.outputLink[at] as number;
    }
  }

  private stepWide(state: number, unit: number): number {
    let at = state;
    for (;;) {
      const next = this.wide[at]?.get(unit);
      if (next !== undefined) return next;
      if (at === 0) return 0;
      at = this.fail[at] as number;
    }
  }

  private build(): void {
    // The trie, with every edge (ASCII too) kept sparse while building.
    const edges: Map<number, number>[] = [new Map()];
    const endsHere: number[][] = [[]];
    this.atoms.forEach((atom, id) => {
      let state = 0;
      for (let i = 0; i < atom.length; i += 1) {
        const unit = atom.charCodeAt(i);
        let next = (edges[state] as Map<number, number>).get(unit);
        if (next === undefined) {
          next = edges.length;
          edges.push(new Map());
          endsHere.push([]);
          (edges[state] as Map<number, number>).set(unit, next);
        }
        state = next;
      }
      (endsHere[state] as number[]).push(id);
    });
    const count = edges.length;
    this.endStart = new Int32Array(count + 1);
    for (let s = 0; s < count; s += 1) this.endStart[s + 1] = (this.endStart[s] as number) + (endsHere[s] as number[]).length;
    this.endIds = Int32Array.from(endsHere.flat());
    this.fail = new Int32Array(count);
    this.outputLink = new Int32Array(count).fill(-1);
    this.seen = new Uint32Array(count);
    this.dense = new Int32Array(count * DENSE);
    for (let s = 0; s < count; s += 1) {
      const wide = new Map<number, number>();
      for (const [unit, next] of edges[s] as Map<number, number>) if (unit >= DENSE) wide.set(unit, next);
      this.wide.push(wide.size > 0 ? wide : undefined);
    }
    // Breadth-first, so a state's failure target is complete before the state itself.
    const queue: number[] = [];
    for (let unit = 0; unit < DENSE; unit += 1) {
      const next = (edges[0] as Map<number, number>).get(unit) ?? 0;
      this.dense[unit] = next;
      if (next !== 0) queue.push(next);
    }
    for (const [unit, next] of edges[0] as Map<number, number>) if (unit >= DENSE) queue.push(next);
    for (let head = 0; head < queue.length; head += 1) {
      const state = queue[head] as number;
      const failState = this.fail[state] as number;
      this.outputLink[state] = (endsHere[failState] as number[]).length > 0 ? failState : (this.outputLink[failState] as number);
      // The failure state's row, then this state's own ASCII edges over it (in unit order, as the queue needs).
      this.dense.copyWithin(state * DENSE, failState * DENSE, failState * DENSE + DENSE);
      const ascii = [...(edges[state] as Map<number, number>)].filter(([unit]) => unit < DENSE).sort((x, y) => x[0] - y[0]);
      for (const [unit, child] of ascii) {
        this.fail[child] = this.dense[failState * DENSE + unit] as number;
        this.dense[state * DENSE + unit] = child;
        queue.push(child);
      }
      for (const [unit, child] of edges[state] as Map<number, number>) {
        if (unit < DENSE) continue;
        this.fail[child] = state === 0 ? 0 : this.stepWide(failState, unit);
        queue.push(child);
      }
    }
    const edgeStart = new Int32Array(count + 1);
    for (let s = 0; s < count; s += 1) edgeStart[s + 1] = (edgeStart[s] as number) + (edges[s] as Map<number, number>).size;
    const flat = edges.flatMap((m) => [...m]);
    this.trie = { order: Int32Array.from([0, ...queue]), edgeStart, edgeUnit: Int32Array.from(flat, ([unit]) => unit), edgeNext: Int32Array.from(flat, ([, next]) => next) };
  }
}
