#!/usr/bin/env node
// Runs the official MCP conformance suite (@modelcontextprotocol/conformance, server scenarios)
// against Bastion fronting a conforming stdio MCP server (test/fixtures/servers/conformance-server.ts).
//
//   node scripts/conformance.mjs [extra arguments for `conformance server`, e.g. --scenario ping --verbose]
//
// Needs Node 22 or newer (the suite's requirement) and a build (`npm test` or `npm run build`;
// it builds if dist/ is missing). Everything listens on 127.0.0.1 only. The conformance client
// cannot send an Authorization header, so a loopback forwarder in this process passes each
// request to Bastion unchanged (method, path, every header including Host and Origin, body)
// plus `Authorization: Bearer <token>`, and streams the answer back (SSE included).
// docs/conformance.md explains the setup and conformance-baseline.yml the expected failures.
// Set CONFORMANCE_KEEP=1 to keep the temporary directory (config, Bastion's log, the suite's results);
// CONFORMANCE_TIMEOUT_MS changes the hard limit on the whole run (default 5 minutes).
import { execFile, spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer, request as httpRequest, Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const OVERALL_TIMEOUT_MS = Number(process.env['CONFORMANCE_TIMEOUT_MS'] ?? 5 * 60_000);
const START_TIMEOUT_MS = 60_000;

const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  process.stderr.write(
    `conformance: the MCP conformance suite needs Node.js 22 or newer; this is ${process.version} (${process.execPath}).\n` +
      '  Run it with a Node 22 binary, e.g. PATH="/path/to/node22/bin:$PATH" node scripts/conformance.mjs\n',
  );
  process.exit(1);
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bastionBin = join(root, 'dist', 'src', 'cli', 'bastion.js');
const fixture = join(root, 'dist', 'test', 'fixtures', 'servers', 'conformance-server.js');
const suiteBin = join(root, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
const baseline = join(root, 'conformance-baseline.yml');
const passThrough = process.argv.slice(2);
const keep = process.env['CONFORMANCE_KEEP'] === '1';

/** The agent the forwarder authenticates as; the policy below grants it the fixture's tools. */
const AGENT = 'conformance-suite';

/** What the fixture offers (the names the suite calls): granted to the agent and declared inline. */
const TOOLS = [
  'test_simple_text',
  'test_image_content',
  'test_audio_content',
  'test_embedded_resource',
  'test_multiple_content_types',
  'test_tool_with_logging',
  'test_error_handling',
  'test_tool_with_progress',
  'test_sampling',
  'test_elicitation',
  'test_elicitation_sep1034_defaults',
  'test_elicitation_sep1330_enums',
  'json_schema_2020_12_tool',
  'test_reconnection',
];
const PROMPTS = ['test_simple_prompt', 'test_prompt_with_arguments', 'test_prompt_with_embedded_resource', 'test_prompt_with_image'];

const work = mkdtempSync(join(tmpdir(), 'bastion-conformance-'));
const resultsDir = join(work, 'results');
const logFile = join(work, 'bastion.log');

/** @type {import('node:child_process').ChildProcess | undefined} */
let bastion;
/** @type {import('node:child_process').ChildProcess | undefined} */
let suite;
/** @type {import('node:http').Server | undefined} */
let forwarder;
let finishing = false;

function say(line) {
  process.stderr.write(`conformance: ${line}\n`);
}

async function stopBastion() {
  const child = bastion;
  bastion = undefined;
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.once('exit', done));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function finish(code) {
  if (finishing) return;
  finishing = true;
  if (suite !== undefined && suite.exitCode === null) suite.kill('SIGKILL');
  await stopBastion();
  if (forwarder !== undefined) {
    forwarder.closeAllConnections();
    await new Promise((done) => forwarder.close(() => done()));
  }
  if (code !== 0) printBastionProblems();
  if (keep) say(`kept ${work} (config, bastion.log, results/)`);
  else {
    // Run as root with CAP_LINUX_IMMUTABLE, the gateway made its audit log append-only and
    // immutable (audit.appendOnly: auto, the default): the attributes go first, or rmSync fails.
    if (process.platform === 'linux') spawnSync('chattr', ['-R', '-a', '-i', work], { stdio: 'ignore' });
    rmSync(work, { recursive: true, force: true });
  }
  process.exit(code);
}

/** Bastion's warnings and errors (pino levels >= 40), to explain a failing run. */
function printBastionProblems() {
  let lines;
  try {
    lines = readFileSync(logFile, 'utf8').split('\n');
  } catch {
    return;
  }
  const problems = lines.filter((line) => {
    try {
      return JSON.parse(line).level >= 40;
    } catch {
      return line.trim() !== '';
    }
  });
  if (problems.length === 0) return;
  say(`Bastion logged ${problems.length} warning(s)/error(s); the last ones:`);
  for (const line of problems.slice(-30)) process.stderr.write(`  ${line}\n`);
}

const overall = setTimeout(() => {
  say(`timed out after ${OVERALL_TIMEOUT_MS / 1000} s; stopping everything`);
  void finish(1);
}, OVERALL_TIMEOUT_MS);
overall.unref();
process.once('SIGINT', () => void finish(130));
process.once('SIGTERM', () => void finish(143));

async function ensureBuilt() {
  if (existsSync(bastionBin) && existsSync(fixture)) return;
  say('dist/ is missing; running npm run build');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  await new Promise((done, fail) => {
    execFile(npm, ['run', 'build'], { cwd: root }, (error, stdout, stderr) => {
      if (error) fail(new Error(`npm run build failed:\n${stdout}${stderr}`));
      else done();
    });
  });
}

/**
 * The forwarder: 127.0.0.1, a free port. Each request goes to Bastion as it came (raw headers,
 * so Host and Origin are the client's), plus the agent's bearer token; the answer is piped back
 * without buffering, so SSE streams flow event by event.
 */
function startForwarder(token, target) {
  const agent = new Agent({ keepAlive: true });
  const server = createServer((req, res) => {
    const headers = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (req.rawHeaders[i].toLowerCase() !== 'authorization') headers.push(req.rawHeaders[i], req.rawHeaders[i + 1]);
    }
    headers.push('Authorization', `Bearer ${token}`);
    const upstream = httpRequest({ host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers, agent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.rawHeaders);
      res.flushHeaders();
      answer.pipe(res);
      answer.on('error', () => res.destroy());
    });
    upstream.on('error', (error) => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`forwarder: Bastion unreachable: ${error.message}\n`);
      } else res.destroy();
    });
    // The client went away (e.g. it cancelled an SSE stream): let Bastion see the disconnect.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
  server.on('connection', (socket) => socket.setNoDelay(true));
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => done(server));
  });
}

