import { AtomIndex } from './atom-index.js';

/**
 * Characters a case-insensitive Unicode regex (flags iu, simple case folding) equates with a letter that
 * toLowerCase() does not give: /shell/iu matches "ſhell", but "ſhell".toLowerCase() holds no "shell". Atoms and
 * text are both mapped through this before the index, so a pattern is never skipped on such a spelling.
 * (All of the Basic Multilingual Plane checked: each c where /^c$/iu matches a d with lower(d) != lower(c).)
 */
const FOLD: Record<string, string> = {
  'µ': 'μ', 'ſ': 's', '\u0345': 'ι', 'ς': 'σ', 'ϐ': 'β', 'ϑ': 'θ', 'ϕ': 'φ', 'ϖ': 'π', 'ϰ': 'κ', 'ϱ': 'ρ', 'ϵ': 'ε',
  '\u1c80': 'в', '\u1c81': 'д', '\u1c82': 'о', '\u1c83': 'с', '\u1c84': 'т', '\u1c85': 'т', '\u1c86': 'ъ', '\u1c87': 'ѣ', '\u1c88': 'ꙋ',
  'ẛ': 'ṡ', '\u1fbe': 'ι',
};
// Written as \u{…} escapes: U+0345 is a combining mark, which a literal character class would attach to its neighbour.
const FOLDABLE = new RegExp(`[${Object.keys(FOLD).map((c) => `\\u{${(c.codePointAt(0) as number).toString(16)}}`).join('')}]`, 'gu');

export function foldForAtoms(lowered: string): string {
  FOLDABLE.lastIndex = 0;
  return FOLDABLE.test(lowered) ? lowered.replace(FOLDABLE, (c) => FOLD[c] ?? c) : lowered;
}

/**
 * The atom prefilter (atoms.ts) for a fixed list of patterns, answered in one Aho-Corasick pass
 * (atom-index.ts) instead of one `includes` per atom per pattern. `live(lowered)[p]` is 1 exactly
 * when pattern p has no atoms (it always runs) or one of its atoms occurs in `lowered`: the same
 * answer as `atoms === undefined || atoms.some((a) => lowered.includes(a))`, which is what the
 * directive and concept analyses used per clause and per document (most of their CPU time).
 */
export class PatternFilter {
  private readonly index: AtomIndex;
  /** ids[p]: the atom ids of pattern p (undefined: no atoms, always live). */
  private readonly ids: (Int32Array | undefined)[];
  /** byAtom[id]: the patterns that atom id makes live. */
  private readonly byAtom: Int32Array[];
  /** Patterns that every answer holds live. */
  private readonly always: Uint8Array;

  /** makeIndex builds the index of the folded atoms (prepared.ts passes one that loads it from the build's tables). */
  constructor(atoms: readonly (readonly string[] | undefined)[], makeIndex: (folded: string[]) => AtomIndex = (folded) => new AtomIndex(folded)) {
    this.index = makeIndex(atoms.flatMap((list) => list ?? []).map(foldForAtoms));
    this.ids = atoms.map((list) => (list === undefined ? undefined : Int32Array.from(list, (a) => this.index.idOf(foldForAtoms(a)) ?? -1)));
    // An empty atom is in every text (includes('') is true): such a pattern always runs.
    const lists: number[][] = this.index.atoms.map(() => []);
    this.ids.forEach((ids, p) => { if (ids !== undefined) for (const id of ids) if (id >= 0) (lists[id] as number[]).push(p); });
    this.byAtom = lists.map((l) => Int32Array.from(l));
    this.always = Uint8Array.from(atoms, (list) => (list === undefined || list.some((a) => a.length === 0) ? 1 : 0));
  }

  get size(): number {
    return this.ids.length;
  }

  /** live[p] = 1 when pattern p may match `lowered` (the lower-cased text). */
  live(lowered: string): Uint8Array {
    const out = this.always.slice();
    // Walk the atoms found (few) to the patterns that need them, not every pattern's atom list.
    for (const id of this.index.scanIds(foldForAtoms(lowered))) {
      const patterns = this.byAtom[id] as Int32Array;
      for (let k = 0; k < patterns.length; k += 1) out[patterns[k] as number] = 1;
    }
    return out;
  }
}
