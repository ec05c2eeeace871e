// Per-call cost of the limits guard: the gateway's in-process guard chain (authn, request size,
// argument validation) without the limits guard, and with it over the in-memory store and over
// a real redis-server started here, measured in the same run in interleaved rounds. Two
// terminals: one that answers in-process at once (the guard's cost against nothing), and a real
// MCP echo server (the SDK, over stdio) as dispatch (the guard's cost against a real call).
// The table shows the median per-call time and the ratio to the same chain without limits.
//
//   npm run build && node dist/bench/limits.bench.js
//   BENCH_ROUNDS=9 node dist/bench/limits.bench.js      more rounds on a noisy machine
//
// Every rule is sized so that nothing is refused: the bench measures the cost of counting, and
// a refused call (or a store error) fails the run.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { authenticationGuard, createValidationGuard, requestSizeGuard } from '../src/guards/index.js';
import { createLimits, type Limits, type QuotasConfig } from '../src/limits/index.js';
import { silentLogger } from '../src/observability/index.js';
import { CallContext, compose, success, type Guard, type Next } from '../src/pipeline/index.js';
import { startRedis } from '../test/limits/redis-helpers.js';
import { runWorkers } from './fixtures/workers.js';

const ROUNDS = positiveInt(process.env['BENCH_ROUNDS'], 5);
const CALLS = { 1: positiveInt(process.env['BENCH_LIMITS_C1'], 4000), 16: positiveInt(process.env['BENCH_LIMITS_C16'], 8000) } as const;
const CONCURRENCY = [1, 16] as const;
const AGENTS = 20;
const TOOLS = 10;

function positiveInt(value: string | undefined, fallback: number): number {
  const parsed = Number(value);
  return Number.isInteger(parsed) && parsed > 0 ? parsed : fallback;
}

const tool = { name: 'echo', inputSchema: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] } };
const never = new AbortController().signal;
let sequence = 0;

function context(index: number): CallContext {
  const agent = `agent-${index % AGENTS}`;
  const name = `tool_${index % TOOLS}`;
  const ctx = new CallContext({
    requestId: (sequence += 1),
    method: 'tools/call',
    params: { name: `srv.${name}`, arguments: { message: 'hello' }, _meta: { taskId: `task-${index % 50}` } },
    session: { sessionId: `session-${index % AGENTS}`, transport: 'http', protocolVersion: '2025-06-18' },
    identity: { agentId: agent, tokenFingerprint: 'fp', method: 'api-token' },
    requestBytes: 80,
    limits: { timeoutMs: 30_000, maxOutputBytes: 4_194_304, maxRequestBytes: 1_048_576 },
    signal: never,
  });
  ctx.target = { server: 'srv', name };
  ctx.tool = tool;
  return ctx;
}

/** Typical production rules: per agent, per agent-and-tool, per server, chain and concurrency, one breaker. */
function quotas(store: QuotasConfig['store']): QuotasConfig {
  const huge = 100_000_000;
  return {
    enabled: true,
    store,
    rates: [
      { name: 'per-agent', scope: 'agent', points: huge, durationMs: 3_600_000, algorithm: 'tokenBucket', burst: huge },
      { name: 'per-agent-tool', scope: 'agentTool', points: huge, durationMs: 60_000, algorithm: 'slidingWindow' },
      { name: 'per-server', scope: 'server', points: huge, durationMs: 1_000, algorithm: 'tokenBucket' },
    ],
    cpuBudgets: [],
    concurrency: { perAgent: 64, perServer: 1024, perTool: 1024, maxQueueMs: 5000, maxQueue: 1024 },
    chain: { perTask: huge, perSession: huge, ttlMs: 86_400_000 },
    breakers: [{ name: 'srv', scope: 'server', consecutiveFailures: 5, openMs: 30_000, halfOpenProbes: 1, sampleMs: 250 }],
  };
}

const usage = { cpuTimeMs: (): number | undefined => undefined, memoryBytes: (): number | undefined => undefined };

const inProcess: Next = (ctx) => Promise.resolve(success({ content: [{ type: 'text', text: `Echo: ${String((ctx.params?.['arguments'] as { message: string }).message)}` }] }));

function chain(limits: Limits | undefined, terminal: Next): Next {
  const guards: Guard[] = [authenticationGuard, requestSizeGuard, ...(limits === undefined ? [] : [limits.guard]), createValidationGuard()];
  return compose(guards, terminal);
}

