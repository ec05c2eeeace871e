// Sandbox cost per backend: time from spawn to the first `initialize` answer of the MCP memory
// reference server, and the median latency of one call (tools/list) afterwards, for `none`
// (unsandboxed), `bwrap`, `oci` (runc) and `gvisor` (runsc), in interleaved rounds in the same
// run, printed as ratios to the unsandboxed start. A backend that cannot run here is listed with
// its error instead of a number.
//
//   npm run build && node dist/bench/sandbox.bench.js        (about 30-60 s)
//   BENCH_ROUNDS=9 node dist/bench/sandbox.bench.js          more rounds on a noisy machine
import { mkdtempSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createSandbox, type SandboxBackend, type SandboxBackendName } from '../src/sandbox/index.js';
import { ChildStdioTransport, NODE_MODULES, referenceServer } from '../test/sandbox/helpers.js';
import { removeTree } from '../test/helpers/tmp.js';

const ROUNDS = Math.max(1, Number(process.env['BENCH_ROUNDS'] ?? 5) || 5);
const CALLS = 30;
const BACKENDS: SandboxBackendName[] = ['none', 'bwrap', 'oci', 'gvisor'];

async function measure(backend: SandboxBackend): Promise<{ initMs: number; callMs: number }> {
  const started = process.hrtime.bigint();
  const handle = await backend.spawn({ serverName: `bench-${backend.name}`, command: process.execPath, args: [referenceServer('memory')], env: { MEMORY_FILE_PATH: '/tmp/memory.jsonl' }, packageDirs: [NODE_MODULES], scopes: [] });
  handle.child.stderr.resume();
  try {
    const client = new Client({ name: 'bench', version: '1.0.0' });
    await client.connect(new ChildStdioTransport(handle.child));
    const initMs = Number(process.hrtime.bigint() - started) / 1e6;
    const calls: number[] = [];
    for (let i = 0; i < CALLS; i += 1) {
      const t = process.hrtime.bigint();
      await client.listTools();
      calls.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    await client.close();
    return { initMs, callMs: median(calls) };
  } finally {
    await handle.dispose();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const bundleDir = mkdtempSync(join(tmpdir(), 'bastion-bench-oci-'));
chmodSync(bundleDir, 0o711);
const backends = new Map(BACKENDS.map((name) => [name, createSandbox({ backend: name, oci: { runtime: 'runc', bundleDir } })]));
const results = new Map<SandboxBackendName, { init: number[]; call: number[]; error?: string }>(BACKENDS.map((name) => [name, { init: [], call: [] }]));
// Warm-up (page cache, probes); a backend that fails here is reported, not measured.
for (const [name, backend] of backends) {
  try {
    await measure(backend);
  } catch (error) {
    (results.get(name) as { error?: string }).error = (error as Error).message.slice(0, 160);
  }
}
for (let round = 0; round < ROUNDS; round += 1) {
  const order = round % 2 === 0 ? BACKENDS : [...BACKENDS].reverse();
  for (const name of order) {
    const result = results.get(name) as { init: number[]; call: number[]; error?: string };
    if (result.error !== undefined) continue;
    const { initMs, callMs } = await measure(backends.get(name) as SandboxBackend);
    result.init.push(initMs);
    result.call.push(callMs);
  }
}
removeTree(bundleDir);

const base = results.get('none') as { init: number[]; call: number[] };
const baseInit = median(base.init);
const baseCall = median(base.call);
process.stdout.write(`memory reference server, median of ${ROUNDS} interleaved rounds; call = median of ${CALLS} tools/list\n`);
process.stdout.write(`${'backend'.padEnd(8)} ${'start ms'.padStart(9)} ${'start ratio'.padStart(11)} ${'call ms'.padStart(8)} ${'call ratio'.padStart(10)}\n`);
for (const name of BACKENDS) {
  const result = results.get(name) as { init: number[]; call: number[]; error?: string };
  if (result.error !== undefined) {
    process.stdout.write(`${name.padEnd(8)} cannot run here: ${result.error}\n`);
    continue;
  }
  const init = median(result.init);
  const call = median(result.call);
  process.stdout.write(`${name.padEnd(8)} ${init.toFixed(1).padStart(9)} ${(init / baseInit).toFixed(2).padStart(11)} ${call.toFixed(2).padStart(8)} ${(call / baseCall).toFixed(2).padStart(10)}\n`);
}
