// A stand-in gateway process for the tests that must run the launcher as another user or kill
// the launcher itself: starts the hostile server in the bwrap sandbox, runs the requested tool
// calls, prints one JSON line per result, then either exits or waits to be killed.
// Usage: node launch-hostile.js '<json LaunchRequest>'
import { createSandbox } from '../../src/sandbox/index.js';
import { attempt, connectClient, FIXTURE_PACKAGE_DIRS, hostileServer } from './helpers.js';

interface LaunchRequest {
  serverName: string;
  scopes: string[];
  cgroupParent?: string;
  cgroups?: 'require' | 'degrade';
  transparentEgress?: 'auto' | 'require' | 'off';
  calls: Array<[string, Record<string, unknown>]>;
  hold: boolean;
}

const request = JSON.parse(process.argv[2] ?? '{}') as LaunchRequest;
const print = (value: unknown): void => {
  process.stdout.write(`${JSON.stringify(value)}\n`);
};

const backend = createSandbox({ limits: { memoryBytes: 256 * 1024 * 1024, pids: 64 }, ...(request.cgroupParent ? { cgroupParent: request.cgroupParent } : {}), ...(request.cgroups ? { cgroups: request.cgroups } : {}), ...(request.transparentEgress ? { transparentEgress: request.transparentEgress } : {}) });
const handle = await backend.spawn({ serverName: request.serverName, command: process.execPath, args: [hostileServer()], env: {}, packageDirs: FIXTURE_PACKAGE_DIRS, scopes: request.scopes });
for (const warning of handle.warnings) print({ warning });
const client = await connectClient(handle.child);
print({ started: true, hostUid: handle.uid ?? process.getuid?.(), cgroups: handle.cpuTimeMs() !== undefined });
for (const [name, args] of request.calls) print({ tool: name, outcome: await attempt(client, name, args) });
print({ done: true });
if (!request.hold) {
  await client.close();
  await handle.dispose();
}
