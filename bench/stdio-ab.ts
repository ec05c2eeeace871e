// A/B of Bastion builds over stdio: CPU per call, which a shared machine disturbs far less than
// wall time. Each build is started once with the gateway bench's config (echo fixture, every
// guard on, durable audit unless BENCH_AUDIT=async), beside the byte-forwarding floor, and all of
// them are measured in interleaved rounds (the order rotates each round).
//
//   node dist/bench/stdio-ab.js <bastion.js> [<bastion.js> ...]     each a built CLI, e.g. dist/src/cli/bastion.js
//   BENCH_ROUNDS=7 BENCH_CALLS=4000 BENCH_CONCURRENCY=16 node dist/bench/stdio-ab.js ...
//   BENCH_NODE_FLAGS='--cpu-prof --cpu-prof-dir=/tmp/prof' node dist/bench/stdio-ab.js ...   flags for the Bastion processes
//
// Prints, per front: median calls/s and p50 over the rounds, and the CPU time per call of the
// front process and of its main thread, and its write system calls per call (/proc, summed over
// the rounds), and instructions retired per call in user and kernel mode (`perf stat -p` around
// each round; load moves this count far less than time; "-" when perf is missing or refused;
// BENCH_PERF=0 turns it off).
//
// BENCH_COUNTS=1 loads bench/fixtures/call-counter.js into each Bastion process and adds promises
// created, bytes allocated on the V8 heap and collections per call (a count, not a time: the
// machine's load does not move it). The async hook slows the process, so read the CPU columns of
// such a run only against each other, never against a run without it.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { removeTree } from '../test/helpers/tmp.js';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..');
const node = process.execPath;
const echoServerJs = join(here, 'fixtures', 'gateway-echo-server.js');
const forwarderJs = join(here, 'fixtures', 'gateway-forwarder.js');

function positiveInt(text: string | undefined, fallback: number): number {
  const value = Number(text);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}

const ROUNDS = positiveInt(process.env['BENCH_ROUNDS'], 5);
const CALLS = positiveInt(process.env['BENCH_CALLS'], 4000);
const CONCURRENCY = positiveInt(process.env['BENCH_CONCURRENCY'], 16);
const nodeFlags = (process.env['BENCH_NODE_FLAGS'] ?? '').split(' ').filter((flag) => flag !== '');
const COUNTS = process.env['BENCH_COUNTS'] === '1';
const counterJs = join(here, 'fixtures', 'call-counter.js');

interface Counts {
  seq: number;
  promises: number;
  allocatedBytes: number;
  collections: number;
}

const NO_COUNTS: Counts = { seq: 0, promises: Number.NaN, allocatedBytes: Number.NaN, collections: Number.NaN };

/** Asks a process loaded with call-counter.js for its totals (SIGUSR2) and waits for the new file; NaN when it does not answer. */
async function readCounts(dir: string, pid: number): Promise<Counts> {
  const path = join(dir, `${pid}.json`);
  const read = (): Counts => {
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as Counts;
    } catch {
      return NO_COUNTS;
    }
  };
  const before = read().seq;
  try {
    process.kill(pid, 'SIGUSR2');
  } catch {
    return NO_COUNTS;
  }
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const now = read();
    if (now.seq > before) return now;
    await new Promise((resolveWait) => setTimeout(resolveWait, 10));
  }
  return NO_COUNTS;
}

/** utime + stime in ms of /proc/<pid>/stat or /proc/<pid>/task/<pid>/stat (USER_HZ 100). */
function cpuMillis(path: string): number {
  const { user, system } = cpuSplitMillis(path);
  return user + system;
}

/** utime and stime in ms: the system part is mostly the pipe and file system calls and wake-ups. */
function cpuSplitMillis(path: string): { user: number; system: number } {
  try {
    const stat = readFileSync(path, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 };
  } catch {
    return { user: Number.NaN, system: Number.NaN };
  }
}

/** Write system calls a process has made so far (/proc/<pid>/io), or NaN. */
function writeSyscalls(pid: number): number {
  try {
    return Number(/^syscw: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? Number.NaN);
  } catch {
    return Number.NaN;
  }
}

/** Instructions retired by a process, user and kernel, counted by `perf stat` until `stop()`. */
function countInstructions(pid: number): { stop(): Promise<{ user: number; kernel: number }> } {
  const none = { stop: () => Promise.resolve({ user: Number.NaN, kernel: Number.NaN }) };
  if (process.env['BENCH_PERF'] === '0') return none;
  let output = '';
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn('perf', ['stat', '-x', ',', '-e', 'instructions:u,instructions:k', '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'], shell: false });
  } catch {
    return none;
  }
  child.on('error', () => undefined);
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => (output += text));
  const exited = new Promise<void>((resolveExit) => child.once('close', () => resolveExit()));
  return {
    async stop() {
      child.kill('SIGINT');
      await exited;
      // CSV lines: value,unit,event,...; "<not counted>" or "<not supported>" parse as NaN.
      const count = (event: string): number => Number(output.split('\n').find((line) => line.split(',')[2]?.startsWith(event))?.split(',')[0] ?? Number.NaN);
      return { user: count('instructions:u'), kernel: count('instructions:k') };
    },
  };
}

