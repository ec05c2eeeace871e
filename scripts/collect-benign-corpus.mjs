#!/usr/bin/env node
// Collects the benign-packages corpus split: real tool/prompt/resource definitions from npm MCP
// server packages, listed live over stdio.
//
// For each `name@version` in test/scan/corpus/data/benign-packages/packages.txt (optionally
// followed by server arguments and NAME=VALUE environment entries), the package is installed into
// a scratch prefix outside the repository (default /work/pkgs/, `npm install --ignore-scripts`, optionally --batch N
// packages per npm run so shared dependencies are unpacked once; default one package per run),
// its bin is started with `node <bin>` inside Bastion's own sandbox (dist/src/sandbox, bwrap backend,
// no scopes: no network, no writable host paths) and listed with the MCP SDK Client: initialize,
// tools/list, prompts/list, resources/list, resources/templates/list. When the sandboxed start
// fails, a plain stdio spawn (StdioClientTransport, 20 s) is tried; the record's `notes` says which
// ran. Results go to benign-packages/<first letter>.jsonl (one line per package, sorted by package),
// failures to benign-packages/failed.txt. Packages one at a time. Already-collected packages are
// skipped unless --force, and packages listed in failed.txt unless --retry-failed.
//
// Usage (after `npm run build --silent`):
//   node scripts/collect-benign-corpus.mjs [--list FILE] [--prefix DIR] [--only NAME] [--force] [--retry-failed] [--plain] [--batch N] [--out DIR]
//   node scripts/collect-benign-corpus.mjs --merge DIR   (moves a --out run's records and failures into the corpus)
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const corpusDir = join(repo, 'test/scan/corpus/data/benign-packages');
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const value = (name, fallback) => { const i = args.indexOf(name); return i >= 0 && args[i + 1] ? args[i + 1] : fallback; };
// --out DIR keeps a run's new records (and its failed.txt) apart from the corpus, so they can be measured
// untouched before they are merged; packages already in the corpus are still skipped.
const outDir = resolve(value('--out', corpusDir));
const mergeFrom = value('--merge', undefined);
const listFile = value('--list', join(corpusDir, 'packages.txt'));
const prefixRoot = value('--prefix', '/work/pkgs');
const only = value('--only', undefined);
const force = flag('--force');
const retryFailed = flag('--retry-failed');
const plainOnly = flag('--plain');
const LIST_TIMEOUT_MS = 30_000;
const PLAIN_TIMEOUT_MS = 20_000;
const INSTALL_TIMEOUT_MS = 240_000;
const BATCH = Number(value('--batch', '1'));

const sdk = (p) => pathToFileURL(join(repo, 'node_modules/@modelcontextprotocol/sdk/dist/esm', p)).href;
const { Client } = await import(sdk('client/index.js'));
const { StdioClientTransport } = await import(sdk('client/stdio.js'));
const { ReadBuffer, serializeMessage } = await import(sdk('shared/stdio.js'));
// Listings are requested raw (any JSON object is accepted) so they are kept exactly as served, even
// when a server's schema would fail the SDK's typed result validation.
const { z } = await import(pathToFileURL(join(repo, 'node_modules/zod/index.js')).href);
const RAW = z.looseObject({});

let createSandbox;
try {
  ({ createSandbox } = await import(pathToFileURL(join(repo, 'dist/src/sandbox/index.js')).href));
} catch (error) {
  console.error(`sandbox unavailable (${error.message}); run npm run build --silent first. Listing plain only.`);
}

