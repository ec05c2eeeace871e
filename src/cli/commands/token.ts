import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { hashToken } from '../../auth/index.js';
import type { RegisterCommands } from './index.js';

export const registerToken: RegisterCommands = (program: Command) => {
  const token = program.command('token').description('client API tokens (only their SHA-256 goes into the config)');
  token
    .command('new')
    .description('generate a random token for an agent and print the config entry that accepts it')
    .requiredOption('-a, --agent <id>', 'the agent id the token maps to')
    .action((options: { agent: string }) => {
      const value = randomBytes(32).toString('base64url');
      process.stdout.write(`token (give it to the agent; it is not stored anywhere): ${value}\n`);
      process.stdout.write(`config entry (auth.apiTokens):\n  - agent: ${options.agent}\n    sha256: ${hashToken(value)}\n`);
    });
  token
    .command('hash')
    .description('print the SHA-256 of a token read from standard input, for auth.apiTokens')
    .action(async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      const value = Buffer.concat(chunks).toString('utf8').trim();
      process.stdout.write(`${hashToken(value)}\n`);
    });
};
