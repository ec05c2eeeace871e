/**
 * Results that many sessions share: a cached tools/list page is the same object for every session
 * of every agent that sees the same tools. Such a value is deep-frozen when it is registered, so
 * its JSON texts (the audit record's canonical form, the response's wire form) can be computed
 * once and reused: a new session on a warm pool then costs no re-serialization of the whole list.
 * Only values registered here are memoized; a value anyone could still change is never served
 * from a stale text.
 */
const shared = new WeakSet<object>();
const texts = new WeakMap<object, Map<string, string>>();

/** Freezes `value` and everything in it, and registers it as shared. Returns it. */
export function shareResult<T extends object>(value: T): T {
  if (shared.has(value)) return value;
  deepFreeze(value);
  shared.add(value);
  return value;
}

export function isSharedResult(value: unknown): value is object {
  return value !== null && typeof value === 'object' && shared.has(value);
}

/** The text `form` of a shared value, computed on first use; undefined (not cached) when `compute` has none. */
export function sharedText(value: object, form: string, compute: () => string | undefined): string | undefined {
  let forms = texts.get(value);
  const known = forms?.get(form);
  if (known !== undefined) return known;
  const text = compute();
  if (text === undefined) return undefined;
  if (forms === undefined) texts.set(value, (forms = new Map()));
  forms.set(form, text);
  return text;
}

/** Freezes every object reachable from `root` (values parsed from JSON: acyclic, but a visited set guards anyway). */
export function deepFreeze(root: object): void {
  const seen = new Set<object>();
  const stack: object[] = [root];
  while (stack.length > 0) {
    const value = stack.pop() as object;
    if (seen.has(value)) continue;
    seen.add(value);
    for (const member of Object.values(value)) if (member !== null && typeof member === 'object') stack.push(member as object);
    Object.freeze(value);
  }
}