// Dummy credentials: many servers refuse to start without their key, but listing needs none.
const DUMMY_ENV = {
  API_KEY: 'dummy', API_TOKEN: 'dummy', ACCESS_TOKEN: 'dummy', AUTH_TOKEN: 'dummy', TOKEN: 'dummy',
  GITHUB_PERSONAL_ACCESS_TOKEN: 'dummy', GITHUB_TOKEN: 'dummy', GITLAB_PERSONAL_ACCESS_TOKEN: 'dummy', GITLAB_TOKEN: 'dummy',
  BRAVE_API_KEY: 'dummy', TAVILY_API_KEY: 'dummy', FIRECRAWL_API_KEY: 'dummy', EXA_API_KEY: 'dummy',
  PERPLEXITY_API_KEY: 'dummy', SERPER_API_KEY: 'dummy', OPENAI_API_KEY: 'dummy', ANTHROPIC_API_KEY: 'dummy',
  SLACK_BOT_TOKEN: 'xoxb-dummy', SLACK_TEAM_ID: 'T00000000', SLACK_MCP_XOXP_TOKEN: 'xoxp-dummy',
  GOOGLE_MAPS_API_KEY: 'dummy', NOTION_API_KEY: 'dummy', NOTION_TOKEN: 'dummy', LINEAR_API_KEY: 'dummy',
  STRIPE_SECRET_KEY: 'sk_test_dummy', SENTRY_ACCESS_TOKEN: 'dummy', DD_API_KEY: 'dummy', DD_APP_KEY: 'dummy',
  DATADOG_API_KEY: 'dummy', DATADOG_APP_KEY: 'dummy', CIRCLECI_TOKEN: 'dummy', LAUNCHDARKLY_API_KEY: 'dummy',
  HUBSPOT_ACCESS_TOKEN: 'dummy', SHORTCUT_API_TOKEN: 'dummy', APIFY_TOKEN: 'dummy', FIGMA_API_KEY: 'dummy',
  AIRTABLE_API_KEY: 'dummy', TODOIST_API_TOKEN: 'dummy', ASANA_ACCESS_TOKEN: 'dummy', TRELLO_API_KEY: 'dummy',
  TRELLO_TOKEN: 'dummy', JIRA_API_TOKEN: 'dummy', JIRA_URL: 'https://example.invalid', JIRA_EMAIL: 'dummy@example.invalid',
  ATLASSIAN_API_TOKEN: 'dummy', ATLASSIAN_SITE_NAME: 'example', ATLASSIAN_USER_EMAIL: 'dummy@example.invalid',
  CONFLUENCE_URL: 'https://example.invalid', CONFLUENCE_API_TOKEN: 'dummy', PINECONE_API_KEY: 'dummy',
  REPLICATE_API_TOKEN: 'dummy', MAPBOX_ACCESS_TOKEN: 'pk.dummy', AMAP_MAPS_API_KEY: 'dummy', NEON_API_KEY: 'dummy',
  HEROKU_API_KEY: 'dummy', CLOUDFLARE_API_TOKEN: 'dummy', VERCEL_API_TOKEN: 'dummy', POSTMAN_API_KEY: 'dummy',
  BROWSERBASE_API_KEY: 'dummy', BROWSERBASE_PROJECT_ID: 'dummy', BRIGHTDATA_API_TOKEN: 'dummy', API_TOKEN_BRIGHTDATA: 'dummy',
  MONDAY_TOKEN: 'dummy', ELASTICSEARCH_URL: 'http://127.0.0.1:9', ES_URL: 'http://127.0.0.1:9', ES_API_KEY: 'dummy',
  DATABASE_URL: 'postgresql://dummy:dummy@127.0.0.1:9/dummy', POSTGRES_URL: 'postgresql://dummy:dummy@127.0.0.1:9/dummy',
  MDB_MCP_CONNECTION_STRING: 'mongodb://127.0.0.1:9', MONGODB_URI: 'mongodb://127.0.0.1:9', REDIS_URL: 'redis://127.0.0.1:9',
  MYSQL_HOST: '127.0.0.1', MYSQL_PORT: '9', MYSQL_USER: 'dummy', MYSQL_PASS: 'dummy', MYSQL_DB: 'dummy',
  GRAFANA_URL: 'http://127.0.0.1:9', GRAFANA_API_KEY: 'dummy', ARGOCD_BASE_URL: 'http://127.0.0.1:9', ARGOCD_API_TOKEN: 'dummy',
  SUPABASE_URL: 'http://127.0.0.1:9', SUPABASE_KEY: 'dummy', SUPABASE_ACCESS_TOKEN: 'dummy', GOOGLE_API_KEY: 'dummy',
  GOOGLE_CLIENT_ID: 'dummy', GOOGLE_CLIENT_SECRET: 'dummy', RESEND_API_KEY: 'dummy', DATAFORSEO_USERNAME: 'dummy',
  DATAFORSEO_PASSWORD: 'dummy', COOLIFY_BASE_URL: 'http://127.0.0.1:9', COOLIFY_ACCESS_TOKEN: 'dummy', METABASE_URL: 'http://127.0.0.1:9',
  METABASE_API_KEY: 'dummy', PLANE_API_KEY: 'dummy', PLANE_WORKSPACE_SLUG: 'dummy', TELNYX_API_KEY: 'dummy',
  SEARXNG_URL: 'http://127.0.0.1:9', CODACY_ACCOUNT_TOKEN: 'dummy', HOSTINGER_API_TOKEN: 'dummy', Z_AI_API_KEY: 'dummy',
  CHANNEL_ACCESS_TOKEN: 'dummy', DESTINATION_USER_ID: 'dummy', BROWSERSTACK_USERNAME: 'dummy', BROWSERSTACK_ACCESS_KEY: 'dummy',
  AZURE_DEVOPS_ORG_URL: 'https://example.invalid', AZURE_DEVOPS_PAT: 'dummy', AZURE_DEVOPS_AUTH_METHOD: 'pat',
  CONTEXT7_API_KEY: 'dummy', TESTSPRITE_API_KEY: 'dummy', SMITHERY_API_KEY: 'dummy', DYNATRACE_ENV_URL: 'https://example.invalid',
  HOME: '/tmp',
};