function yamlString(value) {
  return JSON.stringify(value);
}

function writeConfig(token, forwarderPort) {
  const fwdHosts = [`127.0.0.1:${forwarderPort}`, `localhost:${forwarderPort}`];
  const policy = `version: 1
agents:
  ${AGENT}:
    grants:
      - ${yamlString(`exec:tools:[${TOOLS.map((tool) => `conformance.${tool}`).join(', ')}]`)}
      - ${yamlString(`exec:prompts:[${PROMPTS.map((prompt) => `conformance.${prompt}`).join(', ')}]`)}
      - "read:resources:test://*"
      - "exec:sampling:conformance"
      - "exec:elicitation:conformance"
      - "exec:logging:conformance"
`;
  // Guards stay at their defaults (audit on, bubblewrap sandbox, output inspection, policy
  // enforced); only what the suite needs is opened: the forwarder's Host/Origin, and the agent's grants.
  const config = `version: 1
stateDir: state
listeners:
  http:
    host: 127.0.0.1
    port: 0
    path: /mcp
    # Only the forwarder talks to Bastion, and it passes the suite's Host and Origin unchanged:
    # accept the forwarder's own address (what the suite uses), so the dns-rebinding-protection
    # scenario's evil.example.com Host and Origin are still refused.
    allowedHosts: ${yamlString(fwdHosts)}
    allowedOrigins: ${yamlString(fwdHosts.map((host) => `http://${host}`))}
    # The suite never DELETEs its sessions; let idle ones (and their upstream processes) go.
    sessionIdleSeconds: 60
auth:
  apiTokens:
    - agent: ${AGENT}
      sha256: ${createHash('sha256').update(token).digest('hex')}
policy:
  files: [policy.yaml]
servers:
  conformance:
    transport: stdio
    command: ${yamlString(process.execPath)}
    args: [${yamlString(fixture)}]
    trust: unsigned          # a test fixture: no signed manifest
    namespaced: false        # the suite calls fixed names (test_simple_text, test://static-text)
    tools:
${TOOLS.map((tool) => `      ${tool}: { scopes: [] }`).join('\n')}
`;
  writeFileSync(join(work, 'policy.yaml'), policy);
  const file = join(work, 'bastion.yaml');
  writeFileSync(file, config);
  return file;
}

function startBastion(configFile) {
  const log = openSync(logFile, 'a');
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [bastionBin, 'serve', '--config', configFile], { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
    bastion = child;
    let pending = '';
    let settled = false;
    const timer = setTimeout(() => settle(new Error(`Bastion did not report listening within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    function settle(error, url) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) fail(error);
      else done(url);
    }
    child.stderr.on('data', (chunk) => {
      writeSync(log, chunk);
      pending += chunk.toString('utf8');
      let newline;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        let record;
        try {
          record = JSON.parse(line);
        } catch {
          continue;
        }
        if (record.msg === 'gateway listening' && typeof record.url === 'string') settle(undefined, record.url);
      }
    });
    child.once('close', () => closeSync(log));
    child.once('exit', (code, signal) => {
      settle(new Error(`Bastion exited before listening (code ${code}, signal ${signal}); its log is below`));
      if (!finishing && settled) say(`Bastion exited during the run (code ${code}, signal ${signal})`);
    });
  });
}

