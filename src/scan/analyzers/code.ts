import { makeFinding } from '../finding.js';
import { lexJavaScript, type StringLiteral } from '../jslex.js';
import { lexPython } from '../pylex.js';
import type { PatternRule, RuleSet, Thresholds } from '../rules.js';
import { shannonEntropy } from '../text.js';
import type { Finding, SourceFile } from '../types.js';

/** What the code shows it can do, for the permissions analyzer. */
export interface CodeFacts {
  filesystem: string[];
  network: string[];
  process: string[];
  /** Hosts of URLs found in string literals. */
  hosts: string[];
  /** Absolute or home-relative paths found in string literals. */
  paths: string[];
}

export interface CodeAnalysis {
  findings: Finding[];
  facts: CodeFacts;
  bytesScanned: number;
  filesScanned: number;
}

const JS_EXT = /\.(m|c)?(j|t)sx?$/;
const MAX_HITS_PER_RULE_PER_FILE = 5;

function isJavaScript(path: string): boolean {
  return JS_EXT.test(path) && !path.endsWith('.d.ts');
}

function matchPatterns(patterns: RegExp[], substrings: string[], line: string): RegExpExecArray | string | undefined {
  for (const pattern of patterns) {
    pattern.lastIndex = 0;
    const m = pattern.exec(line);
    if (m) return m;
  }
  if (substrings.length > 0) {
    const lower = line.toLowerCase();
    for (const s of substrings) if (lower.includes(s)) return s;
  }
  return undefined;
}

function trimLine(line: string, at: number): string {
  const start = Math.max(0, at - 60);
  return `${start > 0 ? '…' : ''}${line.slice(start, start + 200).trim()}`;
}

/**
 * The patterns of a rule that can match this file: an atom prefilter (plain substring search, as
 * YARA does) and then one whole-file regex pass. Most rules match nothing, and then no line is tested.
 */
function livePatterns(rule: PatternRule, code: string, lower: string): RegExp[] {
  return rule.patterns.filter((pattern, i) => {
    const atoms = rule.atoms[i];
    if (atoms !== undefined && !atoms.some((a) => lower.includes(a))) return false;
    pattern.lastIndex = 0;
    return pattern.test(code);
  });
}

function runPatternRules(file: SourceFile, withStrings: string, codeOnly: string, rules: RuleSet, facts: CodeFacts, ruleList: PatternRule[] = rules.code): Finding[] {
  const findings: Finding[] = [];
  const lower = withStrings.toLowerCase();
  const lowerCodeOnly = codeOnly === withStrings ? lower : codeOnly.toLowerCase();
  const split = new Map<string, string[]>();
  for (const rule of ruleList) {
    const code = rule.codeOnly ? codeOnly : withStrings;
    const patterns = livePatterns(rule, code, rule.codeOnly ? lowerCodeOnly : lower);
    const substrings = rule.codeOnly ? [] : rule.substrings.filter((sub) => lower.includes(sub));
    if (patterns.length === 0 && substrings.length === 0) continue;
    const key = rule.codeOnly ? 'codeOnly' : 'withStrings';
    const lines = split.get(key) ?? code.split('\n');
    split.set(key, lines);
    let hits = 0;
    for (let index = 0; index < lines.length && hits < MAX_HITS_PER_RULE_PER_FILE; index += 1) {
      const line = lines[index] as string;
      if (line.length === 0) continue;
      const m = matchPatterns(patterns, substrings, line);
      if (m === undefined) continue;
      hits += 1;
      const location = { file: file.path, line: index + 1 };
      if (rule.capability) facts[rule.capability].push(`${file.path}:${index + 1}`);
      const at = typeof m === 'string' ? line.toLowerCase().indexOf(m) : m.index;
      findings.push(makeFinding({ ruleId: rule.id, analyzer: 'code', title: rule.title, severity: rule.severity, confidence: rule.confidence, location, evidence: trimLine(line, at), why: rule.why, remediation: rule.remediation }));
    }
  }
  return findings;
}

