import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { Command } from 'commander';
import { stringify as stringifyYaml } from 'yaml';
import { packageDirsFor, sandboxScopes } from '../../app/index.js';
import { loadConfigFile, resolveMap, type LoadedConfig, type ServerConfig } from '../../config/index.js';
import { createSandbox, resolveSandboxConfig } from '../../sandbox/index.js';
import {
  artifactDigest, artifactPathFor, buildLock, defaultVerificationMethod, diffLock, formatLockDiff, generateKeyPair, IntegrityFileError, keyFingerprint,
  KEY_ALGORITHMS, loadManifest, loadPrivateKey, listLive as listLiveOf, loadTrustContext, lockServer, LockRefusedError, manifestFromLive, manifestFromRegistry, privateKeyToPem,
  publicKeyToMultibase, publicKeyToPem, resolveFrom, signDocument, trustConfigDefaults, verifyManifestFile, writeLock,
  type DigestAlgorithm, type Hashlock, type KeyAlgorithm, type LiveSource, type LockEntry, type Manifest, type RegistryServerJson, type TrustConfig,
} from '../../integrity/index.js';
import { describeFindings, findingsBeforePinning, type DefinitionsToPin } from '../../inspection/index.js';
import { curationPin } from '../../curation/index.js';
import { CliError } from '../errors.js';
import type { RegisterCommands } from './index.js';
import { withQuarantines } from './quarantine.js';

/** Refuses (exit 2) to pin or sign definitions with high findings, unless the operator accepts them. */
function vetFindings(what: string, definitions: DefinitionsToPin, accept: boolean | undefined): ReturnType<typeof findingsBeforePinning> {
  const findings = findingsBeforePinning(definitions);
  if (findings.length === 0) return findings;
  if (accept !== true) {
    throw new CliError(`${what}: refusing to pin or sign definitions with high or critical scanner findings:\n${describeFindings(findings)}\nreview them (bastion scan), fix the server, or pass --accept-findings to record that you accept them`, 2);
  }
  process.stderr.write(`warning: ${what}: accepted ${findings.length} high or critical finding(s) (--accept-findings):\n${describeFindings(findings)}\n`);
  return findings;
}

/** Exit codes of `bastion verify`, so scripts can tell a broken file from an untrusted one. */
export const VERIFY_EXIT = { ok: 0, invalid: 2, signature: 3, untrusted: 4 } as const;

const UNTRUSTED = new Set(['unknown-key', 'revoked', 'expired', 'not-yet-valid', 'out-of-namespace']);

function writeDocument(file: string, value: unknown): void {
  const yaml = ['.yaml', '.yml'].includes(extname(file).toLowerCase());
  writeFileSync(file, yaml ? stringifyYaml(value, { lineWidth: 0 }) : `${JSON.stringify(value, null, 2)}\n`);
}

function keygen(flags: { alg: string; out: string; force?: boolean }): Promise<void> {
  if (!KEY_ALGORITHMS.includes(flags.alg as KeyAlgorithm)) throw new CliError(`--alg must be one of ${KEY_ALGORITHMS.join(', ')}`, 2);
  return generateKeyPair(flags.alg as KeyAlgorithm).then((pair) => {
    const keyFile = `${flags.out}.key`;
    if (existsSync(keyFile) && flags.force !== true) throw new CliError(`${keyFile} exists; refusing to overwrite a private key (use --force to replace it)`, 2);
    writeFileSync(keyFile, privateKeyToPem(pair.privateKey), { mode: 0o600 });
    chmodSync(keyFile, 0o600);
    writeFileSync(`${flags.out}.pub.pem`, publicKeyToPem(pair.publicKey));
    const shared: Record<string, string> = { algorithm: pair.algorithm, verificationMethod: defaultVerificationMethod(pair.publicKey), fingerprint: keyFingerprint(pair.publicKey) };
    if (pair.algorithm === 'ed25519') shared['publicKeyMultibase'] = publicKeyToMultibase(pair.publicKey);
    else shared['publicKeyPem'] = publicKeyToPem(pair.publicKey);
    writeFileSync(`${flags.out}.pub.json`, `${JSON.stringify(shared, null, 2)}\n`);
    const entry = pair.algorithm === 'ed25519' ? { publicKeyMultibase: shared['publicKeyMultibase'] } : { publicKeyPem: shared['publicKeyPem'] };
    process.stdout.write(
      `wrote ${keyFile} (private, mode 0600), ${flags.out}.pub.pem and ${flags.out}.pub.json\n` +
        `verification method: ${shared['verificationMethod']}\n\nadd to the operator's trusted signers file:\n` +
        stringifyYaml({ signers: [{ publisher: 'YOUR NAME', namespaces: ['io.github.YOU/*'], keys: [entry] }] }, { lineWidth: 0 }),
    );
  });
}