/** The gateway bench's echo server (MCP SDK) over stdio, driven with raw JSON-RPC lines. */
async function stdioUpstream(): Promise<{ terminal: Next; stop(): void }> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'gateway-echo-server.js');
  const child = spawn(process.execPath, [script, 'stdio'], { stdio: ['pipe', 'pipe', 'ignore'] });
  const pending = new Map<number, (message: { result?: unknown; error?: { code: number; message: string } }) => void>();
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    const message = JSON.parse(line) as { id?: number; result?: unknown; error?: { code: number; message: string } };
    if (typeof message.id === 'number') pending.get(message.id)?.(message);
    if (typeof message.id === 'number') pending.delete(message.id);
  });
  let nextId = 0;
  const request = (method: string, params: Record<string, unknown>): Promise<{ result?: unknown; error?: { code: number; message: string } }> =>
    new Promise((resolve) => {
      nextId += 1;
      pending.set(nextId, resolve);
      child.stdin?.write(`${JSON.stringify({ jsonrpc: '2.0', id: nextId, method, params })}\n`);
    });
  const init = await request('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'limits-bench', version: '1' } });
  if (init.error !== undefined) throw new Error(`echo server: ${init.error.message}`);
  child.stdin?.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
  return {
    terminal: async (ctx) => {
      const reply = await request('tools/call', { name: 'echo', arguments: ctx.params?.['arguments'] });
      return reply.error === undefined ? success(reply.result) : { ok: false, error: reply.error };
    },
    stop: () => child.kill('SIGKILL'),
  };
}

async function run(handler: Next, calls: number, concurrency: number): Promise<number> {
  const started = performance.now();
  await runWorkers(concurrency, calls, async (index) => {
    const outcome = await handler(context(index));
    if (!outcome.ok) throw new Error(`call ${index} was refused: ${JSON.stringify(outcome.error)}`);
  });
  return ((performance.now() - started) * 1000) / calls;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const logger = silentLogger();
  const open = (store: QuotasConfig['store']): Limits => createLimits({ config: quotas(store), baseDir: process.cwd(), usage, logger, onEvent: () => undefined });
  const memory = open({ kind: 'memory', onFailure: 'failClosed', keyPrefix: 'bench:', commandTimeoutMs: 500 });
  const upstream = await stdioUpstream();
  const shared = open({ kind: 'redis', url: redis.url, onFailure: 'failClosed', keyPrefix: `bench:${process.pid}:`, commandTimeoutMs: 2000 });
  try {
    if (!(await shared.ready(5000))) throw new Error('redis did not become ready');
    const variants: Array<[string, Next]> = [];
    for (const [where, terminal] of [
      ['in-process', inProcess],
      ['stdio upstream', upstream.terminal],
    ] as Array<[string, Next]>) {
      variants.push([`${where}: without limits`, chain(undefined, terminal)], [`${where}: + limits, memory`, chain(memory, terminal)], [`${where}: + limits, Redis`, chain(shared, terminal)]);
    }
    // Warm up every path so the JIT has settled before timing.
    for (const [, handler] of variants) await run(handler, 2000, 16);
    const samples = new Map<string, number[]>();
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const concurrency of CONCURRENCY) {
        // Rotate the order each round so drift on a shared machine hits every variant alike.
        for (let offset = 0; offset < variants.length; offset += 1) {
          const [label, handler] = variants[(round + offset) % variants.length] as [string, Next];
          const perCall = await run(handler, CALLS[concurrency], concurrency);
          const key = `${label}|${concurrency}`;
          samples.set(key, [...(samples.get(key) ?? []), perCall]);
        }
      }
    }
    process.stdout.write(`limits guard: 3 rate rules (tokenBucket, slidingWindow), chain, concurrency, one breaker; ${AGENTS} agents x ${TOOLS} tools; medians of ${ROUNDS} rounds\n`);
    process.stdout.write(`${'case'.padEnd(36)}${'c'.padStart(4)}${'µs/call'.padStart(10)}${'added µs'.padStart(10)}${'x baseline'.padStart(12)}\n`);
    for (const concurrency of CONCURRENCY) {
      for (let group = 0; group < variants.length; group += 3) {
        const baseline = median(samples.get(`${variants[group]?.[0] ?? ''}|${concurrency}`) ?? []);
        for (const [label] of variants.slice(group, group + 3)) {
          const perCall = median(samples.get(`${label}|${concurrency}`) ?? []);
          process.stdout.write(`${label.padEnd(36)}${String(concurrency).padStart(4)}${perCall.toFixed(2).padStart(10)}${(perCall - baseline).toFixed(2).padStart(10)}${(perCall / baseline).toFixed(2).padStart(12)}\n`);
        }
      }
    }
    process.stdout.write('x baseline: against the same terminal without the limits guard. The gateway bench adds transports and a client on top of the stdio rows.\n');
  } finally {
    await memory.close();
    await shared.close();
    upstream.stop();
    await redis.kill();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
