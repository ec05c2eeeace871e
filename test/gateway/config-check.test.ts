import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfigFile } from '../../src/config/index.js';
import { configProblems } from '../helpers/config.js';
import { removeTree } from '../helpers/tmp.js';

const stdioServer = ['servers:', '  files:', '    transport: stdio', '    command: node'];

describe('config check reads like a list of fixes, first mistake first', () => {
  test('problems come in the order of the file', () => {
    const problems = configProblems(['version: 1', 'stateDir: 7', ...stdioServer, '    colour: blue', 'limits:', '  timeoutMs: -1'].join('\n'));
    const lines = problems.map((problem) => problem.line ?? 0);
    assert.ok(lines.length >= 3, `expected several problems, got ${JSON.stringify(problems)}`);
    assert.deepEqual(lines, [...lines].sort((a, b) => a - b));
  });

  test('a typo in transport is one problem with the likely value, not a cascade from the other transport', () => {
    const problems = configProblems(['version: 1', 'servers:', '  files:', '    transport: stdiox', '    command: node'].join('\n'));
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0]?.field, 'servers.files.transport');
    assert.equal(problems[0]?.line, 4);
    assert.match(problems[0]?.fix ?? '', /did you mean 'stdio'/);
  });

  test('a missing transport is reported once', () => {
    const problems = configProblems(['version: 1', 'servers:', '  files:', '    command: node'].join('\n'));
    assert.deepEqual(problems.map((problem) => problem.field), ['servers.files.transport']);
  });

  test('a missing version says exactly the line to add', () => {
    const problems = configProblems(stdioServer.join('\n'));
    const version = problems.find((problem) => problem.field === 'version');
    assert.equal(version?.fix, 'add version: 1');
  });

  test('an unclosed flow sequence is reported on the line that opened it', () => {
    const problems = configProblems(['version: 1', 'servers:', '  files:', '    transport: stdio', '    command: [node', '  other: x'].join('\n'));
    assert.equal(problems[0]?.line, 5, JSON.stringify(problems));
    assert.match(problems[0]?.message ?? '', /syntax error/);
  });

  test('a missing file names the file, not a flag the user did not give', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bastion-config-'));
    try {
      const missing = join(dir, 'nope.yaml');
      assert.throws(
        () => loadConfigFile(missing),
        (error: unknown) => error instanceof ConfigError && /cannot read the file/.test(error.message) && error.message.includes(missing) && !error.message.includes('--config'),
      );
      writeFileSync(join(dir, 'ok.yaml'), ['version: 1', ...stdioServer].join('\n'));
      assert.equal(Object.keys(loadConfigFile(join(dir, 'ok.yaml')).config.servers).length, 1);
    } finally {
      removeTree(dir);
    }
  });
});