function run(command, argv, options = {}) {
  return new Promise((done) => {
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'], shell: false, ...options });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeout ?? INSTALL_TIMEOUT_MS);
    child.on('error', (error) => { clearTimeout(timer); done({ code: -1, out, err: `${err}${error.message}` }); });
    child.on('close', (code, signal) => { clearTimeout(timer); done({ code: code ?? (signal ? 128 : -1), out, err: signal ? `${err}killed by ${signal}` : err }); });
  });
}

function parseLine(line) {
  const tokens = line.trim().split(/\s+/);
  const spec = tokens.shift();
  const at = spec.lastIndexOf('@');
  const name = at > 0 ? spec.slice(0, at) : spec;
  const version = at > 0 ? spec.slice(at + 1) : 'latest';
  const env = {};
  const serverArgs = [];
  for (const t of tokens) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(t);
    if (m) env[m[1]] = m[2];
    else serverArgs.push(t);
  }
  return { spec, name, version, env, serverArgs };
}

function findBin(pkgDir, name) {
  const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  let bin = manifest.bin;
  if (typeof bin === 'string') return { bin: join(pkgDir, bin), version: manifest.version };
  if (bin && typeof bin === 'object') {
    const entries = Object.entries(bin);
    const base = name.split('/').pop();
    const pick = entries.find(([k]) => k === base) ?? entries.find(([k]) => /mcp|server/i.test(k)) ?? entries[0];
    if (pick) return { bin: join(pkgDir, pick[1]), version: manifest.version };
  }
  if (manifest.main) return { bin: join(pkgDir, manifest.main), version: manifest.version, fromMain: true };
  return { bin: undefined, version: manifest.version };
}

function isNodeScript(file) {
  try {
    const head = readFileSync(file, { encoding: 'utf8' }).slice(0, 200);
    if (head.startsWith('#!')) return /node|bun|tsx/.test(head.split('\n')[0]) && !/bun\b/.test(head.split('\n')[0]);
    return /\.(c|m)?js$/.test(file);
  } catch {
    return false;
  }
}

/** An MCP client transport over an already-spawned child's stdio (the sandbox's handle). */
class ChildTransport {
  constructor(child) { this.child = child; this.buffer = new ReadBuffer(); }
  async start() {
    this.child.stdout.on('data', (chunk) => {
      this.buffer.append(chunk);
      for (;;) {
        let message;
        try { message = this.buffer.readMessage(); } catch (error) { this.onerror?.(error); continue; }
        if (message === null) break;
        this.onmessage?.(message);
      }
    });
    this.child.on('exit', () => this.onclose?.());
    this.child.stdin.on('error', (error) => this.onerror?.(error));
  }
  async send(message) {
    await new Promise((done) => { if (this.child.stdin.write(serializeMessage(message))) done(); else this.child.stdin.once('drain', done); });
  }
  async close() { this.child.stdin.end(); }
}

