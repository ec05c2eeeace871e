// Scan throughput on a real package tree (the MCP SDK's dist plus two dependencies), with the Debian
// yara CLI on the same rules and the same files as the baseline, measured in the same run.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyzeCode, loadRules, runYara } from '../src/scan/index.js';
import { readPackageFiles } from '../src/scan/targets.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const trees = ['node_modules/@modelcontextprotocol/sdk/dist', 'node_modules/zod', 'node_modules/ajv/dist'].map((t) => join(root, t)).filter((t) => existsSync(t));
const rules = loadRules();
const files = trees.flatMap((tree) => readPackageFiles(tree, rules.thresholds.files).map((f) => ({ ...f, abs: join(tree, f.path) })));
const bytes = files.reduce((n, f) => n + f.bytes, 0);
const mb = bytes / 1e6;

async function time(fn: () => Promise<void> | void): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

const ROUNDS = 3;
const timings: Record<string, number[]> = { yara: [], code: [], full: [] };
for (let round = 0; round < ROUNDS; round += 1) {
  timings.yara?.push(await time(async () => { await runYara(rules.yaraFiles, files.map((f) => f.abs), { threads: 1 }); }));
  timings.code?.push(await time(() => { analyzeCode(files, rules); }));
  timings.full?.push(await time(async () => {
    // What `bastion scan` does per package: read the files, run the JS analyzers, then yara.
    const fresh = files.map((f) => ({ path: f.path, content: readFileSync(f.abs, 'utf8'), bytes: f.bytes }));
    analyzeCode(fresh, rules);
    await runYara(rules.yaraFiles, files.map((f) => f.abs), { threads: 1 });
  }));
}
const yaraS = median(timings.yara ?? []);
const rows = [
  ['yara CLI (baseline, same rules and files, 1 thread)', yaraS],
  ['bastion code analyzer (lexer, patterns, entropy)', median(timings.code ?? [])],
  ['bastion scan (read + code analyzer + yara)', median(timings.full ?? [])],
] as const;
process.stdout.write(`tree: ${trees.map((t) => t.slice(root.length)).join(', ')}; ${files.length} files, ${mb.toFixed(1)} MB; median of ${ROUNDS} runs\n\n`);
process.stdout.write('| scanner | seconds | MB/s | throughput vs yara |\n|---|---|---|---|\n');
for (const [name, s] of rows) process.stdout.write(`| ${name} | ${s.toFixed(2)} | ${(mb / s).toFixed(1)} | ${(yaraS / s).toFixed(2)}x |\n`);
