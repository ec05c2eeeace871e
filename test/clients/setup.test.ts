import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CLIENT_FORMATS, CLIENT_IDS, configPath, type ClientId, type LocationEnv } from '../../src/clients/index.js';
import { BASTION_BIN, tempDir } from '../helpers/gateway.js';

type Json = Record<string, unknown>;

function run(home: string, args: string[], cwd = home): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BASTION_BIN, 'client', ...args], { cwd, env: { ...process.env, HOME: home }, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function env(home: string, project = home): LocationEnv {
  return { home, project, platform: process.platform, appData: undefined };
}

function entryOf(file: string, client: ClientId, name = 'bastion'): Json {
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as Json;
  const servers = parsed[CLIENT_FORMATS[client].container] as Json;
  return servers[name] as Json;
}

describe('bastion client setup writes each client the entry it understands', () => {
  for (const client of CLIENT_IDS.filter((id) => CLIENT_FORMATS[id].supportsHttp)) {
    test(`${client}: an HTTP entry with the token taken from the environment, never written in the file`, () => {
      const home = tempDir('bastion-client-');
      try {
        const result = run(home.path, ['setup', client, '--url', 'http://127.0.0.1:9911/mcp', '--token-env', 'MY_BASTION_TOKEN']);
        assert.equal(result.status, 0, result.stderr);
        const file = configPath(CLIENT_FORMATS[client], 'user', env(home.path));
        const entry = entryOf(file, client);
        const url = entry['url'] ?? entry['serverUrl'];
        assert.equal(url, 'http://127.0.0.1:9911/mcp');
        if (client === 'windsurf') assert.equal(entry['url'], undefined, 'Windsurf reads serverUrl, not url');
        const header = (entry['headers'] as Json)['Authorization'];
        assert.equal(header, client === 'claude-code' ? 'Bearer ${MY_BASTION_TOKEN}' : 'Bearer ${env:MY_BASTION_TOKEN}');
        if (client === 'claude-code' || client === 'vscode') assert.equal(entry['type'], 'http');
        assert.equal(statSync(file).mode & 0o077, 0, 'a new client config is private to its user');
      } finally {
        home.cleanup();
      }
    });
  }

  test('an existing file keeps its other servers and settings, and the old file is kept as a backup', () => {
    const home = tempDir('bastion-client-');
    try {
      const file = join(home.path, '.claude.json');
      const before = { numStartups: 7, projects: { '/x': { allowedTools: [] } }, mcpServers: { github: { type: 'http', url: 'https://example.test/mcp' }, bastion: { command: 'old' } } };
      writeFileSync(file, JSON.stringify(before, null, 2), { mode: 0o644 });
      const result = run(home.path, ['setup', 'claude-code']);
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, /replaced 'bastion'/);
      const after = JSON.parse(readFileSync(file, 'utf8')) as typeof before & { mcpServers: Json };
      assert.equal(after.numStartups, 7);
      assert.deepEqual(after.projects, before.projects);
      assert.deepEqual(after.mcpServers['github'], before.mcpServers.github);
      assert.equal((after.mcpServers['bastion'] as Json)['url'], 'http://127.0.0.1:8080/mcp');
      assert.equal(statSync(file).mode & 0o777, 0o644, 'the file keeps its mode');
      const backups = readdirSync(home.path).filter((name) => name.startsWith('.claude.json.bak-'));
      assert.equal(backups.length, 1);
      assert.deepEqual(JSON.parse(readFileSync(join(home.path, backups[0] ?? ''), 'utf8')), before);
    } finally {
      home.cleanup();
    }
  });

  test('a config with comments is refused and left exactly as it was', () => {
    const home = tempDir('bastion-client-');
    try {
      const file = join(home.path, '.config', 'Code', 'User', 'mcp.json');
      mkdirSync(dirname(file), { recursive: true });
      const text = '{\n  // my servers\n  "servers": {}\n}\n';
      writeFileSync(file, text);
      const result = run(home.path, ['setup', 'vscode']);
      assert.equal(result.status, 2);
      assert.match(result.stderr, /not plain JSON.*--print/);
      assert.equal(readFileSync(file, 'utf8'), text);
    } finally {
      home.cleanup();
    }
  });

  test('--print writes nothing; project scope goes to the project directory; list shows what is configured', () => {
    const home = tempDir('bastion-client-');
    try {
      const project = join(home.path, 'proj');
      mkdirSync(project);
      const printed = run(home.path, ['setup', 'cursor', '--print']);
      assert.equal(printed.status, 0, printed.stderr);
      assert.match(printed.stdout, /"mcpServers"/);
      assert.equal(existsSync(join(home.path, '.cursor', 'mcp.json')), false);
      assert.equal(run(home.path, ['setup', 'vscode', '--scope', 'project', '--project', project]).status, 0);
      assert.ok(existsSync(join(project, '.vscode', 'mcp.json')));
      assert.equal(run(home.path, ['setup', 'windsurf', '--scope', 'project']).status, 2, 'Windsurf has no project-scope file');
      assert.equal(run(home.path, ['setup', 'claude-desktop']).status, 2, 'Claude Desktop cannot take an HTTP entry');
      const listed = run(home.path, ['list', '--project', project]).stdout.split('\n');
      assert.ok(listed.some((line) => /^vscode\s+project\s+configured\s/.test(line)), listed.join('\n'));
      assert.ok(listed.some((line) => /^cursor\s+user\s+no-file\s/.test(line)), listed.join('\n'));
    } finally {
      home.cleanup();
    }
  });

  test('the stdio entry written for Claude Desktop starts a Bastion that an SDK client can use', async () => {
    const home = tempDir('bastion-client-');
    try {
      const workdir = join(home.path, 'work');
      mkdirSync(workdir);
      writeFileSync(
        join(workdir, 'bastion.yaml'),
        ['version: 1', 'stateDir: state', 'policy: { enforce: false }', 'sandbox: { backend: none }', 'servers:', '  everything:', '    transport: stdio', `    command: ${JSON.stringify(process.execPath)}`, `    args: [${JSON.stringify(join(dirname(BASTION_BIN), '..', '..', '..', 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js'))}, stdio]`, '    trust: unsigned'].join('\n'),
      );
      const result = run(home.path, ['setup', 'claude-desktop', '--transport', 'stdio', '--config', join(workdir, 'bastion.yaml')]);
      assert.equal(result.status, 0, result.stderr);
      const entry = entryOf(configPath(CLIENT_FORMATS['claude-desktop'], 'user', env(home.path)), 'claude-desktop');
      assert.equal(typeof entry['command'], 'string');
      const client = new Client({ name: 'claude-desktop-stand-in', version: '1.0.0' });
      await client.connect(new StdioClientTransport({ command: entry['command'] as string, args: entry['args'] as string[], cwd: workdir, stderr: 'ignore' }));
      try {
        const tools = await client.listTools();
        assert.ok(tools.tools.some((tool) => tool.name === 'everything.echo'), JSON.stringify(tools.tools.map((tool) => tool.name)));
      } finally {
        await client.close();
      }
    } finally {
      home.cleanup();
    }
  });
});
