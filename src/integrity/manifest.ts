// The Bastion server manifest: one MCP server, its publisher, how it runs and every definition it
// offers with declared scopes. Field names follow the MCP registry server.json where they exist.
import { definitionSubset } from './hashlock.js';
import { validateAgainst } from './schemas.js';
import { IntegrityFileError, parseSourceText, readSourceFile, type SourceFile } from './source.js';
import type { DataIntegrityProof } from './proof.js';

export interface ManifestTool {
  name: string;
  title?: string;
  description?: string;
  inputSchema: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
  scopes?: string[];
}

export interface ManifestResourceTemplate {
  uriTemplate: string;
  name: string;
  title?: string;
  description?: string;
  mimeType?: string;
  annotations?: Record<string, unknown>;
  scopes?: string[];
}

export interface ManifestResource {
  uri: string;
  name: string;
  title?: string;
  description?: string;
  mimeType?: string;
  annotations?: Record<string, unknown>;
  scopes?: string[];
}

export interface ManifestPrompt {
  name: string;
  title?: string;
  description?: string;
  arguments?: { name: string; title?: string; description?: string; required?: boolean }[];
  scopes?: string[];
}

export interface ManifestPackage {
  registryType: string;
  registryBaseUrl?: string;
  identifier: string;
  version: string;
  digest?: string;
  fileSha256?: string;
  transport?: { type: 'stdio' | 'streamable-http' | 'sse'; url?: string };
  runtimeHint?: string;
  runtimeArguments?: unknown[];
  packageArguments?: unknown[];
  environmentVariables?: unknown[];
}

export interface Manifest {
  $schema?: string;
  name: string;
  title?: string;
  description?: string;
  version: string;
  publisher?: { name: string; url?: string; email?: string };
  repository?: Record<string, unknown>;
  websiteUrl?: string;
  packages?: ManifestPackage[];
  artifact?: { path?: string; kind?: 'file' | 'tree'; digest: string };
  run?: { command: string; args?: string[]; env?: Record<string, string> };
  remotes?: { type: 'streamable-http' | 'sse'; url: string; headers?: unknown[] }[];
  tools: ManifestTool[];
  resources?: ManifestResource[];
  resourceTemplates?: ManifestResourceTemplate[];
  prompts?: ManifestPrompt[];
  proof?: DataIntegrityProof;
}

export interface LoadedManifest {
  manifest: Manifest;
  source: SourceFile;
}

function checkManifest(source: SourceFile): LoadedManifest {
  validateAgainst('manifest.schema.json', source);
  const manifest = source.value as Manifest;
  const problems = [
    ...duplicates(source, manifest.tools, 'tools', (tool) => tool.name),
    ...duplicates(source, manifest.prompts ?? [], 'prompts', (prompt) => prompt.name),
    ...duplicates(source, manifest.resourceTemplates ?? [], 'resourceTemplates', (template) => template.name),
  ];
  if (problems.length > 0) throw new IntegrityFileError(problems);
  return { manifest, source };
}

function duplicates<T>(source: SourceFile, items: readonly T[], field: string, key: (item: T) => string): { file: string; line: number | undefined; field: string; message: string }[] {
  const seen = new Set<string>();
  const problems: { file: string; line: number | undefined; field: string; message: string }[] = [];
  items.forEach((item, index) => {
    const name = key(item);
    if (seen.has(name)) problems.push({ file: source.file, line: source.lineOf([field, index, 'name']), field: `${field}.${index}.name`, message: `'${name}' is declared twice; keep one entry per name` });
    seen.add(name);
  });
  return problems;
}

/** Reads and validates a manifest (YAML or JSON). Throws IntegrityFileError with file:line: field per problem. */
export function loadManifest(file: string): LoadedManifest {
  return checkManifest(readSourceFile(file));
}

export function parseManifest(text: string, file = '<manifest>'): LoadedManifest {
  return checkManifest(parseSourceText(text, file));
}

