// `bastion quarantine list | show | approve | reject`: the operator's side of quarantines. The
// gateway holds a definition that changed, appeared, contradicts its signed manifest or has
// findings the config quarantines; it stays held (across reconnects and restarts) until decided
// here. Approving a changed or new definition of a locked server also pins it in the hash lock;
// rejecting keeps the pinned definition, and the live one stays refused.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfigFile, type LoadedConfig } from '../../config/index.js';
import { decideQuarantine, FileQuarantineStore, QuarantineDecisionError, resolveFrom, trustConfigDefaults, type QuarantineDecision, type QuarantineRecord } from '../../integrity/index.js';
import { CliError } from '../errors.js';
import type { RegisterCommands } from './index.js';

/** The quarantine store of the gateway a config describes (`stateDir` / `integrity.quarantineDir`). */
export function quarantineStoreFor(loaded: LoadedConfig): FileQuarantineStore {
  const stateDir = resolve(loaded.baseDir, loaded.config.stateDir);
  return FileQuarantineStore.inDirectory(resolveFrom(stateDir, loaded.config.integrity.quarantineDir ?? trustConfigDefaults.quarantineDir));
}

function summary(record: QuarantineRecord): string {
  return `${record.id}  ${record.status.padEnd(8)}  ${record.server}  ${record.kind}  ${record.name}  ${record.cause}  ${record.createdAt}`;
}

function show(record: QuarantineRecord): string {
  const lines = [
    `id:        ${record.id}`,
    `status:    ${record.status}${record.decidedAt === undefined ? '' : ` (${record.decidedAt})`}`,
    `server:    ${record.server}`,
    `what:      ${record.kind} '${record.name}'`,
    `cause:     ${record.cause}`,
    `held at:   ${record.createdAt}`,
    `old:       ${record.oldDigest ?? '(none approved)'}`,
    `new:       ${record.newDigest}`,
  ];
  if (record.findings.length > 0) {
    lines.push('findings:');
    for (const finding of record.findings) lines.push(`  ${finding.severity.padEnd(8)} ${finding.ruleId}  ${finding.field}`);
  }
  if (record.diff.length > 0) {
    lines.push('diff:');
    for (const change of record.diff) lines.push(`  ${change.field}:`, `    - ${JSON.stringify(change.old)}`, `    + ${JSON.stringify(change.new)}`);
  }
  lines.push('new definition:', ...JSON.stringify(record.newDefinition, null, 2).split('\n').map((line) => `  ${line}`));
  return `${lines.join('\n')}\n`;
}

function recordOrExit(store: FileQuarantineStore, id: string): QuarantineRecord {
  const record = store.get(id);
  if (record === undefined) throw new CliError(`no quarantine ${id} in ${store.file}; bastion quarantine list shows them`, 2);
  return record;
}

function decide(id: string, flags: { config: string }, status: 'approved' | 'rejected'): void {
  const loaded = loadConfigFile(flags.config);
  const store = quarantineStoreFor(loaded);
  recordOrExit(store, id);
  let decided: QuarantineDecision;
  try {
    decided = decideQuarantine(loaded, store, id, status);
  } catch (error) {
    if (error instanceof QuarantineDecisionError) throw new CliError(error.message, 2);
    throw error;
  }
  const { record, note } = decided;
  process.stdout.write(`${status} ${id} (${record.server} ${record.kind} '${record.name}'): ${note}\n`);
}

export const registerQuarantine: RegisterCommands = (program: Command) => {
  const quarantine = program.command('quarantine').description('review definitions the gateway holds back (changed, new, different from the manifest, or with findings)');
  quarantine
    .command('list')
    .description('list every quarantine (id, status, server, kind, name, cause, when)')
    .requiredOption('--config <file>', 'bastion.yaml')
    .option('--json', 'print the records as JSON')
    .option('--held', 'only those still held')
    .action((flags: { config: string; json?: boolean; held?: boolean }) => {
      const records = quarantineStoreFor(loadConfigFile(flags.config)).list().filter((record) => flags.held !== true || record.status === 'held');
      if (flags.json === true) process.stdout.write(`${JSON.stringify(records, null, 2)}\n`);
      else process.stdout.write(records.length === 0 ? 'no quarantines\n' : `${records.map(summary).join('\n')}\n`);
    });
  quarantine
    .command('show')
    .description('one quarantine: old and new digests, the diff, findings and the new definition')
    .argument('<id>', 'quarantine id (q-...)')
    .requiredOption('--config <file>', 'bastion.yaml')
    .action((id: string, flags: { config: string }) => {
      process.stdout.write(show(recordOrExit(quarantineStoreFor(loadConfigFile(flags.config)), id)));
    });
  quarantine
    .command('approve')
    .description('publish the held definition; a changed or new definition of a locked server is pinned in the hash lock')
    .argument('<id>', 'quarantine id')
    .requiredOption('--config <file>', 'bastion.yaml')
    .action((id: string, flags: { config: string }) => decide(id, flags, 'approved'));
  quarantine
    .command('reject')
    .description('keep the pinned definition; the live one stays refused')
    .argument('<id>', 'quarantine id')
    .requiredOption('--config <file>', 'bastion.yaml')
    .action((id: string, flags: { config: string }) => decide(id, flags, 'rejected'));
};
