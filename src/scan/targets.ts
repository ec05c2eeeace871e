import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { extname, join, relative, resolve } from 'node:path';
import { parseYaml } from './yaml.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { PromptDefinition, ResourceDefinition, ServerMetadata, SourceFile, StdioCommand, ToolDefinition } from './types.js';

export class TargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TargetError';
  }
}

export interface PackageRef {
  ecosystem: 'npm';
  name: string;
  version?: string;
}

/** A loaded manifest (Bastion's own) or registry server.json. */
export interface LoadedDocument {
  kind: 'manifest' | 'server.json';
  path: string;
  doc: Record<string, unknown>;
  metadata: ServerMetadata;
  packages: PackageRef[];
  publisherKey?: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function toTool(raw: unknown, where: string): ToolDefinition {
  if (!isRecord(raw) || typeof raw.name !== 'string') throw new TargetError(`${where}: a tool needs a string "name"`);
  const tool: ToolDefinition = { name: raw.name };
  if (typeof raw.title === 'string') tool.title = raw.title;
  if (typeof raw.description === 'string') tool.description = raw.description;
  if (raw.inputSchema !== undefined) tool.inputSchema = raw.inputSchema;
  if (raw.outputSchema !== undefined) tool.outputSchema = raw.outputSchema;
  if (isRecord(raw.annotations)) tool.annotations = raw.annotations;
  const scopes = stringList(raw.scopes);
  if (scopes.length > 0) tool.scopes = scopes;
  return tool;
}

function toPrompt(raw: unknown): PromptDefinition | undefined {
  if (!isRecord(raw) || typeof raw.name !== 'string') return undefined;
  const args = Array.isArray(raw.arguments) ? raw.arguments.filter(isRecord).map((a) => ({ name: str(a.name) ?? '', ...(str(a.description) ? { description: str(a.description) } : {}) })) : [];
  return { name: raw.name, ...(str(raw.title) ? { title: str(raw.title) } : {}), ...(str(raw.description) ? { description: str(raw.description) } : {}), arguments: args };
}

function toResource(raw: unknown): ResourceDefinition | undefined {
  if (!isRecord(raw)) return undefined;
  const out: ResourceDefinition = {};
  for (const key of ['name', 'title', 'uri', 'uriTemplate', 'description', 'mimeType'] as const) {
    const v = str(raw[key]);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

/** Builds ServerMetadata from anything shaped like MCP list results (a manifest or a live listing). */
export function metadataFromLists(name: string, parts: { version?: string; instructions?: string; tools?: unknown[]; prompts?: unknown[]; resources?: unknown[]; resourceTemplates?: unknown[]; scopes?: string[] }, where = name): ServerMetadata {
  const tools = (parts.tools ?? []).map((t, i) => toTool(t, `${where}: tools[${i}]`));
  const scopes = [...(parts.scopes ?? []), ...tools.flatMap((t) => t.scopes ?? [])];
  return {
    name,
    ...(parts.version ? { version: parts.version } : {}),
    ...(parts.instructions ? { instructions: parts.instructions } : {}),
    tools,
    prompts: (parts.prompts ?? []).map(toPrompt).filter((p): p is PromptDefinition => p !== undefined),
    resources: (parts.resources ?? []).map(toResource).filter((r): r is ResourceDefinition => r !== undefined),
    resourceTemplates: (parts.resourceTemplates ?? []).map(toResource).filter((r): r is ResourceDefinition => r !== undefined),
    scopes: [...new Set(scopes)],
  };
}

export function parseNpmSpec(spec: string): PackageRef {
  const at = spec.lastIndexOf('@');
  if (at > 0) return { ecosystem: 'npm', name: spec.slice(0, at), version: spec.slice(at + 1) };
  return { ecosystem: 'npm', name: spec };
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** Loads a Bastion manifest (YAML or JSON) or a registry server.json. */
export function loadDocument(path: string): LoadedDocument {
  const text = readFileSync(path, 'utf8');
  let doc: unknown;
  try {
    doc = extname(path) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new TargetError(`${path}: cannot parse (${(error as Error).message}); expected a Bastion manifest (YAML/JSON) or a registry server.json`);
  }
  if (!isRecord(doc) || typeof doc.name !== 'string') throw new TargetError(`${path}: expected an object with a string "name"`);
  const isServerJson = Array.isArray(doc.packages) || Array.isArray(doc.remotes) || (typeof doc.$schema === 'string' && doc.$schema.includes('server.schema'));
  if (isServerJson && !Array.isArray(doc.tools)) {
    const packages: PackageRef[] = list(doc.packages).filter(isRecord).flatMap((p) => {
      const type = str(p.registryType) ?? str(p.registry_type) ?? str(p.registry_name);
      const id = str(p.identifier) ?? str(p.name);
      return type === 'npm' && id ? [{ ecosystem: 'npm' as const, name: id, ...(str(p.version) ? { version: str(p.version) } : {}) }] : [];
    });
    const metadata = metadataFromLists(doc.name, { ...(str(doc.version) ? { version: str(doc.version) } : {}), ...(str(doc.description) ? { instructions: str(doc.description) } : {}) }, path);
    return { kind: 'server.json', path, doc, metadata, packages };
  }
  const metadata = metadataFromLists(doc.name, {
    ...(str(doc.version) ? { version: str(doc.version) } : {}),
    ...(str(doc.instructions) ? { instructions: str(doc.instructions) } : {}),
    tools: list(doc.tools), prompts: list(doc.prompts), resources: list(doc.resources), resourceTemplates: list(doc.resourceTemplates),
    scopes: stringList(doc.scopes),
  }, path);
  const pkg = isRecord(doc.package) ? doc.package : undefined;
  const packages: PackageRef[] = typeof doc.package === 'string' ? [parseNpmSpec(doc.package)] : pkg && typeof pkg.name === 'string' ? [{ ecosystem: 'npm', name: pkg.name, ...(str(pkg.version) ? { version: str(pkg.version) } : {}) }] : [];
  const publisher = isRecord(doc.publisher) ? str(doc.publisher.key) ?? str(doc.publisher.id) : str(doc.publisher);
  return { kind: 'manifest', path, doc, metadata, packages, ...(publisher ? { publisherKey: publisher } : {}) };
}

const SKIP_DIRS = new Set(['.git', 'node_modules']);

/** Reads the files the code analyzer cares about; never follows symlinks out of the tree. */
export function readPackageFiles(root: string, options: { codeExtensions: string[]; maxFileBytes: number; includeNodeModules?: boolean }): SourceFile[] {
  const files: SourceFile[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      const st = lstatSync(full);
      if (st.isSymbolicLink()) continue;
      if (st.isDirectory()) {
        if (!SKIP_DIRS.has(name) || (name === 'node_modules' && options.includeNodeModules)) walk(full);
        continue;
      }
      if (!st.isFile()) continue;
      const isCode = options.codeExtensions.some((ext) => name.endsWith(ext)) && !name.endsWith('.d.ts');
      if (!isCode && name !== 'package.json') continue;
      if (st.size > options.maxFileBytes) continue;
      files.push({ path: relative(root, full).split('\\').join('/'), content: readFileSync(full, 'utf8'), bytes: st.size });
    }
  };
  walk(root);
  return files;
}

function runProcess(file: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const err: Buffer[] = [];
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code: code ?? 1, stderr: Buffer.concat(err).toString('utf8') }));
  });
}