// Binary formats that legitimately travel as base64 inside code: images, fonts, documents, WebAssembly.
const BENIGN_MAGIC: [string, number[]][] = [
  ['PNG', [0x89, 0x50, 0x4e, 0x47]], ['JPEG', [0xff, 0xd8, 0xff]], ['GIF', [0x47, 0x49, 0x46, 0x38]], ['WebP/RIFF', [0x52, 0x49, 0x46, 0x46]],
  ['WOFF', [0x77, 0x4f, 0x46, 0x46]], ['WOFF2', [0x77, 0x4f, 0x46, 0x32]], ['TTF', [0x00, 0x01, 0x00, 0x00]], ['OTF', [0x4f, 0x54, 0x54, 0x4f]],
  ['ICO', [0x00, 0x00, 0x01, 0x00]], ['BMP', [0x42, 0x4d]], ['PDF', [0x25, 0x50, 0x44, 0x46]], ['WASM', [0x00, 0x61, 0x73, 0x6d]], ['SVG/XML', [0x3c, 0x3f, 0x78, 0x6d]], ['SVG', [0x3c, 0x73, 0x76, 0x67]],
];

function benignBinary(bytes: Buffer): string | undefined {
  for (const [name, magic] of BENIGN_MAGIC) if (magic.every((b, i) => bytes[i] === b)) return name;
  return undefined;
}

