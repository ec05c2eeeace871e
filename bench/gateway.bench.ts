// Tool-call latency and throughput: the same echo workload direct to an MCP server, through a
// bare byte-forwarding process (the floor for any proxy that adds a process hop), through the
// best-known Node MCP proxies (bench/peers.ts), and through Bastion with its guards on, at
// concurrency 1 and 16, over stdio and Streamable HTTP; once per upstream: the project's own echo
// fixture and the reference `server-everything` (BENCH_UPSTREAMS=echo,everything, the default).
//
//   npm run build && node dist/bench/gateway.bench.js            the table (30-45 s)
//   node dist/bench/gateway.bench.js --profile                     CPU profiles, floor vs Bastion, c=1 stdio
//   node dist/bench/gateway.bench.js --profile=stdio16|http|http16 the same at c=16 or over HTTP
//   BENCH_ROUNDS=5 node dist/bench/gateway.bench.js                more rounds on a noisy machine
//   BENCH_AUDIT=async node dist/bench/gateway.bench.js             every Bastion row with its audit log in async mode
//   BENCH_BASTION_BEFORE=/path/to/other/dist/src/cli/bastion.js ...   adds "bastion (before)" rows (stdio and HTTP) run from
//                                                                  another build, measured in the same interleaved rounds
//                                                                  (default durable: each answer waits for its synced audit write)
//
// Every variant is started once and measured in interleaved rounds (rotating the order), and the
// table reports per-variant medians over the rounds, so load from other processes on a shared
// machine hits all variants alike. Every answer is checked (`Echo: <message>`): a wrong answer,
// an error or a stall fails the run.
import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, readFileSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { peerSpecs, waitForPort, freePort, type PeerSpec } from './peers.js';
import { removeTree } from '../test/helpers/tmp.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..');
const node = process.execPath;
const echoServerJs = join(here, 'fixtures', 'gateway-echo-server.js');
const everythingJs = join(dirname(createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/package.json')), 'dist', 'index.js');
const forwarderJs = join(here, 'fixtures', 'gateway-forwarder.js');
const httpForwarderJs = join(here, 'fixtures', 'gateway-http-forwarder.js');
// BENCH_BASTION points at another build of the CLI, for A/B runs of a change to the gateway.
const bastionJs = process.env['BENCH_BASTION'] ?? join(repoRoot, 'dist', 'src', 'cli', 'bastion.js');
const bastionBeforeJs = process.env['BENCH_BASTION_BEFORE'];

const PROTOCOL_VERSION = '2025-06-18';
const ROUNDS = positiveInt(process.env['BENCH_ROUNDS'], 5);
/** A call unanswered this long fails the run (BENCH_STALL_MS: raise it on a machine loaded by other work). */
const STALL_MS = positiveInt(process.env['BENCH_STALL_MS'], 20_000);

/** Calls per measured run, by transport and concurrency: enough for a stable p99 at each level. */
const CALLS: Record<Transport, Record<number, number>> = {
  stdio: { 1: positiveInt(process.env['BENCH_STDIO_C1'], 1500), 16: positiveInt(process.env['BENCH_STDIO_C16'], 4000) },
  http: { 1: positiveInt(process.env['BENCH_HTTP_C1'], 600), 16: positiveInt(process.env['BENCH_HTTP_C16'], 2000) },
};
const CONCURRENCY = [1, 16];

type Transport = 'stdio' | 'http';
/** bastion-async: the same Bastion with its audit log in async mode, to show what durability costs. */
/** bastion-metrics: the same Bastion with the admin listener and its metrics guard on. */
/** peer-<name>: another MCP front from npm (bench/peers.ts). */
/** bastion-before: Bastion from another build (BENCH_BASTION_BEFORE), for a before/after table in one run. */
/** bastion-tracing(-events): the same Bastion with OpenTelemetry traces exported to a receiver in this process; a span per guard, or span events. */
type Role = 'direct' | 'floor' | 'bastion' | 'bastion-before' | 'bastion-async' | 'bastion-metrics' | 'bastion-tracing' | 'bastion-tracing-events' | `peer-${string}`;

/** The MCP server every variant calls: its stdio command, and how to start its own HTTP endpoint. */
interface Upstream {
  name: 'echo' | 'everything';
  stdioArgs: string[];
  startHttp(): Promise<{ child: ChildProcess; url: string }>;
}

const UPSTREAMS: Record<Upstream['name'], Upstream> = {
  echo: { name: 'echo', stdioArgs: [echoServerJs, 'stdio'], startHttp: () => startListening(node, [echoServerJs, 'http'], 'stdout', listeningLine, 'echo server (http)') },
  everything: {
    name: 'everything',
    stdioArgs: [everythingJs, 'stdio'],
    async startHttp() {
      const port = await freePort();
      const child = launch(node, [everythingJs, 'streamableHttp'], { PORT: String(port) });
      child.stdout.resume();
      child.stderr.resume();
      await waitForPort(port, 30_000, 'server-everything (http)');
      return { child, url: `http://127.0.0.1:${port}/mcp` };
    },
  },
};

interface RunStats {
  p50Us: number;
  p99Us: number;
  callsPerSecond: number;
}

/** A connected client session able to run a measured batch of echo calls. */
interface Driver {
  /** The process the client talks to (the server, the forwarder or Bastion): its CPU time is reported per call. */
  readonly frontPid: number | undefined;
  run(calls: number, concurrency: number): Promise<RunStats>;
  close(): Promise<void>;
}

interface Variant {
  role: Role;
  transport: Transport;
  label: string;
  driver: Driver;
}

/** Every process this bench starts, so a failed run still stops them all. */
const spawned = new Set<ChildProcess>();

function launch(command: string, args: string[], env: Record<string, string> = {}): ChildProcessWithoutNullStreams {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], shell: false, cwd: repoRoot, env: { ...process.env, ...env } });
  spawned.add(child);
  child.once('exit', () => spawned.delete(child));
  return child;
}

async function stopEverything(): Promise<void> {
  const running = [...spawned];
  for (const child of running) child.kill('SIGTERM');
  const deadline = setTimeout(() => running.forEach((child) => child.kill('SIGKILL')), 2000);
  await Promise.all(running.map((child) => new Promise((done) => (child.exitCode !== null || child.signalCode !== null ? done(undefined) : child.once('exit', done)))));
  clearTimeout(deadline);
}

function positiveInt(text: string | undefined, fallback: number): number {
  const value = Number(text);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}

function percentile(sorted: Float64Array, fraction: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[index] as number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function echoCall(id: number): string {
  return JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: '__TOOL__', arguments: { message: `m${id}` } } });
}

/** What a correct answer to call `id` says; anything else is a failure of the path under test. */
function checkEcho(message: Record<string, unknown>, id: number, where: string): void {
  const result = message['result'] as { content?: Array<{ text?: unknown }>; isError?: unknown } | undefined;
  const text = result?.content?.[0]?.text;
  if (text !== `Echo: m${id}` || result?.isError === true) {
    throw new Error(`${where}: wrong answer to call ${id}: ${JSON.stringify(message).slice(0, 400)}`);
  }
}

