// Sandbox cost per backend: time from spawn to the first `initialize` answer of the MCP memory
// reference server, the CPU time the server's whole tree used until then (the cgroup's counter:
// with gVisor that includes the sentry and gofer; unsandboxed, the process's own), and the median
// latency of one call (tools/list) afterwards, for `none` (unsandboxed), `bwrap`, `oci` (runc)
// and `gvisor` (runsc), in interleaved rounds in the same run, printed as ratios to the
// unsandboxed start. CPU time is the steadier figure on a loaded machine. A backend that cannot
// run here is listed with its error instead of a number.
//
//   npm run build && node dist/bench/sandbox.bench.js        (about 30-60 s)
//   BENCH_ROUNDS=9 node dist/bench/sandbox.bench.js          more rounds on a noisy machine
import { mkdtempSync, chmodSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createSandbox, type SandboxBackend, type SandboxBackendName } from '../src/sandbox/index.js';
import { ChildStdioTransport, NODE_MODULES, referenceServer } from '../test/sandbox/helpers.js';
import { removeTree } from '../test/helpers/tmp.js';

const ROUNDS = Math.max(1, Number(process.env['BENCH_ROUNDS'] ?? 5) || 5);
const CALLS = 30;
/** `+net`: the server holds a network grant, so it starts behind the relay with transparent egress (a prepared namespace; for gVisor, runsc --network=host). */
interface Variant {
  label: string;
  backend: SandboxBackendName;
  scopes: string[];
}
const NETWORK_GRANT = ['write:network:127.0.0.1:9'];
const VARIANTS: Variant[] = [
  { label: 'none', backend: 'none', scopes: [] },
  { label: 'bwrap', backend: 'bwrap', scopes: [] },
  { label: 'bwrap+net', backend: 'bwrap', scopes: NETWORK_GRANT },
  { label: 'oci', backend: 'oci', scopes: [] },
  { label: 'gvisor', backend: 'gvisor', scopes: [] },
  { label: 'gvisor+net', backend: 'gvisor', scopes: NETWORK_GRANT },
];

/** utime + stime of one process, from /proc (the unsandboxed server has no cgroup of its own). */
function processCpuMs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  // Fields 14 and 15 of stat (utime, stime) in clock ticks (100 per second on Linux).
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

async function measure(backend: SandboxBackend, scopes: string[]): Promise<{ initMs: number; cpuMs: number; callMs: number }> {
  const started = process.hrtime.bigint();
  const handle = await backend.spawn({ serverName: `bench-${backend.name}`, command: process.execPath, args: [referenceServer('memory')], env: { MEMORY_FILE_PATH: '/tmp/memory.jsonl' }, packageDirs: [NODE_MODULES], scopes });
  handle.child.stderr.resume();
  try {
    const client = new Client({ name: 'bench', version: '1.0.0' });
    await client.connect(new ChildStdioTransport(handle.child));
    const initMs = Number(process.hrtime.bigint() - started) / 1e6;
    const cpuMs = handle.cpuTimeMs() ?? processCpuMs(handle.child.pid);
    const calls: number[] = [];
    for (let i = 0; i < CALLS; i += 1) {
      const t = process.hrtime.bigint();
      await client.listTools();
      calls.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    await client.close();
    return { initMs, cpuMs, callMs: median(calls) };
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
type Samples = { init: number[]; cpu: number[]; call: number[]; error?: string };
const backends = new Map(VARIANTS.map((variant) => [variant.label, createSandbox({ backend: variant.backend, oci: { runtime: 'runc', bundleDir } })]));
const results = new Map<string, Samples>(VARIANTS.map((variant) => [variant.label, { init: [], cpu: [], call: [] }]));
// Warm-up (page cache, probes); a backend that fails here is reported, not measured.
for (const variant of VARIANTS) {
  try {
    await measure(backends.get(variant.label) as SandboxBackend, variant.scopes);
  } catch (error) {
    (results.get(variant.label) as Samples).error = (error as Error).message.slice(0, 160);
  }
}
for (let round = 0; round < ROUNDS; round += 1) {
  const order = round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
  for (const variant of order) {
    const result = results.get(variant.label) as Samples;
    if (result.error !== undefined) continue;
    const { initMs, cpuMs, callMs } = await measure(backends.get(variant.label) as SandboxBackend, variant.scopes);
    result.init.push(initMs);
    result.cpu.push(cpuMs);
    result.call.push(callMs);
  }
}
removeTree(bundleDir);

const base = results.get('none') as Samples;
const baseInit = median(base.init);
const baseCall = median(base.call);
const baseCpu = median(base.cpu);
process.stdout.write(`memory reference server, median of ${ROUNDS} interleaved rounds; call = median of ${CALLS} tools/list\n`);
process.stdout.write(`${'backend'.padEnd(10)} ${'start ms'.padStart(9)} ${'start ratio'.padStart(11)} ${'cpu ms'.padStart(8)} ${'cpu ratio'.padStart(9)} ${'call ms'.padStart(8)} ${'call ratio'.padStart(10)}\n`);
for (const { label: name } of VARIANTS) {
  const result = results.get(name) as Samples;
  if (result.error !== undefined) {
    process.stdout.write(`${name.padEnd(10)} cannot run here: ${result.error}\n`);
    continue;
  }
  const init = median(result.init);
  const call = median(result.call);
  const cpu = median(result.cpu);
  process.stdout.write(`${name.padEnd(10)} ${init.toFixed(1).padStart(9)} ${(init / baseInit).toFixed(2).padStart(11)} ${cpu.toFixed(0).padStart(8)} ${(cpu / baseCpu).toFixed(2).padStart(9)} ${call.toFixed(2).padStart(8)} ${(call / baseCall).toFixed(2).padStart(10)}\n`);
}
