import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compilePolicy, declarationsFromConfig, loadManifestFile, loadPolicyFiles, type PolicyEvaluator, type ToolDeclarations } from '../../src/policy/index.js';
import { tempDir } from './helpers.js';

const FIXTURES = join(process.cwd(), 'test', 'policy', 'fixtures');

describe('fail closed', () => {
  const tmp = tempDir('bastion-policy-eval-');
  let policy: PolicyEvaluator;
  before(() => {
    mkdirSync(join(tmp.dir, 'data', 'in'), { recursive: true });
    writeFileSync(join(tmp.dir, 'data', 'in', 'a.txt'), 'a');
    const file = tmp.write(
      'policy.yaml',
      `roles:
  net:
    grants: ["write:network:api.example.com:443"]
agents:
  alice:
    roles: [net]
    grants:
      - "exec:tools:[files.read, files.undeclared, files.broken, files.fetch, files.nothing, files.copy]"
      - "read:filesystem:${tmp.dir}/data"
      - "exec:sampling:[files]"
  nobody-special:
    grants: []
`,
    );
    const declarations: ToolDeclarations = {
      files: {
        tools: {
          read: { scopes: ['read:filesystem:${path}'] },
          broken: { scopes: ['read:database:${table}'] },
          fetch: { scopes: ['write:network:${url}'] },
          nothing: { scopes: [] },
          copy: { scopes: ['read:filesystem:${from.path}', 'write:filesystem:${to}'] },
          unlisted: { scopes: [] },
        },
        prompts: {},
      },
    };
    const compiled = compilePolicy({ policyFiles: [file], declarations });
    assert.ok(compiled.ok);
    policy = compiled.evaluator;
  });
  after(() => tmp.cleanup());

  const inside = () => join(tmp.dir, 'data', 'in', 'a.txt');

  test('a granted, declared tool reading inside the grant is allowed, with the rules that allowed it', () => {
    const decision = policy.decideTool('alice', 'files', 'read', { path: inside() });
    assert.equal(decision.allow, true);
    assert.deepEqual(decision.rules.map((rule) => [rule.effect, rule.requirement, rule.via]), [
      ['allow', 'exec:tools:files.read', 'agent alice'],
      ['allow', `read:filesystem:${inside()}`, 'agent alice'],
    ]);
    assert.match(decision.rules[1]?.source ?? '', /policy\.yaml:\d+$/);
  });

  test('a caller without identity is denied', () => {
    assert.equal(policy.decideTool(undefined, 'files', 'read', { path: inside() }).reason, 'unauthenticated');
  });

  test('an agent with no policy is denied', () => {
    assert.equal(policy.decideTool('mallory', 'files', 'read', { path: inside() }).reason, 'agent_has_no_policy');
  });

  test('an agent without exec:tools for the tool is denied', () => {
    assert.equal(policy.decideTool('nobody-special', 'files', 'nothing', {}).reason, 'tool_not_granted');
    assert.equal(policy.decideTool('alice', 'files', 'unlisted', {}).reason, 'tool_not_granted');
    assert.equal(policy.decideTool('alice', 'other', 'read', { path: inside() }).reason, 'tool_not_granted', 'a grant for files.read says nothing about other.read');
  });

  test('a granted tool with no declaration is denied', () => {
    const decision = policy.decideTool('alice', 'files', 'undeclared', {});
    assert.equal(decision.reason, 'tool_not_declared');
    assert.match(decision.message, /declares no scopes/);
  });

  test('a declaration with an unknown resource kind is denied', () => {
    const decision = policy.decideTool('alice', 'files', 'broken', { table: 'users' });
    assert.equal(decision.reason, 'declaration_invalid');
    assert.match(decision.message, /unknown resource kind 'database'/);
  });

  test('a tool declaring nothing is allowed with exec:tools alone', () => {
    assert.equal(policy.decideTool('alice', 'files', 'nothing', {}).allow, true);
  });

  test('a bound argument that is missing, of the wrong type or empty is denied', () => {
    assert.equal(policy.decideTool('alice', 'files', 'read', {}).reason, 'argument_missing');
    assert.equal(policy.decideTool('alice', 'files', 'read', { path: { nested: inside() } }).reason, 'argument_not_bindable');
    assert.equal(policy.decideTool('alice', 'files', 'read', { path: [] }).reason, 'argument_not_bindable');
    assert.equal(policy.decideTool('alice', 'files', 'read', { path: true }).reason, 'argument_not_bindable');
  });

  test('a path argument outside the grant is denied with the scope that was missing', () => {
    const decision = policy.decideTool('alice', 'files', 'read', { path: '/etc/passwd' });
    assert.equal(decision.reason, 'scope_not_granted');
    assert.equal(decision.rules.at(-1)?.requirement, 'read:filesystem:/etc/passwd');
    assert.equal(decision.rules.at(-1)?.declared, 'read:filesystem:${path}');
  });

  test('a path argument that cannot be canonicalized is denied', () => {
    assert.equal(policy.decideTool('alice', 'files', 'read', { path: `${inside()}\u0000` }).reason, 'path_control_character');
    assert.equal(policy.decideTool('alice', 'files', 'read', { path: 'data/in/a.txt' }).reason, 'path_relative');
  });

  test('nested argument bindings are checked, and every scope must be covered', () => {
    assert.equal(policy.decideTool('alice', 'files', 'copy', { from: { path: inside() }, to: join(tmp.dir, 'data', 'out') }).reason, 'scope_not_granted', 'no write grant');
    assert.equal(policy.decideTool('alice', 'files', 'copy', { from: {}, to: '/x' }).reason, 'argument_missing');
  });

  test('a bound URL must match a granted host and port', () => {
    assert.equal(policy.decideTool('alice', 'files', 'fetch', { url: 'https://api.example.com/v1' }).allow, true);
    assert.equal(policy.decideTool('alice', 'files', 'fetch', { url: 'https://api.example.com:8443/v1' }).reason, 'scope_not_granted');
    assert.equal(policy.decideTool('alice', 'files', 'fetch', { url: 'https://evil.example.net/' }).reason, 'scope_not_granted');
    assert.equal(policy.decideTool('alice', 'files', 'fetch', { url: '*.example.com:443' }).reason, 'argument_invalid');
  });

  test('a server may ask for sampling only when granted, and elicitation/roots separately', () => {
    assert.equal(policy.decideServerRequest('alice', 'files', 'sampling').allow, true);
    assert.equal(policy.decideServerRequest('alice', 'other', 'sampling').reason, 'server_request_not_granted');
    assert.equal(policy.decideServerRequest('alice', 'files', 'elicitation').reason, 'server_request_not_granted');
    assert.equal(policy.decideServerRequest('alice', 'files', 'roots').reason, 'server_request_not_granted');
    assert.equal(policy.decideServerRequest('mallory', 'files', 'sampling').reason, 'agent_has_no_policy');
  });
});

