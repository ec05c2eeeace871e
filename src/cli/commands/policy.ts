import type { Command } from 'commander';
import { manifestFromDocument, type ServerDeclarations } from '../../policy/declarations.js';
import { formatProblem, type PolicyProblem } from '../../policy/errors.js';
import { PolicyEvaluator, type Decision } from '../../policy/evaluator.js';
import { policyFromDocuments, type PolicySet } from '../../policy/policy-file.js';
import { isRecord, readSource, type SourceDocument } from '../../policy/source.js';
import { resolve } from 'node:path';
import { policyInputs } from '../../app/index.js';
import { ConfigError, embeddedDefaultConfig, loadConfigFile, materializeDemo, type LoadedConfig } from '../../config/index.js';
import { compilePolicy } from '../../policy/store.js';
import { CliError } from '../errors.js';
import type { RegisterCommands } from './index.js';

interface Sorted {
  policies: SourceDocument[];
  declarations: Record<string, ServerDeclarations>;
  problems: PolicyProblem[];
  warnings: PolicyProblem[];
}

/** A file with agents: or roles: is a policy; one with tools: or name: is a manifest. */
function sortFiles(files: readonly string[], expect?: 'policy' | 'manifest'): Sorted {
  const sorted: Sorted = { policies: [], declarations: {}, problems: [], warnings: [] };
  for (const file of files) {
    const source = readSource(file);
    if (!source.ok) {
      sorted.problems.push(...source.problems);
      continue;
    }
    const value = source.doc.value;
    const looksLikePolicy = isRecord(value) && ('agents' in value || 'roles' in value);
    const kind = expect ?? (looksLikePolicy ? 'policy' : 'manifest');
    if (kind === 'policy') {
      sorted.policies.push(source.doc);
      continue;
    }
    const manifest = manifestFromDocument(source.doc);
    if (!manifest.ok) {
      sorted.problems.push(...manifest.problems);
      continue;
    }
    sorted.warnings.push(...manifest.warnings);
    if (Object.hasOwn(sorted.declarations, manifest.server)) {
      sorted.problems.push({ file, line: undefined, column: undefined, field: 'name', message: `server '${manifest.server}' is described by two manifests`, fix: 'keep one manifest per server' });
    }
    sorted.declarations[manifest.server] = manifest.declarations;
  }
  return sorted;
}

function printDecision(decision: Decision): string {
  const lines = [`decision: ${decision.allow ? 'ALLOW' : 'DENY'} (${decision.reason})`];
  if (!decision.allow) lines.push(`message:  ${decision.message}`);
  lines.push('rules:');
  if (decision.rules.length === 0) lines.push('  (none: the request was refused before any grant was looked at)');
  for (const rule of decision.rules) {
    const mark = rule.effect === 'allow' ? '+' : '-';
    const declared = rule.declared === undefined ? '' : `  [declared ${rule.declared}]`;
    const grant = rule.grant === undefined ? '  not granted' : `  covered by ${rule.grant} (${rule.via ?? '?'}, ${rule.source ?? '?'})`;
    lines.push(`  ${mark} ${rule.requirement}${declared}${rule.effect === 'allow' ? grant : rule.source === undefined ? '' : `  (${rule.source})`}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Grants of server.tool where that server's manifest is present but does not declare the tool. */
function undeclaredGrants(policy: PolicySet, declarations: Record<string, ServerDeclarations>): PolicyProblem[] {
  const warnings: PolicyProblem[] = [];
  const holders = [...policy.roles.values(), ...policy.agents.values()];
  for (const holder of holders) {
    for (const grant of holder.grants) {
      const target = grant.scope.target;
      if (grant.scope.resource !== 'tools' || target.kind !== 'names') continue;
      for (const name of target.names) {
        const server = name.server === undefined ? undefined : declarations[name.server];
        if (server === undefined || name.name === '*' || Object.hasOwn(server.tools, name.name)) continue;
        warnings.push({ file: grant.source, line: undefined, column: undefined, field: grant.via, message: `grants ${name.server ?? ''}.${name.name}, which the server's manifest does not declare, so every call to it is denied`, fix: 'declare the tool in the manifest or remove it from the grant' });
      }
    }
  }
  return warnings;
}

interface ExplainOptions {
  agent: string;
  tool: string;
  args: string;
  config?: string;
  policy?: string[];
  manifest: string[];
  followSymlinks: boolean;
}

function refuse(problems: PolicyProblem[]): never {
  throw new CliError(`cannot explain: the policy does not load (the gateway would refuse it):\n${problems.map((p) => `error: ${formatProblem(p)}`).join('\n')}`, 2);
}

