#!/usr/bin/env node
// Times analyzeMetadata over the benign real-package corpus (test/scan/corpus/data/benign-packages) and
// prints tool definitions per CPU-second; run it under `node --cpu-prof` to profile the same work.
// Usage: node scripts/profile-metadata.mjs [ROOT] [ROUNDS]. The corpus is read from this checkout; the
// scanner (dist) and rules (data/scan) from ROOT (default: here), so two builds can be compared in one run.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const root = resolve(process.argv[2] ?? here);
const rounds = Number(process.argv[3] ?? 5);
const { loadRules } = await import(join(root, 'dist/src/scan/rules.js'));
const { analyzeMetadata } = await import(join(root, 'dist/src/scan/analyzers/metadata.js'));
const rules = loadRules(join(root, 'data/scan'));
const corpus = join(here, 'test/scan/corpus/data/benign-packages');
const servers = readdirSync(corpus).filter((f) => f.endsWith('.jsonl')).sort()
  .flatMap((f) => readFileSync(join(corpus, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).server));
const tools = servers.reduce((n, s) => n + s.tools.length, 0);
analyzeMetadata(servers[0], rules);
const cpu = [];
for (let r = 0; r < rounds; r += 1) {
  const start = process.cpuUsage();
  for (const s of servers) analyzeMetadata(s, rules);
  const used = process.cpuUsage(start);
  cpu.push((used.user + used.system) / 1e6);
}
const sorted = [...cpu].sort((a, b) => a - b);
const median = sorted[Math.floor(sorted.length / 2)];
process.stdout.write(`${root}: ${servers.length} servers, ${tools} tools; CPU s per round ${cpu.map((c) => c.toFixed(3)).join(' ')}; median ${(tools / median).toFixed(0)} tools per CPU-s\n`);
