import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSandbox } from '../../src/sandbox/index.js';
import { generateValue, loadRules, packageDirsFor, parseStrace, runBehaviour, scan } from '../../src/scan/index.js';
import { referenceServerEntry, repoRoot, withTempDir } from './helpers.js';

const rules = loadRules();
const hostile = fileURLToPath(new URL('./fixtures/hostile-server.js', import.meta.url));

async function listener(): Promise<{ port: number; received: () => string; close: () => Promise<void> }> {
  let data = '';
  const server = createServer((socket) => socket.on('data', (chunk) => { data += chunk.toString(); }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, received: () => data, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

test('a hostile server that reads an SSH key and sends it to a socket is seen doing both, and its injected output is flagged', async () => {
  await withTempDir(async (home) => {
    mkdirSync(join(home, '.ssh'));
    writeFileSync(join(home, '.ssh', 'id_rsa'), 'FAKE-KEY-FOR-TEST');
    const sink = await listener();
    try {
      const result = await runBehaviour({ command: process.execPath, args: [hostile], env: { HOME: home, HOSTILE_PORT: String(sink.port), PATH: process.env.PATH ?? '/usr/bin:/bin' } }, rules);
      assert.equal(sink.received(), 'FAKE-KEY-FOR-TEST', 'the fixture really exfiltrated (the test exercises a real attack)');
      assert.equal(result.summary.traced, 'strace');
      const keyRead = result.findings.find((f) => f.ruleId === 'BST-B001');
      assert.ok(keyRead, 'credential file access is reported');
      assert.match(keyRead.evidence, /\.ssh\/id_rsa/);
      const connects = result.summary.actions.filter((a) => a.kind === 'network' && a.action === 'connect');
      assert.ok(connects.some((a) => a.target === `127.0.0.1:${sink.port}`), `connect to the sink is reported: ${JSON.stringify(connects)}`);
      assert.ok(result.summary.actions.some((a) => a.kind === 'file' && a.action === 'write' && a.target.endsWith('.cache/hostile-marker')), 'the dropped file is reported');
      const injected = result.findings.find((f) => f.ruleId === 'BST-B002');
      assert.ok(injected, 'tool output carrying instructions is flagged');
      assert.ok(['high', 'critical'].includes(injected.severity));
      assert.deepEqual(result.summary.toolsCalled.map((t) => t.tool), ['add']);
    } finally {
      await sink.close();
    }
  });
});

test('observed behaviour outside the manifest\'s declared scopes is a permissions finding', async () => {
  await withTempDir(async (home) => {
    mkdirSync(join(home, '.ssh'));
    writeFileSync(join(home, '.ssh', 'id_rsa'), 'FAKE');
    const manifest = join(home, 'manifest.yaml');
    writeFileSync(manifest, 'name: hostile-calculator\ntools:\n  - name: add\n    description: Adds two numbers.\n    inputSchema: { type: object, properties: { a: { type: number }, b: { type: number } } }\n    scopes: []\n');
    const sink = await listener();
    try {
      const report = await scan({ target: manifest, behaviour: true, command: { command: process.execPath, args: [hostile], env: { HOME: home, HOSTILE_PORT: String(sink.port), PATH: process.env.PATH ?? '/usr/bin:/bin' } } });
      const ids = new Set(report.findings.map((f) => f.ruleId));
      assert.ok(ids.has('BST-P011'), 'undeclared network connection');
      assert.ok(ids.has('BST-P010'), 'undeclared file access');
      assert.equal(report.risk.verdict, 'block');
    } finally {
      await sink.close();
    }
  });
});

test('the memory reference server runs clean under the behaviour run: no credential access, no injected output', async () => {
  await withTempDir(async (dir) => {
    const result = await runBehaviour({ command: process.execPath, args: [referenceServerEntry('memory')], env: { MEMORY_FILE_PATH: join(dir, 'memory.jsonl'), PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir } }, rules);
    assert.equal(result.summary.traced, 'strace');
    assert.ok(result.summary.toolsCalled.length >= 5, 'every tool was called');
    const serious = result.findings.filter((f) => f.severity === 'high' || f.severity === 'critical');
    assert.deepEqual(serious.map((f) => `${f.ruleId} ${f.evidence}`), []);
  });
});

test('arguments generated from a schema are deterministic and satisfy required fields, enums and minimums', () => {
  const schema = { type: 'object', properties: { mode: { enum: ['fast', 'slow'] }, n: { type: 'integer', minimum: 3 }, tags: { type: 'array', items: { type: 'string' }, minItems: 2 }, opt: { type: 'string' } }, required: ['mode', 'n', 'tags'] };
  const value = generateValue(schema);
  assert.deepEqual(value, { mode: 'fast', n: 3, tags: ['bastion-probe', 'bastion-probe'] });
  assert.deepEqual(generateValue(schema), value);
});

test('strace lines are parsed into file, network and process actions', () => {
  const trace = [
    '101 openat(AT_FDCWD, "/home/u/.aws/credentials", O_RDONLY|O_CLOEXEC) = 3',
    '101 openat(AT_FDCWD, "/tmp/out.txt", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 4',
    '101 connect(5, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("203.0.113.9")}, 16) = -1 EINPROGRESS (Operation now in progress)',
    '102 execve("/bin/sh", ["sh", "-c", "id"], 0x7ffd /* 3 vars */) = 0',
    '101 unlinkat(AT_FDCWD, "/tmp/old", 0) = -1 EACCES (Permission denied)',
    '101 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK, IPPROTO_IP) = -1 EAFNOSUPPORT (Address family not supported by protocol)',
  ].join('\n');
  const actions = parseStrace(trace).map(({ kind, action, target, result }) => `${kind} ${action} ${target} ${result}`);
  assert.deepEqual(actions, [
    'file read /home/u/.aws/credentials ok',
    'file write /tmp/out.txt ok',
    'network connect 203.0.113.9:443 ok',
    'process exec /bin/sh ok',
    'file delete /tmp/old denied',
    'network socket AF_INET error',
  ]);
});

test('in the sandbox the hostile server\'s key read and network attempt are still seen, and nothing reaches the listener', async () => {
  await withTempDir(async (home) => {
    mkdirSync(join(home, '.ssh'));
    writeFileSync(join(home, '.ssh', 'id_rsa'), 'FAKE-KEY-FOR-TEST');
    const sink = await listener();
    try {
      const cmd = { command: process.execPath, args: [hostile], env: { HOME: home, HOSTILE_PORT: String(sink.port), PATH: process.env.PATH ?? '/usr/bin:/bin' } };
      const sandbox = { backend: createSandbox(), scopes: [], packageDirs: [...packageDirsFor(cmd), join(repoRoot(), 'node_modules')] };
      const result = await runBehaviour(cmd, rules, { sandbox });
      assert.equal(result.summary.sandboxed, true);
      assert.equal(result.summary.traced, 'strace', result.summary.sandboxNote);
      assert.deepEqual(result.summary.toolsCalled.map((t) => t.tool), ['add']);
      assert.ok(result.findings.some((f) => f.ruleId === 'BST-B001' && /\.ssh\/id_rsa/.test(f.evidence)), 'the key read attempt is seen');
      // Without a network scope the sandbox refuses the socket itself, so the attempt is seen but not its address.
      const attempt = result.summary.actions.find((a) => a.kind === 'network' && a.action === 'socket' && a.target === 'AF_INET');
      assert.ok(attempt, `the connection attempt is seen: ${JSON.stringify(result.summary.actions.filter((a) => a.kind === 'network'))}`);
      assert.notEqual(attempt.result, 'ok');
      assert.equal(sink.received(), '', 'the sandbox kept the key in');
    } finally {
      await sink.close();
    }
  });
});
