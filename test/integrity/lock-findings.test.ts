// `bastion lock`, `manifest from-server` and `sign` run the scanner over what they would pin or
// sign, and refuse definitions with high or critical findings unless told --accept-findings.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASTION_BIN, fixture, tempDir } from '../helpers/gateway.js';

const RUGPULL = fixture('rugpull-server');
const work = tempDir('bastion-lock-findings-');
after(() => work.cleanup());

function bastion(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [BASTION_BIN, ...args], { encoding: 'utf8', cwd: work.path });
}

// N = 0: the rug-pull server lists get_weather with the injected description from the start.
const poisonedConfig = `version: 1\nsandbox: { backend: none }\nservers:\n  rugpull:\n    transport: stdio\n    command: ${JSON.stringify(process.execPath)}\n    args: [${JSON.stringify(RUGPULL)}, "0"]\n    trust: unsigned\n`;

describe('pinning and signing poisoned definitions', () => {
  test('bastion lock refuses a poisoned description, naming rule and field, and writes nothing', () => {
    writeFileSync(join(work.path, 'bastion.yaml'), poisonedConfig);
    const refused = bastion('lock', '--config', 'bastion.yaml');
    assert.equal(refused.status, 2, refused.stdout);
    assert.match(refused.stderr, /refusing to pin or sign definitions with high or critical scanner findings:\n {2}(high|critical) BST-M\d+: tools 'get_weather' description/);
    assert.equal(existsSync(join(work.path, 'tool_hashlock.json')), false);
  });

  test('manifest from-server refuses to draft it, and sign refuses to sign a manifest that carries it', () => {
    const drafted = bastion('manifest', 'from-server', '--config', 'bastion.yaml', '--server', 'rugpull', '--out', 'rug.manifest.yaml');
    assert.equal(drafted.status, 2, drafted.stderr);
    assert.equal(existsSync(join(work.path, 'rug.manifest.yaml')), false);
    const accepted = bastion('manifest', 'from-server', '--config', 'bastion.yaml', '--server', 'rugpull', '--out', 'rug.manifest.yaml', '--accept-findings');
    assert.equal(accepted.status, 0, accepted.stderr);
    assert.equal(bastion('keygen', '--out', 'acme').status, 0);
    const signed = bastion('sign', 'rug.manifest.yaml', '--key', 'acme.key');
    assert.equal(signed.status, 2, signed.stdout);
    assert.match(signed.stderr, /BST-M\d+: tools 'get_weather' description/);
    assert.ok(!readFileSync(join(work.path, 'rug.manifest.yaml'), 'utf8').includes('proof'), 'nothing was signed');
    assert.equal(bastion('sign', 'rug.manifest.yaml', '--key', 'acme.key', '--accept-findings').status, 0);
  });
});
