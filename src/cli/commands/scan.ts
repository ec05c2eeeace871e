import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { CliError } from '../errors.js';
import type { RegisterCommands } from './index.js';
// Each from its own module, not the scan index: the index re-exports the behaviour analyzer (the MCP SDK
// client), which a plain scan does not need at start-up.
import { parseScopes } from '../../scan/analyzers/permissions.js';
import { certify, verifyCertification } from '../../scan/certify.js';
import { artifactDigest, manifestDigest } from '../../scan/digest.js';
import { importFeed, loadFeed, matchThreatFeed } from '../../scan/feed.js';
import { verifyManifestPublisher } from '../../scan/publisher.js';
import { exitCodeFor, toJson, toSarif, toText, type ScanReport } from '../../scan/report.js';
import { loadReputation } from '../../scan/reputation.js';
import { scan, type ScanOptions } from '../../scan/scan.js';
import { loadPrivateKey, loadTrustedKeys } from '../../scan/signing.js';
import { loadSuppressions } from '../../scan/suppressions.js';
import { loadDocument } from '../../scan/targets.js';
import { isSeverity, type Severity, type StdioCommand } from '../../scan/types.js';

const DEFAULT_FEED = '.bastion/threat-feed.json';

interface ScanFlags {
  package?: string;
  behaviour?: boolean;
  sandbox?: boolean;
  format: string;
  output?: string;
  sarif?: string;
  failOn: string;
  feed?: string;
  reputation?: string;
  reputationKeys?: string;
  suppressions?: string;
  rules?: string;
  yara: boolean;
  env: string[];
  cwd?: string;
}

/** Everything after `--` is the server command (argv, never a shell string). */
function splitOperands(operands: string[]): { target?: string; command?: StdioCommand; extra: string[] } {
  const dash = process.argv.indexOf('--');
  const serverArgv = dash >= 0 ? process.argv.slice(dash + 1) : [];
  const before = operands.slice(0, operands.length - serverArgv.length);
  const [file, ...args] = serverArgv;
  return { ...(before[0] ? { target: before[0] } : {}), ...(file ? { command: { command: file, args } } : {}), extra: before.slice(1) };
}

function parseEnv(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CliError(`--env ${pair}: expected NAME=VALUE`, 2);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

function failOnFlag(value: string): Severity | 'none' {
  if (value === 'none' || isSeverity(value)) return value;
  throw new CliError(`--fail-on ${value}: expected info, low, medium, high, critical or none`, 2);
}

function guard<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`${what}: ${(error as Error).message}`, 2);
  }
}

async function runScan(flags: ScanFlags, operands: string[]): Promise<ScanReport> {
  const { target, command, extra } = splitOperands(operands);
  if (extra.length > 0) throw new CliError(`unexpected arguments ${extra.join(' ')}; put the server command after --`, 2);
  if (!target && !command) throw new CliError('nothing to scan: give a TARGET (manifest, server.json, .tgz, directory, name@version) and/or a server command after --', 2);
  if (flags.behaviour && !command) throw new CliError('--behaviour needs the server command after --, e.g. bastion scan manifest.yaml --behaviour -- node server.js', 2);
  const options: ScanOptions = {
    ...(target ? { target } : {}),
    ...(command ? { command: { ...command, env: parseEnv(flags.env), ...(flags.cwd ? { cwd: flags.cwd } : {}) } } : {}),
    ...(flags.behaviour ? { behaviour: true } : {}),
    ...(flags.package ? { packageSpec: flags.package } : {}),
    ...(flags.rules ? { dataDir: flags.rules } : {}),
    ...(flags.yara ? {} : { yara: false }),
  };
  if (flags.sandbox) {
    if (!flags.behaviour) throw new CliError('--sandbox applies to the behaviour run: add --behaviour', 2);
    // Loaded only here: the sandbox module is not needed by a plain scan's start-up.
    const { createSandbox } = await import('../../sandbox/index.js');
    options.sandbox = guard('sandbox', () => createSandbox());
  }
  if (flags.feed) options.feed = guard('threat feed', () => loadFeed(flags.feed as string));
  if (flags.reputation) {
    if (!flags.reputationKeys) throw new CliError('--reputation needs --reputation-keys (the keys trusted to sign it)', 2);
    options.reputation = guard('reputation', () => loadReputation(flags.reputation as string, loadTrustedKeys(flags.reputationKeys as string)));
  }
  if (flags.suppressions) options.suppressions = guard('suppressions', () => loadSuppressions(flags.suppressions as string));
  try {
    return await scan(options);
  } catch (error) {
    throw new CliError(`scan failed: ${(error as Error).message}`, 2);
  }
}

