// Policy decision cost: a realistic policy (50 agents in 10 teams, 200 tools on 10 servers,
// argument-bound path and URL scopes) against a bare Set lookup of (agent, tool) measured in
// the same run. Decisions are timed in batches; the table shows per-decision p50 and p99.
import { mkdirSync, mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compilePolicy, type PolicyEvaluator, type ToolDeclarations } from '../src/policy/index.js';
import { removeTree } from '../test/helpers/tmp.js';

const AGENTS = 50;
const TEAMS = 10;
const SERVERS = 10;
const TOOLS_PER_SERVER = 20;
const CALLS = 20_000;
const BATCH = 50;
const ROUNDS = 5;

interface Call { agent: string; server: string; tool: string; args: Record<string, unknown> }

function setup(root: string): { policyFile: string; declarations: ToolDeclarations; calls: Call[]; allowedPairs: Set<string> } {
  for (let team = 0; team < TEAMS; team += 1) {
    mkdirSync(join(root, `team-${team}`, 'reports'), { recursive: true });
    for (let file = 0; file < 10; file += 1) writeFileSync(join(root, `team-${team}`, 'reports', `r${file}.csv`), 'x');
  }
  const declarations: Record<string, { tools: Record<string, { scopes: string[] }>; prompts: Record<string, never> }> = {};
  for (let server = 0; server < SERVERS; server += 1) {
    const tools: Record<string, { scopes: string[] }> = {};
    for (let tool = 0; tool < TOOLS_PER_SERVER; tool += 1) {
      const kind = tool % 4;
      tools[`tool_${tool}`] = {
        scopes: kind === 0 ? ['read:filesystem:${path}'] : kind === 1 ? ['read:filesystem:${path}', 'write:filesystem:${out.path}'] : kind === 2 ? ['write:network:${url}'] : ['read:filesystem:/etc/ssl/certs'],
      };
    }
    declarations[`srv${server}`] = { tools, prompts: {} };
  }
  const lines = ['roles:'];
  for (let team = 0; team < TEAMS; team += 1) {
    const servers = [team % SERVERS, (team + 1) % SERVERS, (team + 3) % SERVERS];
    lines.push(`  team-${team}:`, '    grants:');
    for (const server of servers) lines.push(`      - "exec:tools:[${Array.from({ length: TOOLS_PER_SERVER }, (_, tool) => `srv${server}.tool_${tool}`).join(', ')}]"`);
    lines.push(`      - "read:filesystem:${root}/team-${team}"`, `      - "write:filesystem:${root}/team-${team}/out"`, '      - "read:filesystem:/etc/ssl"', `      - "write:network:api-${team}.example.com:443"`, '      - "write:network:*.shared.example.com:[443, 8443]"');
  }
  lines.push('agents:');
  for (let agent = 0; agent < AGENTS; agent += 1) lines.push(`  agent-${agent}:`, `    roles: [team-${agent % TEAMS}]`, `    grants: ["read:resources:memo://agent-${agent}/*"]`);
  const policyFile = join(root, 'policy.yaml');
  writeFileSync(policyFile, `${lines.join('\n')}\n`);

  const allowedPairs = new Set<string>();
  for (let agent = 0; agent < AGENTS; agent += 1) {
    const team = agent % TEAMS;
    for (const server of [team % SERVERS, (team + 1) % SERVERS, (team + 3) % SERVERS]) for (let tool = 0; tool < TOOLS_PER_SERVER; tool += 1) allowedPairs.add(`agent-${agent}\u0000srv${server}.tool_${tool}`);
  }
  // Mostly calls that should pass, plus denials of each kind, in a fixed pseudo-random order.
  // mulberry32: a fixed seed gives the same call mix on every run.
  let seed = 42;
  const random = (n: number): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
  const calls: Call[] = [];
  for (let index = 0; index < CALLS; index += 1) {
    const agentIndex = random(AGENTS);
    const team = agentIndex % TEAMS;
    const server = random(10) < 9 ? [team % SERVERS, (team + 1) % SERVERS, (team + 3) % SERVERS][random(3)] ?? 0 : random(SERVERS);
    const tool = random(TOOLS_PER_SERVER);
    const ownTeam = random(10) < 9 ? team : random(TEAMS);
    const path = `${root}/team-${ownTeam}/reports/r${random(10)}.csv`;
    const args = tool % 4 === 2 ? { url: random(10) < 8 ? `https://api-${ownTeam}.example.com/v1/items` : 'https://x.shared.example.com:8443/q' } : { path, out: { path: `${root}/team-${ownTeam}/out/r.csv` } };
    calls.push({ agent: `agent-${agentIndex}`, server: `srv${server}`, tool: `tool_${tool}`, args });
  }
  return { policyFile, declarations, calls, allowedPairs };
}