function sign(manifestFile: string, flags: { key: string; out?: string; verificationMethod?: string; acceptFindings?: boolean }): void {
  let privateKey;
  try {
    privateKey = loadPrivateKey(readFileSync(flags.key, 'utf8'));
  } catch (error) {
    throw new CliError(`${flags.key}: not a usable private key (${(error as Error).message}); create one with bastion keygen`, 2);
  }
  const { manifest } = loadManifestOrExit(manifestFile);
  const asDefinitions = (items: readonly object[] | undefined): Record<string, unknown>[] => (items ?? []) as unknown as Record<string, unknown>[];
  vetFindings(manifestFile, { tools: asDefinitions(manifest.tools), prompts: asDefinitions(manifest.prompts), resourceTemplates: asDefinitions(manifest.resourceTemplates) }, flags.acceptFindings);
  const signed = signDocument(manifest as unknown as Record<string, unknown>, privateKey, flags.verificationMethod === undefined ? {} : { verificationMethod: flags.verificationMethod });
  const out = flags.out ?? manifestFile;
  writeDocument(out, signed);
  process.stdout.write(`signed ${manifest.name} ${manifest.version} with ${signed.proof.cryptosuite} (${signed.proof.verificationMethod}) -> ${out}\n`);
}

function loadManifestOrExit(file: string): ReturnType<typeof loadManifest> {
  try {
    return loadManifest(file);
  } catch (error) {
    if (error instanceof IntegrityFileError) throw new CliError(`invalid manifest:\n${error.message}`, VERIFY_EXIT.invalid);
    throw error;
  }
}

function verify(manifestFile: string, flags: { keyring: string; at?: string }): void {
  let signers;
  try {
    signers = loadTrustContext({ signersFile: flags.keyring }, process.cwd()).signers;
  } catch (error) {
    throw new CliError(`cannot read the trusted signers file:\n${(error as Error).message}`, VERIFY_EXIT.invalid);
  }
  if (signers === undefined) throw new CliError(`${flags.keyring} does not exist`, VERIFY_EXIT.invalid);
  const now = flags.at === undefined ? new Date() : new Date(flags.at);
  if (Number.isNaN(now.getTime())) throw new CliError('--at must be a date such as 2026-01-31T00:00:00Z', 2);
  const result = verifyManifestFile(manifestFile, signers, { now });
  if (result.ok) {
    process.stdout.write(`OK ${result.manifest.name} ${result.manifest.version}: signed by ${result.signer.publisher} (${result.signer.fingerprint})\nmanifest digest: ${result.manifestDigest}\n`);
    return;
  }
  const code = result.reason === 'invalid-manifest' ? VERIFY_EXIT.invalid : UNTRUSTED.has(result.reason) ? VERIFY_EXIT.untrusted : VERIFY_EXIT.signature;
  throw new CliError(`REFUSED ${manifestFile}: ${result.reason}: ${result.message}`, code);
}

// ---- lock ---------------------------------------------------------------------------------------

