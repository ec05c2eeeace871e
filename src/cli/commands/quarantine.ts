// `bastion quarantine list | show | approve | reject`: the operator's side of quarantines. The
// gateway holds a definition that changed, appeared, contradicts its signed manifest or has
// findings the config quarantines; it stays held (across reconnects and restarts) until decided
// here. Approving a changed or new definition of a locked server also pins it in the hash lock;
// rejecting keeps the pinned definition, and the live one stays refused. With `cluster:` the
// records are the replicas' shared ones in Redis, so a decision made here reaches every replica.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfigFile, type LoadedConfig } from '../../config/index.js';
import { openSharedQuarantines } from '../../cluster/index.js';
import { decideQuarantine, FileQuarantineStore, QuarantineDecisionError, resolveFrom, trustConfigDefaults, type QuarantineDecision, type QuarantineRecord, type QuarantineStore } from '../../integrity/index.js';
import { CliError } from '../errors.js';
import type { RegisterCommands } from './index.js';

/** How long the CLI waits for the cluster's Redis before it gives up (a decision must reach every replica). */
const CLUSTER_READY_MS = 5000;

/** A quarantine store opened for one command, and where it lives (for messages). */
export interface OpenedQuarantines {
  store: QuarantineStore;
  where: string;
  /** Waits for the writes made (a decision reaches Redis before the CLI exits) and disconnects. */
  close(): Promise<void>;
}

/**
 * The quarantine store of the gateway a config describes: with `cluster:`, the replicas' shared
 * store in Redis (a decision made here reaches every replica); otherwise the state directory's
 * file (`stateDir` / `integrity.quarantineDir`). Refuses when the cluster's Redis does not answer:
 * the file would hold a decision no replica reads.
 */
export async function openQuarantines(loaded: LoadedConfig): Promise<OpenedQuarantines> {
  const failures: unknown[] = [];
  const shared = openSharedQuarantines(loaded, (error) => failures.push(error));
  if (shared === undefined) {
    const stateDir = resolve(loaded.baseDir, loaded.config.stateDir);
    const store = FileQuarantineStore.inDirectory(resolveFrom(stateDir, loaded.config.integrity.quarantineDir ?? trustConfigDefaults.quarantineDir));
    return { store, where: store.file, close: () => Promise.resolve() };
  }
  const ready = await shared.store.ready(CLUSTER_READY_MS).catch(() => false);
  if (!ready) {
    await shared.close().catch(() => undefined);
    throw new CliError(`the cluster's Redis (cluster.redis in ${loaded.source}) did not answer within ${CLUSTER_READY_MS / 1000} s; quarantines of a cluster live there, and a decision must reach every replica: retry when it is back`, 1);
  }
  return {
    store: shared.store,
    where: `the cluster's Redis (key prefix ${loaded.config.cluster?.keyPrefix ?? ''})`,
    close: async () => {
      try {
        await shared.close();
      } catch (error) {
        throw new CliError(`the decision did not reach the cluster's Redis (${error instanceof Error ? error.message : String(error)}); no replica has it: retry`, 1);
      }
    },
  };
}

/** Runs `use` with the config's quarantine store open, and closes it (flushing writes) after. */
export async function withQuarantines<T>(loaded: LoadedConfig, use: (opened: OpenedQuarantines) => T): Promise<T> {
  const opened = await openQuarantines(loaded);
  try {
    return use(opened);
  } finally {
    await opened.close();
  }
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

function recordOrExit({ store, where }: OpenedQuarantines, id: string): QuarantineRecord {
  const record = store.get(id);
  if (record === undefined) throw new CliError(`no quarantine ${id} in ${where}; bastion quarantine list shows them`, 2);
  return record;
}

async function decide(id: string, flags: { config: string }, status: 'approved' | 'rejected'): Promise<void> {
  const loaded = loadConfigFile(flags.config);
  const { record, note } = await withQuarantines(loaded, (opened): QuarantineDecision => {
    recordOrExit(opened, id);
    try {
      return decideQuarantine(loaded, opened.store, id, status);
    } catch (error) {
      if (error instanceof QuarantineDecisionError) throw new CliError(error.message, 2);
      throw error;
    }
  });
  // Printed only once the decision is where the gateways read it (flushed to Redis in a cluster).
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
    .action(async (flags: { config: string; json?: boolean; held?: boolean }) => {
      const all = await withQuarantines(loadConfigFile(flags.config), ({ store }) => store.list());
      const records = all.filter((record) => flags.held !== true || record.status === 'held');
      if (flags.json === true) process.stdout.write(`${JSON.stringify(records, null, 2)}\n`);
      else process.stdout.write(records.length === 0 ? 'no quarantines\n' : `${records.map(summary).join('\n')}\n`);
    });
  quarantine
    .command('show')
    .description('one quarantine: old and new digests, the diff, findings and the new definition')
    .argument('<id>', 'quarantine id (q-...)')
    .requiredOption('--config <file>', 'bastion.yaml')
    .action(async (id: string, flags: { config: string }) => {
      process.stdout.write(show(await withQuarantines(loadConfigFile(flags.config), (opened) => recordOrExit(opened, id))));
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