async function paginate(fetchPage) {
  const items = [];
  let cursor;
  for (let i = 0; i < 50; i++) {
    const page = await fetchPage(cursor);
    items.push(...page.items);
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  return items;
}

async function listWith(client, transport, timeoutMs) {
  const opts = { timeout: timeoutMs };
  await client.connect(transport, opts);
  const caps = client.getServerCapabilities() ?? {};
  const info = client.getServerVersion();
  const instructions = client.getInstructions?.();
  const safe = async (fn) => { try { return await fn(); } catch (error) { if (String(error.message).includes('-32601') || /not found|not supported/i.test(error.message)) return []; throw error; } };
  const list = (method, key) => paginate(async (c) => { const r = await client.request({ method, params: c ? { cursor: c } : {} }, RAW, opts); return { items: Array.isArray(r[key]) ? r[key] : [], nextCursor: r.nextCursor }; });
  const tools = caps.tools ? await safe(() => list('tools/list', 'tools')) : [];
  const prompts = caps.prompts ? await safe(() => list('prompts/list', 'prompts')) : [];
  const resources = caps.resources ? await safe(() => list('resources/list', 'resources')) : [];
  const resourceTemplates = caps.resources ? await safe(() => list('resources/templates/list', 'resourceTemplates')) : [];
  return {
    name: info?.name ?? 'server', version: info?.version ?? '0.0.0',
    ...(instructions ? { instructions } : {}),
    tools, prompts, resources, resourceTemplates, scopes: [],
  };
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms / 1000} s`)), ms); })]).finally(() => clearTimeout(timer));
}

async function listSandboxed(pkg, prefix, bin, env) {
  const backend = createSandbox({ backend: 'bwrap' });
  const handle = await backend.spawn({
    serverName: `corpus-${pkg.name.replace(/[^a-z0-9]+/gi, '-')}`.slice(0, 60),
    command: process.execPath,
    args: [bin, ...pkg.serverArgs],
    env,
    packageDirs: [prefix],
    scopes: [],
  });
  let stderr = '';
  handle.child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-2000); });
  const client = new Client({ name: 'bastion-corpus-collector', version: '1.0.0' });
  try {
    return await withTimeout(listWith(client, new ChildTransport(handle.child), LIST_TIMEOUT_MS), LIST_TIMEOUT_MS, 'sandboxed listing');
  } catch (error) {
    throw new Error(`${error.message}${stderr ? ` | stderr: ${lastLine(stderr)}` : ''}`, { cause: error });
  } finally {
    await client.close().catch(() => {});
    await handle.dispose().catch(() => {});
  }
}

async function listPlain(pkg, bin, env) {
  const transport = new StdioClientTransport({ command: process.execPath, args: [bin, ...pkg.serverArgs], env: { PATH: process.env.PATH, ...env }, cwd: '/tmp', stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (d) => { stderr = (stderr + d).slice(-2000); });
  const client = new Client({ name: 'bastion-corpus-collector', version: '1.0.0' });
  try {
    return await withTimeout(listWith(client, transport, PLAIN_TIMEOUT_MS), PLAIN_TIMEOUT_MS, 'plain listing');
  } catch (error) {
    throw new Error(`${error.message}${stderr ? ` | stderr: ${lastLine(stderr)}` : ''}`, { cause: error });
  } finally {
    await client.close().catch(() => {});
  }
}

const lastLine = (s) => s.trim().split('\n').filter(Boolean).slice(-2).join(' / ').slice(0, 300);

function guessLanguage(server) {
  const text = JSON.stringify([server.instructions, server.tools.map((t) => [t.description, t.title]), server.prompts.map((p) => p.description)]);
  const count = (re) => (text.match(re) ?? []).length;
  const kana = count(/[\u3040-\u30ff]/g);
  const han = count(/[\u4e00-\u9fff]/g);
  const cyr = count(/[\u0400-\u04ff]/g);
  const latin = count(/[a-z]/gi);
  if (kana > 20 && kana + han > latin / 4) return 'ja';
  if (han > 40 && han > latin / 6) return 'zh';
  if (cyr > 40 && cyr > latin / 2) return 'ru';
  const words = (list) => list.reduce((n, w) => n + count(new RegExp(`\\b${w}\\b`, 'gi')), 0);
  const en = words(['the', 'and', 'of', 'to', 'with']);
  const scores = { de: words(['der', 'die', 'und', 'mit', 'nicht']), fr: words(['le', 'les', 'des', 'pour', 'avec']), es: words(['el', 'los', 'para', 'con', 'una']) };
  const [best, n] = Object.entries(scores).sort((a, b) => b[1] - a[1])[0];
  return n > en && n > 10 ? best : 'en';
}

// Scoped names keep their scope apart with a double dash, so @playwright/mcp and playwright-mcp differ.
const idOf = (name) => `benign-pkg-${name.replace(/^@/, '').split('/').map((part) => part.replace(/[^a-z0-9]+/gi, '-').toLowerCase()).join('--')}`;
const letterOf = (name) => (name.replace(/^@/, '')[0] ?? '_').toLowerCase().replace(/[^a-z0-9]/, '_');

function loadCollected(dir = outDir) {
  const collected = new Map();
  if (!existsSync(dir)) return collected;
  for (const f of readdirSync(dir).filter((f) => /^[a-z0-9_]\.jsonl$/.test(f))) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean)) {
      const rec = JSON.parse(line);
      rec.id = idOf(rec.source.package);
      collected.set(rec.source.package, rec);
    }
  }
  return collected;
}

function writeCollected(collected, dir = outDir) {
  const byLetter = new Map();
  for (const rec of [...collected.values()].sort((a, b) => a.source.package.localeCompare(b.source.package))) {
    const l = letterOf(rec.source.package);
    if (!byLetter.has(l)) byLetter.set(l, []);
    byLetter.get(l).push(JSON.stringify(rec));
  }
  mkdirSync(dir, { recursive: true });
  for (const [l, lines] of byLetter) writeFileSync(join(dir, `${l}.jsonl`), `${lines.join('\n')}\n`);
}

function loadFailed(dir = outDir) {
  const failed = new Map();
  const file = join(dir, 'failed.txt');
  if (!existsSync(file)) return failed;
  for (const line of readFileSync(file, 'utf8').split('\n').filter((l) => l && !l.startsWith('#'))) {
    const [spec, ...reason] = line.split('\t');
    failed.set(spec, reason.join('\t'));
  }
  return failed;
}

function writeFailed(failed, dir = outDir) {
  const lines = [...failed.entries()].sort((a, b) => a[0].localeCompare(b[0])).map(([s, r]) => `${s}\t${r.replace(/\s+/g, ' ')}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'failed.txt'), `# package<TAB>reason (written by scripts/collect-benign-corpus.mjs)\n${lines.join('\n')}\n`);
}

