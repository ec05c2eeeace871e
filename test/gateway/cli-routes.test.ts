import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { commandGroups, type RegisterCommands } from '../../src/cli/commands/index.js';
import { groupsFor, routes } from '../../src/cli/commands/routes.js';
import { BASTION_BIN, tempDir } from '../helpers/gateway.js';

function registered(groups: RegisterCommands[]): string[] {
  const program = new Command();
  for (const register of groups) register(program);
  return program.commands.map((c) => c.name());
}

/** The module URLs a CLI run resolves, recorded by a module resolve hook in a file. */
function loadedModules(args: string[]): { urls: string[]; status: number | null } {
  const dir = tempDir();
  try {
    const log = join(dir.path, 'loaded.txt');
    const hook = join(dir.path, 'hook.mjs');
    writeFileSync(log, '');
    writeFileSync(hook, `import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }\n`);
    const register = `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(hook).href)});`;
    const result = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, BASTION_BIN, ...args], { encoding: 'utf8' });
    return { urls: readFileSync(log, 'utf8').split('\n').filter(Boolean), status: result.status };
  } finally {
    dir.cleanup();
  }
}

describe('CLI command routes', () => {
  test('each route names exactly the commands its module registers, in the order of the full command list', async () => {
    const fromRoutes: string[] = [];
    for (const route of routes) {
      const names = registered([await route.load()]);
      assert.deepEqual(names, [...route.names]);
      fromRoutes.push(...names);
    }
    assert.deepEqual(fromRoutes, registered(commandGroups));
  });

  test('the version flag loads no group, a command only its own, help and unknown names all of them', async () => {
    assert.deepEqual(await groupsFor(['--version']), []);
    assert.deepEqual(await groupsFor(['-V']), []);
    assert.deepEqual(registered(await groupsFor(['scan', 'manifest.yaml', '--format', 'json'])), ['scan', 'feed', 'certify', 'verify-certification']);
    assert.deepEqual(registered(await groupsFor(['lock', '--help'])), ['keygen', 'sign', 'verify', 'lock', 'digest', 'manifest']);
    assert.deepEqual(registered(await groupsFor(['help', 'token', 'new'])), ['token']);
    const all = registered(commandGroups);
    assert.deepEqual(registered(await groupsFor([])), all);
    assert.deepEqual(registered(await groupsFor(['help'])), all);
    assert.deepEqual(registered(await groupsFor(['--help'])), all);
    assert.deepEqual(registered(await groupsFor(['frobnicate'])), all);
  });

  test('--version and scan do not load the gateway, the OpenTelemetry SDK or the S3 SDK', () => {
    const dir = tempDir();
    try {
      const manifest = join(dir.path, 'one.yaml');
      writeFileSync(manifest, 'name: one\ntools:\n  - name: add\n    description: Add two numbers.\n');
      for (const args of [['--version'], ['scan', manifest, '--format', 'json', '--no-yara']]) {
        const run = loadedModules(args);
        assert.equal(run.status, 0, args.join(' '));
        assert.ok(run.urls.some((u) => u.endsWith('/cli/bastion.js')), 'the hook saw the CLI load');
        const heavy = run.urls.filter((u) => /\/src\/gateway\/|@opentelemetry|@aws-sdk|\/src\/app\//.test(u));
        assert.deepEqual(heavy, [], args.join(' '));
      }
      // The same check sees them when the full gateway command is loaded.
      assert.ok(loadedModules(['serve', '--help']).urls.some((u) => /\/src\/gateway\//.test(u)));
    } finally {
      dir.cleanup();
    }
  });
});