/** Stdio servers start in the sandbox their config names (as under bastion serve) unless --no-sandbox. */
function liveSource(name: string, loaded: LoadedConfig, sandboxed: boolean): LiveSource {
  const server = loaded.config.servers[name] as ServerConfig;
  const baseDir = loaded.baseDir;
  if (server.transport === 'http') return { transport: 'http', url: server.url, headers: resolveMap(server.headers, `servers.${name}.headers`, baseDir), ...(server.legacySse === true ? { legacySse: true } : {}) };
  const env = resolveMap(server.env, `servers.${name}.env`, baseDir);
  const cwd = server.cwd === undefined ? undefined : resolveFrom(baseDir, server.cwd);
  if (!sandboxed) return { transport: 'stdio', command: server.command, args: server.args, env, ...(cwd === undefined ? {} : { cwd }) };
  return {
    transport: 'launch',
    launch: async () => {
      const backend = createSandbox(resolveSandboxConfig(loaded.config.sandbox, server.sandbox));
      const handle = await backend.spawn({
        serverName: name,
        command: server.command,
        args: server.args,
        env,
        ...(cwd === undefined ? {} : { cwd }),
        packageDirs: server.sandbox?.packageDirs ?? packageDirsFor([server.command, ...server.args]),
        scopes: sandboxScopes(server),
      });
      for (const warning of handle.warnings) process.stderr.write(`warning: server '${name}' sandbox (${backend.name}): ${warning}\n`);
      handle.child.stderr.resume();
      return { process: handle.child, dispose: () => handle.dispose() };
    },
  };
}

interface LockFlags {
  config: string;
  check?: boolean;
  update?: string;
  signers?: string;
  lock?: string;
  sandbox: boolean;
  acceptFindings?: boolean;
}

async function lock(flags: LockFlags): Promise<void> {
  const loaded = loadConfigFile(flags.config);
  const section = loaded.config.integrity;
  const trustConfig: TrustConfig = { ...trustConfigDefaults, ...section, ...(flags.signers === undefined ? {} : { signersFile: flags.signers }), ...(flags.lock === undefined ? {} : { hashlockFile: flags.lock }) };
  const context = loadTrustContext(trustConfig, loaded.baseDir);
  const servers = loaded.config.servers;
  if (flags.update !== undefined && !Object.hasOwn(servers, flags.update)) throw new CliError(`--update ${flags.update}: no such server in ${loaded.source} (servers: ${Object.keys(servers).join(', ')})`, 2);
  if (flags.update !== undefined && flags.check === true) throw new CliError('use either --check or --update SERVER', 2);
  const names = flags.update === undefined ? Object.keys(servers).sort() : [flags.update];
  const entries: Record<string, LockEntry> = {};
  const problems: string[] = [];
  for (const name of names) {
    const server = servers[name]!;
    try {
      const vet = (serverName: string, live: Parameters<typeof findingsBeforePinning>[0]) => vetFindings(`server '${serverName}'`, live, flags.acceptFindings);
      // --check only compares; what would be pinned is vetted.
      const locked = await lockServer(name, { live: liveSource(name, loaded, flags.sandbox), trust: server, ...(flags.check === true ? {} : { vet }) }, context);
      // The operator's curation is pinned beside the upstream definitions, never mixed into them.
      const curation = curationPin(server, trustConfig.digestAlgorithm as DigestAlgorithm);
      entries[name] = curation === undefined ? locked.entry : { ...locked.entry, curation };
      for (const warning of locked.warnings) process.stderr.write(`warning: ${warning}\n`);
    } catch (error) {
      if (error instanceof CliError) problems.push(error.message);
      else if (!(error instanceof LockRefusedError)) problems.push(`server '${name}': cannot list its definitions (${(error as Error).message})`);
      else problems.push(error.message);
    }
  }
  const previous: Hashlock = context.lock ?? { version: 1, algorithm: trustConfig.digestAlgorithm as DigestAlgorithm, servers: {} };
  const next: Hashlock = flags.update === undefined ? { ...buildLock({}, trustConfig.digestAlgorithm), servers: entries } : { ...previous, servers: { ...previous.servers, ...entries } };
  const changes = diffLock(previous, next).filter((change) => flags.update === undefined || change.server === flags.update);
  process.stdout.write(formatLockDiff(changes));
  if (problems.length > 0) throw new CliError(`${problems.join('\n')}\nthe lock was not written`, 2);
  const lockPath = resolveFrom(loaded.baseDir, trustConfig.hashlockFile);
  if (flags.check === true) {
    if (context.lock === undefined) throw new CliError(`${lockPath} does not exist; run bastion lock to create it`, 1);
    // What the gateway holds back counts as a difference even when this fresh process lists the approved text.
    const held = (await withQuarantines(loaded, ({ store }) => store.list())).filter((record) => record.status === 'held' && names.includes(record.server));
    for (const record of held) process.stdout.write(`! ${record.server}: ${record.kind} '${record.name}' quarantined (${record.cause}, ${record.id}): ${record.oldDigest ?? '(none)'} -> ${record.newDigest}\n`);
    if (held.length > 0 || changes.length > 0) {
      throw new CliError(`the live servers differ from ${lockPath} (${changes.length} change${changes.length === 1 ? '' : 's'}, ${held.length} quarantined); review with bastion quarantine list and approve with bastion quarantine approve ID or bastion lock --update SERVER`, 1);
    }
    return;
  }
  writeLock(lockPath, next);
  process.stdout.write(`wrote ${lockPath}\n`);
}