/**
 * Keeps `concurrency` calls in flight until `calls` have completed, timing each one.
 * `send` starts call `id`; the driver calls `complete(id)` when its answer arrives.
 */
class Batch {
  private readonly latencies: Float64Array;
  private readonly started = new Map<number, number>();
  private sent = 0;
  private done = 0;
  private firstId = 0;
  private startedAt = 0;
  private resolveRun: (stats: RunStats) => void = () => {};
  private rejectRun: (error: Error) => void = () => {};
  private stall: NodeJS.Timeout | undefined;

  constructor(
    private readonly calls: number,
    private readonly concurrency: number,
    private readonly nextId: () => number,
    private readonly send: (id: number) => void,
    private readonly where: string,
  ) {
    this.latencies = new Float64Array(calls);
  }

  start(): Promise<RunStats> {
    return new Promise((resolvePromise, rejectPromise) => {
      this.resolveRun = resolvePromise;
      this.rejectRun = rejectPromise;
      this.armStallTimer();
      this.startedAt = performance.now();
      this.firstId = -1;
      for (let i = 0; i < Math.min(this.concurrency, this.calls); i += 1) this.launch();
    });
  }

  owns(id: number): boolean {
    return this.started.has(id);
  }

  complete(id: number): void {
    const startedAt = this.started.get(id);
    if (startedAt === undefined) return;
    this.started.delete(id);
    this.latencies[this.done] = performance.now() - startedAt;
    this.done += 1;
    if (this.done === this.calls) return this.finish();
    // A stall is no answer for STALL_MS, not a slow run: a loaded machine may take longer than that for a whole run.
    if (this.stall !== undefined) clearTimeout(this.stall);
    this.armStallTimer();
    if (this.sent < this.calls) this.launch();
  }

  fail(error: Error): void {
    if (this.stall !== undefined) clearTimeout(this.stall);
    this.rejectRun(error);
  }

  private launch(): void {
    const id = this.nextId();
    if (this.firstId === -1) this.firstId = id;
    this.sent += 1;
    this.started.set(id, performance.now());
    this.send(id);
  }

  private armStallTimer(): void {
    this.stall = setTimeout(() => {
      this.rejectRun(new Error(`${this.where}: stalled with ${this.started.size} calls unanswered after ${this.done}/${this.calls} completed (c=${this.concurrency})`));
    }, STALL_MS);
  }

  private finish(): void {
    if (this.stall !== undefined) clearTimeout(this.stall);
    const wallMs = performance.now() - this.startedAt;
    const sorted = this.latencies.sort();
    this.resolveRun({ p50Us: percentile(sorted, 0.5) * 1000, p99Us: percentile(sorted, 0.99) * 1000, callsPerSecond: (this.calls / wallMs) * 1000 });
  }
}

// ---------------------------------------------------------------------------------------------
// stdio: a lean newline-delimited JSON-RPC client on a child's stdin/stdout

/** Keeps the last few KB of a child's stderr for error messages. */
function stderrTail(child: ChildProcess): () => string {
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  });
  return () => tail;
}

class StdioDriver implements Driver {
  readonly frontPid: number | undefined;
  private buffered = '';
  private id = 0;
  private batch: Batch | undefined;
  private readonly waiting = new Map<number, (message: Record<string, unknown>) => void>();
  private readonly stderr: () => string;
  private readonly exited: Promise<void>;
  private failure: Error | undefined;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly toolName: string,
    private readonly where: string,
  ) {
    this.frontPid = child.pid;
    this.stderr = stderrTail(child);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text: string) => this.receive(text));
    child.stdin.on('error', () => {});
    this.exited = new Promise((resolveExit) => child.once('exit', () => resolveExit()));
    child.once('exit', (code, signal) => this.die(new Error(`${where}: process exited (code ${code}, signal ${signal}) during the run; stderr: ${this.stderr()}`)));
  }

  static async open(command: string, args: string[], toolName: string, where: string, env: Record<string, string> = {}): Promise<StdioDriver> {
    const child = launch(command, args, env);
    const driver = new StdioDriver(child, toolName, where);
    const init = await driver.call({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'gateway-bench', version: '1.0.0' } } }, 30_000);
    if (init['result'] === undefined) throw new Error(`${where}: initialize failed: ${JSON.stringify(init)}`);
    driver.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    driver.id = 1;
    return driver;
  }

  run(calls: number, concurrency: number): Promise<RunStats> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const template = echoCall(0).replace('__TOOL__', this.toolName);
    const [head, tail] = template.split('"id":0');
    const batch = new Batch(calls, concurrency, () => this.id++, (id) => this.write(`${head}"id":${id}${(tail as string).replace('"m0"', `"m${id}"`)}`), this.where);
    this.batch = batch;
    return batch.start().finally(() => {
      this.batch = undefined;
    });
  }

  async close(): Promise<void> {
    this.failure ??= new Error('closed');
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGTERM'), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  private call(message: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolveCall, rejectCall) => {
      const timer = setTimeout(() => rejectCall(new Error(`${this.where}: no answer to ${String(message['method'])} in ${timeoutMs} ms; stderr: ${this.stderr()}`)), timeoutMs);
      this.waiting.set(message['id'] as number, (answer) => {
        clearTimeout(timer);
        resolveCall(answer);
      });
      this.write(JSON.stringify(message));
    });
  }

  private write(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  private receive(text: string): void {
    this.buffered += text;
    let newline = this.buffered.indexOf('\n');
    while (newline !== -1) {
      const line = this.buffered.slice(0, newline);
      this.buffered = this.buffered.slice(newline + 1);
      if (line.trim() !== '') this.message(line);
      newline = this.buffered.indexOf('\n');
    }
  }

  private message(line: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return this.die(new Error(`${this.where}: non-JSON on stdout: ${line.slice(0, 200)}`));
    }
    const id = message['id'];
    if (typeof id !== 'number' || 'method' in message) return; // notifications and server requests are not part of the workload
    const waiter = this.waiting.get(id);
    if (waiter !== undefined) {
      this.waiting.delete(id);
      return waiter(message);
    }
    const batch = this.batch;
    if (batch === undefined || !batch.owns(id)) return;
    try {
      checkEcho(message, id, this.where);
    } catch (error) {
      return batch.fail(error as Error);
    }
    batch.complete(id);
  }

  private die(error: Error): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.batch?.fail(error);
  }
}

// ---------------------------------------------------------------------------------------------
// Streamable HTTP: a lean node:http client (keep-alive), identical for every HTTP variant

interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

class HttpDriver implements Driver {
  readonly frontPid: number | undefined;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private readonly endpoint: URL;
  private sessionId = '';
  private protocolVersion = PROTOCOL_VERSION;
  private id = 1;

  private constructor(
    url: string,
    private readonly token: string,
    private readonly toolName: string,
    private readonly where: string,
    private readonly owned: ChildProcess[],
  ) {
    this.endpoint = new URL(url);
    this.frontPid = owned[0]?.pid;
  }

