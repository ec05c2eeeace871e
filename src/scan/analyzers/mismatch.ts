import { makeFinding } from '../finding.js';
import type { RuleSet } from '../rules.js';
import type { Finding, ServerMetadata } from '../types.js';
import type { CodeFacts } from './code.js';
import { identifierWords } from '../directives.js';

const CAPABILITY_WORDS: Record<'process' | 'network' | 'filesystem', RegExp> = {
  process: /\b(command|shell|process|exec\w*|run\w*|terminal|script|git|docker|build)\b/i,
  network: /\b(http|url|web|api|fetch|download|upload|online|internet|remote|weather|forecast|search|exchange rate|currency)\b/i,
  filesystem: /\b(file|files|path|directory|folder|disk|document|read|write|save|load)\b/i,
};

/**
 * Description versus code (JavaScript and Python): when every tool presents itself as a
 * self-contained purpose (arithmetic, time, jokes, text transforms …) and none of the texts speaks of
 * processes, the network or files, code that spawns processes, opens connections or reads the home
 * directory does something the server does not admit to.
 */
export function analyzeDescriptionCodeMismatch(server: ServerMetadata, facts: CodeFacts, rules: RuleSet): Finding[] {
  if (server.tools.length === 0) return [];
  const texts = server.tools.map((t) => `${identifierWords(t.name)} ${t.title ?? ''} ${t.description ?? ''}`);
  const purposes = texts.map((text) => rules.purpose.purposes.filter((p) => p.match.test(text)));
  if (purposes.some((p) => p.length === 0)) return [];
  const all = `${server.instructions ?? ''}\n${texts.join('\n')}`;
  const findings: Finding[] = [];
  const homePaths = facts.paths.filter((p) => /^(~\/|\/home\/|\/root\/|\/Users\/)/.test(p));
  const observed: [keyof typeof CAPABILITY_WORDS, string[]][] = [['process', facts.process], ['network', facts.network], ['filesystem', [...homePaths, ...facts.filesystem.filter(() => homePaths.length > 0)]]];
  for (const [capability, where] of observed) {
    if (where.length === 0) continue;
    const allowed = purposes.every((list) => list.some((p) => p.allows.includes(capability)));
    if (allowed || CAPABILITY_WORDS[capability].test(all)) continue;
    findings.push(makeFinding({
      ruleId: 'BST-C080', analyzer: 'code', attackClass: 'malicious-code', title: `Code uses ${capability} that the tool descriptions never mention`, severity: 'high', confidence: 0.7,
      location: { file: where[0]?.split(':')[0] ?? '(package)' }, discriminator: capability,
      evidence: `tools described as ${[...new Set(purposes.flat().map((p) => p.name))].join('/')}; code: ${where.slice(0, 3).join(', ')}`,
      why: `Every tool presents itself as ${[...new Set(purposes.flat().map((p) => p.name))].join('/')}, which needs no ${capability} access, yet the code ${capability === 'process' ? 'spawns processes' : capability === 'network' ? 'opens network connections' : 'reads the home directory'}. A server that hides what it does is how backdoored tools are built.`,
      remediation: 'Describe truthfully what the server does and declare the scopes, or remove the code.',
    }));
  }
  return findings;
}