describe('policy files fail closed', () => {
  const tmp = tempDir('bastion-policy-files-');
  after(() => tmp.cleanup());

  test('a policy file that does not parse is an error with file and line', () => {
    const file = tmp.write('bad.yaml', 'agents:\n  alice:\n    grants: [\n');
    const result = loadPolicyFiles([file]);
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.problems[0]?.file === file && result.problems[0].line !== undefined);
  });

  test('an unknown resource kind in a grant is an error at its line and field', () => {
    const file = tmp.write('kind.yaml', 'agents:\n  alice:\n    grants:\n      - "read:filesystem:/tmp"\n      - "read:secrets:/vault"\n');
    const result = loadPolicyFiles([file]);
    assert.ok(!result.ok);
    assert.deepEqual([result.problems[0]?.line, result.problems[0]?.field], [5, 'agents.alice.grants.1']);
    assert.match(result.problems[0]?.message ?? '', /unknown resource kind 'secrets'/);
  });

  test('unknown roles, unknown fields, duplicate agents and role cycles are errors', () => {
    const a = tmp.write('a.yaml', 'roles:\n  r1: { extends: [r2] }\n  r2: { extends: [r1] }\nagents:\n  alice: { roles: [r1] }\n');
    const b = tmp.write('b.yaml', 'agents:\n  alice: { roles: [ghost], grant: [] }\n');
    const result = loadPolicyFiles([a, b]);
    assert.ok(!result.ok);
    const messages = result.problems.map((problem) => problem.message).join('\n');
    assert.match(messages, /unknown role 'ghost'/);
    assert.match(messages, /unknown field 'grant'/);
    assert.match(messages, /agent 'alice' is already defined/);
    const cycle = loadPolicyFiles([a]);
    assert.ok(!cycle.ok && /cycle/.test(cycle.problems.map((problem) => problem.message).join()));
  });

  test('roles extend roles and are shared across agents', () => {
    const file = tmp.write('roles.yaml', 'roles:\n  base: { grants: ["exec:tools:s.t"] }\n  more: { extends: [base], grants: ["read:filesystem:/srv"] }\nagents:\n  a: { roles: [more] }\n  b: { roles: [base] }\n');
    const compiled = compilePolicy({ policyFiles: [file], declarations: { s: { tools: { t: { scopes: ['read:filesystem:${p}'] } }, prompts: {} } }, followSymlinks: false });
    assert.ok(compiled.ok);
    assert.equal(compiled.evaluator.decideTool('a', 's', 't', { p: '/srv/x' }).rules[0]?.via, 'role base');
    assert.equal(compiled.evaluator.decideTool('a', 's', 't', { p: '/srv/x' }).allow, true);
    assert.equal(compiled.evaluator.decideTool('b', 's', 't', { p: '/srv/x' }).reason, 'scope_not_granted');
  });

  test('no policy files at all is refused rather than running open or silently closed', () => {
    const compiled = compilePolicy({ policyFiles: [] });
    assert.ok(!compiled.ok && /no policy files/.test(compiled.problems[0]?.message ?? ''));
  });

  test("the operator's inline declaration replaces the publisher's for that tool", () => {
    const manifest = tmp.write('wide.yaml', 'name: s\ntools:\n  - name: t\n    scopes: []\n  - name: u\n    scopes: []\n');
    const policy = tmp.write('st.yaml', 'agents:\n  a:\n    grants: ["exec:tools:[s.t, s.u]"]\n');
    const inline = declarationsFromConfig({ s: { tools: { t: { scopes: ['read:filesystem:${path}'] } } } });
    const compiled = compilePolicy({ policyFiles: [policy], manifestFiles: [manifest], declarations: inline, followSymlinks: false });
    assert.ok(compiled.ok);
    assert.equal(compiled.evaluator.decideTool('a', 's', 't', {}).reason, 'argument_missing');
    assert.equal(compiled.evaluator.decideTool('a', 's', 't', { path: '/x' }).reason, 'scope_not_granted');
    assert.equal(compiled.evaluator.decideTool('a', 's', 'u', {}).allow, true);
  });

  test('a manifest with a bad scope is an error at the scope', () => {
    const file = tmp.write('m.yaml', 'name: s\ntools:\n  - name: t\n    scopes: ["read:disk:${path}"]\n');
    const result = loadManifestFile(file);
    assert.ok(!result.ok);
    assert.deepEqual([result.problems[0]?.line, result.problems[0]?.field], [4, 'tools.0.scopes.0']);
  });
});

