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