const ownPrefix = (pkg) => join(prefixRoot, pkg.name.replace(/^@/, '').replace(/\//g, '__'));
const installedIn = new Map();
const isInstalled = (prefix, pkg) => existsSync(join(prefix, 'node_modules', pkg.name, 'package.json'));

/**
 * Installs the next few packages with one `npm install` into a shared prefix: shared dependencies
 * (the MCP SDK, zod, express, ...) are resolved and unpacked once instead of once per package, which
 * matters on a loaded machine. Still one npm process at a time. A failed batch falls back to
 * installing each package alone in collect().
 */
async function installBatch(batch) {
  const prefix = join(prefixRoot, `batch-${batch[0].name.replace(/^@/, '').replace(/\//g, '__')}`);
  mkdirSync(prefix, { recursive: true });
  const inst = await run('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--ignore-scripts', '--no-save', '--prefer-offline', '--loglevel=error', ...batch.map((p) => p.spec)], { cwd: prefix, timeout: INSTALL_TIMEOUT_MS * 2 });
  if (inst.code !== 0) { console.log(`batch install of ${batch.length} failed (${lastLine(inst.err).slice(0, 160)}); installing them one by one`); return; }
  for (const p of batch) if (isInstalled(prefix, p)) installedIn.set(p.name, prefix);
}

async function collect(pkg) {
  let prefix = installedIn.get(pkg.name) ?? ownPrefix(pkg);
  mkdirSync(prefix, { recursive: true });
  const pkgDir = join(prefix, 'node_modules', pkg.name);
  if (!existsSync(join(pkgDir, 'package.json'))) {
    const inst = await run('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--ignore-scripts', '--no-save', '--prefer-offline', '--loglevel=error', pkg.spec], { cwd: prefix, timeout: INSTALL_TIMEOUT_MS });
    if (inst.code !== 0) throw new Error(`install failed: ${lastLine(inst.err)}`);
  }
  const { bin, version } = findBin(pkgDir, pkg.name);
  if (!bin || !existsSync(bin)) throw new Error('no bin in package.json');
  const realBin = realpathSync(bin);
  if (!isNodeScript(realBin)) throw new Error(`bin is not a node script: ${realBin.slice(prefix.length)}`);
  const env = { ...DUMMY_ENV, ...pkg.env };
  let server;
  let mode;
  let sandboxError;
  if (createSandbox && !plainOnly) {
    try {
      server = await listSandboxed(pkg, prefix, realBin, env);
      mode = 'sandboxed';
    } catch (error) {
      sandboxError = error.message;
    }
  }
  if (!server) {
    try {
      server = await listPlain(pkg, realBin, env);
      mode = 'plain';
    } catch (error) {
      throw new Error(`${sandboxError ? `sandboxed: ${sandboxError}; ` : ''}plain: ${error.message}`, { cause: error });
    }
  }
  if (server.tools.length + server.prompts.length + server.resources.length + server.resourceTemplates.length === 0) throw new Error(`${mode}: server listed nothing`);
  return {
    id: idOf(pkg.name),
    label: 'benign', class: 'benign', language: guessLanguage(server),
    notes: `listed live (${mode}${sandboxError ? ` after the sandbox failed: ${sandboxError.slice(0, 160)}` : ''}) by scripts/collect-benign-corpus.mjs`,
    server,
    source: { package: pkg.name, version },
  };
}

