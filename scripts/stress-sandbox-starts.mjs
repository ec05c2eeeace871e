#!/usr/bin/env node
// Outside CI: starts many bwrap sandboxes with network grants at once (transparent egress
// required, so Bastion must be root) and reports how many failed to start and why. Written for the
// namespace set-up race in docs/sandbox.md; run after `npm run build`.
//   node scripts/stress-sandbox-starts.mjs [rounds=20] [at-a-time=6]
import { readdirSync, existsSync } from 'node:fs';
import { createSandbox } from '../dist/src/sandbox/index.js';
import { FIXTURE_PACKAGE_DIRS } from '../dist/test/sandbox/helpers.js';

const [rounds = 20, width = 6] = process.argv.slice(2).map(Number);
const server = new URL('../dist/test/fixtures/servers/escape-server.js', import.meta.url).pathname;
const namespaces = () => (existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(`bastion-${process.pid}-`)).length : 0);
let started = 0;
const failures = new Map();
for (let round = 0; round < rounds; round += 1) {
  await Promise.all(Array.from({ length: width }, async (_, i) => {
    const sandbox = createSandbox({ backend: 'bwrap', transparentEgress: 'require', limits: { memoryBytes: 192 * 1024 * 1024, pids: 128 } });
    try {
      const handle = await sandbox.spawn({ serverName: `stress-${i}`, command: process.execPath, args: [server], env: {}, packageDirs: FIXTURE_PACKAGE_DIRS, scopes: [`write:network:127.0.0.1:${40000 + i}`] });
      started += 1;
      await handle.dispose();
    } catch (error) {
      const reason = String(error.message).replace(/\d+/g, 'N').slice(0, 240);
      failures.set(reason, (failures.get(reason) ?? 0) + 1);
    }
  }));
}
console.log(JSON.stringify({ started, failed: [...failures.values()].reduce((a, b) => a + b, 0), failures: Object.fromEntries(failures), namespacesLeft: namespaces() }, null, 1));
process.exitCode = failures.size > 0 ? 1 : 0;