/** One client of one front process: newline-delimited JSON-RPC, `concurrency` echo calls in flight. */
class Front {
  private buffered = '';
  private nextId = 1;
  private readonly waiting = new Map<number, () => void>();
  private failure: Error | undefined;

  constructor(
    readonly label: string,
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly tool: string,
  ) {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text: string) => this.receive(text));
    child.stderr.resume();
    child.once('exit', (code) => (this.failure ??= new Error(`${label} exited with code ${code}`)));
  }

  get pid(): number {
    return this.child.pid as number;
  }

  async open(): Promise<void> {
    await this.call(0, { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'stdio-ab', version: '1' } } });
    this.child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
  }

  /** Runs `calls` echo calls with `concurrency` in flight; resolves with calls/s and the p50 latency in us. */
  async run(calls: number, concurrency: number): Promise<{ callsPerSecond: number; p50Us: number }> {
    const latencies: number[] = [];
    let sent = 0;
    const started = performance.now();
    const one = async (): Promise<void> => {
      while (sent < calls) {
        sent += 1;
        const id = this.nextId++;
        const at = performance.now();
        await this.call(id, { jsonrpc: '2.0', id, method: 'tools/call', params: { name: this.tool, arguments: { message: `m${id}` } } });
        latencies.push((performance.now() - at) * 1000);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, one));
    latencies.sort((a, b) => a - b);
    return { callsPerSecond: (calls / (performance.now() - started)) * 1000, p50Us: latencies[latencies.length >> 1] as number };
  }

  close(): void {
    this.child.stdin.end();
    setTimeout(() => this.child.kill('SIGKILL'), 3000).unref();
  }

  private call(id: number, message: object): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolveCall, rejectCall) => {
      const timer = setTimeout(() => rejectCall(new Error(`${this.label}: no answer to ${id} in 30 s`)), 30_000);
      this.waiting.set(id, () => {
        clearTimeout(timer);
        resolveCall();
      });
      this.child.stdin.write(`${JSON.stringify(message)}\n`);
    });
  }

  private receive(text: string): void {
    this.buffered += text;
    let newline = this.buffered.indexOf('\n');
    while (newline !== -1) {
      const line = this.buffered.slice(0, newline);
      this.buffered = this.buffered.slice(newline + 1);
      newline = this.buffered.indexOf('\n');
      const message = JSON.parse(line) as { id?: unknown; result?: { content?: Array<{ text?: string }> } };
      if (typeof message.id !== 'number') continue;
      const waiter = this.waiting.get(message.id);
      if (waiter === undefined) continue;
      this.waiting.delete(message.id);
      // A wrong answer is a broken build, not a measurement.
      if (message.id > 0 && message.result?.content?.[0]?.text !== `Echo: m${message.id}`) throw new Error(`${this.label}: wrong answer ${line.slice(0, 300)}`);
      waiter();
    }
  }
}

function writeConfig(dir: string, name: string): string {
  writeFileSync(join(dir, 'policy.yaml'), 'version: 1\nagents:\n  bench-agent:\n    grants: ["exec:tools:[echo.echo]"]\n', { mode: 0o600 });
  const path = join(dir, `${name}.yaml`);
  const mode = process.env['BENCH_AUDIT'] === 'async' ? 'async' : 'durable';
  const yaml = `version: 1
stateDir: ${JSON.stringify(join(dir, `state-${name}`))}
listeners:
  stdio:
    agent: bench-agent
servers:
  echo:
    transport: stdio
    command: ${JSON.stringify(node)}
    args: ${JSON.stringify([echoServerJs, 'stdio'])}
    trust: unsigned
    tools:
      echo: { scopes: [] }
policy:
  files: [${JSON.stringify(join(dir, 'policy.yaml'))}]
audit: { mode: ${mode} }
`;
  writeFileSync(path, yaml, { mode: 0o600 });
  return path;
}

/** Thousands of instructions per call, or "-" when perf gave no count. */
function perCall(total: number, calls: number): string {
  return Number.isFinite(total) ? `${(total / calls / 1000).toFixed(1)}k` : '-';
}

function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '-';
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1] as number;
}