function measure(calls: readonly Call[], decide: (call: Call) => boolean): { p50: number; p99: number; perSecond: number; allowed: number } {
  const samples: number[] = [];
  let allowed = 0;
  let total = 0;
  for (let round = 0; round < ROUNDS; round += 1) {
    for (let start = 0; start + BATCH <= calls.length; start += BATCH) {
      const began = performance.now();
      for (let index = start; index < start + BATCH; index += 1) if (decide(calls[index] as Call)) allowed += 1;
      const elapsed = performance.now() - began;
      total += elapsed;
      samples.push((elapsed * 1000) / BATCH);
    }
  }
  samples.sort((a, b) => a - b);
  const decisions = samples.length * BATCH;
  return { p50: samples[Math.floor(samples.length * 0.5)] ?? 0, p99: samples[Math.floor(samples.length * 0.99)] ?? 0, perSecond: decisions / (total / 1000), allowed: allowed / ROUNDS };
}

function main(): void {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'bastion-policy-bench-')));
  try {
    const { policyFile, declarations, calls, allowedPairs } = setup(root);
    const compile = (followSymlinks: boolean): PolicyEvaluator => {
      const result = compilePolicy({ policyFiles: [policyFile], declarations, followSymlinks });
      if (!result.ok) throw new Error(JSON.stringify(result.problems));
      return result.evaluator;
    };
    const started = performance.now();
    const lexical = compile(false);
    const compileMs = performance.now() - started;
    const physical = compile(true);
    const decideWith = (policy: PolicyEvaluator) => (call: Call) => policy.decideTool(call.agent, call.server, call.tool, call.args).allow;
    // Warm up every path so the JIT has settled before timing.
    for (const call of calls) {
      decideWith(lexical)(call);
      decideWith(physical)(call);
    }
    const rows: Array<[string, ReturnType<typeof measure>]> = [
      ['baseline: Set.has(agent, tool)', measure(calls, (call) => allowedPairs.has(`${call.agent}\u0000${call.server}.${call.tool}`))],
      ['policy decision (paths as strings)', measure(calls, decideWith(lexical))],
      ['policy decision (+ realpath of path args)', measure(calls, decideWith(physical))],
    ];
    const baseline = rows[0]?.[1].p50 ?? 1;
    process.stdout.write(`policy: ${AGENTS} agents, ${SERVERS * TOOLS_PER_SERVER} tools, ${CALLS} distinct calls x ${ROUNDS} rounds; compile ${compileMs.toFixed(1)} ms\n`);
    process.stdout.write(`${'case'.padEnd(44)}${'decisions/s'.padStart(14)}${'p50 µs'.padStart(10)}${'p99 µs'.padStart(10)}${'x baseline'.padStart(12)}${'allowed'.padStart(10)}\n`);
    for (const [name, result] of rows) {
      process.stdout.write(`${name.padEnd(44)}${Math.round(result.perSecond).toLocaleString('en-US').padStart(14)}${result.p50.toFixed(3).padStart(10)}${result.p99.toFixed(3).padStart(10)}${(result.p50 / baseline).toFixed(1).padStart(12)}${String(result.allowed).padStart(10)}\n`);
    }
    const p50 = rows[1]?.[1].p50 ?? Infinity;
    process.stdout.write(`target: p50 < 5 µs per decision (paths as strings): ${p50 < 5 ? 'met' : 'NOT met'}\n`);
  } finally {
    removeTree(root);
  }
}

main();
