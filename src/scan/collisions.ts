import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeFinding } from './finding.js';
import { RuleFileError, type RuleSet } from './rules.js';
import { foldConfusables } from './text.js';
import type { Finding, ServerMetadata, ToolDefinition } from './types.js';

// Digits and letter pairs that read as letters in a tool name: read_fi1e, rnail, 0pen.
const DIGIT_LOOKALIKES: [RegExp, string][] = [[/0/g, 'o'], [/1/g, 'l'], [/3/g, 'e'], [/5/g, 's'], [/rn/g, 'm'], [/vv/g, 'w'], [/i/g, 'l']];

/** Case, separators and look-alike letters removed: two names with the same skeleton look the same to a model. */
export function nameSkeleton(name: string, rules: RuleSet): string {
  let s = foldConfusables(name.normalize('NFKC'), rules.unicode).toLowerCase().replace(/[\s_.\-/:]+/g, '');
  for (const [re, to] of DIGIT_LOOKALIKES) s = s.replace(re, to);
  return s;
}

/** Only case and separators removed. */
function caseSkeleton(name: string): string {
  return name.normalize('NFKC').toLowerCase().replace(/[\s_.\-/:]+/g, '');
}

function words(text: string): Set<string> {
  return new Set((text.toLowerCase().match(/[\p{L}\p{N}]{3,}/gu) ?? []));
}

/** Share of distinct words two descriptions have in common (Jaccard). */
export function descriptionSimilarity(a: string, b: string): number {
  const x = words(a);
  const y = words(b);
  if (x.size === 0 && y.size === 0) return 1;
  let common = 0;
  for (const w of x) if (y.has(w)) common += 1;
  return common / (x.size + y.size - common);
}

const wellKnownCache = new Map<string, string[]>();

export function loadWellKnownTools(dataDir: string): string[] {
  const cached = wellKnownCache.get(dataDir);
  if (cached) return cached;
  const file = join(dataDir, 'well-known-tools.json');
  let names: unknown;
  try {
    names = (JSON.parse(readFileSync(file, 'utf8')) as { names?: unknown }).names;
  } catch (error) {
    throw new RuleFileError(file, 'whole file', `not readable JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) throw new RuleFileError(file, 'names', 'expected an array of tool names');
  wellKnownCache.set(dataDir, names as string[]);
  return names as string[];
}

function overlapFinding(tool: ToolDefinition, server: ServerMetadata, other: { name: string; server: string; description: string }, how: string, similarity: number): Finding {
  const near = similarity >= 0.5;
  return makeFinding({
    ruleId: 'BST-M070', analyzer: 'metadata', attackClass: 'name-overlap', title: 'Tool name overlaps another server\'s tool',
    severity: near || how !== 'case or separators' ? 'high' : 'medium', confidence: near ? 0.9 : 0.7,
    location: { subject: `tool:${tool.name}`, field: 'name' }, discriminator: `${other.server}/${other.name}`,
    evidence: `"${tool.name}" (server ${server.name}) differs from "${other.name}" (server ${other.server}) only by ${how}; descriptions ${Math.round(similarity * 100)}% alike`,
    why: 'A tool whose name differs from another server\'s tool only by case, separators or look-alike letters, with a similar description, lets the model call the impostor when it means the trusted tool.',
    remediation: 'Rename the tool so it cannot be mistaken for the other, or remove the server.',
  });
}

/**
 * Name collisions of `server`'s tools with the tools of the other servers in the same configuration
 * (case-insensitive, separators ignored, confusable-aware) and, through look-alike letters only,
 * with well-known tool names (data/scan/well-known-tools.json).
 */
export function analyzeCollisions(server: ServerMetadata, others: ServerMetadata[], rules: RuleSet): Finding[] {
  const findings: Finding[] = [];
  const theirs = others.flatMap((o) => o.tools.map((t) => ({ name: t.name, server: o.name, description: t.description ?? '' })));
  for (const tool of server.tools) {
    const skeleton = nameSkeleton(tool.name, rules);
    const caseOnly = caseSkeleton(tool.name);
    for (const other of theirs) {
      if (other.name === tool.name || nameSkeleton(other.name, rules) !== skeleton) continue;
      const how = caseSkeleton(other.name) === caseOnly ? 'case or separators' : 'look-alike letters';
      findings.push(overlapFinding(tool, server, other, how, descriptionSimilarity(tool.description ?? '', other.description)));
    }
    for (const known of loadWellKnownTools(rules.dataDir)) {
      if (known === tool.name || caseSkeleton(known) === caseOnly || nameSkeleton(known, rules) !== skeleton) continue;
      findings.push(makeFinding({
        ruleId: 'BST-M071', analyzer: 'metadata', attackClass: 'name-overlap', title: 'Tool name imitates a well-known tool with look-alike letters', severity: 'high', confidence: 0.8,
        location: { subject: `tool:${tool.name}`, field: 'name' }, discriminator: known,
        evidence: `"${tool.name}" reads as the well-known tool name "${known}"`,
        why: 'Look-alike letters or digits in a name that otherwise matches a widely used tool serve only to be mistaken for it.',
        remediation: 'Use a distinct ASCII name.',
      }));
    }
  }
  return findings;
}