function fromRegistry(file: string, flags: { out?: string; publisher?: string }): void {
  let server: RegistryServerJson;
  try {
    server = JSON.parse(readFileSync(file, 'utf8')) as RegistryServerJson;
  } catch (error) {
    throw new CliError(`${file}: cannot read a registry server.json (${(error as Error).message})`, 2);
  }
  const manifest = manifestFromRegistry(server, flags.publisher === undefined ? {} : { publisher: flags.publisher });
  if (flags.out === undefined) process.stdout.write(stringifyYaml(manifest, { lineWidth: 0 }));
  else writeDocument(flags.out, manifest);
  process.stderr.write('note: a registry entry lists no tools; add each tool with its description, inputSchema and scopes before signing\n');
}

interface FromServerFlags {
  config: string;
  server: string;
  name?: string;
  serverVersion?: string;
  publisher?: string;
  registry?: string;
  out?: string;
  sandbox: boolean;
  acceptFindings?: boolean;
}

async function fromServer(flags: FromServerFlags): Promise<void> {
  const loaded = loadConfigFile(flags.config);
  const server = loaded.config.servers[flags.server];
  if (server === undefined) throw new CliError(`--server ${flags.server}: no such server in ${loaded.source}`, 2);
  const registry = flags.registry === undefined ? undefined : (JSON.parse(readFileSync(flags.registry, 'utf8')) as RegistryServerJson);
  const base = registry === undefined ? { name: flags.name ?? flags.server, version: flags.serverVersion ?? '0.0.0', tools: [] } : manifestFromRegistry(registry, flags.publisher === undefined ? {} : { publisher: flags.publisher });
  if (flags.name !== undefined) base.name = flags.name;
  if (flags.serverVersion !== undefined) base.version = flags.serverVersion;
  const draft: Manifest = { ...base };
  if (flags.publisher !== undefined) draft.publisher = { name: flags.publisher };
  if (server.transport === 'stdio') draft.run = { command: server.command, args: server.args };
  const artifactPath = artifactPathFor(server, loaded.baseDir);
  if (artifactPath !== undefined) {
    const artifact = await artifactDigest(artifactPath);
    draft.artifact = { path: artifactPath, kind: artifact.kind, digest: artifact.digest };
  }
  const live = await listLiveOf(liveSource(flags.server, loaded, flags.sandbox));
  vetFindings(`server '${flags.server}'`, live, flags.acceptFindings);
  const scopes = Object.fromEntries(Object.entries(server.tools ?? {}).flatMap(([tool, entry]) => (entry.scopes === undefined ? [] : [[tool, entry.scopes]])));
  const manifest = manifestFromLive(draft, live, scopes);
  const missing = manifest.tools.filter((tool) => tool.scopes === undefined).map((tool) => tool.name);
  if (flags.out === undefined) process.stdout.write(stringifyYaml(manifest, { lineWidth: 0 }));
  else writeDocument(flags.out, manifest);
  if (missing.length > 0) process.stderr.write(`note: no scopes known for ${missing.join(', ')}; declare them (scopes: [] if a tool needs nothing) before signing, or every call is denied\n`);
}