function evaluatorForFiles(policyFiles: string[], manifestFiles: string[], followSymlinks: boolean): PolicyEvaluator {
  const policies = sortFiles(policyFiles, 'policy');
  const manifests = sortFiles(manifestFiles, 'manifest');
  const loaded = policyFromDocuments(policies.policies);
  const problems = [...policies.problems, ...manifests.problems, ...(loaded.ok ? [] : loaded.problems)];
  if (problems.length > 0 || !loaded.ok) refuse(problems);
  return new PolicyEvaluator(loaded.policy, manifests.declarations, { followSymlinks });
}

/** The evaluator `bastion serve` builds for this config (the built-in demo when none is given). */
function evaluatorForConfig(file: string | undefined): PolicyEvaluator {
  let loaded: LoadedConfig;
  try {
    if (file !== undefined) loaded = loadConfigFile(file);
    else {
      loaded = embeddedDefaultConfig();
      materializeDemo(resolve(loaded.baseDir, loaded.config.stateDir));
    }
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message, 2);
    throw error;
  }
  if (!loaded.config.policy.enforce) throw new CliError(`${loaded.source} has policy.enforce: false: the gateway allows every authenticated call without a policy decision`, 3);
  const compiled = compilePolicy(policyInputs(loaded));
  if (!compiled.ok) refuse(compiled.problems);
  return compiled.evaluator;
}

export const registerPolicy: RegisterCommands = (program: Command) => {
  const policy = program.command('policy').description('check least-privilege policies and explain decisions');
  policy
    .command('check')
    .description('validate policy files and server manifests; errors name file:line and field, warnings flag risky grants (exit 2 on errors)')
    .argument('<files...>', 'policy files (with agents:/roles:) and manifests (with name:/tools:), YAML or JSON')
    .action((files: string[]) => {
      const sorted = sortFiles(files);
      const loaded = sorted.policies.length > 0 ? policyFromDocuments(sorted.policies) : undefined;
      const problems = [...sorted.problems, ...(loaded !== undefined && !loaded.ok ? loaded.problems : [])];
      const warnings = [...sorted.warnings, ...(loaded?.warnings ?? [])];
      if (loaded?.ok === true && Object.keys(sorted.declarations).length > 0) warnings.push(...undeclaredGrants(loaded.policy, sorted.declarations));
      for (const warning of warnings) process.stderr.write(`warning: ${formatProblem(warning)}\n`);
      if (problems.length > 0) throw new CliError(`${problems.map((p) => `error: ${formatProblem(p)}`).join('\n')}\n${problems.length} error(s), ${warnings.length} warning(s)`, 2);
      const agents = loaded?.ok === true ? loaded.policy.agents.size : 0;
      const roles = loaded?.ok === true ? loaded.policy.roles.size : 0;
      const tools = Object.values(sorted.declarations).reduce((sum, server) => sum + Object.keys(server.tools).length, 0);
      process.stdout.write(`OK: ${sorted.policies.length} policy file(s) (${agents} agent(s), ${roles} role(s)), ${Object.keys(sorted.declarations).length} manifest(s) (${tools} declared tool(s)), ${warnings.length} warning(s)\n`);
    });
  policy
    .command('explain')
    .description('print the decision for one tool call and every rule that led to it (exit 0 allow, 3 deny)')
    .requiredOption('--agent <id>', 'the agent id')
    .requiredOption('--tool <server.tool>', 'the namespaced tool, e.g. filesystem.read_text_file')
    .option('--args <json>', 'the tool arguments as a JSON object', '{}')
    .option('-c, --config <file>', "decide as the gateway running this bastion.yaml would: its policy files, manifests and inline declarations")
    .option('--policy <files...>', 'policy files (instead of --config)')
    .option('--manifest <files...>', 'server manifests (with --policy)', [])
    .option('--no-follow-symlinks', 'check paths as strings only (symlinks on this machine are not resolved)')
    .addHelpText('after', '\nWith neither --config nor --policy, the decision is the one `bastion serve` makes on its built-in demo config.')
    .action((options: ExplainOptions) => {
      const dot = options.tool.indexOf('.');
      if (dot <= 0 || dot === options.tool.length - 1) throw new CliError(`--tool must be SERVER.TOOL, got '${options.tool}'`, 2);
      let args: unknown;
      try {
        args = JSON.parse(options.args);
      } catch (error) {
        throw new CliError(`--args is not valid JSON: ${(error as Error).message}`, 2);
      }
      if (!isRecord(args)) throw new CliError('--args must be a JSON object, e.g. \'{"path": "/tmp/x/a.txt"}\'', 2);
      const evaluator = options.policy === undefined ? evaluatorForConfig(options.config) : evaluatorForFiles(options.policy, options.manifest, options.followSymlinks);
      const decision = evaluator.decideTool(options.agent, options.tool.slice(0, dot), options.tool.slice(dot + 1), args);
      process.stdout.write(printDecision(decision));
      if (!decision.allow) process.exitCode = 3;
    });
};