  static async open(url: string, token: string, toolName: string, where: string, owned: ChildProcess[]): Promise<HttpDriver> {
    const driver = new HttpDriver(url, token, toolName, where, owned);
    const init = await driver.post(JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'gateway-bench', version: '1.0.0' } } }));
    const session = init.headers['mcp-session-id'];
    const answer = driver.answerFor(init, 0);
    const result = answer['result'] as { protocolVersion?: string } | undefined;
    if (init.status !== 200 || typeof session !== 'string' || result === undefined) throw new Error(`${where}: initialize failed (${init.status}): ${init.body.slice(0, 400)}`);
    driver.sessionId = session;
    driver.protocolVersion = result.protocolVersion ?? PROTOCOL_VERSION;
    const initialized = await driver.post(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    if (initialized.status !== 202) throw new Error(`${where}: notifications/initialized answered ${initialized.status}`);
    return driver;
  }

  run(calls: number, concurrency: number): Promise<RunStats> {
    const template = echoCall(0).replace('__TOOL__', this.toolName);
    const batch: Batch = new Batch(calls, concurrency, () => this.id++, (id) => this.sendCall(batch, template, id), this.where);
    return batch.start();
  }

  private sendCall(batch: Batch, template: string, id: number): void {
    const body = template.replace('"id":0', `"id":${id}`).replace('"m0"', `"m${id}"`);
    this.post(body)
      .then((answer) => {
        if (answer.status !== 200) throw new Error(`${this.where}: HTTP ${answer.status} for call ${id}: ${answer.body.slice(0, 300)}`);
        checkEcho(this.answerFor(answer, id), id, this.where);
        batch.complete(id);
      })
      .catch((error: unknown) => batch.fail(error instanceof Error ? error : new Error(String(error))));
  }

  async close(): Promise<void> {
    if (this.sessionId !== '') await this.request('DELETE', undefined).catch(() => undefined);
    this.agent.destroy();
    await Promise.all(this.owned.map((child) => stopChild(child)));
  }

  /** The JSON-RPC message with this id, from a JSON body or an SSE stream. */
  private answerFor(answer: HttpAnswer, id: number): Record<string, unknown> {
    const type = String(answer.headers['content-type'] ?? '');
    if (type.startsWith('application/json')) return JSON.parse(answer.body) as Record<string, unknown>;
    for (const line of answer.body.split('\n')) {
      if (!line.startsWith('data:')) continue;
      const message = JSON.parse(line.slice(5)) as Record<string, unknown>;
      if (message['id'] === id) return message;
    }
    throw new Error(`${this.where}: no answer to ${id} in the event stream: ${answer.body.slice(0, 300)}`);
  }

  private post(body: string): Promise<HttpAnswer> {
    return this.request('POST', body);
  }

  private request(method: string, body: string | undefined): Promise<HttpAnswer> {
    const headers: Record<string, string> = {
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${this.token}`,
    };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    if (this.sessionId !== '') {
      headers['mcp-session-id'] = this.sessionId;
      headers['mcp-protocol-version'] = this.protocolVersion;
    }
    return new Promise((resolveRequest, rejectRequest) => {
      const req = httpRequest({ host: this.endpoint.hostname, port: this.endpoint.port, path: this.endpoint.pathname, method, headers, agent: this.agent }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolveRequest({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
        res.on('error', rejectRequest);
      });
      req.on('error', rejectRequest);
      req.end(body);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// processes under test

/** Closing stdin ends the fixtures; Bastion's HTTP mode ends on SIGTERM. Both exit cleanly, so --cpu-prof gets written. */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveStop) => {
    const term = setTimeout(() => child.kill('SIGTERM'), 500);
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(term);
      clearTimeout(kill);
      resolveStop();
    });
    child.stdin?.end();
  });
}

/** Starts a process and waits for a stream line that `match` turns into a URL. */
function startListening(command: string, args: string[], stream: 'stdout' | 'stderr', match: (line: string) => string | undefined, where: string): Promise<{ child: ChildProcess; url: string }> {
  const child = launch(command, args);
  const tail = stderrTail(child);
  return new Promise((resolveStart, rejectStart) => {
    let buffered = '';
    const timer = setTimeout(() => rejectStart(new Error(`${where}: did not report its URL in 30 s; stderr: ${tail()}`)), 30_000);
    const source = child[stream];
    source?.setEncoding('utf8');
    const onData = (text: string): void => {
      buffered += text;
      for (const line of buffered.split('\n')) {
        const url = match(line);
        if (url === undefined) continue;
        clearTimeout(timer);
        source?.off('data', onData);
        source?.resume();
        resolveStart({ child, url });
        return;
      }
    };
    source?.on('data', onData);
    child.stdout?.resume();
    child.once('exit', (code) => rejectStart(new Error(`${where}: exited with code ${code} before listening; stderr: ${tail()}`)));
  });
}

function listeningLine(line: string): string | undefined {
  return line.startsWith('listening ') ? line.slice('listening '.length).trim() : undefined;
}

function gatewayListeningLine(line: string): string | undefined {
  if (!line.includes('gateway listening')) return undefined;
  try {
    const record = JSON.parse(line) as { url?: unknown };
    return typeof record.url === 'string' ? record.url : undefined;
  } catch {
    return undefined;
  }
}

interface BenchSetup {
  dir: string;
  /** One config per Bastion process: each has its own state dir, since an audit log has one writer. */
  stdioConfigPath: string;
  stdioAsyncAuditConfigPath: string;
  httpConfigPath: string;
  /** The same configs with their own state dirs, for the BENCH_BASTION_BEFORE rows. */
  stdioBeforeConfigPath: string;
  httpBeforeConfigPath: string;
  token: string;
  stdioMetricsConfigPath: string;
  stdioTracingConfigPath: string;
  stdioTracingEventsConfigPath: string;
}

/** A Bastion config with one stdio upstream, the echo server, every default guard and limit, and a policy granting its one tool. */
function writeBastionConfig(upstream: Upstream = UPSTREAMS.echo, traceEndpoint = 'http://127.0.0.1:9/v1/traces'): BenchSetup {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-gateway-bench-'));
  const token = randomBytes(24).toString('base64url');
  const sha256 = createHash('sha256').update(token).digest('hex');
  const yaml = `version: 1
stateDir: STATE_DIR
listeners:
  stdio:
    agent: bench-agent
  http:
    host: 127.0.0.1
    port: 0
    path: /mcp
    # The bench opens its session first and calls it only after the other variants warmed up.
    sessionIdleSeconds: 86400
    unusedSessionIdleSeconds: 86400
auth:
  apiTokens:
    - agent: bench-agent
      sha256: ${sha256}
servers:
  echo:
    transport: stdio
    command: ${JSON.stringify(node)}
    args: ${JSON.stringify(upstream.stdioArgs)}
    trust: unsigned
    tools:
      echo: { scopes: [] }
policy:
  files: [${JSON.stringify(join(dir, 'policy.yaml'))}]
audit: { mode: AUDIT_MODE }
`;
  // Least privilege stays on: the agent holds exactly the one tool the workload calls.
  writeFileSync(join(dir, 'policy.yaml'), 'version: 1\nagents:\n  bench-agent:\n    grants: ["exec:tools:[echo.echo]"]\n', { mode: 0o600 });
  const defaultMode = process.env['BENCH_AUDIT'] === 'async' ? 'async' : 'durable';
  const write = (name: string, auditMode = defaultMode): string => {
    const path = join(dir, `${name}.yaml`);
    writeFileSync(path, yaml.replace('STATE_DIR', JSON.stringify(join(dir, `state-${name}`))).replace('AUDIT_MODE', auditMode), { mode: 0o600 });
    return path;
  };
  const metricsConfigPath = join(dir, 'stdio-metrics.yaml');
  writeFileSync(metricsConfigPath, readFileSync(write('stdio-metrics-base'), 'utf8').replace('listeners:\n', 'listeners:\n  admin: { port: 0, metrics: { public: true } }\n'), { mode: 0o600 });
  const tracing = (name: string, guardSpans: boolean): string => {
    const path = join(dir, `${name}.yaml`);
    writeFileSync(path, `${readFileSync(write(`${name}-base`), 'utf8')}observability:\n  tracing: { enabled: true, endpoint: ${JSON.stringify(traceEndpoint)}, guardSpans: ${guardSpans} }\n`, { mode: 0o600 });
    return path;
  };
  return {
    dir,
    stdioConfigPath: write('stdio'),
    stdioAsyncAuditConfigPath: write('stdio-async', 'async'),
    stdioMetricsConfigPath: metricsConfigPath,
    stdioTracingConfigPath: tracing('stdio-tracing', true),
    stdioTracingEventsConfigPath: tracing('stdio-tracing-events', false),
    httpConfigPath: write('http'),
    stdioBeforeConfigPath: write('stdio-before'),
    httpBeforeConfigPath: write('http-before'),
    token,
  };
}

function bastionStdioArgs(setup: BenchSetup): string[] {
  return [bastionJs, 'serve', '--stdio', '--config', setup.stdioConfigPath];
}

async function openVariants(setup: BenchSetup, upstream: Upstream): Promise<Variant[]> {
  const echoStdio = upstream.stdioArgs;
  const variants: Variant[] = [];
  const add = async (role: Role, transport: Transport, label: string, open: () => Promise<Driver>): Promise<void> => {
    variants.push({ role, transport, label, driver: await open() });
  };
  await add('direct', 'stdio', 'direct', () => StdioDriver.open(node, echoStdio, 'echo', 'direct stdio'));
  await add('floor', 'stdio', 'byte-forwarder', () => StdioDriver.open(node, [forwarderJs, node, ...echoStdio], 'echo', 'byte-forwarder stdio'));
  await add('bastion', 'stdio', 'bastion', () => StdioDriver.open(node, bastionStdioArgs(setup), 'echo.echo', 'bastion stdio'));
  if (bastionBeforeJs !== undefined) {
    await add('bastion-before', 'stdio', 'bastion (before)', () => StdioDriver.open(node, [bastionBeforeJs, 'serve', '--stdio', '--config', setup.stdioBeforeConfigPath], 'echo.echo', 'bastion stdio (before)'));
  }
  await add('bastion-metrics', 'stdio', 'bastion, metrics on', () => StdioDriver.open(node, [bastionJs, 'serve', '--stdio', '--config', setup.stdioMetricsConfigPath], 'echo.echo', 'bastion stdio, metrics on'));
  await add('bastion-tracing', 'stdio', 'bastion, tracing on', () => StdioDriver.open(node, [bastionJs, 'serve', '--stdio', '--config', setup.stdioTracingConfigPath], 'echo.echo', 'bastion stdio, tracing on'));
  await add('bastion-tracing-events', 'stdio', 'bastion, tracing (events)', () => StdioDriver.open(node, [bastionJs, 'serve', '--stdio', '--config', setup.stdioTracingEventsConfigPath], 'echo.echo', 'bastion stdio, tracing with guard events'));
  if (process.env['BENCH_AUDIT'] !== 'async') {
    await add('bastion-async', 'stdio', 'bastion, async audit', () => StdioDriver.open(node, [bastionJs, 'serve', '--stdio', '--config', setup.stdioAsyncAuditConfigPath], 'echo.echo', 'bastion stdio, async audit'));
  }

  const echoHttp = await upstream.startHttp();
  const peers = await peerSpecs({ stdio: { command: node, args: echoStdio }, httpUrl: echoHttp.url });
  for (const peer of peers.filter((spec) => spec.transport === 'stdio')) {
    await add(`peer-${peer.name}`, 'stdio', peer.label, () => StdioDriver.open(node, peer.args, 'echo', `${peer.label} stdio`, peer.env));
  }
  await add('direct', 'http', 'direct', () => HttpDriver.open(echoHttp.url, setup.token, 'echo', 'direct http', [echoHttp.child]));
  for (const peer of peers.filter((spec) => spec.transport === 'http')) await add(`peer-${peer.name}`, 'http', peer.label, () => openHttpPeer(peer, setup.token));
  const forwarder = await startListening(node, [httpForwarderJs, echoHttp.url], 'stdout', listeningLine, 'http forwarder');
  await add('floor', 'http', 'http-forwarder', () => HttpDriver.open(forwarder.url, setup.token, 'echo', 'http-forwarder', [forwarder.child]));
  const bastion = await startListening(node, [bastionJs, 'serve', '--config', setup.httpConfigPath], 'stderr', gatewayListeningLine, 'bastion http');
  await add('bastion', 'http', 'bastion', () => HttpDriver.open(bastion.url, setup.token, 'echo.echo', 'bastion http', [bastion.child]));
  if (bastionBeforeJs !== undefined) {
    const before = await startListening(node, [bastionBeforeJs, 'serve', '--config', setup.httpBeforeConfigPath], 'stderr', gatewayListeningLine, 'bastion http (before)');
    await add('bastion-before', 'http', 'bastion (before)', () => HttpDriver.open(before.url, setup.token, 'echo.echo', 'bastion http (before)', [before.child]));
  }
  return variants;
}

/** Starts an HTTP peer, waits for its port, and connects a driver (which owns the process). */
async function openHttpPeer(peer: PeerSpec, token: string): Promise<Driver> {
  const child = launch(node, peer.args, peer.env);
  // Drain both streams: a peer that logs every request to stdout would otherwise block on a full pipe.
  child.stdout.resume();
  child.stderr.resume();
  await waitForPort(peer.port as number, 60_000, peer.label);
  return HttpDriver.open(peer.url as string, token, 'echo', `${peer.label} http`, [child]);
}

// ---------------------------------------------------------------------------------------------
// the measured table

interface Row {
  variant: Variant;
  concurrency: number;
  runs: RunStats[];
  /** CPU milliseconds the front process used over all measured runs, or NaN where /proc is unavailable. */
  cpuMs: number;
  /** The part of cpuMs on the front process's main thread; the rest is its thread pool (file writes), GC and compiler threads. */
  mainThreadCpuMs: number;
  /** CPU milliseconds every process on the machine used (client, front, upstream), and wall milliseconds. */
  machine: MachineTime;
  calls: number;
}

interface MachineTime {
  busyMs: number;
  totalMs: number;
}

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ: 100 on every mainstream Linux build

/** utime + stime of a process in milliseconds, from /proc (Linux); NaN elsewhere. */
function cpuMillis(pid: number | undefined): number {
  return pid === undefined ? Number.NaN : statCpuMillis(`/proc/${pid}/stat`);
}

/** utime + stime of a process's main thread (its event loop, for Node) in milliseconds; NaN elsewhere. */
function mainThreadCpuMillis(pid: number | undefined): number {
  return pid === undefined ? Number.NaN : statCpuMillis(`/proc/${pid}/task/${pid}/stat`);
}

function statCpuMillis(path: string): number {
  try {
    const stat = readFileSync(path, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/**
 * Busy and total CPU time of the whole machine in milliseconds (all cores), from /proc/stat; NaN
 * elsewhere. The client, the front process and the upstream share the machine's cores, so their
 * sum, not the front's own time, is what bounds throughput once every core is busy.
 */
function machineMillis(): MachineTime {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] as string;
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1, 9).map(Number) as number[];
    const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
    const toMs = (ticks: number): number => (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
    return { busyMs: toMs(busy), totalMs: toMs(busy + (idle ?? 0) + (iowait ?? 0)) };
  } catch {
    return { busyMs: Number.NaN, totalMs: Number.NaN };
  }
}

async function warmUp(variants: Variant[]): Promise<void> {
  for (const variant of variants) {
    await variant.driver.run(variant.transport === 'stdio' ? 1000 : 300, 1);
    await variant.driver.run(variant.transport === 'stdio' ? 2000 : 600, 16);
  }
}

async function measure(variants: Variant[]): Promise<Row[]> {
  const rows: Row[] = [];
  for (const variant of variants) for (const concurrency of CONCURRENCY) rows.push({ variant, concurrency, runs: [], cpuMs: 0, mainThreadCpuMs: 0, machine: { busyMs: 0, totalMs: 0 }, calls: 0 });
  for (let round = 0; round < ROUNDS; round += 1) {
    // Rotate the order each round so slow drift in machine load does not favour one variant.
    const order = rows.map((_, index) => rows[(index + round * 2) % rows.length] as Row);
    for (const row of order) {
      const calls = CALLS[row.variant.transport][row.concurrency] as number;
      const cpuBefore = cpuMillis(row.variant.driver.frontPid);
      const mainBefore = mainThreadCpuMillis(row.variant.driver.frontPid);
      const machineBefore = machineMillis();
      row.runs.push(await row.variant.driver.run(calls, row.concurrency));
      const machineAfter = machineMillis();
      row.cpuMs += cpuMillis(row.variant.driver.frontPid) - cpuBefore;
      row.mainThreadCpuMs += mainThreadCpuMillis(row.variant.driver.frontPid) - mainBefore;
      row.machine.busyMs += machineAfter.busyMs - machineBefore.busyMs;
      row.machine.totalMs += machineAfter.totalMs - machineBefore.totalMs;
      row.calls += calls;
    }
  }
  return rows;
}

function summarize(row: Row): RunStats {
  return {
    p50Us: median(row.runs.map((run) => run.p50Us)),
    p99Us: median(row.runs.map((run) => run.p99Us)),
    callsPerSecond: median(row.runs.map((run) => run.callsPerSecond)),
  };
}

function printTable(rows: Row[]): Map<string, RunStats> {
  const stats = new Map<string, RunStats>();
  const key = (role: Role, transport: Transport, concurrency: number): string => `${role}/${transport}/${concurrency}`;
  for (const row of rows) stats.set(key(row.variant.role, row.variant.transport, row.concurrency), summarize(row));
  const header = ['variant', 'transport', 'c', 'p50_us', 'p99_us', 'calls/s', 'p50_ratio_vs_direct', 'p50_ratio_vs_floor', 'tput_ratio_vs_direct', 'front_cpu_us/call', 'front_main_thread', 'machine_cpu_us/call', 'machine_busy'];
  const lines: string[][] = [header];
  const ordered = [...rows].sort((a, b) => (a.variant.transport === b.variant.transport ? a.concurrency - b.concurrency : a.variant.transport === 'stdio' ? -1 : 1));
  for (const row of ordered) {
    const own = stats.get(key(row.variant.role, row.variant.transport, row.concurrency)) as RunStats;
    const direct = stats.get(key('direct', row.variant.transport, row.concurrency)) as RunStats;
    const floor = stats.get(key('floor', row.variant.transport, row.concurrency)) as RunStats;
    lines.push([
      row.variant.label,
      row.variant.transport,
      String(row.concurrency),
      own.p50Us.toFixed(0),
      own.p99Us.toFixed(0),
      own.callsPerSecond.toFixed(0),
      (own.p50Us / direct.p50Us).toFixed(2),
      (own.p50Us / floor.p50Us).toFixed(2),
      (own.callsPerSecond / direct.callsPerSecond).toFixed(2),
      Number.isNaN(row.cpuMs) ? '-' : ((row.cpuMs * 1000) / row.calls).toFixed(0),
      Number.isNaN(row.mainThreadCpuMs) ? '-' : ((row.mainThreadCpuMs * 1000) / row.calls).toFixed(0),
      Number.isNaN(row.machine.busyMs) ? '-' : machineMicrosPerCall(row).toFixed(0),
      Number.isNaN(row.machine.busyMs) ? '-' : `${((row.machine.busyMs / row.machine.totalMs) * 100).toFixed(0)}%`,
    ]);
  }
  const widths = header.map((_, column) => Math.max(...lines.map((line) => (line[column] as string).length)));
  for (const line of lines) process.stdout.write(`${line.map((cell, column) => (column < 2 ? cell.padEnd(widths[column] as number) : cell.padStart(widths[column] as number))).join('  ')}\n`);
  return stats;
}

function machineMicrosPerCall(row: Row): number {
  return (row.machine.busyMs * 1000) / row.calls;
}

function printTargets(stats: Map<string, RunStats>, rows: Row[]): void {
  const get = (name: string): RunStats => stats.get(name) as RunStats;
  const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  const peersOf = (transport: Transport, concurrency: number): Array<{ label: string; stats: RunStats }> =>
    rows.filter((row) => row.variant.role.startsWith('peer-') && row.variant.transport === transport && row.concurrency === concurrency).map((row) => ({ label: row.variant.label, stats: summarize(row) }));
  process.stdout.write(`\ntargets (issue 24; medians of the rounds above; Bastion with every guard on and its ${process.env['BENCH_AUDIT'] === 'async' ? 'audit log switched to async by BENCH_AUDIT' : 'default durable audit log'}):\n`);
  const bestStdioPeer = peersOf('stdio', 16).sort((a, b) => b.stats.callsPerSecond - a.stats.callsPerSecond)[0];
  const bastion16 = get('bastion/stdio/16');
  if (bestStdioPeer !== undefined) {
    process.stdout.write(`  stdio c=16 throughput >= the best Node pass-through peer (${bestStdioPeer.label}, ${bestStdioPeer.stats.callsPerSecond.toFixed(0)}/s): ${bastion16.callsPerSecond.toFixed(0)}/s, ${(bastion16.callsPerSecond / bestStdioPeer.stats.callsPerSecond).toFixed(2)}x   ${verdict(bastion16.callsPerSecond >= bestStdioPeer.stats.callsPerSecond)}\n`);
  }
  const sync = syncedWriteMicros();
  const floor1 = get('floor/stdio/1').p50Us;
  const bastion1 = get('bastion/stdio/1').p50Us;
  process.stdout.write(`  stdio c=1  p50 <= byte-pipe floor (${floor1.toFixed(0)} us) + one synced audit write (${sync.toFixed(0)} us, measured here): ${bastion1.toFixed(0)} us   ${verdict(bastion1 <= floor1 + sync)}\n`);
  // The verdict keeps the back-to-back figure; at c=1 the writer has slept between calls, and a
  // synced write after a pause costs more on this kind of machine: printed so the gap can be read.
  process.stdout.write(`  (one synced write after a 0.5 ms pause, as at c=1: ${syncedWriteMicros(200, 0.5).toFixed(0)} us)\n`);
  for (const c of CONCURRENCY) {
    const own = get(`bastion/http/${c}`);
    const peers = peersOf('http', c);
    const ahead = c === 1 ? peers.every((peer) => own.p50Us < peer.stats.p50Us) : peers.every((peer) => own.callsPerSecond > peer.stats.callsPerSecond);
    const detail = peers.map((peer) => (c === 1 ? `${peer.label} ${(own.p50Us / peer.stats.p50Us).toFixed(2)}x p50` : `${peer.label} ${(own.callsPerSecond / peer.stats.callsPerSecond).toFixed(2)}x calls/s`)).join(', ');
    process.stdout.write(`  http  c=${String(c).padEnd(2)} ahead of every peer (${c === 1 ? 'p50' : 'throughput'}): ${detail}   ${verdict(ahead)}\n`);
  }
  const bastionRow = rows.find((row) => row.variant.role === 'bastion' && row.variant.transport === 'stdio' && row.concurrency === 16);
  if (bastionRow !== undefined && !Number.isNaN(bastionRow.mainThreadCpuMs)) {
    const perCall = (bastionRow.mainThreadCpuMs * 1000) / bastionRow.calls;
    process.stdout.write(`  Bastion main-thread CPU per call at stdio c=16 <= 60 us: ${perCall.toFixed(0)} us   ${verdict(perCall <= 60)}\n`);
  }
  printBeforeAfter(rows);
  const direct1 = get('direct/stdio/1').p50Us;
  process.stdout.write(`  (for reference: stdio c=1 p50 ${(bastion1 / direct1).toFixed(2)}x direct; c=16 throughput ${((bastion16.callsPerSecond / get('direct/stdio/16').callsPerSecond) * 100).toFixed(0)}% of direct; http c=1 p50 ${(get('bastion/http/1').p50Us / get('direct/http/1').p50Us).toFixed(2)}x the upstream's own endpoint)\n`);
  const asyncC1 = stats.get('bastion-async/stdio/1');
  const asyncC16 = stats.get('bastion-async/stdio/16');
  if (asyncC1 !== undefined && asyncC16 !== undefined) {
    // Each durable answer waits for its record's synced write, a floor set by the disk, not the proxy.
    process.stdout.write(`  (with the audit log in async mode: stdio c=1 p50 ${(asyncC1.p50Us / get('direct/stdio/1').p50Us).toFixed(2)}x direct, c=16 throughput ${((asyncC16.callsPerSecond / get('direct/stdio/16').callsPerSecond) * 100).toFixed(0)}% of direct)\n`);
  }
  const metricsC1 = stats.get('bastion-metrics/stdio/1');
  const metricsC16 = stats.get('bastion-metrics/stdio/16');
  if (metricsC1 !== undefined && metricsC16 !== undefined) {
    process.stdout.write(`  (with metrics on, against the same Bastion without: stdio c=1 p50 ${(metricsC1.p50Us / get('bastion/stdio/1').p50Us).toFixed(2)}x, c=16 throughput ${(metricsC16.callsPerSecond / get('bastion/stdio/16').callsPerSecond).toFixed(2)}x)\n`);
  }
  for (const [role, what] of [['bastion-tracing', 'a span per guard'], ['bastion-tracing-events', 'a span event per guard']] as const) {
    const c1 = stats.get(`${role}/stdio/1`);
    const c16 = stats.get(`${role}/stdio/16`);
    if (c1 === undefined || c16 === undefined) continue;
    process.stdout.write(`  (with tracing on, ${what}, every call sampled and exported, against the same Bastion without: stdio c=1 p50 ${(c1.p50Us / get('bastion/stdio/1').p50Us).toFixed(2)}x, c=16 throughput ${(c16.callsPerSecond / get('bastion/stdio/16').callsPerSecond).toFixed(2)}x)\n`);
  }
  printCpuBudget(rows);
}

/** With BENCH_BASTION_BEFORE: each stdio and HTTP figure of the other build beside this one's, from the same rounds. */
function printBeforeAfter(rows: Row[]): void {
  const find = (role: Role, transport: Transport, concurrency: number): Row | undefined => rows.find((row) => row.variant.role === role && row.variant.transport === transport && row.concurrency === concurrency);
  for (const transport of ['stdio', 'http'] as const) {
    for (const concurrency of CONCURRENCY) {
      const before = find('bastion-before', transport, concurrency);
      const after = find('bastion', transport, concurrency);
      if (before === undefined || after === undefined) continue;
      const [was, now] = [summarize(before), summarize(after)];
      const main = (row: Row): string => (Number.isNaN(row.mainThreadCpuMs) ? '-' : ((row.mainThreadCpuMs * 1000) / row.calls).toFixed(0));
      process.stdout.write(`  (before -> after, ${transport} c=${concurrency}: p50 ${was.p50Us.toFixed(0)} -> ${now.p50Us.toFixed(0)} us, ${was.callsPerSecond.toFixed(0)} -> ${now.callsPerSecond.toFixed(0)} calls/s, main-thread CPU ${main(before)} -> ${main(after)} us per call)\n`);
    }
  }
}

/**
 * Median time of one small appended write followed by fdatasync in the OS temp dir: what a
 * durable audit record costs at the least, set by the disk rather than by the proxy. With
 * `pauseMs`, each write follows a pause of that length (the thread asleep, as between c=1 calls).
 */
function syncedWriteMicros(samples = 200, pauseMs = 0): number {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const dir = mkdtempSync(join(tmpdir(), 'bastion-bench-sync-'));
  const fd = openSync(join(dir, 'probe.log'), 'a');
  const line = Buffer.from(`${'x'.repeat(400)}\n`);
  const times: number[] = [];
  try {
    for (let index = 0; index < samples; index += 1) {
      if (pauseMs > 0) Atomics.wait(pause, 0, 0, pauseMs);
      const started = process.hrtime.bigint();
      writeSync(fd, line);
      fdatasyncSync(fd);
      times.push(Number(process.hrtime.bigint() - started) / 1000);
    }
  } finally {
    closeSync(fd);
    removeTree(dir);
  }
  return median(times);
}

/**
 * The stdio c=16 target as a CPU budget. The client, the proxy and the upstream share the
 * machine's cores: at 65% of direct's rate they can use at most cores / rate of CPU per call
 * together, and the proxy's own event loop, one thread, caps it at 1 / (its CPU per call).
 */
function printCpuBudget(rows: Row[]): void {
  const row = (role: Role): Row | undefined => rows.find((entry) => entry.variant.role === role && entry.variant.transport === 'stdio' && entry.concurrency === 16);
  const direct = row('direct');
  const bastion = row('bastion');
  if (direct === undefined || bastion === undefined || Number.isNaN(bastion.machine.busyMs) || Number.isNaN(bastion.cpuMs)) return;
  const targetRate = 0.65 * summarize(direct).callsPerSecond;
  const budget = (availableParallelism() * 1e6) / targetRate;
  const bastionOwn = (bastion.cpuMs * 1000) / bastion.calls;
  const others = machineMicrosPerCall(bastion) - bastionOwn;
  process.stdout.write(
    `  stdio c=16 as a CPU budget: 65% of direct is ${targetRate.toFixed(0)} calls/s; ${availableParallelism()} cores allow at most ${budget.toFixed(0)} us of CPU per call for client, proxy and upstream together. ` +
      `Through Bastion the client and upstream used ${others.toFixed(0)}, leaving Bastion at most ${Math.max(0, budget - others).toFixed(0)} us (it used ${bastionOwn.toFixed(0)}); ` +
      `its one event-loop thread alone caps it at ${(1e6 / bastionOwn).toFixed(0)} calls/s\n`,
  );
}

async function benchmark(): Promise<void> {
  const names = (process.env['BENCH_UPSTREAMS'] ?? 'echo,everything').split(',').map((name) => name.trim()).filter((name) => name !== '');
  for (const name of names) {
    const upstream = UPSTREAMS[name as Upstream['name']];
    if (upstream === undefined) throw new Error(`BENCH_UPSTREAMS: unknown upstream '${name}' (known: ${Object.keys(UPSTREAMS).join(', ')})`);
    await benchmarkAgainst(upstream);
  }
}

async function benchmarkAgainst(upstream: Upstream): Promise<void> {
  const receiver = await startTraceReceiver();
  const setup = writeBastionConfig(upstream, receiver.url);
  const started = performance.now();
  let variants: Variant[] = [];
  try {
    process.stdout.write(`\n--- upstream: ${upstream.name === 'echo' ? 'the bench echo fixture (bench/fixtures/gateway-echo-server.ts)' : '@modelcontextprotocol/server-everything, its echo tool'} ---\n`);
    variants = await openVariants(setup, upstream);
    await warmUp(variants);
    const rows = await measure(variants);
    process.stdout.write(`echo tool calls, ${ROUNDS} interleaved rounds, medians; stdio ${CALLS.stdio[1]}/${CALLS.stdio[16]} calls and http ${CALLS.http[1]}/${CALLS.http[16]} calls per round at c=1/16\n`);
    process.stdout.write('stdio: floor = byte-forwarding child process; http: direct = the SDK server\'s own Streamable HTTP endpoint, floor = a byte-forwarding HTTP reverse proxy in front of it, bastion = Bastion\'s HTTP listener fronting the same server over stdio; "bastion, async audit" = the stdio Bastion with its audit log in async mode (answers do not wait for the disk)\n');
    process.stdout.write('front_cpu_us/call: CPU time (user+sys, /proc) of the process the client talks to: the server itself, the forwarder, or Bastion; front_main_thread: the part on its main thread (the event loop), the rest being its thread pool (file writes), GC and compiler threads\n');
    process.stdout.write('machine_cpu_us/call: CPU time of the whole machine (client, front process and upstream; /proc/stat) per call; machine_busy: the share of all cores busy during the runs\n\n');
    printTargets(printTable(rows), rows);
    process.stdout.write(`  (the in-bench OTLP receiver took ${receiver.requests} exports, ${(receiver.bytes / 1024).toFixed(0)} KiB of protobuf)\n`);
    process.stdout.write(`\ntotal ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  } finally {
    await Promise.all(variants.map((variant) => variant.driver.close().catch(() => undefined)));
    removeTree(setup.dir);
    await receiver.close();
  }
}

/** Takes the tracing rows' OTLP/HTTP exports (no collector is installed here) and counts them. */
async function startTraceReceiver(): Promise<{ url: string; requests: number; bytes: number; close(): Promise<void> }> {
  const counts = { requests: 0, bytes: 0 };
  const server = createServer((request, response) => {
    request.on('data', (chunk: Buffer) => (counts.bytes += chunk.length));
    request.on('end', () => {
      counts.requests += 1;
      response.writeHead(200, { 'Content-Type': 'application/x-protobuf' });
      response.end();
    });
  });
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    get requests() {
      return counts.requests;
    },
    get bytes() {
      return counts.bytes;
    },
    close: () => new Promise<void>((resolveClose) => server.close(() => resolveClose())),
  };
}

// ---------------------------------------------------------------------------------------------
// --profile: where Bastion's time goes on the stdio path

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Read and write syscalls a process has made so far (Linux /proc/<pid>/io), or NaN. */
function syscallCounts(pid: number | undefined): { reads: number; writes: number } {
  try {
    const text = readFileSync(`/proc/${pid}/io`, 'utf8');
    const field = (name: string): number => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
    return { reads: field('syscr'), writes: field('syscw') };
  } catch {
    return { reads: Number.NaN, writes: Number.NaN };
  }
}

/** Microseconds on the monotonic clock, which V8's profiler timestamps also use on Linux. */
function monotonicMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

const IDLE_FRAMES = new Set(['(idle)']);

/**
 * Self time per function and per area (node internals, a dependency, Bastion's own files),
 * over the samples taken during the measured window only (start-up and shutdown excluded),
 * as a share of the time the process was busy.
 */
function reportProfile(title: string, profile: CpuProfile, window: { from: number; to: number }, calls: number): void {
  const byNode = new Map<number, ProfileNode>(profile.nodes.map((entry) => [entry.id, entry]));
  const parentOf = new Map<number, number>();
  for (const entry of profile.nodes) for (const child of entry.children ?? []) parentOf.set(child, entry.id);
  const label = (frame: ProfileNode['callFrame']): string => {
    const file = frame.url.replace(/^file:\/\//, '').replace(`${repoRoot}/`, '');
    return `${frame.functionName || '(anonymous)'}${file === '' ? '' : `  ${file}:${frame.lineNumber + 1}`}`;
  };
  const selfByFunction = new Map<string, number>();
  const selfByArea = new Map<string, number>();
  const callersOf = new Map<string, Map<string, number>>();
  // Shares count samples, not the wall-clock gaps between them: a thread preempted inside a
  // syscall (a pipe write that wakes the peer) yields one sample after a long gap, and summing
  // gaps would bill the scheduler's wait to that function.
  let busy = 0;
  let busyWall = 0;
  let sampled = 0;
  let at = profile.startTime;
  const inWindow = profile.samples.some((_, index) => {
    at += profile.timeDeltas[index] ?? 0;
    return at >= window.from && at <= window.to;
  });
  at = profile.startTime;
  profile.samples.forEach((nodeId, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    at += delta;
    if (inWindow && (at < window.from || at > window.to)) return;
    const frame = byNode.get(nodeId)?.callFrame;
    if (frame === undefined) return;
    sampled += delta;
    if (IDLE_FRAMES.has(frame.functionName) && frame.url === '') return;
    busyWall += delta;
    busy += 1;
    const name = label(frame);
    selfByFunction.set(name, (selfByFunction.get(name) ?? 0) + 1);
    selfByArea.set(areaOf(frame), (selfByArea.get(areaOf(frame)) ?? 0) + 1);
    const parent = byNode.get(parentOf.get(nodeId) ?? -1)?.callFrame;
    if (parent !== undefined) {
      const callers = callersOf.get(name) ?? new Map<string, number>();
      callers.set(label(parent), (callers.get(label(parent)) ?? 0) + 1);
      callersOf.set(name, callers);
    }
  });
  const share = (count: number): string => `${((count / busy) * 100).toFixed(1).padStart(5)}%`;
  const top = (entries: Map<string, number>, limit: number): Array<[string, number]> => [...entries].sort((a, b) => b[1] - a[1]).slice(0, limit);
  process.stdout.write(`\n${title}: not idle for ${(busyWall / 1000).toFixed(0)} of ${(sampled / 1000).toFixed(0)} ms${inWindow ? ' of the measured window' : ' (whole process: the window did not match the profile clock)'} (${(busyWall / calls).toFixed(0)} us per call), ${busy} busy samples\n`);
  process.stdout.write('  self time by area (% of busy samples)\n');
  for (const [name, count] of top(selfByArea, 12)) process.stdout.write(`    ${share(count)}  ${name}\n`);
  process.stdout.write('  self time by function (% of busy samples), with the main callers of the top five\n');
  top(selfByFunction, 25).forEach(([name, count], rank) => {
    process.stdout.write(`    ${share(count)}  ${name}\n`);
    if (rank >= 5) return;
    for (const [caller, callerCount] of top(callersOf.get(name) ?? new Map<string, number>(), 3)) process.stdout.write(`             <- ${share(callerCount).trim()} ${caller}\n`);
  });
}

function areaOf(frame: ProfileNode['callFrame']): string {
  const url = frame.url;
  if (url === '') return frame.functionName.startsWith('(') ? frame.functionName : '(native: V8 builtins and C++ bindings, e.g. stream writes)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/').slice(0, 2).join('/')}`;
  const modules = url.lastIndexOf('node_modules/');
  if (modules !== -1) {
    const rest = url.slice(modules + 'node_modules/'.length).split('/');
    return `npm:${rest[0]?.startsWith('@') === true ? `${rest[0]}/${rest[1] ?? ''}` : (rest[0] ?? '')}`;
  }
  const src = url.indexOf('/dist/src/');
  if (src !== -1) return `bastion:${url.slice(src + '/dist/src/'.length)}`;
  return url;
}

/** Runs c=`concurrency` echo calls through one profiled process and reports where its CPU went. */
async function profileOne(title: string, transport: Transport, open: (profileFlags: string[]) => Promise<Driver>, concurrency: number, dir: string): Promise<void> {
  const profileDir = mkdtempSync(join(dir, 'profile-'));
  const calls = (transport === 'stdio' ? 3 : 1) * (concurrency === 1 ? 2000 : 6000);
  const driver = await open(['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-interval', '100']);
  let stats: RunStats;
  let from: number;
  let to: number;
  let cpuMs: number;
  let syscalls: { reads: number; writes: number };
  try {
    await driver.run(Math.round(calls / 3), concurrency);
    const cpuBefore = cpuMillis(driver.frontPid);
    const syscallsBefore = syscallCounts(driver.frontPid);
    from = monotonicMicros();
    stats = await driver.run(calls, concurrency);
    to = monotonicMicros();
    cpuMs = cpuMillis(driver.frontPid) - cpuBefore;
    const syscallsAfter = syscallCounts(driver.frontPid);
    syscalls = { reads: syscallsAfter.reads - syscallsBefore.reads, writes: syscallsAfter.writes - syscallsBefore.writes };
  } finally {
    await driver.close();
  }
  process.stdout.write(`\n=== ${title}: ${calls} calls at c=${concurrency}: p50 ${stats.p50Us.toFixed(0)} us, p99 ${stats.p99Us.toFixed(0)} us, ${stats.callsPerSecond.toFixed(0)} calls/s (the profiler slows it); CPU ${((cpuMs * 1000) / calls).toFixed(0)} us, ${(syscalls.reads / calls).toFixed(2)} read and ${(syscalls.writes / calls).toFixed(2)} write syscalls per call (/proc)\n`);
  const file = readdirSync(profileDir).find((name) => name.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`${title} wrote no .cpuprofile: it must exit through process.exit or a normal end when stdin closes`);
  reportProfile(title, JSON.parse(readFileSync(join(profileDir, file), 'utf8')) as CpuProfile, { from, to }, calls);
}

/** `--profile=stdio|stdio16|http|http16`: the front process of the floor and of Bastion, profiled under the same load. */
async function profileBastion(which: string): Promise<void> {
  const transport: Transport = which.startsWith('http') ? 'http' : 'stdio';
  const concurrency = which.endsWith('16') ? 16 : 1;
  const setup = writeBastionConfig();
  try {
    if (transport === 'stdio') {
      await profileOne('byte-forwarder (floor), stdio', transport, (flags) => StdioDriver.open(node, [...flags, forwarderJs, node, echoServerJs, 'stdio'], 'echo', 'forwarder'), concurrency, setup.dir);
      await profileOne('bastion serve --stdio', transport, (flags) => StdioDriver.open(node, [...flags, ...bastionStdioArgs(setup)], 'echo.echo', 'bastion stdio'), concurrency, setup.dir);
      return;
    }
    await profileOne('SDK echo server, its own Streamable HTTP endpoint (direct)', transport, async (flags) => {
      const profiled = await startListening(node, [...flags, echoServerJs, 'http'], 'stdout', listeningLine, 'echo server (http)');
      return HttpDriver.open(profiled.url, setup.token, 'echo', 'direct http', [profiled.child]);
    }, concurrency, setup.dir);
    await profileOne('bastion serve (HTTP listener, echo over stdio)', transport, async (flags) => {
      const bastion = await startListening(node, [...flags, bastionJs, 'serve', '--config', setup.httpConfigPath], 'stderr', gatewayListeningLine, 'bastion http');
      return HttpDriver.open(bastion.url, setup.token, 'echo.echo', 'bastion http', [bastion.child]);
    }, concurrency, setup.dir);
  } finally {
    removeTree(setup.dir);
  }
}

const profileArg = process.argv.slice(2).find((arg) => arg.startsWith('--profile'));
try {
  if (profileArg === undefined) await benchmark();
  else await profileBastion(profileArg.split('=')[1] ?? 'stdio');
} catch (error) {
  process.stderr.write(`gateway bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
  await stopEverything();
  process.exit(1);
}