/** The manifest without its proof: what signatures and the hash lock cover. */
export function unsignedManifest(manifest: Manifest): Omit<Manifest, 'proof'> {
  const { proof: _proof, ...rest } = manifest;
  return rest;
}

/** The subset of an MCP registry server.json that a manifest carries over. */
export interface RegistryServerJson {
  name: string;
  description?: string;
  title?: string;
  version: string;
  repository?: Record<string, unknown>;
  websiteUrl?: string;
  packages?: ManifestPackage[];
  remotes?: { type: 'streamable-http' | 'sse'; url: string; headers?: unknown[] }[];
  [other: string]: unknown;
}

export interface FromRegistryOptions {
  publisher?: string;
  /** Definitions to carry (a registry entry has none): usually from a live tools/list. */
  tools?: ManifestTool[];
  prompts?: ManifestPrompt[];
  resourceTemplates?: ManifestResourceTemplate[];
}

/**
 * Converts a registry server.json into an unsigned manifest. Registry entries list no tools, so
 * tools come from `options` (or are filled in later); every tool still needs its scopes declared.
 */
export function manifestFromRegistry(server: RegistryServerJson, options: FromRegistryOptions = {}): Manifest {
  if (typeof server.name !== 'string' || typeof server.version !== 'string') throw new Error('a registry server.json needs name and version');
  const manifest: Manifest = { name: server.name, version: server.version, tools: options.tools ?? [] };
  if (server.title !== undefined) manifest.title = server.title;
  if (server.description !== undefined) manifest.description = server.description;
  const publisher = options.publisher ?? registryNamespace(server.name);
  if (publisher !== undefined) manifest.publisher = { name: publisher };
  if (server.repository !== undefined) manifest.repository = server.repository;
  if (server.websiteUrl !== undefined) manifest.websiteUrl = server.websiteUrl;
  if (server.packages !== undefined) {
    manifest.packages = server.packages.map((entry) => {
      const converted: ManifestPackage = { ...entry };
      // The registry pins MCPB files by a bare SHA-256; Bastion writes digests self-describing.
      if (typeof entry.fileSha256 === 'string' && /^[0-9a-f]{64}$/.test(entry.fileSha256)) converted.digest = `sha256:${entry.fileSha256}`;
      return converted;
    });
  }
  if (server.remotes !== undefined) manifest.remotes = server.remotes;
  if (options.prompts !== undefined) manifest.prompts = options.prompts;
  if (options.resourceTemplates !== undefined) manifest.resourceTemplates = options.resourceTemplates;
  return manifest;
}

function registryNamespace(name: string): string | undefined {
  const slash = name.indexOf('/');
  return slash > 0 ? name.slice(0, slash) : undefined;
}

export interface LiveDefinitionsLike {
  tools: Record<string, unknown>[];
  prompts: Record<string, unknown>[];
  resourceTemplates: Record<string, unknown>[];
}

/**
 * A manifest drafted from what a running server lists (the pinned fields only), with each
 * tool's scopes taken from `scopes` where known. A publisher reviews it, fills in missing
 * scopes and signs it; tools left without scopes are denied by the policy.
 */
export function manifestFromLive(base: Omit<Manifest, 'tools'> & { tools?: ManifestTool[] }, live: LiveDefinitionsLike, scopes: Readonly<Record<string, readonly string[]>> = {}): Manifest {
  const tools = live.tools.map((tool) => {
    const subset = definitionSubset('tools', tool) as unknown as ManifestTool;
    const declared = scopes[subset.name];
    return declared === undefined ? subset : { ...subset, scopes: [...declared] };
  });
  const manifest: Manifest = { ...base, tools };
  if (live.prompts.length > 0) manifest.prompts = live.prompts.map((prompt) => definitionSubset('prompts', prompt) as unknown as ManifestPrompt);
  if (live.resourceTemplates.length > 0) manifest.resourceTemplates = live.resourceTemplates.map((template) => definitionSubset('resourceTemplates', template) as unknown as ManifestResourceTemplate);
  return manifest;
}
