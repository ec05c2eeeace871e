import type { RegisterCommands } from './index.js';

/**
 * Which module registers each top-level command, so the CLI imports only the one being run: loading
 * every group pulls in the gateway, the OpenTelemetry SDK and ajv, which cost `bastion --version` and
 * `bastion scan` over a second of start-up (issue 18: under 200 ms of fixed cost). The order is
 * commands/index.ts's, and test/gateway/cli-routes.test.ts checks that each module registers exactly
 * the names listed here.
 */
export interface Route {
  names: readonly string[];
  load: () => Promise<RegisterCommands>;
}

export const routes: readonly Route[] = [
  { names: ['serve'], load: async () => (await import('./serve.js')).registerServe },
  { names: ['config'], load: async () => (await import('./config.js')).registerConfig },
  { names: ['token'], load: async () => (await import('./token.js')).registerToken },
  { names: ['policy'], load: async () => (await import('./policy.js')).registerPolicy },
  { names: ['scan', 'feed', 'certify', 'verify-certification'], load: async () => (await import('./scan.js')).registerScan },
  { names: ['keygen', 'sign', 'verify', 'lock', 'digest', 'manifest'], load: async () => (await import('./integrity.js')).registerIntegrity },
  { names: ['quarantine'], load: async () => (await import('./quarantine.js')).registerQuarantine },
  { names: ['doctor'], load: async () => (await import('./doctor.js')).registerDoctor },
  { names: ['client'], load: async () => (await import('./client.js')).registerClient },
  { names: ['review'], load: async () => (await import('./review.js')).registerReview },
  { names: ['credentials'], load: async () => (await import('./credentials.js')).registerCredentials },
  { names: ['approve'], load: async () => (await import('./approve.js')).registerApprove },
];

const VERSION_FLAGS = new Set(['-V', '--version']);

/**
 * The command groups to register for these arguments (process.argv without node and the script):
 * none for the version flag, the named command's group alone, and every group where the help lists
 * them all or where commander must report an unknown command.
 */
export async function groupsFor(args: readonly string[]): Promise<RegisterCommands[]> {
  const [first, second] = args;
  if (first !== undefined && VERSION_FLAGS.has(first)) return [];
  const name = first === 'help' ? second : first;
  const route = routes.find((r) => name !== undefined && r.names.includes(name));
  if (route) return [await route.load()];
  return Promise.all(routes.map((r) => r.load()));
}
