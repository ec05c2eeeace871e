// Approval grants in policy files: parsed with file:line, refused where they make no sense, and
// found by the evaluator for the tools they cover (the stricter reading when two grants cover one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPolicyFiles, PolicyEvaluator } from '../../src/policy/index.js';
import { tempDir } from '../helpers/gateway.js';

function load(text: string): ReturnType<typeof loadPolicyFiles> {
  const dir = tempDir('bastion-approval-policy-');
  try {
    const file = join(dir.path, 'policy.yaml');
    writeFileSync(file, text);
    return loadPolicyFiles([file]);
  } finally {
    dir.cleanup();
  }
}

test('a grant with approval: required holds the tools it covers, with the shortest deadline', () => {
  const loaded = load('agents:\n  ops:\n    grants:\n      - "exec:tools:fs.*"\n      - { scope: "exec:tools:fs.write_file", approval: required, approvalTimeoutSeconds: 60 }\n      - { scope: "exec:tools:[write_file, delete]", approval: required }\n');
  assert.ok(loaded.ok, JSON.stringify(loaded));
  const evaluator = new PolicyEvaluator(loaded.policy, {});
  const approval = evaluator.approvalFor('ops', 'fs', 'write_file');
  assert.equal(approval?.timeoutSeconds, 60);
  assert.match(approval?.source ?? '', /policy\.yaml:5$/);
  assert.equal(evaluator.approvalFor('ops', 'other', 'delete')?.timeoutSeconds, 120, 'a bare name covers the tool on any server; default deadline');
  assert.equal(evaluator.approvalFor('ops', 'fs', 'read_file'), undefined);
  assert.equal(evaluator.approvalFor('nobody', 'fs', 'write_file'), undefined);
});

test('approval on a non-tool grant, a bad value, a bad deadline or an unknown field is refused with file and line', () => {
  const loaded = load(
    'agents:\n  ops:\n    grants:\n      - { scope: "read:filesystem:/tmp", approval: required }\n      - { scope: "exec:tools:a.b", approval: maybe }\n      - { scope: "exec:tools:a.c", approval: required, approvalTimeoutSeconds: 0 }\n      - { scope: "exec:tools:a.d", approvalTimeoutSeconds: 5 }\n      - { scope: "exec:tools:a.e", aproval: required }\n',
  );
  assert.ok(!loaded.ok);
  const problems = loaded.problems.map((problem) => `${problem.line ?? '?'} ${problem.field}: ${problem.message}`);
  assert.equal(problems.length, 5, problems.join('\n'));
  assert.match(problems[0] ?? '', /^4 .*approval applies to tool calls only/);
  assert.match(problems[1] ?? '', /^5 .*approval must be 'required' or 'none'/);
  assert.match(problems[2] ?? '', /^6 .*approvalTimeoutSeconds must be a whole number/);
  assert.match(problems[3] ?? '', /^7 .*approvalTimeoutSeconds without approval: required/);
  assert.match(problems[4] ?? '', /^8 .*unknown field 'aproval'/);
});