describe('list filtering and other methods', () => {
  const tmp = tempDir('bastion-policy-lists-');
  let policy: PolicyEvaluator;
  before(() => {
    const file = tmp.write(
      'p.yaml',
      `agents:
  alice:
    grants:
      - "exec:tools:[s.visible, s.needs_etc, s.bound]"
      - "exec:prompts:[s.summarize]"
      - "read:resources:file:///docs/*"
      - "read:resources:memo://notes/1"
      - "read:filesystem:/srv"
`,
    );
    const declarations = declarationsFromConfig({ s: { tools: { visible: { scopes: [] }, needs_etc: { scopes: ['read:filesystem:/etc'] }, bound: { scopes: ['read:filesystem:${path}'] }, hidden: { scopes: [] } } } });
    const compiled = compilePolicy({ policyFiles: [file], declarations, followSymlinks: false });
    assert.ok(compiled.ok);
    policy = compiled.evaluator;
  });
  after(() => tmp.cleanup());

  test('tools/list shows only tools the agent may call; denied tools do not leak', () => {
    const items = ['visible', 'needs_etc', 'bound', 'hidden', 'undeclared'].map((name) => ({ name, description: `secret description of ${name}` }));
    assert.deepEqual(items.filter((item) => policy.toolVisible('alice', 's', item.name)).map((item) => item.name), ['visible', 'bound']);
    assert.deepEqual(items.filter((item) => policy.toolVisible('mallory', 's', item.name)), []);
    assert.deepEqual(items.filter((item) => policy.toolVisible('alice', 'other', item.name)), []);
  });

  test('prompts/get needs exec:prompts', () => {
    assert.equal(policy.decidePrompt('alice', 's', 'summarize', {}).allow, true);
    assert.equal(policy.decidePrompt('alice', 's', 'exfiltrate', {}).reason, 'prompt_not_granted');
    assert.equal(policy.promptVisible('alice', 's', 'exfiltrate'), false);
  });

  test('resources/read needs read:resources covering the canonical URI', () => {
    assert.equal(policy.decideResource('alice', 's', 'file:///docs/guide.md').allow, true);
    assert.equal(policy.decideResource('alice', 's', 'file:///docs/../etc/passwd').reason, 'resource_not_granted');
    assert.equal(policy.decideResource('alice', 's', 'file:///docs/%2e%2e/etc/passwd').reason, 'resource_not_granted', 'decoded once, then canonicalized');
    assert.equal(policy.decideResource('alice', 's', 'file:///docs/%252e%252e/etc/passwd').reason, 'resource_invalid', 'double encoding is refused');
    assert.equal(policy.decideResource('alice', 's', 'memo://notes/1').allow, true);
    assert.equal(policy.decideResource('alice', 's', 'memo://notes/2').reason, 'resource_not_granted');
    assert.equal(policy.resourceTemplateVisible('alice', 'file:///docs/{name}'), true);
    assert.equal(policy.resourceTemplateVisible('alice', 'db://{table}'), false);
  });
});

