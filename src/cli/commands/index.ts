import type { Command } from 'commander';
import { registerServe } from './serve.js';
import { registerConfig } from './config.js';
import { registerToken } from './token.js';
import { registerDoctor } from './doctor.js';
import { registerPolicy } from './policy.js';
import { registerScan } from './scan.js';
import { registerIntegrity } from './integrity.js';
import { registerClient } from './client.js';
import { registerQuarantine } from './quarantine.js';
import { registerReview } from './review.js';
import { registerCredentials } from './credentials.js';
import { registerApprove } from './approve.js';

/** A command group registers its subcommands on the root program. One file per group. */
export type RegisterCommands = (program: Command) => void;

// Each command group lives in its own file; add one line here per group.
export const commandGroups: RegisterCommands[] = [
  registerServe,
  registerConfig,
  registerToken,
  registerPolicy,
  registerScan,
  registerIntegrity,
  registerQuarantine,
  registerDoctor,
  registerClient,
  registerReview,
  registerCredentials,
  registerApprove,
];
