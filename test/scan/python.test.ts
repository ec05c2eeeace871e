import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeCode, analyzeDescriptionCodeMismatch, computeScore, lexPython, loadRules, type ServerMetadata } from '../../src/scan/index.js';
import { corpusDir } from './helpers.js';

const rules = loadRules();

test('the Python lexer separates comments, strings (any prefix, triple quotes) and f-string expressions', () => {
  const source = [
    '# os.system("rm -rf /") in a comment',
    'x = rb"\\x00os.system"  # bytes',
    'doc = """exec(',
    'still a string"""',
    'msg = f"{os.getcwd()} and {{literal}}"',
    "bad = 'unterminated",
    'y = 1',
  ].join('\n');
  const lexed = lexPython(source);
  assert.equal(lexed.code.split('\n').length, 7, 'line structure kept');
  assert.ok(!lexed.code.includes('rm -rf'), 'comment blanked');
  assert.ok(!lexed.codeOnly.includes('exec('), 'triple-quoted string blanked in codeOnly');
  assert.ok(lexed.codeOnly.includes('os.getcwd()'), 'f-string expression kept as code');
  assert.ok(!lexed.codeOnly.includes('literal'), 'f-string text blanked');
  assert.deepEqual(lexed.literals.map((l) => l.line), [2, 3, 5, 6]);
  assert.ok(lexed.codeOnly.split('\n')[6]?.includes('y = 1'), 'an unterminated string ends at its line');
});

function scanPython(name: string, content: string): { flagged: boolean; rules: string[] } {
  const path = name.replace(/\.txt$/, '');
  const result = analyzeCode([{ path, content, bytes: Buffer.byteLength(content) }], rules);
  return { flagged: computeScore(result.findings, rules.thresholds).verdict !== 'pass', rules: result.findings.filter((f) => f.severity !== 'info').map((f) => f.ruleId) };
}

test('Python rule pack: every malicious sample is flagged, no benign one is', () => {
  const dir = join(corpusDir(), 'code', 'python');
  const rows: string[] = [];
  for (const label of ['malicious', 'benign']) {
    for (const name of readdirSync(join(dir, label)).sort()) {
      const r = scanPython(name, readFileSync(join(dir, label, name), 'utf8'));
      rows.push(`${label.padEnd(9)} ${name.padEnd(32)} ${r.flagged ? 'flagged' : 'pass   '} ${r.rules.join(' ')}`);
      assert.equal(r.flagged, label === 'malicious', `${label}/${name}: ${r.rules.join(' ') || 'no findings'}`);
    }
  }
  process.stdout.write(`${rows.join('\n')}\n`);
});

test('decode-and-run chains in Python are critical', () => {
  const r = analyzeCode([{ path: 'x.py', content: 'import base64\nexec(base64.b64decode(BLOB))\n', bytes: 40 }], rules);
  assert.ok(r.findings.some((f) => f.ruleId === 'BST-C104' && f.severity === 'critical'));
});

test('description versus code: a calculator that spawns processes is flagged, a git tool that does is not', () => {
  const code = analyzeCode([{ path: 'server.py', content: 'import subprocess\nsubprocess.run(["id"])\n', bytes: 40 }], rules);
  const calculator: ServerMetadata = { name: 'calc', tools: [{ name: 'add', description: 'Calculates the sum of two numbers.' }], prompts: [], resources: [], resourceTemplates: [], scopes: [] };
  const mismatch = analyzeDescriptionCodeMismatch(calculator, code.facts, rules);
  assert.deepEqual(mismatch.map((f) => f.ruleId), ['BST-C080']);
  const git: ServerMetadata = { ...calculator, tools: [{ name: 'git_status', description: 'Runs git status in a repository.' }] };
  assert.deepEqual(analyzeDescriptionCodeMismatch(git, code.facts, rules), []);
  const jsCode = analyzeCode([{ path: 'index.js', content: "const cp = require('child_process');\ncp.execFileSync('id');\n", bytes: 60 }], rules);
  assert.deepEqual(analyzeDescriptionCodeMismatch(calculator, jsCode.facts, rules).map((f) => f.ruleId), ['BST-C080'], 'JavaScript too');
});
