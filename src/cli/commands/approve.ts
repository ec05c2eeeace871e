// `bastion approve list | allow | deny`: an approver decides on calls that wait for a human,
// through the admin API of the running gateway (the queue lives in its memory). The operator
// token comes from BASTION_OPERATOR_TOKEN or a file, never from the command line (argv is
// visible to every user of the machine).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError } from '../errors.js';
import type { RegisterCommands } from './index.js';

interface ApiFlags {
  url: string;
  tokenFile?: string;
}

interface PendingView {
  id: string;
  agent: string;
  server: string;
  tool: string;
  arguments: unknown;
  requestedAt: string;
  deadline: string;
  grant: string;
  source: string;
}

function operatorToken(flags: ApiFlags): string {
  const token = flags.tokenFile === undefined ? process.env['BASTION_OPERATOR_TOKEN'] : readFileSync(flags.tokenFile, 'utf8').trim();
  if (token === undefined || token.length === 0) throw new CliError('no operator token: set BASTION_OPERATOR_TOKEN or pass --token-file FILE', 2);
  return token;
}

async function call(flags: ApiFlags, path: string, body?: unknown): Promise<unknown> {
  const base = flags.url.replace(/\/+$/, '');
  let response: Response;
  try {
    response = await fetch(`${base}/api/v1/${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { Authorization: `Bearer ${operatorToken(flags)}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (error) {
    throw new CliError(`cannot reach the admin API at ${base}: ${(error as Error).message} (is listeners.admin configured and the gateway running?)`, 1);
  }
  const answer = (await response.json().catch(() => ({}))) as { error?: string };
  if (!response.ok) throw new CliError(`${response.status}: ${answer.error ?? 'the admin API refused the request'}`, response.status === 404 ? 2 : 1);
  return answer;
}

const withApi = (command: Command): Command =>
  command.requiredOption('--url <url>', 'the admin listener, e.g. http://127.0.0.1:9464').option('--token-file <file>', 'a file holding the operator token (default: $BASTION_OPERATOR_TOKEN)');

export const registerApprove: RegisterCommands = (program: Command) => {
  const approve = program.command('approve').description('decide on calls that wait for a human approval (grants with approval: required)');
  withApi(approve.command('list').description('the calls waiting now: id, agent, tool, arguments (redacted), deadline'))
    .option('--json', 'print them as JSON')
    .action(async (flags: ApiFlags & { json?: boolean }) => {
      const { pending } = (await call(flags, 'approvals')) as { pending: PendingView[] };
      if (flags.json === true) process.stdout.write(`${JSON.stringify(pending, null, 2)}\n`);
      else if (pending.length === 0) process.stdout.write('no call is waiting for approval\n');
      else for (const item of pending) process.stdout.write(`${item.id}  ${item.agent}  ${item.server}.${item.tool}  until ${item.deadline}  ${JSON.stringify(item.arguments)}  (${item.grant} at ${item.source})\n`);
    });
  for (const [verb, description] of [
    ['allow', 'let the waiting call through to its server'],
    ['deny', 'refuse the waiting call (the client gets a policy denial)'],
  ] as const) {
    withApi(approve.command(verb).description(description).argument('<id>', 'approval id (a-...)')).action(async (id: string, flags: ApiFlags) => {
      if (!/^a-[0-9a-f]{16}$/.test(id)) throw new CliError(`'${id}' is not an approval id (a- and 16 hex digits; bastion approve list shows them)`, 2);
      const { approval, decidedBy } = (await call(flags, `approvals/${id}/${verb}`, { via: 'cli' })) as { approval: PendingView; decidedBy: string };
      process.stdout.write(`${verb === 'allow' ? 'allowed' : 'denied'} ${id} (${approval.agent} ${approval.server}.${approval.tool}) as ${decidedBy}\n`);
    });
  }
};