function writeOut(path: string | undefined, text: string): void {
  if (!path || path === '-') {
    process.stdout.write(text);
    return;
  }
  mkdirSync(dirname(resolve(path)), { recursive: true });
  writeFileSync(path, text);
}

function render(report: ScanReport, format: string): string {
  if (format === 'json') return toJson(report);
  if (format === 'sarif') return `${JSON.stringify(toSarif(report), null, 2)}\n`;
  if (format === 'text') return toText(report);
  throw new CliError(`--format ${format}: expected text, json or sarif`, 2);
}

function scanOptions(cmd: Command): Command {
  return cmd
    .option('--package <spec>', 'the server\'s package when TARGET is a manifest: directory, .tgz or name@version from the npm cache')
    .option('--behaviour', 'start the server (command after --) under strace and call every tool with generated arguments')
    .option('--sandbox', 'run the behaviour analysis inside the Bastion sandbox (bwrap) with the manifest\'s scopes')
    .option('--env <NAME=VALUE>', 'environment for the server command (repeatable; PATH is passed through)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--cwd <dir>', 'working directory for the server command')
    .option('--feed <file>', 'local threat feed (see bastion feed import)')
    .option('--reputation <file>', 'signed publisher reputation file')
    .option('--reputation-keys <file>', 'keys trusted to sign the reputation file')
    .option('--suppressions <file>', 'reviewed suppressions (YAML/JSON)')
    .option('--rules <dir>', 'rule directory (default: data/scan shipped with Bastion)')
    .option('--no-yara', 'skip the YARA rules (reported in the analyzer list)');
}

