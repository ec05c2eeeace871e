// Sandbox start-up cost: time from spawn to the first `initialize` answer of an MCP reference
// server, started directly (the `none` backend) and inside the bwrap sandbox (uid drop, rlimits,
// namespaces, seccomp, per-server cgroup), measured in interleaved rounds in the same run.
//
//   npm run build && node dist/bench/sandbox.bench.js        (about 10-20 s)
//   BENCH_ROUNDS=15 node dist/bench/sandbox.bench.js         more rounds on a noisy machine
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createSandbox, type SandboxBackend } from '../src/sandbox/index.js';
import { ChildStdioTransport, NODE_MODULES, referenceServer } from '../test/sandbox/helpers.js';

const ROUNDS = Math.max(1, Number(process.env['BENCH_ROUNDS'] ?? 8) || 8);
const SERVERS = ['memory', 'everything'] as const;

async function timeToInitialize(backend: SandboxBackend, server: (typeof SERVERS)[number]): Promise<{ initMs: number; cpuMs: number | undefined }> {
  const started = process.hrtime.bigint();
  const handle = await backend.spawn({
    serverName: `bench-${server}`,
    command: process.execPath,
    args: server === 'everything' ? [referenceServer(server), 'stdio'] : [referenceServer(server)],
    env: { MEMORY_FILE_PATH: '/tmp/memory.jsonl' },
    packageDirs: [NODE_MODULES],
    scopes: [],
  });
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await client.connect(new ChildStdioTransport(handle.child));
  const initMs = Number(process.hrtime.bigint() - started) / 1e6;
  const cpuMs = handle.cpuTimeMs();
  await client.close();
  await handle.dispose();
  return { initMs, cpuMs };
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

const direct = createSandbox({ backend: 'none' });
const sandboxed = createSandbox({ backend: 'bwrap' });
const rows: string[][] = [];
for (const server of SERVERS) {
  const times = { none: [] as number[], bwrap: [] as number[] };
  const cpu: number[] = [];
  // Warm the page cache and the user-namespace probe so round 1 is not special.
  await timeToInitialize(direct, server);
  await timeToInitialize(sandboxed, server);
  for (let round = 0; round < ROUNDS; round += 1) {
    const order = round % 2 === 0 ? (['none', 'bwrap'] as const) : (['bwrap', 'none'] as const);
    for (const which of order) {
      const result = await timeToInitialize(which === 'none' ? direct : sandboxed, server);
      times[which].push(result.initMs);
      if (which === 'bwrap' && result.cpuMs !== undefined) cpu.push(result.cpuMs);
    }
  }
  const base = median(times.none);
  const boxed = median(times.bwrap);
  rows.push([`server-${server}`, base.toFixed(1), boxed.toFixed(1), (boxed / base).toFixed(2), (boxed - base).toFixed(1), cpu.length ? median(cpu).toFixed(0) : 'n/a']);
}

const header = ['server', 'direct ms', 'bwrap ms', 'ratio', 'added ms', 'tree CPU ms (cgroup)'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i] as number)).join('  ');
process.stdout.write(`time to first initialize answer, median of ${ROUNDS} interleaved rounds\n`);
process.stdout.write(`${line(header)}\n${line(widths.map((w) => '-'.repeat(w)))}\n`);
for (const row of rows) process.stdout.write(`${line(row)}\n`);
