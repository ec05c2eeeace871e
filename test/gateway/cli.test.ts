import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { BASTION_BIN, configYaml, firstText, fixture, httpClient, stdioServer, tempDir } from '../helpers/gateway.js';

describe('the bastion command line', () => {
  test('--version prints the package version and --help explains each command', () => {
    const version = spawnSync(process.execPath, [BASTION_BIN, '--version'], { encoding: 'utf8' });
    assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+/);
    const help = spawnSync(process.execPath, [BASTION_BIN, '--help'], { encoding: 'utf8' });
    for (const command of ['serve', 'config', 'token']) assert.match(help.stdout, new RegExp(`\\n\\s+${command}\\b`));
    const serveHelp = spawnSync(process.execPath, [BASTION_BIN, 'serve', '--help'], { encoding: 'utf8' });
    assert.match(serveHelp.stdout, /--stdio/);
    assert.match(serveHelp.stdout, /--config/);
  });

  test('an unknown command fails with a non-zero exit and the help', () => {
    const result = spawnSync(process.execPath, [BASTION_BIN, 'frobnicate'], { encoding: 'utf8' });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /unknown command/);
  });

  test('token new prints a token whose hash is the config entry it prints', () => {
    const result = spawnSync(process.execPath, [BASTION_BIN, 'token', 'new', '--agent', 'ci-bot'], { encoding: 'utf8' });
    const token = /token[^:]*: (\S+)/.exec(result.stdout)?.[1] ?? '';
    const hash = /sha256: ([0-9a-f]{64})/.exec(result.stdout)?.[1] ?? '';
    const rehash = spawnSync(process.execPath, [BASTION_BIN, 'token', 'hash'], { input: token, encoding: 'utf8' });
    assert.equal(rehash.stdout.trim(), hash);
  });

  test('the HTTP listener refuses to start without any credential configured', () => {
    const dir = tempDir();
    const path = join(dir.path, 'bastion.yaml');
    writeFileSync(path, `version: 1\nlisteners:\n  http: { port: 0 }\npolicy: { enforce: false }\nservers:\n${stdioServer('odd', fixture('misbehaving-server'))}`);
    const result = spawnSync(process.execPath, [BASTION_BIN, 'serve', '--config', path], { encoding: 'utf8', timeout: 20_000 });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /needs credentials/);
    dir.cleanup();
  });

  test('SIGTERM closes sessions, stops every upstream process and exits 0', async () => {
    const dir = tempDir();
    const path = join(dir.path, 'bastion.yaml');
    writeFileSync(path, configYaml(stdioServer('odd', fixture('misbehaving-server'))));
    const child = spawn(process.execPath, [BASTION_BIN, 'serve', '--config', path], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, BASTION_LOG_LEVEL: 'info' } });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let upstreamPid: number | undefined;
    try {
      // A gateway that dies before listening fails the test instead of leaving it waiting.
      const url = await Promise.race([
        new Promise<string>((resolve) => {
          createInterface({ input: child.stderr }).on('line', (line) => {
            const match = /"url":"([^"]+)"/.exec(line);
            if (match?.[1] !== undefined) resolve(match[1]);
          });
        }),
        exited.then((code) => Promise.reject(new Error(`the gateway exited (${String(code)}) before listening`))),
      ]);
      const client = await httpClient(url);
      upstreamPid = Number(firstText(await client.callTool({ name: 'odd.pid', arguments: {} })));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.throws(() => process.kill(upstreamPid ?? 0, 0), /ESRCH/, 'an upstream process outlived the gateway');
    } finally {
      // On a failure, nothing this test started may outlive it.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (upstreamPid !== undefined) killQuietly(upstreamPid);
      dir.cleanup();
    }
  });
});

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone: the expected case.
  }
}