export const registerScan: RegisterCommands = (program) => {
  scanOptions(program
    .command('scan')
    .description('Scan an MCP server before trusting it: tool metadata, code, YARA rules, permissions, behaviour, threat feed, reputation.\nTARGET is a manifest, a registry server.json, a .tgz, a directory or name@version; a server command may follow --.\nExit codes: 0 below --fail-on, 1 a finding at or above it, 2 the scan could not run.')
    .argument('[operands...]', 'TARGET, then -- and the server command')
    .option('--format <format>', 'text, json or sarif', 'text')
    .option('-o, --output <file>', 'write the report here instead of stdout')
    .option('--sarif <file>', 'also write SARIF 2.1.0 to this file')
    .option('--fail-on <severity>', 'exit 1 when a finding is at or above this severity (or none)', 'high'))
    .action(async (operands: string[], flags: ScanFlags) => {
      const failOn = failOnFlag(flags.failOn);
      const report = await runScan(flags, operands);
      writeOut(flags.output, render(report, flags.format));
      if (flags.sarif) writeOut(flags.sarif, render(report, 'sarif'));
      process.exitCode = exitCodeFor(report.findings, failOn);
    });

  const feed = program.command('feed').description('Manage the local threat feed (OSV malicious-package records and local blocks).');
  feed
    .command('import')
    .description('Import OSV records (a file, an array, or a directory of them, e.g. OpenSSF malicious-packages) or { "blocks": [...] } entries')
    .argument('<file>', 'OSV JSON file, directory, or blocks file')
    .option('--feed <file>', 'the local feed file to update', DEFAULT_FEED)
    .action((file: string, flags: { feed: string }) => {
      const result = guard('feed import', () => importFeed(flags.feed, file));
      process.stdout.write(`${flags.feed}: ${result.osvAdded} new OSV record(s), ${result.blocksAdded} new block(s); now ${result.feed.osv.length} records, ${result.feed.blocks.length} blocks\n`);
    });
  feed
    .command('check')
    .description('Check npm packages (name@version) against the feed; exit 1 on a match')
    .argument('<packages...>')
    .option('--feed <file>', 'the local feed file', DEFAULT_FEED)
    .action((packages: string[], flags: { feed: string }) => {
      const loaded = guard('threat feed', () => loadFeed(flags.feed));
      const refs = packages.map((p) => { const at = p.lastIndexOf('@'); return at > 0 ? { name: p.slice(0, at), version: p.slice(at + 1) } : { name: p }; });
      const findings = matchThreatFeed(loaded, { packages: refs });
      for (const f of findings) process.stdout.write(`${f.location.subject}: ${f.evidence}\n`);
      if (findings.length === 0) process.stdout.write('no match\n');
      process.exitCode = findings.length > 0 ? 1 : 0;
    });

  scanOptions(program
    .command('certify')
    .description('Scan a manifest and its package and write a signed certification (level 0-3) bound to both digests.\nLevel 1: static clean at --threshold + manifest signed by a trusted signer. Level 2: + clean behaviour run (--behaviour) within declared scopes. Level 3: + pentest attestation signed by a trusted certifier.')
    .argument('[operands...]', 'MANIFEST, then -- and the server command for the behaviour run')
    .requiredOption('--key <pem>', 'Ed25519 private key (PKCS#8 PEM) of the certifier')
    .requiredOption('--key-id <id>', 'the key id verifiers know this key by (in their trusted-certifiers list)')
    .requiredOption('--signers <file>', 'trusted manifest signers ({ keys: [{ id, publicKey }] }, publicKey PEM or multibase z6Mk…)')
    .option('--certifiers <file>', 'trusted certifiers, for checking a pentest attestation')
    .option('--pentest <file>', 'signed pentest attestation (BastionPentestAttestation)')
    .option('--threshold <severity>', 'static analysis is clean when nothing is at or above this', 'medium')
    .option('--validity-days <n>', 'how long the certification is valid', '90')
    .requiredOption('-o, --output <file>', 'where to write the certification'))
    .action(async (operands: string[], flags: ScanFlags & { key: string; keyId: string; signers: string; certifiers?: string; pentest?: string; threshold: string; validityDays: string }) => {
      if (!isSeverity(flags.threshold)) throw new CliError(`--threshold ${flags.threshold}: expected a severity`, 2);
      const report = await runScan(flags, operands);
      const doc = report.target.manifestDigest ? guard('manifest', () => loadDocument(splitOperands(operands).target as string)) : undefined;
      if (!doc) throw new CliError('certify needs a manifest as TARGET and its package (--package)', 2);
      const publisher = verifyManifestPublisher(doc.doc, guard('signers', () => loadTrustedKeys(flags.signers)));
      const trustedCertifiers = flags.certifiers ? guard('certifiers', () => loadTrustedKeys(flags.certifiers as string)) : [];
      const pentest = flags.pentest ? guard('pentest attestation', () => JSON.parse(readFileSync(flags.pentest as string, 'utf8')) as unknown) : undefined;
      const key = guard('certifier key', () => loadPrivateKey(flags.key));
      const att = guard('certify', () => certify({ report, publisher, threshold: flags.threshold as Severity, trustedCertifiers, validityDays: Number(flags.validityDays), ...(pentest !== undefined ? { pentest } : {}) }, key, flags.keyId));
      writeOut(flags.output, `${JSON.stringify(att, null, 2)}\n`);
      process.stdout.write(`certification level ${att.level} written to ${flags.output}\n${att.unmet.map((u) => `  unmet: ${u}`).join('\n')}\n`);
      process.stdout.write(`declared scopes: ${JSON.stringify(parseScopes(doc.metadata.scopes))}\n`);
    });

  program
    .command('verify-certification')
    .description('Check a certification against a manifest and its package; prints the level (exit 1 below --min-level)')
    .argument('<certification>')
    .requiredOption('--manifest <file>')
    .requiredOption('--artifact <path>', 'the package directory or .tgz (its digest must match)')
    .requiredOption('--trusted-certifiers <file>', 'trusted certifiers ({ keys: [...] })')
    .option('--min-level <n>', 'exit 1 below this level', '1')
    .action((file: string, flags: { manifest: string; artifact: string; trustedCertifiers: string; minLevel: string }) => {
      const att = guard('certification', () => JSON.parse(readFileSync(file, 'utf8')) as unknown);
      const doc = guard('manifest', () => loadDocument(flags.manifest));
      const check = verifyCertification(att, manifestDigest(doc.doc), guard('artifact', () => artifactDigest(flags.artifact)), guard('certifiers', () => loadTrustedKeys(flags.trustedCertifiers)));
      process.stdout.write(`level ${check.level}: ${check.reason}\n`);
      process.exitCode = check.level >= Number(flags.minLevel) ? 0 : 1;
    });
};
