// Output inspection per call, as a ratio to the same guard chain without it, measured in the
// same run: the guard that inspects a tool's answer against a pass-through guard, on answers of
// the shapes tools return (short text, a 64 KiB text, 200 content items, deep structured content).
import { performance } from 'node:perf_hooks';
import { CallContext } from '../src/pipeline/context.js';
import { success, type Outcome } from '../src/pipeline/outcome.js';
import type { Guard } from '../src/pipeline/chain.js';
import { createOutputInspectionGuard } from '../src/scan/index.js';

function ctx(): CallContext {
  const c = new CallContext({ requestId: 1, method: 'tools/call', params: { name: 'srv.tool', arguments: {} }, session: { sessionId: 's', transport: 'stdio', protocolVersion: undefined }, identity: undefined, requestBytes: 10, limits: { timeoutMs: 1000, maxOutputBytes: 1 << 24, maxRequestBytes: 1000 }, signal: new AbortController().signal });
  c.target = { server: 'srv', name: 'tool' };
  return c;
}

const line = 'The build finished in 42 s; 118 tests passed, 0 failed. See https://ci.example.com/run/1234 for the log.\n';
let deep: unknown = { value: 'leaf text of a nested record' };
for (let i = 0; i < 40; i += 1) deep = { level: i, child: deep, note: `level ${i}` };
const shapes: [string, unknown][] = [
  ['short text (100 B)', { content: [{ type: 'text', text: line }] }],
  ['64 KiB text', { content: [{ type: 'text', text: line.repeat(Math.ceil(65536 / line.length)) }] }],
  ['200 content items', { content: Array.from({ length: 200 }, (_, i) => ({ type: 'text', text: `row ${i}: ${line}` })) }],
  ['structured, 40 levels', { content: [{ type: 'text', text: 'see structured content' }], structuredContent: deep }],
];

const passThrough: Guard = { name: 'none', handle: (c, next) => next(c) };
const inspecting = createOutputInspectionGuard();

/** Mean µs per call, over at least `minCalls` calls and at least a second. */
async function perCallUs(guard: Guard, result: unknown, minCalls: number): Promise<number> {
  const answer = async (): Promise<Outcome> => success(result);
  for (let i = 0; i < 3; i += 1) await guard.handle(ctx(), answer);
  const start = process.hrtime.bigint();
  let calls = 0;
  while (calls < minCalls || Number(process.hrtime.bigint() - start) < 1e9) {
    await guard.handle(ctx(), answer);
    calls += 1;
  }
  return Number(process.hrtime.bigint() - start) / 1000 / calls;
}

process.stdout.write('| answer | without inspection (µs/call) | with inspection (µs/call) | ratio | added (µs/call) |\n|---|---|---|---|---|\n');
for (const [label, result] of shapes) {
  const base = await perCallUs(passThrough, result, 1000);
  const inspected = await perCallUs(inspecting, result, 5);
  process.stdout.write(`| ${label} | ${base.toFixed(2)} | ${inspected.toFixed(2)} | ${(inspected / base).toFixed(1)}x | ${(inspected - base).toFixed(1)} |\n`);
}

// A large answer: inspected on the event loop, or on a worker thread (the default above
// offloadBytes). What matters is the event loop's busy time per answer: that is what every other
// session waits for.
const large = { content: [{ type: 'text', text: line.repeat(Math.ceil((4 << 20) / line.length)) }] };
async function eventLoopCost(guard: Guard, result: unknown, calls: number): Promise<{ busyMs: number; wallMs: number }> {
  const answer = async (): Promise<Outcome> => success(result);
  await guard.handle(ctx(), answer);
  const before = performance.eventLoopUtilization();
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i += 1) await guard.handle(ctx(), answer);
  const elu = performance.eventLoopUtilization(before);
  return { busyMs: elu.active / calls, wallMs: Number(process.hrtime.bigint() - start) / 1e6 / calls };
}
const onLoop = await eventLoopCost(createOutputInspectionGuard({ offloadBytes: 0 }), large, 5);
const offloaded = await eventLoopCost(createOutputInspectionGuard(), large, 5);
process.stdout.write('\n| 4 MiB text answer | event loop busy (ms/answer) | wall (ms/answer) |\n|---|---|---|\n');
process.stdout.write(`| inspected on the event loop (offloadBytes: 0) | ${onLoop.busyMs.toFixed(1)} | ${onLoop.wallMs.toFixed(1)} |\n`);
process.stdout.write(`| inspected on a worker thread (default) | ${offloaded.busyMs.toFixed(1)} | ${offloaded.wallMs.toFixed(1)} |\n`);
process.stdout.write(`event loop time per large answer, worker / event loop: ${(offloaded.busyMs / onLoop.busyMs).toFixed(2)}\n`);
process.exit(0);
