// Selectors of the quota rules: globs over agent, server and tool.
import type { Selector } from './config.js';

/** Who is calling what, as the limits see it. */
export interface CallSubject {
  agent: string;
  /** Fingerprint of the client's credential: two tokens of one agent are two callers. */
  token?: string;
  server: string;
  tool: string;
}

const compiled = new Map<string, RegExp>();

function globToRegExp(glob: string): RegExp {
  let found = compiled.get(glob);
  if (found === undefined) {
    const source = glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
    found = new RegExp(`^${source}$`, 's');
    compiled.set(glob, found);
  }
  return found;
}

export function globMatches(glob: string | undefined, value: string): boolean {
  if (glob === undefined || glob === '*') return true;
  if (!glob.includes('*')) return glob === value;
  return globToRegExp(glob).test(value);
}

export function selects(selector: Selector | undefined, subject: CallSubject): boolean {
  if (selector === undefined) return true;
  return globMatches(selector.agent, subject.agent) && globMatches(selector.server, subject.server) && globMatches(selector.tool, subject.tool);
}

/**
 * A store key part for a name. Names are percent-encoded where they could collide with the
 * separators, so `a:b` + `c` and `a` + `b:c` never share a counter.
 */
export function keyPart(value: string): string {
  return encodeURIComponent(value);
}
