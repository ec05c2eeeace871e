import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { ConfigError, loadConfigFile } from '../../config/index.js';
import { DEFAULT_REVIEW_LIMITS, isReviewId, ReviewStore } from '../../scan/index.js';
import { CliError } from '../errors.js';
import type { RegisterCommands } from './index.js';

interface ReviewFlags {
  config?: string;
  stateDir?: string;
  json?: boolean;
}

/** The review store of the config's state directory (or of --state-dir). */
function openStore(flags: ReviewFlags): ReviewStore {
  let stateDir: string;
  if (flags.stateDir !== undefined) {
    stateDir = resolve(flags.stateDir);
  } else if (flags.config !== undefined) {
    try {
      const loaded = loadConfigFile(flags.config);
      stateDir = resolve(loaded.baseDir, loaded.config.stateDir);
    } catch (error) {
      if (error instanceof ConfigError) throw new CliError(error.message, 2);
      throw error;
    }
  } else {
    throw new CliError('name the gateway: --config bastion.yaml or --state-dir DIR', 2);
  }
  return new ReviewStore({ dir: join(stateDir, 'review'), ...DEFAULT_REVIEW_LIMITS });
}

export const registerReview: RegisterCommands = (program: Command) => {
  const review = program.command('review').description('outputs that output inspection withheld (kept redacted in the state directory)');
  review
    .command('list')
    .description('list withheld outputs, oldest first: id, time, server, subject, rules')
    .option('--config <file>', 'bastion.yaml (its stateDir holds the review store)')
    .option('--state-dir <dir>', 'the state directory, instead of --config')
    .option('--json', 'one JSON object per line')
    .action((flags: ReviewFlags) => {
      const store = openStore(flags);
      for (const { id } of store.list()) {
        const entry = store.get(id);
        if (entry === undefined) continue;
        if (flags.json === true) process.stdout.write(`${JSON.stringify({ id, ts: entry.ts, server: entry.server, subject: entry.subject, method: entry.method, rule_ids: entry.rule_ids })}\n`);
        else process.stdout.write(`${id}  ${entry.ts}  ${entry.subject}  ${entry.method}  ${entry.rule_ids.join(',')}\n`);
      }
    });
  review
    .command('show')
    .description('print one withheld output (redacted) with the findings that withheld it')
    .argument('<id>', 'the review id named in the client\'s error and the audit record')
    .option('--config <file>', 'bastion.yaml (its stateDir holds the review store)')
    .option('--state-dir <dir>', 'the state directory, instead of --config')
    .action((id: string, flags: ReviewFlags) => {
      if (!isReviewId(id)) throw new CliError(`'${id}' is not a review id (they look like r0mfx3k2ab-1f2e3d4c)`, 2);
      const entry = openStore(flags).get(id);
      if (entry === undefined) throw new CliError(`no review entry ${id} (it may have been dropped: the store keeps the newest entries only)`, 1);
      process.stdout.write(`${JSON.stringify(entry, null, 2)}\n`);
    });
};
