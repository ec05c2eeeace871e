import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASTION_BIN, configYaml, fixture, stdioServer, tempDir, type TempDir } from '../helpers/gateway.js';
import { callBody, openSession, post, rawConnect, settlesWithin, type RawConnection } from '../helpers/raw-http.js';

// The gateway runs as a child process with a low RLIMIT_NOFILE (prlimit), fronting a server in
// the real bwrap sandbox. The test holds connections until the gateway runs out of descriptors,
// makes it start a sandboxed upstream in that state, then releases them: the gateway must
// never exit and must serve again.
const NOFILE = 160;

function textOf(answer: { body: Record<string, unknown> | undefined }): string {
  const result = answer.body?.['result'] as { content?: Array<{ text?: string }> } | undefined;
  return result?.content?.[0]?.text ?? '';
}

describe('gateway out of file descriptors', () => {
  let dir: TempDir;
  let child: ChildProcess;
  let url = '';
  let stderr = '';
  let exited: { code: number | null; signal: string | null } | undefined;
  const held: RawConnection[] = [];

  before(async () => {
    dir = tempDir();
    const listeners = 'listeners:\n  http:\n    host: 127.0.0.1\n    port: 0\n    maxConnections: 100000\n    maxConnectionsPerAddress: 100000\n    headersTimeoutMs: 600000\n    bodyTimeoutMs: 600000';
    // isolation: session: the new session below must spawn its own upstream while descriptors are short.
    const yaml = configYaml(stdioServer('paced', fixture('paced-server'), [], '    isolation: session'), 'sandbox: { backend: bwrap, limits: { openFiles: 64 } }\nupstream: { restartBackoffMs: 200, maxBackoffMs: 400 }', listeners);
    writeFileSync(join(dir.path, 'bastion.yaml'), yaml);
    child = spawn('prlimit', [`--nofile=${NOFILE}:${NOFILE}`, '--', process.execPath, BASTION_BIN, 'serve', '--config', join(dir.path, 'bastion.yaml')], { cwd: dir.path, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.once('exit', (code, signal) => {
      exited = { code, signal };
    });
    while (url === '') {
      if (exited !== undefined) throw new Error(`gateway exited at start: ${stderr}`);
      url = /"url":"(http:[^"]+)"/.exec(stderr)?.[1] ?? '';
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  });

  after(async () => {
    for (const conn of held) conn.socket.destroy();
    if (exited === undefined) {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
    }
    dir.cleanup();
  });

  test('holding connections until EMFILE, then starting a sandboxed upstream, never ends the gateway; it serves again once they are released', async (t) => {
    const baseline = await openSession(url);
    const before = await post(url, callBody(1, "paced.echo", { text: "before" }), { "mcp-session-id": baseline });
    assert.equal(textOf(before), "before", `${before.text} ${stderr.slice(-3000)}`);

    // Hold keep-alive connections (each answered once, so each holds a descriptor) until one is
    // refused: the gateway is out of descriptors.
    const request = `GET /healthz HTTP/1.1\r\nHost: ${new URL(url).host}\r\n\r\n`;
    let refused = false;
    for (let i = 0; i < NOFILE * 2 && !refused; i += 1) {
      const conn = await rawConnect(url).catch(() => undefined);
      if (conn === undefined) {
        refused = true;
        break;
      }
      conn.socket.write(request);
      while (!conn.received().includes('"ok"') && !conn.isClosed()) await new Promise((resolve) => setTimeout(resolve, 2));
      if (conn.received().includes('"ok"')) held.push(conn);
      else refused = true;
    }
    assert.equal(refused, true, 'the gateway never ran out of descriptors: raise the connection count');
    assert.equal(exited, undefined, `the gateway exited when accept() failed: ${stderr.slice(-2000)}`);

    // Free a few descriptors: enough to accept a request, too few to start a sandbox (bwrap
    // needs six pipes). The new session's upstream start fails and must not end the process.
    for (const conn of held.splice(0, 3)) conn.socket.destroy();
    let session: string | undefined;
    while (session === undefined && exited === undefined) {
      session = await openSession(url).catch(() => undefined);
    }
    assert.equal(exited, undefined, `the gateway exited: ${stderr.slice(-2000)}`);
    assert.ok(session !== undefined);
    const starved = post(url, callBody(2, 'paced.echo', { text: 'starved' }), { 'mcp-session-id': session });
    assert.equal(await settlesWithin(starved, 60_000), true);
    assert.equal(exited, undefined, `the gateway exited: ${stderr.slice(-2000)}`);

    // Release everything: the same gateway serves a call again (the upstream restarts with backoff).
    for (const conn of held.splice(0)) conn.socket.destroy();
    let text = '';
    for (let attempt = 0; attempt < 200 && text !== 'after'; attempt += 1) {
      const answer = await post(url, callBody(10 + attempt, 'paced.echo', { text: 'after' }), { 'mcp-session-id': session }).catch(() => undefined);
      text = answer === undefined ? '' : textOf(answer);
      if (text !== 'after') await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(text, 'after', `no call succeeded after the descriptors were released: ${stderr.slice(-2000)}`);
    assert.match(stderr, /EMFILE/, 'the descriptor exhaustion was logged');
    for (const line of new Set(stderr.split('\n').filter((entry) => /EMFILE|did not start|cannot start/.test(entry)).map((entry) => (/"msg":"([^"]*)"/.exec(entry)?.[1] ?? '') + ' ' + (/"err":"([^"]{0,160})/.exec(entry)?.[1] ?? '')))) t.diagnostic(line);
    assert.equal(exited, undefined);

    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    assert.deepEqual(exited, { code: 0, signal: null }, 'a clean shutdown after the ordeal');
  });
});