const CODE_WORDS = /\b(require|import|eval|Function|child_process|exec|spawn|process\.env|http|https|fetch|XMLHttpRequest|powershell|\/bin\/(ba)?sh|curl|wget)\b/;
const BENIGN_CONTEXT = /(integrity|hash|sha\d*|md5|checksum|digest|fingerprint|etag|nonce|salt|iv|public_?key|publicKey|cert(ificate)?|sourceMappingURL|signature|kid|x5t|uuid|id)["']?\s*[:=]\s*$/i;
const EXEC_CONTEXT = /(eval|exec|Function|atob|Buffer\.from|fromCharCode|decode\w*|b64decode|decompress|unhexlify|fromhex|loads|runIn\w*Context|Script)\s*\(\s*[a-z]{0,2}$/;

/** Runs of consecutive code points ("ABCDEF…", "0123…") are alphabet tables, not payloads. */
function sortedRunRatio(text: string): number {
  let runs = 0;
  for (let i = 1; i < text.length; i += 1) if (text.charCodeAt(i) === text.charCodeAt(i - 1) + 1) runs += 1;
  return runs / Math.max(1, text.length - 1);
}

function countEscapes(raw: string): number {
  return (raw.match(/\\x[0-9a-f]{2}|\\u[0-9a-f]{4}|\\u\{[0-9a-f]+\}/gi) ?? []).length;
}

function unescapeJs(raw: string): string {
  return raw
    .replace(/\\x([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)))
    .replace(/\\u\{([0-9a-f]+)\}/gi, (_, h: string) => String.fromCodePoint(Math.min(0x10ffff, Number.parseInt(h, 16))))
    .replace(/\\u([0-9a-f]{4})/gi, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
}

interface LiteralVerdict { ruleId: string; title: string; severity: Finding['severity']; confidence: number; why: string; evidence: string }

const ENTROPY_WHY = 'Long high-entropy strings are how packed or encrypted payloads are hidden in code; legitimate encoded data (images, fonts, digests) is recognised and not flagged.';

/** Decides whether one string literal looks like a packed payload. Pure, so the corpus test can probe it. */
export function judgeLiteral(literal: StringLiteral, t: Thresholds['entropy']): LiteralVerdict | undefined {
  const raw = literal.raw;
  const escapes = countEscapes(raw);
  if (escapes >= 12 && escapes * 4 > raw.length * 0.6) {
    const decoded = unescapeJs(raw);
    if (CODE_WORDS.test(decoded)) return { ruleId: 'BST-C063', title: 'Escaped string hides code', severity: 'high', confidence: 0.8, why: 'A string written entirely as \\x/\\u escapes decodes to code; escaping text that is then executed is a common obfuscation.', evidence: `decodes to: ${decoded.slice(0, 120)}` };
    return undefined;
  }
  if (raw.length < t.minLength) return undefined;
  if (/^data:/i.test(raw)) {
    if (/^data:(application|text)\/(javascript|x-javascript|ecmascript)/i.test(raw)) return { ruleId: 'BST-C064', title: 'Script embedded as a data: URI', severity: 'medium', confidence: 0.6, why: 'A script carried in a data: URI can be imported or evaluated without appearing as source.', evidence: raw.slice(0, 80) };
    return undefined;
  }
  if (BENIGN_CONTEXT.test(literal.before)) return undefined;
  const execContext = EXEC_CONTEXT.test(literal.before);
  if (/^[0-9a-f]+$/i.test(raw)) {
    if (t.hexCharset.standardDigestLengths.includes(raw.length)) return undefined;
    if (raw.length < t.hexCharset.minLength || shannonEntropy(raw) < t.hexCharset.minBits) return undefined;
    const decoded = raw.length % 2 === 0 ? Buffer.from(raw, 'hex').toString('latin1') : '';
    if (CODE_WORDS.test(decoded) || execContext) return { ruleId: 'BST-C062', title: 'Encoded code in a string literal', severity: 'high', confidence: 0.85, why: 'The literal decodes to code or feeds a decoder/evaluator: a packed payload.', evidence: `hex, ${raw.length} chars${decoded ? `, decodes to: ${decoded.replace(/[^\x20-\x7e]/g, '.').slice(0, 80)}` : ''}` };
    return { ruleId: 'BST-C060', title: 'Long high-entropy string', severity: raw.length >= t.longBlobLength ? 'medium' : 'low', confidence: 0.5, why: ENTROPY_WHY, evidence: `hex blob, ${raw.length} chars: ${raw.slice(0, 48)}…` };
  }
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(raw)) {
    if (raw.length < t.base64Charset.minLength) return undefined;
    if (sortedRunRatio(raw) >= t.sortedRunRatio) return undefined;
    const bytes = Buffer.from(raw.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (benignBinary(bytes)) return undefined;
    const asText = bytes.toString('utf8');
    if (CODE_WORDS.test(asText) || execContext) return { ruleId: 'BST-C062', title: 'Encoded code in a string literal', severity: 'high', confidence: 0.85, why: 'The literal decodes to code or feeds a decoder/evaluator: a packed payload.', evidence: `base64, ${raw.length} chars, decodes to: ${asText.replace(/[^\x20-\x7e]/g, '.').slice(0, 80)}` };
    const bits = shannonEntropy(raw);
    if (bits < t.base64Charset.minBits) return undefined;
    // Identifiers and minified names use only letters and digits; payload base64 uses the whole alphabet.
    if (!/[0-9]/.test(raw) || !/[A-Z]/.test(raw) || !/[a-z]/.test(raw)) return undefined;
    return { ruleId: 'BST-C060', title: 'Long high-entropy string', severity: raw.length >= t.longBlobLength ? 'medium' : 'low', confidence: 0.5, why: ENTROPY_WHY, evidence: `base64-like, ${raw.length} chars, ${bits.toFixed(2)} bits/char: ${raw.slice(0, 48)}…` };
  }
  if (raw.length >= t.anyCharset.minLength && !/\s/.test(raw)) {
    const bits = shannonEntropy(raw);
    if (bits >= t.anyCharset.minBits && (execContext || raw.length >= t.longBlobLength)) {
      return { ruleId: 'BST-C060', title: 'Long high-entropy string', severity: execContext ? 'high' : 'low', confidence: 0.5, why: ENTROPY_WHY, evidence: `${raw.length} chars, ${bits.toFixed(2)} bits/char: ${raw.slice(0, 48)}…` };
    }
  }
  return undefined;
}

function analyzeLiterals(file: SourceFile, literals: StringLiteral[], rules: RuleSet, facts: CodeFacts): Finding[] {
  const findings: Finding[] = [];
  for (const literal of literals) {
    collectFacts(literal.raw, facts);
    const verdict = judgeLiteral(literal, rules.thresholds.entropy);
    if (!verdict) continue;
    findings.push(makeFinding({ ...verdict, analyzer: 'code', location: { file: file.path, line: literal.line }, remediation: 'Ship readable source. If the data is legitimate (e.g. a test vector), suppress the finding with a reason.', discriminator: literal.raw.slice(0, 64) }));
  }
  return findings;
}

function collectFacts(raw: string, facts: CodeFacts): void {
  if (raw.length > 2048) return;
  for (const m of raw.matchAll(/\b(?:https?|wss?):\/\/([a-z0-9.-]+|\[[0-9a-f:]+\])(?::(\d+))?/gi)) {
    const host = (m[1] ?? '').toLowerCase();
    if (host && !facts.hosts.includes(host) && facts.hosts.length < 500) facts.hosts.push(host);
  }
  if (/^(\/(etc|home|root|var|tmp|usr|opt|proc|Users)\/|~\/)/.test(raw) && !facts.paths.includes(raw) && facts.paths.length < 500) facts.paths.push(raw);
}

function analyzeMinified(file: SourceFile, rules: RuleSet): Finding[] {
  const lines = file.content.split('\n');
  const longest = lines.reduce((max, l) => Math.max(max, l.length), 0);
  const average = file.content.length / Math.max(1, lines.length);
  const { avgLineLength, maxLineLength, expectedPathPattern } = rules.thresholds.minified;
  if ((average < avgLineLength && longest < maxLineLength) || expectedPathPattern.test(file.path)) return [];
  return [makeFinding({ ruleId: 'BST-C061', analyzer: 'code', title: 'Minified code where source is expected', severity: 'low', confidence: 0.5, location: { file: file.path }, evidence: `average line ${Math.round(average)} chars, longest ${longest}`, why: 'Minified or generated code outside a build/vendor folder cannot be reviewed and may hide behaviour.', remediation: 'Publish readable source, or place generated bundles under dist/ or vendor/.' })];
}

const DOWNLOAD_OR_EXEC = /\b(curl|wget|bash\s+-c|sh\s+-c|node\s+-e|node\s+--eval|powershell|python\d?\s+-c|\|\s*(ba)?sh\b|nc\s|base64\s+(-d|--decode))\b/i;

export function analyzePackageJson(file: SourceFile, rules: RuleSet): Finding[] {
  let pkg: unknown;
  try {
    pkg = JSON.parse(file.content);
  } catch {
    return [makeFinding({ ruleId: 'BST-C072', analyzer: 'code', title: 'package.json is not valid JSON', severity: 'medium', confidence: 0.9, location: { file: file.path }, evidence: file.content.slice(0, 80), why: 'npm cannot install a package whose manifest does not parse; a broken manifest in a published package is suspicious.', remediation: 'Fix the JSON.' })];
  }
  const scripts = typeof pkg === 'object' && pkg !== null ? (pkg as { scripts?: unknown }).scripts : undefined;
  if (typeof scripts !== 'object' || scripts === null) return [];
  const findings: Finding[] = [];
  for (const hook of rules.thresholds.installScripts.hooks) {
    const script = (scripts as Record<string, unknown>)[hook];
    if (typeof script !== 'string') continue;
    const location = { file: file.path, field: `scripts.${hook}` };
    const base = { analyzer: 'code' as const, location, evidence: `"${hook}": "${script}"`, discriminator: hook };
    if (DOWNLOAD_OR_EXEC.test(script)) {
      findings.push(makeFinding({ ...base, ruleId: 'BST-C071', title: 'Install script downloads or evaluates code', severity: 'high', confidence: 0.85, why: 'Install-time scripts run with the installing user\'s rights before anyone reviews the package; downloading or evaluating code there is how most npm malware executes.', remediation: 'Remove the install script or make it a reviewed build step.' }));
    } else if (rules.thresholds.installScripts.knownBuilders.test(script.trim())) {
      findings.push(makeFinding({ ...base, ruleId: 'BST-C070', title: 'Install script (known native build tool)', severity: 'info', confidence: 0.9, why: 'The package runs a well-known native build tool at install time.', remediation: 'None needed; install with --ignore-scripts if you do not need the native part.' }));
    } else {
      findings.push(makeFinding({ ...base, ruleId: 'BST-C073', title: 'Install-time script', severity: 'high', confidence: 0.6, why: 'Install-time scripts run arbitrary code at install, before review; MCP servers have no need for them.', remediation: 'Remove it, or review the script and suppress this finding with a reason.' }));
    }
  }
  return findings;
}

export function emptyFacts(): CodeFacts {
  return { filesystem: [], network: [], process: [], hosts: [], paths: [] };
}

export function analyzeFile(file: SourceFile, rules: RuleSet, facts: CodeFacts): Finding[] {
  if (file.path === 'package.json' || file.path.endsWith('/package.json')) return analyzePackageJson(file, rules);
  if (isJavaScript(file.path)) {
    const lexed = lexJavaScript(file.content);
    return [...runPatternRules(file, lexed.code, lexed.codeOnly, rules, facts), ...analyzeLiterals(file, lexed.literals, rules, facts), ...analyzeMinified(file, rules)];
  }
  if (file.path.endsWith('.py')) {
    const lexed = lexPython(file.content);
    const pythonRules = [...rules.code.filter((r) => !r.languages || r.languages.includes('python')), ...rules.python];
    return [...runPatternRules(file, lexed.code, lexed.codeOnly, rules, facts, pythonRules), ...analyzeLiterals(file, lexed.literals, rules, facts)];
  }
  return runPatternRules(file, file.content, file.content, rules, facts);
}

export function analyzeCode(files: SourceFile[], rules: RuleSet): CodeAnalysis {
  const facts = emptyFacts();
  const findings: Finding[] = [];
  let bytes = 0;
  for (const file of files) {
    bytes += file.bytes;
    findings.push(...analyzeFile(file, rules, facts));
  }
  return { findings, facts, bytesScanned: bytes, filesScanned: files.length };
}
