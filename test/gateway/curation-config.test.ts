// Curation config and policy-file errors: each names the file, line, field and the fix.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfigText } from '../../src/config/index.js';
import { checkCurationPin, curationPin } from '../../src/curation/index.js';
import { compilePolicy } from '../../src/policy/store.js';
import { configProblems } from '../helpers/config.js';
import { tempDir } from '../helpers/gateway.js';

const server = (tools: string, agents = ''): string => `version: 1
servers:
  wx:
    transport: stdio
    command: node
    tools:
${tools}${agents}`;

describe('curation config', () => {
  test('two tools renamed to the same name: the second rename is refused at its line', () => {
    const problems = configProblems(server('      get_weather: { rename: forecast }\n      add:\n        rename: forecast\n'));
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0]?.field, 'servers.wx.tools.get_weather.rename');
    assert.equal(problems[0]?.line, 7);
    assert.match(problems[0]?.message ?? '', /renaming 'get_weather' to 'forecast' collides with 'add', also renamed to 'forecast'/);
    assert.match(problems[0]?.fix ?? '', /choose another name for get_weather/);
  });

  test('a rename to the name of a configured tool that keeps it is refused', () => {
    const problems = configProblems(server('      echo: { scopes: [] }\n      add: { rename: echo }\n'));
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0]?.field, 'servers.wx.tools.add.rename');
    assert.equal(problems[0]?.line, 8);
    assert.match(problems[0]?.message ?? '', /collides with the tool 'echo'/);
    // Renaming or hiding the holder frees the name.
    assert.doesNotThrow(() => loadConfigText(server('      echo: { hidden: true }\n      add: { rename: echo }\n'), 'bastion.yaml', '/tmp'));
    assert.doesNotThrow(() => loadConfigText(server('      echo: { rename: say }\n      add: { rename: echo }\n'), 'bastion.yaml', '/tmp'));
  });

  test("an agent's rename that collides in that agent's view is refused at the agent's entry", () => {
    const problems = configProblems(server('      get_weather: { rename: forecast }\n', '    agents:\n      bob:\n        tools:\n          add: { rename: forecast }\n'));
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0]?.field, 'servers.wx.agents.bob.tools.add.rename');
    assert.equal(problems[0]?.line, 11);
    assert.match(problems[0]?.message ?? '', /for agent 'bob'/);
    // The same rename is fine when bob's view renames the holder away.
    assert.doesNotThrow(() => loadConfigText(server('      get_weather: { rename: forecast }\n', '    agents:\n      bob:\n        tools:\n          add: { rename: forecast }\n          get_weather: { rename: weather }\n'), 'bastion.yaml', '/tmp'));
  });

  test('hidden with a rename contradicts itself; a rename that is not a tool name is refused by the schema', () => {
    const hidden = configProblems(server('      add: { hidden: true, rename: plus }\n'));
    assert.equal(hidden[0]?.field, 'servers.wx.tools.add.rename');
    assert.match(hidden[0]?.fix ?? '', /remove rename, or remove hidden: true/);
    const invalid = configProblems(server('      add: { rename: "two words" }\n'));
    assert.equal(invalid[0]?.field, 'servers.wx.tools.add.rename');
    assert.equal(invalid[0]?.line, 7);
    const unknownField = configProblems(server('      add: { scopes: [] }\n', '    agents:\n      bob:\n        tools:\n          add: { scopes: [] }\n'));
    assert.match(unknownField[0]?.field ?? '', /^servers\.wx\.agents\.bob\.tools\.add/, 'an agent entry cannot widen scopes');
  });

  test("the curation pin changes with any override and ignores the tools' scopes and limits", () => {
    const base = loadConfigText(server('      add: { scopes: [], description: Adds. }\n'), 'bastion.yaml', '/tmp').config.servers['wx']!;
    const pin = curationPin(base, 'sha256');
    assert.ok(pin);
    assert.deepEqual(pin.definition, { tools: { add: { description: 'Adds.' } }, agents: {} });
    const sameOverride = loadConfigText(server('      add: { scopes: ["read:filesystem:/tmp"], description: Adds. }\n'), 'bastion.yaml', '/tmp').config.servers['wx']!;
    assert.equal(checkCurationPin(sameOverride, pin).status, 'pinned');
    const changed = loadConfigText(server('      add: { scopes: [], description: Adds two numbers. }\n'), 'bastion.yaml', '/tmp').config.servers['wx']!;
    assert.equal(checkCurationPin(changed, pin).status, 'changed');
    assert.equal(checkCurationPin(changed, undefined).status, 'unpinned');
  });
});

describe('tool groups in policy files', () => {
  const dir = tempDir('bastion-groups-');
  after(() => dir.cleanup());
  const policy = (text: string): string => {
    const file = join(dir.path, `p${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, text);
    return file;
  };

  test('a grant naming a group allows exactly its members, by their upstream names', () => {
    const file = policy('version: 1\ntoolGroups:\n  readers: [wx.get_weather, wx.add]\nagents:\n  alice:\n    grants: ["exec:tools:@readers"]\n  bob:\n    grants: ["exec:tools:[@readers, wx.echo]"]\n  carol:\n    grants: ["exec:tools:wx.forecast"]\n');
    const result = compilePolicy({ policyFiles: [file], declarations: { wx: { tools: { get_weather: { scopes: [] }, add: { scopes: [] }, echo: { scopes: [] } }, prompts: {} } } });
    assert.ok(result.ok, JSON.stringify(result));
    const allowed = (agent: string, tool: string): boolean => result.evaluator.decideTool(agent, 'wx', tool, {}).allow;
    assert.deepEqual(['get_weather', 'add', 'echo'].map((tool) => allowed('alice', tool)), [true, true, false]);
    assert.deepEqual(['get_weather', 'add', 'echo'].map((tool) => allowed('bob', tool)), [true, true, true]);
    assert.equal(allowed('carol', 'get_weather'), false, 'a curated (client-side) name grants nothing: policy speaks upstream names');
  });

  test('an unknown group, a bad member and a group defined twice are refused with file and line', () => {
    const file = policy('version: 1\ntoolGroups:\n  readers: [wx.get_weather, read_file]\nagents:\n  alice:\n    grants: ["exec:tools:@writers"]\n');
    const other = policy('toolGroups:\n  readers: [fs.read_file]\n');
    const result = compilePolicy({ policyFiles: [file, other] });
    assert.equal(result.ok, false);
    if (result.ok) return;
    const byMessage = (pattern: RegExp) => result.problems.find((problem) => pattern.test(problem.message));
    const unknown = byMessage(/unknown tool group '@writers'/);
    assert.equal(unknown?.file, file);
    assert.equal(unknown?.line, 6);
    assert.match(unknown?.fix ?? '', /@readers/);
    const member = byMessage(/'read_file' is not a server\.tool name/);
    assert.equal(member?.line, 3);
    const twice = byMessage(/tool group 'readers' is already defined at/);
    assert.equal(twice?.file, other);
  });
});
