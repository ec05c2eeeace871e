/**
 * Required literal substrings ("atoms") of a regular expression, the way YARA prefilters its
 * rules: if none of a pattern's atoms occurs in the (lower-cased) text, the pattern cannot match
 * and is not run. Only literals outside any group are used, so every match must contain one atom
 * per top-level alternative. Returns undefined when some alternative has no usable atom.
 */
export function regexAtoms(source: string, minLength = 3): string[] | undefined {
  const branches: string[][] = [[]];
  let current = '';
  let depth = 0;
  let inClass = false;
  const endRun = (): void => {
    if (current.length > 0) branches[branches.length - 1]?.push(current);
    current = '';
  };
  for (let i = 0; i < source.length; i += 1) {
    const c = source[i] as string;
    if (inClass) {
      if (c === '\\') i += 1;
      else if (c === ']') inClass = false;
      continue;
    }
    if (c === '\\') {
      const next = source[i + 1] ?? '';
      i += 1;
      if (depth === 0 && /[.\\/+*?()[\]{}|^$\-'"`:@#~]/.test(next)) {
        if (isQuantifier(source, i + 1)) { endRun(); continue; }
        current += next;
      } else {
        endRun();
      }
      continue;
    }
    if (c === '[') { inClass = true; endRun(); continue; }
    if (c === '(') { depth += 1; endRun(); continue; }
    if (c === ')') { depth -= 1; endRun(); continue; }
    if (depth > 0) continue;
    if (c === '|') { endRun(); branches.push([]); continue; }
    if ('.^$'.includes(c)) { endRun(); continue; }
    if ('*+?{'.includes(c)) {
      // The quantifier applies to the previous character, which is therefore not required.
      current = current.slice(0, -1);
      endRun();
      if (c === '{') i = source.indexOf('}', i);
      continue;
    }
    if (isQuantifier(source, i + 1)) { endRun(); continue; }
    current += c;
  }
  endRun();
  const atoms: string[] = [];
  for (const branch of branches) {
    const best = branch.map((s) => s.toLowerCase()).sort((a, b) => b.length - a.length)[0];
    if (best === undefined || best.length < minLength) return undefined;
    atoms.push(best);
  }
  return atoms;
}

function isQuantifier(source: string, at: number): boolean {
  const c = source[at];
  return c === '*' || c === '?' || c === '{' || (c === '+' && source[at - 1] !== '\\');
}

/**
 * Like regexAtoms, but looks into groups: `\b(you|the\s+model)\s+must\b` requires "must", and
 * `\b(send|post)\b` requires one of "send"/"post". For each sequence the most selective required part
 * (a literal run or a required group's alternatives) is kept. The directive and metadata rules open
 * with groups, which regexAtoms cannot see into. Returns undefined when no such set exists.
 */
export function regexAtomsDeep(source: string, minLength = 3): string[] | undefined {
  let i = 0;
  const usable = (run: string): boolean => run.length >= minLength || (run.length >= 2 && /[^\p{ASCII}]/u.test(run));
  const quantifier = (): number | undefined => {
    const c = source[i];
    let min: number | undefined;
    if (c === '?' || c === '*') { min = 0; i += 1; }
    else if (c === '+') { min = 1; i += 1; }
    else if (c === '{') {
      const m = /^\{(\d+)(,\d*)?\}/.exec(source.slice(i));
      if (!m) return undefined;
      min = Number(m[1]);
      i += m[0].length;
    }
    if (min !== undefined && source[i] === '?') i += 1;
    return min;
  };
  const better = (a: string[] | undefined, b: string[]): string[] => {
    if (!a) return b;
    const score = (s: string[]): number => Math.min(...s.map((x) => x.length)) * 100 - s.length;
    return score(b) > score(a) ? b : a;
  };
  const alternation = (): string[] | undefined => {
    const sets = [sequence()];
    while (source[i] === '|') { i += 1; sets.push(sequence()); }
    if (sets.some((s) => s === undefined)) return undefined;
    return [...new Set(sets.flat() as string[])];
  };
  const sequence = (): string[] | undefined => {
    let best: string[] | undefined;
    let run = '';
    const endRun = (): void => { if (usable(run)) best = better(best, [run.toLowerCase()]); run = ''; };
    while (i < source.length && source[i] !== '|' && source[i] !== ')') {
      const c = source[i] as string;
      if (c === '(') {
        endRun();
        i += 1;
        const look = /^\?(<?[=!])/.exec(source.slice(i));
        if (look) i += look[0].length;
        else if (source.startsWith('?:', i)) i += 2;
        else if (source[i] === '?' && source[i + 1] === '<') i = source.indexOf('>', i) + 1;
        const inner = alternation();
        i += 1; // ')'
        const min = quantifier();
        if (!look && inner && (min === undefined || min >= 1)) best = better(best, inner);
        continue;
      }
      if (c === '[') {
        endRun();
        i += 1;
        while (i < source.length && source[i] !== ']') i += source[i] === '\\' ? 2 : 1;
        i += 1;
        quantifier();
        continue;
      }
      let literal: string | undefined;
      if (c === '\\') {
        const next = source[i + 1] ?? '';
        i += 2;
        if (/[.\\/+*?()[\]{}|^$\-'"`:@#~&%!,=<> ]/.test(next)) literal = next;
        else if ((next === 'p' || next === 'P' || next === 'u' || next === 'x') && source[i] === '{') i = source.indexOf('}', i) + 1;
        else if (next === 'u') i += 4;
        else if (next === 'x') i += 2;
      } else {
        i += 1;
        if (!'.^$'.includes(c)) literal = c;
      }
      const min = quantifier();
      if (literal === undefined) { endRun(); continue; }
      if (min === undefined) run += literal;
      else if (min >= 1) { run += literal; endRun(); }
      else endRun();
    }
    endRun();
    return best;
  };
  const result = alternation();
  return i >= source.length ? result : undefined;
}

/**
 * Atoms for a prefilter: regexAtomsDeep's (literals of at least 3 characters) or, where a pattern has
 * none, shorter required literals ("su", "@", "0x"). A short atom is less selective but still sound: a
 * pattern that would otherwise run on every clause now runs only where its literals occur.
 */
export function prefilterAtoms(source: string): string[] | undefined {
  return regexAtomsDeep(source) ?? regexAtomsDeep(source, 2) ?? regexAtomsDeep(source, 1);
}