export const registerIntegrity: RegisterCommands = (program: Command) => {
  program
    .command('keygen')
    .description('create a signing key pair for manifests (private key PEM written with mode 0600)')
    .option('--alg <alg>', `key algorithm: ${KEY_ALGORITHMS.join(' | ')}`, 'ed25519')
    .requiredOption('--out <prefix>', 'write PREFIX.key, PREFIX.pub.pem and PREFIX.pub.json')
    .option('--force', 'replace an existing private key')
    .action(keygen);
  program
    .command('sign')
    .description('sign a server manifest (W3C Data Integrity proof over its RFC 8785 canonical JSON)')
    .argument('<manifest>', 'manifest file (YAML or JSON)')
    .requiredOption('--key <file>', 'private key PEM from bastion keygen')
    .option('--out <file>', 'where to write the signed manifest (default: in place); .yaml/.yml writes YAML')
    .option('--verification-method <id>', 'key id to name in the proof (default: did:key for Ed25519, urn:bastion:key:<fingerprint> for RSA)')
    .option('--accept-findings', 'sign even though the scanner finds high or critical problems in the definitions')
    .action(sign);
  program
    .command('verify')
    .description('verify a manifest against a trusted signers file (exit 0 ok, 2 invalid, 3 bad or missing signature, 4 untrusted signer)')
    .argument('<manifest>', 'manifest file')
    .requiredOption('--keyring <file>', 'trusted signers file (YAML or JSON)')
    .option('--at <date>', 'verify as of this time instead of now')
    .action(verify);
  program
    .command('lock')
    .description('list every configured server\'s definitions and pin them in tool_hashlock.json (exit 1 on --check differences)')
    .requiredOption('--config <file>', 'bastion.yaml')
    .option('--check', 'compare with the existing lock and print the differences; write nothing')
    .option('--update <server>', 'approve the current definitions of one server only')
    .option('--signers <file>', 'trusted signers file (default: integrity.signersFile or trusted_signers.yaml next to the config)')
    .option('--lock <file>', 'hash lock file (default: integrity.hashlockFile or tool_hashlock.json next to the config)')
    .option('--no-sandbox', 'start stdio servers directly instead of in their configured sandbox')
    .option('--accept-findings', 'pin definitions with high or critical scanner findings anyway (recorded in the lock entry)')
    .action(lock);
  program
    .command('digest')
    .description('print the artifact digest of a file or package directory (for a manifest\'s artifact.digest)')
    .argument('<path>', 'file or directory')
    .option('--alg <alg>', 'sha256 | sha3-512', 'sha256')
    .action(async (path: string, flags: { alg: string }) => {
      if (flags.alg !== 'sha256' && flags.alg !== 'sha3-512') throw new CliError('--alg must be sha256 or sha3-512', 2);
      const result = await artifactDigest(path, flags.alg);
      process.stdout.write(`${result.digest}  ${result.kind}  ${path}\n`);
    });
  const manifest = program.command('manifest').description('server manifests');
  manifest
    .command('from-registry')
    .description('convert an MCP registry server.json into an unsigned Bastion manifest')
    .argument('<server.json>', 'registry entry')
    .option('--out <file>', 'write here (default: stdout, YAML)')
    .option('--publisher <name>', 'publisher name (default: the name\'s namespace)')
    .action(fromRegistry);
  manifest
    .command('from-server')
    .description('draft a manifest from what a configured server lists now (tools, prompts, resource templates, scopes from the config)')
    .requiredOption('--config <file>', 'bastion.yaml')
    .requiredOption('--server <name>', 'server key in the config')
    .option('--registry <server.json>', 'take name, version, packages and remotes from a registry entry')
    .option('--name <name>', 'manifest name, e.g. io.github.acme/weather (default: the server key)')
    .option('--server-version <version>', 'server version (default: 0.0.0)')
    .option('--publisher <name>', 'publisher name')
    .option('--out <file>', 'write here (default: stdout, YAML)')
    .option('--no-sandbox', 'start a stdio server directly instead of in its configured sandbox')
    .option('--accept-findings', 'draft the manifest even though the scanner finds high or critical problems')
    .action(fromServer);
};