function runSuite(url) {
  return new Promise((done) => {
    const args = [suiteBin, 'server', '--url', url, '--expected-failures', baseline, '-o', resultsDir, ...passThrough];
    say(`running: node ${args.map((arg) => (arg.startsWith(root) ? arg.slice(root.length + 1) : arg)).join(' ')}`);
    suite = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    // The suite colours its verdict lines whatever NO_COLOR says; a log (not a terminal) gets plain text.
    const plain = process.env.NO_COLOR !== undefined || !process.stdout.isTTY;
    const sgr = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');
    for (const [from, to] of [[suite.stdout, process.stdout], [suite.stderr, process.stderr]]) {
      createInterface({ input: from, crlfDelay: Infinity }).on('line', (line) => to.write(`${plain ? line.replace(sgr, '') : line}\n`));
    }
    suite.once('close', (code, signal) => done(code ?? (signal ? 1 : 0)));
  });
}

try {
  await ensureBuilt();
  const token = randomBytes(32).toString('base64url');
  const target = { port: 0 };
  forwarder = await startForwarder(token, target);
  const forwarderPort = forwarder.address().port;
  const configFile = writeConfig(token, forwarderPort);
  const bastionUrl = new URL(await startBastion(configFile));
  target.port = Number(bastionUrl.port);
  const url = `http://127.0.0.1:${forwarderPort}${bastionUrl.pathname}`;
  say(`Bastion at ${bastionUrl.href}, forwarder at ${url}`);
  const code = await runSuite(url);
  await finish(code);
} catch (error) {
  say(error instanceof Error ? error.message : String(error));
  await finish(1);
}
