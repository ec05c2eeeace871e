import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { CodeFacts } from './analyzers/code.js';
import { analyzeMetadata, dedupe } from './analyzers/metadata.js';
import { analyzeObservedPermissions, analyzeStaticPermissions, parseScopes } from './analyzers/permissions.js';
import type { BehaviourOptions } from './analyzers/behaviour.js';
import type { SandboxBackend } from '../sandbox/index.js';
import { artifactDigest, manifestDigest, sha256Digest, toolDigest } from './digest.js';
import { matchThreatFeed, type ThreatFeed } from './feed.js';
import type { BehaviourSummary, ScanReport } from './report.js';
import { reputationFindings, type LoadedReputation } from './reputation.js';
import { loadRules, type RuleSet } from './rules.js';
import { computeScore } from './score.js';
import { applySuppressions, type Suppression } from './suppressions.js';
import { listLiveServer, loadDocument, npmCacheTarball, openDirectory, readPackageFiles, TargetError, unpackTarball, type LoadedDocument, type PackageRef, type UnpackedPackage } from './targets.js';
import type { Finding, ServerMetadata, StdioCommand } from './types.js';

// The behaviour analyzer (the MCP SDK client, zod, ajv), the code analyzer and yara are loaded only when
// a scan needs them: a manifest-only scan is the common CI step and pays the CLI's start-up each time.

export interface ScanOptions {
  /** A manifest (.yaml/.yml/.json), a registry server.json, a .tgz, a package directory, or name@version from the npm cache. Omit to scan only `command`. */
  target?: string;
  /** A server to start over stdio: its listing is scanned, and with `behaviour` it is exercised under strace. */
  command?: StdioCommand;
  behaviour?: boolean;
  behaviourOptions?: BehaviourOptions;
  /** Run the behaviour analysis inside this sandbox backend, with the manifest's scopes. */
  sandbox?: SandboxBackend;
  /** The server's package (tarball, directory or name@version), when the target is a manifest. */
  packageSpec?: string;
  dataDir?: string;
  feed?: ThreatFeed;
  reputation?: LoadedReputation;
  suppressions?: Suppression[];
  /** Run the YARA rules (default true). Turning it off is reported in the analyzer list. */
  yara?: boolean;
  yaraBinary?: string;
  npmCacheDir?: string;
  now?: Date;
}

