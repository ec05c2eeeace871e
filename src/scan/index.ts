import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { analyzeCode, type CodeFacts } from './analyzers/code.js';
import { analyzeDescriptionCodeMismatch } from './analyzers/mismatch.js';
import { analyzeMetadata, dedupe } from './analyzers/metadata.js';
import { analyzeObservedPermissions, analyzeStaticPermissions, parseScopes } from './analyzers/permissions.js';
import { packageDirsFor, runBehaviour, type BehaviourOptions } from './analyzers/behaviour.js';
import type { SandboxBackend } from '../sandbox/index.js';
import { runYara, yaraFindings } from './analyzers/yara.js';
import { artifactDigest, manifestDigest, sha256Digest, toolDigest } from './digest.js';
import { matchThreatFeed, type ThreatFeed } from './feed.js';
import type { BehaviourSummary, ScanReport } from './report.js';
import { reputationFindings, type LoadedReputation } from './reputation.js';
import { loadRules, type RuleSet } from './rules.js';
import { computeScore } from './score.js';
import { applySuppressions, type Suppression } from './suppressions.js';
import { listLiveServer, loadDocument, npmCacheTarball, openDirectory, readPackageFiles, TargetError, unpackTarball, type LoadedDocument, type PackageRef, type UnpackedPackage } from './targets.js';
import type { Finding, ServerMetadata, StdioCommand } from './types.js';

export type { Finding, FindingLocation, Severity, ServerMetadata, ToolDefinition, StdioCommand, SourceFile } from './types.js';
export { SEVERITIES, severityRank, isSeverity } from './types.js';
export { makeFinding } from './finding.js';
export { loadRules, defaultDataDir, RuleFileError, type RuleSet } from './rules.js';
export { analyzeMetadata, scanText, collectTextFields } from './analyzers/metadata.js';
export { analyzeCode, judgeLiteral, type CodeFacts } from './analyzers/code.js';
export { analyzeDescriptionCodeMismatch } from './analyzers/mismatch.js';
export { lexPython } from './pylex.js';
export { analyzeCollisions, nameSkeleton, descriptionSimilarity } from './collisions.js';
export { analyzeDirectives, splitClauses, loadDirectiveData, type DirectiveDocument, type DirectiveHit } from './directives.js';
export { analyzeIntent, analyzeDocument } from './analyzers/intent.js';
export { loadModel, featurize, type ScanModel } from './model.js';
export { analyzeSample, evaluateSample, runEvaluation, loadCorpus, isHeldOutPackage, type CorpusSample, type SampleResult } from './evaluate.js';
export { ATTACK_CLASSES, isAttackClass, type AttackClass } from './types.js';
export { runYara, parseYaraOutput, yaraFindings, YaraUnavailableError } from './analyzers/yara.js';
export { parseScopes, analyzeStaticPermissions, analyzeObservedPermissions, type DeclaredPermissions } from './analyzers/permissions.js';
export { runBehaviour, generateValue, parseStrace, packageDirsFor, type BehaviourOptions, type BehaviourResult, type BehaviourSandbox } from './analyzers/behaviour.js';
export { loadFeed, importFeed, matchThreatFeed, emptyFeed, osvAffects, FeedError, type ThreatFeed, type FeedSubject, type OsvRecord, type BlockEntry } from './feed.js';
export { loadReputation, reputationFindings, ReputationError, type ReputationFile, type LoadedReputation, type PublisherRecord } from './reputation.js';
export { loadSuppressions, applySuppressions, SuppressionError, type Suppression } from './suppressions.js';
export { computeScore, type RiskScore, type Verdict } from './score.js';
export { toText, toJson, toSarif, exitCodeFor, type ScanReport, type BehaviourSummary, type ObservedAction } from './report.js';
export { manifestDigest, artifactDigest, toolDigest, sha256Digest, canonicalJson } from './digest.js';
export { signDocument, verifyDocument, loadTrustedKeys, loadPrivateKey, publicKeyPem, SignatureError, type TrustedKey, type Proof } from './signing.js';
export { loadDocument, listLiveServer, npmCacheTarball, unpackTarball, TargetError } from './targets.js';
export { verifyManifestPublisher, signManifestEddsaJcs, ed25519Multibase, ed25519KeyFrom, type PublisherVerification } from './publisher.js';
export * from './certify.js';
export * from './config.js';

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

    let facts: CodeFacts | undefined;
    let files = 0;
    let bytes = 0;
    if (pkg) {
      const sources = readPackageFiles(pkg.root, rules.thresholds.files);
      const code = analyzeCode(sources, rules);
      facts = code.facts;
      files = code.filesScanned;
      bytes = code.bytesScanned;
      findings.push(...code.findings);
      analyzers.push({ name: 'code', ran: true });
      if (options.yara === false) {
        analyzers.push({ name: 'yara', ran: false, note: 'disabled by option' });
      } else {
        const matches = await runYara(rules.yaraFiles, sources.map((s) => join(pkg?.root ?? '', s.path)), options.yaraBinary ? { yaraBinary: options.yaraBinary } : {});
        findings.push(...yaraFindings(matches, pkg.root));
        analyzers.push({ name: 'yara', ran: true, note: `${rules.yaraFiles.length} rule file(s)` });
      }
    } else {
      analyzers.push({ name: 'code', ran: false, note: 'no package given' }, { name: 'yara', ran: false, note: 'no package given' });
    }

    if (metadata && facts) findings.push(...analyzeDescriptionCodeMismatch(metadata, facts, rules));
    const declared = parseScopes(metadata?.scopes ?? []);
    if (doc?.kind === 'manifest' && facts) findings.push(...analyzeStaticPermissions(facts, declared));
    if (doc?.kind === 'manifest' && behaviour) findings.push(...analyzeObservedPermissions(behaviour.actions, declared));
    analyzers.push({ name: 'permissions', ran: doc?.kind === 'manifest' && (facts !== undefined || behaviour !== undefined), ...(doc?.kind === 'manifest' ? {} : { note: 'no manifest declares scopes' }) });

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
export { createOutputInspectionGuard, checkServerAtBoot, resultTexts, TextInspector, DEFAULT_MAX_INSPECTED_BYTES, type InspectionVerdict, type OutputInspectionOptions, type BootCheckInput, type BootCheckResult } from './guard.js';
export { ReviewStore, DEFAULT_REVIEW_LIMITS, isReviewId, newReviewId, type ReviewEntry, type ReviewStoreOptions } from './review.js';
export { collectTexts, isBinaryOfType } from './output-texts.js';