describe('the filesystem server fixtures', () => {
  const tmp = tempDir('bastion-policy-fixture-');
  let policy: PolicyEvaluator;
  let allowed = '';
  before(() => {
    allowed = join(tmp.dir, 'allowed');
    mkdirSync(join(allowed, 'out'), { recursive: true });
    mkdirSync(join(tmp.dir, 'outside'));
    writeFileSync(join(allowed, 'a.txt'), 'a');
    symlinkSync(join(tmp.dir, 'outside'), join(allowed, 'link-out'));
    const text = readFileSync(join(FIXTURES, 'filesystem.policy.yaml'), 'utf8').replaceAll('/tmp/bastion-policy-e2e', tmp.dir);
    const compiled = compilePolicy({ policyFiles: [tmp.write('policy.yaml', text)], manifestFiles: [join(FIXTURES, 'filesystem.manifest.yaml')] });
    assert.ok(compiled.ok, compiled.ok ? '' : JSON.stringify(compiled.problems));
    policy = compiled.evaluator;
  });
  after(() => tmp.cleanup());

  test('the manifest names every tool the installed server registers', () => {
    const source = readFileSync(join(process.cwd(), 'node_modules', '@modelcontextprotocol', 'server-filesystem', 'dist', 'index.js'), 'utf8');
    const registered = [...source.matchAll(/registerTool\("([a-z_]+)"/g)].map((match) => match[1]).sort();
    const manifest = loadManifestFile(join(FIXTURES, 'filesystem.manifest.yaml'));
    assert.ok(manifest.ok);
    assert.deepEqual(Object.keys(manifest.declarations.tools).sort(), registered);
  });

  test('the reader reads inside the granted directory and nowhere else', () => {
    assert.equal(policy.decideTool('reader', 'filesystem', 'read_text_file', { path: join(allowed, 'a.txt') }).allow, true);
    assert.equal(policy.decideTool('reader', 'filesystem', 'read_text_file', { path: `${allowed}/../outside/x` }).allow, false);
    assert.equal(policy.decideTool('reader', 'filesystem', 'read_text_file', { path: `${allowed}/link-out/x` }).allow, false);
    assert.equal(policy.decideTool('reader', 'filesystem', 'read_multiple_files', { paths: [join(allowed, 'a.txt'), '/etc/passwd'] }).allow, false);
    assert.equal(policy.decideTool('reader', 'filesystem', 'write_file', { path: join(allowed, 'a.txt'), content: 'x' }).reason, 'tool_not_granted');
  });

  test('the writer writes only under out/, and move_file checks both ends', () => {
    assert.equal(policy.decideTool('writer', 'filesystem', 'write_file', { path: join(allowed, 'out', 'new.txt'), content: 'x' }).allow, true);
    assert.equal(policy.decideTool('writer', 'filesystem', 'write_file', { path: join(allowed, 'a.txt'), content: 'x' }).reason, 'scope_not_granted');
    assert.equal(policy.decideTool('writer', 'filesystem', 'move_file', { source: join(allowed, 'out', 'x'), destination: join(allowed, 'out', 'y') }).allow, true);
    assert.equal(policy.decideTool('writer', 'filesystem', 'move_file', { source: join(allowed, 'out', 'x'), destination: join(tmp.dir, 'outside', 'y') }).allow, false);
  });

  test('the bystander sees none of the filesystem tools', () => {
    assert.equal(policy.toolVisible('bystander', 'filesystem', 'list_allowed_directories'), false);
    assert.equal(policy.toolVisible('reader', 'filesystem', 'list_allowed_directories'), true);
    assert.equal(policy.toolVisible('reader', 'filesystem', 'write_file'), false);
  });
});