export function scannerVersion(rules: RuleSet): string {
  try {
    const pkg = JSON.parse(readFileSync(join(dirname(dirname(rules.dataDir)), 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Digest of every rule file, so a report and a certification name the exact rules used. */
export function rulesDigest(rules: RuleSet): string {
  const parts: string[] = [];
  const walk = (dir: string, prefix: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      if (statSync(full).isDirectory()) walk(full, `${prefix}${name}/`);
      else parts.push(`${prefix}${name}\n${sha256Digest(readFileSync(full))}`);
    }
  };
  walk(rules.dataDir, '');
  return sha256Digest(parts.join('\n'));
}

function looksLikeNpmSpec(target: string): boolean {
  return /^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*@[\w.+-]+$/i.test(target);
}

async function openPackage(spec: string, cacheDir: string | undefined): Promise<UnpackedPackage> {
  if (/\.(tgz|tar\.gz)$/.test(spec)) return unpackTarball(spec);
  try {
    if (statSync(spec).isDirectory()) return openDirectory(spec);
  } catch {
    // Not a path: maybe name@version.
  }
  if (looksLikeNpmSpec(spec)) {
    const at = spec.lastIndexOf('@');
    const pkg = await unpackTarball(npmCacheTarball(spec.slice(0, at), spec.slice(at + 1), cacheDir));
    return pkg;
  }
  throw new TargetError(`${spec}: not a .tgz, a directory, or name@version`);
}

function mergeMetadata(a: ServerMetadata | undefined, b: ServerMetadata | undefined): ServerMetadata | undefined {
  if (!a) return b;
  if (!b) return a;
  return { ...a, tools: [...a.tools, ...b.tools.filter((t) => !a.tools.some((x) => x.name === t.name))] };
}

interface PackageScan {
  facts: CodeFacts;
  files: number;
  bytes: number;
  findings: Finding[];
}

/** The code analyzer, yara and the description/code mismatch check over an unpacked package. */
async function scanPackage(pkg: UnpackedPackage, rules: RuleSet, options: ScanOptions, metadata: ServerMetadata | undefined, analyzers: ScanReport['analyzers']): Promise<PackageScan> {
  const [{ analyzeCode }, { runYara, yaraFindings }, { analyzeDescriptionCodeMismatch }] = await Promise.all([import('./analyzers/code.js'), import('./analyzers/yara.js'), import('./analyzers/mismatch.js')]);
  const sources = readPackageFiles(pkg.root, rules.thresholds.files);
  const code = analyzeCode(sources, rules);
  const findings = [...code.findings];
  analyzers.push({ name: 'code', ran: true });
  if (options.yara === false) {
    analyzers.push({ name: 'yara', ran: false, note: 'disabled by option' });
  } else {
    const matches = await runYara(rules.yaraFiles, sources.map((s) => join(pkg.root, s.path)), options.yaraBinary ? { yaraBinary: options.yaraBinary } : {});
    findings.push(...yaraFindings(matches, pkg.root));
    analyzers.push({ name: 'yara', ran: true, note: `${rules.yaraFiles.length} rule file(s)` });
  }
  if (metadata) findings.push(...analyzeDescriptionCodeMismatch(metadata, code.facts, rules));
  return { facts: code.facts, files: code.filesScanned, bytes: code.bytesScanned, findings };
}

/** Runs every analyzer that applies to the target and returns the scored report. */
export async function scan(options: ScanOptions): Promise<ScanReport> {
  const rules = loadRules(options.dataDir);
  const analyzers: ScanReport['analyzers'] = [];
  const findings: Finding[] = [];
  let doc: LoadedDocument | undefined;
  let pkg: UnpackedPackage | undefined;
  let kind = 'server';
  let label = options.command ? [options.command.command, ...options.command.args].join(' ') : '(none)';
  const target = options.target;
  if (target !== undefined) {
    label = target;
    if (/\.(ya?ml|json)$/i.test(target) && !target.endsWith('package.json')) {
      doc = loadDocument(target);
      kind = doc.kind;
    } else {
      pkg = await openPackage(target, options.npmCacheDir);
      kind = 'npm package';
    }
  }
  if (options.packageSpec && !pkg) pkg = await openPackage(options.packageSpec, options.npmCacheDir);
  try {
    let live: ServerMetadata | undefined;
    let behaviour: BehaviourSummary | undefined;
    if (options.command && options.behaviour) {
      const { packageDirsFor, runBehaviour } = await import('./analyzers/behaviour.js');
      const behaviourOptions: BehaviourOptions = { ...(options.behaviourOptions ?? {}) };
      if (options.sandbox) {
        const dirs = [...packageDirsFor(options.command), ...(pkg ? [pkg.root] : [])];
        behaviourOptions.sandbox = { backend: options.sandbox, scopes: doc?.metadata.scopes ?? [], packageDirs: dirs };
      }
      const run = await runBehaviour(options.command, rules, behaviourOptions);
      live = run.metadata;
      behaviour = run.summary;
      findings.push(...run.findings);
      analyzers.push({ name: 'behaviour', ran: true, note: run.summary.sandboxNote });
    } else {
      if (options.command) live = (await listLiveServer(options.command, rules.thresholds.behaviour.startTimeoutMs)).metadata;
      analyzers.push({ name: 'behaviour', ran: false, note: options.command ? 'not requested (--behaviour)' : 'no server command given' });
    }
    const metadata = mergeMetadata(doc?.metadata, live);
    if (metadata) {
      findings.push(...analyzeMetadata(metadata, rules));
      analyzers.push({ name: 'metadata', ran: true });
    } else {
      analyzers.push({ name: 'metadata', ran: false, note: 'no tool metadata (give a manifest or a server command)' });
    }

    const code = pkg ? await scanPackage(pkg, rules, options, metadata, analyzers) : undefined;
    if (!code) analyzers.push({ name: 'code', ran: false, note: 'no package given' }, { name: 'yara', ran: false, note: 'no package given' });
    const facts = code?.facts;
    const files = code?.files ?? 0;
    const bytes = code?.bytes ?? 0;
    if (code) findings.push(...code.findings);
    const declared = parseScopes(metadata?.scopes ?? []);
    if (doc?.kind === 'manifest' && facts) findings.push(...analyzeStaticPermissions(facts, declared));
    if (doc?.kind === 'manifest' && behaviour) findings.push(...analyzeObservedPermissions(behaviour.actions, declared));
    analyzers.push(permissionsRun(doc?.kind === 'manifest', facts !== undefined || behaviour !== undefined));

    const packages: PackageRef[] = [...(doc?.packages ?? [])];
    if (pkg?.packageJson?.name && !packages.some((p) => p.name === pkg?.packageJson?.name)) packages.push({ ecosystem: 'npm', name: pkg.packageJson.name, ...(pkg.packageJson.version ? { version: pkg.packageJson.version } : {}) });
    if (options.feed) {
      findings.push(...matchThreatFeed(options.feed, { packages, ...(doc?.publisherKey ? { publisherKeys: [doc.publisherKey] } : {}), toolDigests: (metadata?.tools ?? []).map((t) => toolDigest(t)) }));
      analyzers.push({ name: 'feed', ran: true, note: `${options.feed.osv.length} OSV records, ${options.feed.blocks.length} blocks` });
    } else {
      analyzers.push({ name: 'feed', ran: false, note: 'no threat feed configured' });
    }
    if (options.reputation) {
      findings.push(...reputationFindings(options.reputation, { ...(doc?.publisherKey ? { publisherKey: doc.publisherKey } : {}), ...(packages[0] ? { packageName: packages[0].name } : {}) }));
      analyzers.push({ name: 'reputation', ran: true, note: `${options.reputation.path} signed by ${options.reputation.signer}` });
    } else {
      analyzers.push({ name: 'reputation', ran: false, note: 'no reputation file configured' });
    }

    const sup = applySuppressions(dedupe(findings), options.suppressions ?? [], options.now);
    return {
      target: {
        kind,
        label,
        ...(doc ? { manifestDigest: manifestDigest(doc.doc) } : {}),
        ...(pkg ? { artifactDigest: artifactDigest(pkg.artifactPath) } : {}),
        packages: packages.map((p) => ({ name: p.name, ...(p.version ? { version: p.version } : {}) })),
        ...(doc?.publisherKey ? { publisherKey: doc.publisherKey } : {}),
      },
      scanner: { name: 'bastion-scan', version: scannerVersion(rules), rulesDigest: rulesDigest(rules) },
      scannedAt: (options.now ?? new Date()).toISOString(),
      analyzers,
      stats: { files, bytes, tools: metadata?.tools.length ?? 0 },
      findings: sup.active,
      suppressed: sup.suppressed,
      unusedSuppressions: sup.unused,
      risk: computeScore(sup.active, rules.thresholds),
      ...(behaviour ? { behaviour } : {}),
    };
  } finally {
    pkg?.cleanup();
  }
}

/** Scopes are checked against what the code does or what the server was seen doing; either may be missing. */
function permissionsRun(hasManifest: boolean, hasEvidence: boolean): ScanReport['analyzers'][number] {
  if (!hasManifest) return { name: 'permissions', ran: false, note: 'no manifest declares scopes' };
  if (!hasEvidence) return { name: 'permissions', ran: false, note: 'no code or behaviour to compare the scopes with' };
  return { name: 'permissions', ran: true };
}