/** An unpacked package: where its files are, and how to clean up. */
export interface UnpackedPackage {
  root: string;
  artifactPath: string;
  packageJson?: { name?: string; version?: string };
  cleanup(): void;
}

/** Extracts an npm tarball with tar (argv only); GNU tar refuses absolute and `..` member names. */
export async function unpackTarball(tarball: string): Promise<UnpackedPackage> {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-scan-pkg-'));
  const { code, stderr } = await runProcess('tar', ['-xzf', tarball, '-C', dir, '--no-same-owner', '--no-same-permissions']);
  if (code !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new TargetError(`${tarball}: tar could not extract it (${stderr.trim().slice(0, 200)}); expected an npm .tgz`);
  }
  const root = existsSync(join(dir, 'package')) ? join(dir, 'package') : dir;
  return { root, artifactPath: tarball, ...readPackageJson(root), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function readPackageJson(root: string): { packageJson?: { name?: string; version?: string } } {
  try {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as unknown;
    if (isRecord(pkg)) return { packageJson: { ...(str(pkg.name) ? { name: str(pkg.name) } : {}), ...(str(pkg.version) ? { version: str(pkg.version) } : {}) } };
  } catch {
    // A directory without package.json is still scannable.
  }
  return {};
}

export function openDirectory(dir: string): UnpackedPackage {
  return { root: resolve(dir), artifactPath: resolve(dir), ...readPackageJson(dir), cleanup: () => undefined };
}

/**
 * Finds name@version's tarball in npm's local cache (cacache) without the network: the index
 * bucket is sha256(key), the content is addressed by its sha512 integrity, which is re-checked.
 */
export function npmCacheTarball(name: string, version: string, cacheDir = join(homedir(), '.npm', '_cacache'), registry = 'https://registry.npmjs.org'): string {
  const base = name.startsWith('@') ? name.split('/')[1] : name;
  const key = `make-fetch-happen:request-cache:${registry}/${name}/-/${base}-${version}.tgz`;
  const bucketHash = createHash('sha256').update(key).digest('hex');
  const bucket = join(cacheDir, 'index-v5', bucketHash.slice(0, 2), bucketHash.slice(2, 4), bucketHash.slice(4));
  if (!existsSync(bucket)) throw new TargetError(`${name}@${version} is not in the npm cache at ${cacheDir}; run \`npm cache add ${name}@${version}\` where the registry is reachable, or pass a .tgz or a directory`);
  let integrity: string | undefined;
  for (const line of readFileSync(bucket, 'utf8').split('\n')) {
    const tab = line.indexOf('\t');
    if (tab < 0) continue;
    try {
      const entry = JSON.parse(line.slice(tab + 1)) as { key?: string; integrity?: string | null };
      if (entry.key === key) integrity = entry.integrity ?? undefined;
    } catch {
      // A torn line in the index is skipped, as npm does.
    }
  }
  const sri = integrity?.split(/\s+/).find((s) => s.startsWith('sha512-'));
  if (!sri) throw new TargetError(`${name}@${version}: the npm cache index has no sha512 integrity for ${key}`);
  const hex = Buffer.from(sri.slice('sha512-'.length), 'base64').toString('hex');
  const content = join(cacheDir, 'content-v2', 'sha512', hex.slice(0, 2), hex.slice(2, 4), hex.slice(4));
  const actual = createHash('sha512').update(readFileSync(content)).digest('hex');
  if (actual !== hex) throw new TargetError(`${name}@${version}: cached tarball ${content} does not match its integrity; clear it with npm cache verify`);
  return content;
}

export interface LiveListing {
  metadata: ServerMetadata;
  serverVersion?: { name: string; version: string };
}

/** Connects with the official SDK client over stdio and lists everything the server offers. */
export async function listLiveServer(cmd: StdioCommand, timeoutMs = 15_000): Promise<LiveListing> {
  // The SDK (and its validators) load only for a live listing: a manifest scan's start-up does not pay for them.
  const [{ Client }, { StdioClientTransport }] = await Promise.all([import('@modelcontextprotocol/sdk/client/index.js'), import('@modelcontextprotocol/sdk/client/stdio.js')]);
  const transport = new StdioClientTransport({ command: cmd.command, args: cmd.args, ...(cmd.env ? { env: cmd.env } : {}), ...(cmd.cwd ? { cwd: cmd.cwd } : {}), stderr: 'ignore' });
  const client = new Client({ name: 'bastion-scan', version: '1' }, { capabilities: {} });
  try {
    await client.connect(transport, { timeout: timeoutMs });
    return await collectListing(client, timeoutMs);
  } finally {
    await client.close().catch(() => undefined);
  }
}

async function paginate<T>(fetchPage: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor?: string | undefined }>): Promise<T[]> {
  const all: T[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 100; page += 1) {
    const { items, nextCursor } = await fetchPage(cursor);
    all.push(...items);
    if (!nextCursor) break;
    cursor = nextCursor;
  }
  return all;
}

export async function collectListing(client: Client, timeoutMs: number): Promise<LiveListing> {
  const caps = client.getServerCapabilities() ?? {};
  const opts = { timeout: timeoutMs };
  const tools = caps.tools ? await paginate(async (cursor) => { const r = await client.listTools(cursor ? { cursor } : {}, opts); return { items: r.tools as unknown[], nextCursor: r.nextCursor }; }) : [];
  const prompts = caps.prompts ? await paginate(async (cursor) => { const r = await client.listPrompts(cursor ? { cursor } : {}, opts); return { items: r.prompts as unknown[], nextCursor: r.nextCursor }; }) : [];
  const resources = caps.resources ? await paginate(async (cursor) => { const r = await client.listResources(cursor ? { cursor } : {}, opts); return { items: r.resources as unknown[], nextCursor: r.nextCursor }; }) : [];
  const templates = caps.resources ? await paginate(async (cursor) => { const r = await client.listResourceTemplates(cursor ? { cursor } : {}, opts); return { items: r.resourceTemplates as unknown[], nextCursor: r.nextCursor }; }) : [];
  const info = client.getServerVersion();
  const instructions = client.getInstructions();
  return {
    metadata: metadataFromLists(info?.name ?? 'server', { ...(info?.version ? { version: info.version } : {}), ...(instructions ? { instructions } : {}), tools, prompts, resources, resourceTemplates: templates }),
    ...(info ? { serverVersion: { name: info.name, version: info.version } } : {}),
  };
}