// --merge DIR moves a separate run's records and failures into the corpus (a record replaces the failure of its package).
if (mergeFrom) {
  const collected = loadCollected(corpusDir);
  const failed = loadFailed(corpusDir);
  const added = loadCollected(resolve(mergeFrom));
  for (const [name, rec] of added) collected.set(name, rec);
  for (const [spec, reason] of loadFailed(resolve(mergeFrom))) if (!added.has(parseLine(spec).name)) failed.set(spec, reason);
  for (const spec of [...failed.keys()]) if (added.has(parseLine(spec).name)) failed.delete(spec);
  writeCollected(collected, corpusDir);
  writeFailed(failed, corpusDir);
  console.log(`merged ${added.size} packages from ${mergeFrom}; ${collected.size} packages in the corpus`);
  process.exit(0);
}

const packages = readFileSync(listFile, 'utf8').split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter(Boolean).map(parseLine).filter((p) => !only || p.name === only);
const inCorpus = outDir === corpusDir ? new Map() : loadCollected(corpusDir);
const failedInCorpus = outDir === corpusDir ? new Map() : loadFailed(corpusDir);
const collected = loadCollected();
const failed = loadFailed();
const isCollected = (name) => collected.has(name) || inCorpus.has(name);
const hasFailed = (spec) => failed.has(spec) || failedInCorpus.has(spec);
let ok = 0;
let bad = 0;
const wanted = (pkg) => (force || !isCollected(pkg.name)) && (force || retryFailed || !hasFailed(pkg.spec));
for (const [index, pkg] of packages.entries()) {
  if (!force && isCollected(pkg.name)) { console.log(`skip ${pkg.spec} (collected)`); continue; }
  if (!force && !retryFailed && hasFailed(pkg.spec)) { console.log(`skip ${pkg.spec} (failed before; --retry-failed to try again)`); continue; }
  if (BATCH > 1 && !installedIn.has(pkg.name) && !isInstalled(ownPrefix(pkg), pkg)) {
    const batch = packages.slice(index).filter((p) => wanted(p) && !installedIn.has(p.name) && !isInstalled(ownPrefix(p), p)).slice(0, BATCH);
    await installBatch(batch);
  }
  const started = Date.now();
  try {
    const rec = await collect(pkg);
    collected.set(pkg.name, rec);
    failed.delete(pkg.spec);
    writeCollected(collected);
    writeFailed(failed);
    ok++;
    console.log(`ok   ${pkg.spec}: ${rec.server.tools.length} tools, ${rec.server.prompts.length} prompts, ${rec.server.resources.length} resources (${rec.notes.match(/\((\w+)/)[1]}, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (error) {
    failed.set(pkg.spec, error.message);
    writeFailed(failed);
    bad++;
    console.log(`FAIL ${pkg.spec}: ${error.message.slice(0, 300)}`);
  }
}
console.log(`done: ${ok} collected, ${bad} failed this run; ${collected.size} packages in ${outDir}`);
process.exit(0);
