import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { renameSync, writeFileSync } from 'node:fs';
import pino from 'pino';
import { PolicyError, PolicyStore, type PolicyEvaluator } from '../../src/policy/index.js';
import { tempDir } from './helpers.js';

function capturingLogger(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

const declarations = { s: { tools: { t: { scopes: [] } }, prompts: {} } };
const policyFor = (agent: string) => `agents:\n  ${agent}:\n    grants: ["exec:tools:s.t"]\n`;

async function until(condition: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 200 && !condition(); attempt += 1) await new Promise((resolve) => setTimeout(resolve, 25));
}

describe('policy store', () => {
  const tmp = tempDir('bastion-policy-store-');
  after(() => tmp.cleanup());

  test('a bad policy at boot refuses to start, with file and line', () => {
    const file = tmp.write('boot.yaml', 'agents:\n  a:\n    grants: ["read:nowhere:x"]\n');
    assert.throws(() => PolicyStore.open({ policyFiles: [file], declarations, logger: capturingLogger().logger }), (error: unknown) => error instanceof PolicyError && /boot\.yaml:3/.test(error.message));
  });

  test('a bad new policy keeps the old one and logs why', () => {
    const file = tmp.write('reload.yaml', policyFor('alice'));
    const { logger, lines } = capturingLogger();
    const store = PolicyStore.open({ policyFiles: [file], declarations, logger });
    const before: PolicyEvaluator = store.current;
    writeFileSync(file, 'agents:\n  alice:\n    grants: ["exec:tool:s.t"]\n');
    const result = store.reload();
    assert.equal(result.ok, false);
    assert.equal(store.current, before);
    assert.equal(store.current.decideTool('alice', 's', 't', {}).allow, true);
    const rejected = lines.find((line) => line['msg'] === 'policy reload rejected; the previous policy stays in force');
    assert.match(JSON.stringify(rejected?.['problems']), /reload\.yaml:3:.*unknown resource kind 'tool'/);
    writeFileSync(file, policyFor('bob'));
    assert.equal(store.reload().ok, true);
    assert.equal(store.current.decideTool('alice', 's', 't', {}).reason, 'agent_has_no_policy');
    assert.equal(store.current.decideTool('bob', 's', 't', {}).allow, true);
  });

  test('a file replaced by rename (as editors do) is picked up by the watcher', async () => {
    const file = tmp.write('watched.yaml', policyFor('alice'));
    const store = PolicyStore.open({ policyFiles: [file], declarations, logger: capturingLogger().logger, debounceMs: 20 });
    store.watch();
    try {
      const next = tmp.write('watched.yaml.tmp', policyFor('carol'));
      renameSync(next, file);
      await until(() => store.current.decideTool('carol', 's', 't', {}).allow);
      assert.equal(store.current.decideTool('carol', 's', 't', {}).allow, true);
      assert.equal(store.current.decideTool('alice', 's', 't', {}).allow, false);
    } finally {
      store.close();
    }
  });

  test('SIGHUP reloads', async () => {
    const file = tmp.write('hup.yaml', policyFor('alice'));
    const store = PolicyStore.open({ policyFiles: [file], declarations, logger: capturingLogger().logger });
    store.handleSighup();
    try {
      writeFileSync(file, policyFor('dave'));
      const signalled = once(process, 'SIGHUP');
      process.kill(process.pid, 'SIGHUP');
      await signalled;
      assert.equal(store.current.decideTool('dave', 's', 't', {}).allow, true);
    } finally {
      store.close();
    }
  });

  test('new declarations (e.g. from verified manifests) recompile; a tool dropped from them is denied', () => {
    const file = tmp.write('decl.yaml', policyFor('alice'));
    const store = PolicyStore.open({ policyFiles: [file], declarations, logger: capturingLogger().logger });
    assert.equal(store.setDeclarations({ s: { tools: {}, prompts: {} } }).ok, true);
    assert.equal(store.current.decideTool('alice', 's', 't', {}).reason, 'tool_not_declared');
  });
});
