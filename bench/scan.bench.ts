// Scan throughput on a real package tree (the MCP SDK's dist plus two dependencies), with the Debian
// yara CLI on the same rules and the same files as the baseline, measured in the same run.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyzeCode, analyzeMetadata, loadRules, runYara, type ServerMetadata } from '../src/scan/index.js';
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

// Tool definitions per CPU-second in process (issue 18 target: 5,000), next to reading the same JSON:
// the benign real-package corpus (every server listed live), scanned by analyzeMetadata with rules and
// model loaded once.
const corpus = join(root, 'test/scan/corpus/data/benign-packages');
const jsonTexts = existsSync(corpus) ? readdirSync(corpus).filter((f) => f.endsWith('.jsonl')).map((f) => readFileSync(join(corpus, f), 'utf8')) : [];
const servers = jsonTexts.flatMap((t) => t.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { server: ServerMetadata }).server));
const toolCount = servers.reduce((n, s) => n + s.tools.length, 0);
const cpuSeconds = (fn: () => void): number => {
  const start = process.cpuUsage();
  fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
};
analyzeMetadata(servers[0] as ServerMetadata, rules);
const scanCpu = median([0, 1, 2].map(() => cpuSeconds(() => { for (const s of servers) analyzeMetadata(s, rules); })));
const parseCpu = median([0, 1, 2].map(() => cpuSeconds(() => { for (let i = 0; i < 20; i += 1) for (const t of jsonTexts) for (const l of t.split('\n')) if (l) JSON.parse(l); })) ) / 20;
process.stdout.write(`\ntool definitions: ${servers.length} real servers, ${toolCount} tools\n\n| step | CPU s | tools per CPU-s | cost vs JSON.parse |\n|---|---|---|---|\n`);
process.stdout.write(`| JSON.parse of the same corpus | ${parseCpu.toFixed(3)} | ${(toolCount / parseCpu).toFixed(0)} | 1x |\n`);
process.stdout.write(`| analyzeMetadata (rules + directives + model) | ${scanCpu.toFixed(2)} | ${(toolCount / scanCpu).toFixed(0)} | ${(scanCpu / parseCpu).toFixed(0)}x |\n`);

// CLI fixed start-up: `bastion --version` and `bastion scan` on a one-tool manifest against `node -e ''`,
// child CPU time per run (issue 18: under 200 ms over node).
const manifest = join(mkdtempSync(join(tmpdir(), 'bastion-bench-')), 'one.yaml');
writeFileSync(manifest, 'name: one\ntools:\n  - name: add\n    description: Add two numbers.\n');
const startup = (args: string[]): { cpu: number; wall: number } => {
  const cpus: number[] = [];
  const walls: number[] = [];
  for (let i = 0; i < 7; i += 1) {
    const t = process.hrtime.bigint();
    const r = spawnSync('/usr/bin/time', ['-f', '%U %S', process.execPath, ...args], { encoding: 'utf8' });
    walls.push(Number(process.hrtime.bigint() - t) / 1e6);
    const [u, s] = (r.stderr.trim().split('\n').pop() ?? '0 0').split(' ').map(Number);
    cpus.push(((u ?? 0) + (s ?? 0)) * 1000);
  }
  return { cpu: median(cpus), wall: median(walls) };
};
if (existsSync('/usr/bin/time')) {
  const base = startup(['-e', '']);
  const version = startup([join(root, 'dist/src/cli/bastion.js'), '--version']);
  const cli = startup([join(root, 'dist/src/cli/bastion.js'), 'scan', manifest, '--no-yara']);
  process.stdout.write(`\n| start-up (median of 7) | CPU ms | wall ms |\n|---|---|---|\n| node -e '' | ${base.cpu.toFixed(0)} | ${base.wall.toFixed(0)} |\n`);
  process.stdout.write(`| bastion --version | ${version.cpu.toFixed(0)} | ${version.wall.toFixed(0)} |\n| bastion scan one-tool manifest | ${cli.cpu.toFixed(0)} | ${cli.wall.toFixed(0)} |\n`);
  process.stdout.write(`| fixed cost of bastion --version over node | ${(version.cpu - base.cpu).toFixed(0)} | ${(version.wall - base.wall).toFixed(0)} |\n| fixed cost of bastion scan over node | ${(cli.cpu - base.cpu).toFixed(0)} | ${(cli.wall - base.wall).toFixed(0)} |\n`);
} else {
  process.stdout.write('\n(start-up not measured: /usr/bin/time is not installed)\n');
}