async function main(): Promise<void> {
  const builds = process.argv.slice(2);
  if (builds.length === 0) throw new Error('usage: stdio-ab.js <bastion.js> [<bastion.js> ...]');
  const dir = mkdtempSync(join(tmpdir(), 'bastion-stdio-ab-'));
  const countsDir = join(dir, 'counts');
  mkdirSync(countsDir);
  // Inherited by the Bastion processes only through --import below; the floor loads no counter.
  if (COUNTS) process.env['BENCH_COUNTS_DIR'] = countsDir;
  const buildFlags = COUNTS ? [...nodeFlags, `--import=${pathToFileURL(counterJs).href}`] : nodeFlags;
  const launch = (args: string[]): ChildProcessWithoutNullStreams => spawn(node, args, { stdio: ['pipe', 'pipe', 'pipe'], shell: false, cwd: repoRoot });
  const fronts = [new Front('floor', launch([forwarderJs, node, echoServerJs, 'stdio']), 'echo')];
  builds.forEach((build, index) => fronts.push(new Front(`${String.fromCharCode(65 + index)}: ${build}`, launch([...buildFlags, resolve(build), 'serve', '--stdio', '--config', writeConfig(dir, `b${index}`)]), 'echo.echo')));
  try {
    for (const front of fronts) await front.open();
    for (const front of fronts) await front.run(2000, CONCURRENCY);
    const rows = fronts.map((front) => ({ front, rates: [] as number[], p50s: [] as number[], cpuMs: 0, mainMs: 0, mainSysMs: 0, writes: 0, instrUser: 0, instrKernel: 0, promises: 0, allocated: 0, collections: 0 }));
    for (let round = 0; round < ROUNDS; round += 1) {
      for (let index = 0; index < rows.length; index += 1) {
        const row = rows[(index + round) % rows.length] as (typeof rows)[number];
        const pid = row.front.pid;
        const cpu = cpuMillis(`/proc/${pid}/stat`);
        const main = cpuMillis(`/proc/${pid}/task/${pid}/stat`);
        const mainSys = cpuSplitMillis(`/proc/${pid}/task/${pid}/stat`).system;
        const writes = writeSyscalls(pid);
        const countsBefore = COUNTS && row.front.label !== 'floor' ? await readCounts(countsDir, pid) : NO_COUNTS;
        const counter = countInstructions(pid);
        // perf needs a moment to attach; calls before it would go uncounted.
        await new Promise((resolveWait) => setTimeout(resolveWait, 100));
        const stats = await row.front.run(CALLS, CONCURRENCY);
        const instructions = await counter.stop();
        if (COUNTS && row.front.label !== 'floor') {
          const countsAfter = await readCounts(countsDir, pid);
          row.promises += countsAfter.promises - countsBefore.promises;
          row.allocated += countsAfter.allocatedBytes - countsBefore.allocatedBytes;
          row.collections += countsAfter.collections - countsBefore.collections;
        } else {
          row.promises = row.allocated = row.collections = Number.NaN;
        }
        row.instrUser += instructions.user;
        row.instrKernel += instructions.kernel;
        row.cpuMs += cpuMillis(`/proc/${pid}/stat`) - cpu;
        row.mainMs += cpuMillis(`/proc/${pid}/task/${pid}/stat`) - main;
        row.writes += writeSyscalls(pid) - writes;
        row.mainSysMs += cpuSplitMillis(`/proc/${pid}/task/${pid}/stat`).system - mainSys;
        row.rates.push(stats.callsPerSecond);
        row.p50s.push(stats.p50Us);
      }
    }
    const calls = CALLS * ROUNDS;
    process.stdout.write(`stdio c=${CONCURRENCY}, ${ROUNDS} interleaved rounds of ${CALLS} calls, audit ${process.env['BENCH_AUDIT'] === 'async' ? 'async' : 'durable'}\n`);
    process.stdout.write(`${'front'.padEnd(60)} ${'calls/s'.padStart(8)} ${'p50_us'.padStart(8)} ${'cpu_us/call'.padStart(12)} ${'main_us/call'.padStart(13)} ${'(of it sys)'.padStart(12)} ${'writes/call'.padStart(12)} ${'instr_u/call'.padStart(13)} ${'instr_k/call'.padStart(13)}${COUNTS ? ` ${'promises/call'.padStart(14)} ${'bytes/call'.padStart(11)} ${'gc/1k_calls'.padStart(12)}` : ''}\n`);
    for (const row of rows) {
      process.stdout.write(`${row.front.label.slice(-60).padEnd(60)} ${median(row.rates).toFixed(0).padStart(8)} ${median(row.p50s).toFixed(0).padStart(8)} ${((row.cpuMs * 1000) / calls).toFixed(0).padStart(12)} ${((row.mainMs * 1000) / calls).toFixed(0).padStart(13)} ${((row.mainSysMs * 1000) / calls).toFixed(0).padStart(12)} ${(row.writes / calls).toFixed(2).padStart(12)} ${perCall(row.instrUser, calls).padStart(13)} ${perCall(row.instrKernel, calls).padStart(13)}${COUNTS ? ` ${fixed(row.promises / calls, 1).padStart(14)} ${fixed(row.allocated / calls, 0).padStart(11)} ${fixed((row.collections * 1000) / calls, 1).padStart(12)}` : ''}\n`);
    }
  } finally {
    for (const front of fronts) front.close();
    setTimeout(() => removeTree(dir), 500);
  }
}

await main();
