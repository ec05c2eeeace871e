// The file quarantine store: ids derived from the change, records that survive a new process,
// decisions made by another process seen without a restart, no temporary file left behind, and a
// damaged file refused (fail closed) rather than read as "nothing is quarantined".
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileQuarantineStore, quarantineId, type QuarantineInput } from '../../src/integrity/index.js';
import { tempDir } from '../helpers/gateway.js';

const work = tempDir('bastion-qstore-');
after(() => work.cleanup());

const change: QuarantineInput = {
  server: 'weather', kind: 'tools', name: 'get_weather', cause: 'changed',
  oldDigest: `sha256:${'a'.repeat(64)}`, newDigest: `sha256:${'b'.repeat(64)}`,
  oldDefinition: { name: 'get_weather', description: 'old' }, newDefinition: { name: 'get_weather', description: 'new' },
  diff: [{ field: 'description', old: 'old', new: 'new' }], findings: [],
};

describe('FileQuarantineStore', () => {
  const dir = join(work.path, 'state', 'quarantine');

  test('the same change gets the same id, held once; a new process reads it back', () => {
    const store = FileQuarantineStore.inDirectory(dir);
    const first = store.hold(change);
    const again = store.hold(change);
    assert.equal(first.id, again.id);
    assert.equal(first.id, quarantineId('weather', 'tools', 'get_weather', change.newDigest));
    assert.equal(store.list().length, 1);
    const reopened = FileQuarantineStore.inDirectory(dir);
    assert.deepEqual(reopened.get(first.id), first);
    assert.equal(reopened.find('weather', 'tools', 'get_weather', change.newDigest)?.status, 'held');
    assert.equal(reopened.find('weather', 'tools', 'get_weather', change.oldDigest!), undefined);
    assert.deepEqual(readdirSync(dir), ['quarantine.json'], 'no temporary file is left behind');
    assert.equal(statSync(join(dir, 'quarantine.json')).mode & 0o777, 0o600);
  });

  test('a decision written by another process is seen, and changes the version verdicts are cached by', () => {
    const gateway = new FileQuarantineStore(join(dir, 'quarantine.json'), 0);
    const before = gateway.version();
    const operator = FileQuarantineStore.inDirectory(dir);
    const id = quarantineId('weather', 'tools', 'get_weather', change.newDigest);
    operator.decide(id, 'approved');
    assert.notEqual(gateway.version(), before);
    assert.equal(gateway.get(id)?.status, 'approved');
    assert.throws(() => operator.decide('q-0000000000000000', 'rejected'), /no quarantine q-0000000000000000/);
  });

  test('the list path looks at the file at most once per recheck interval; the operator\'s reads always look', async () => {
    const gateway = new FileQuarantineStore(join(dir, 'quarantine.json'), 200);
    const before = gateway.version();
    const id = quarantineId('weather', 'tools', 'get_weather', change.newDigest);
    FileQuarantineStore.inDirectory(dir).decide(id, 'rejected');
    // Within the interval the list path uses what it read (no synchronous disk access per session)...
    assert.equal(gateway.version(), before);
    // ...an operator's read looks at once...
    assert.equal(gateway.get(id)?.status, 'rejected');
    assert.notEqual(gateway.version(), before);
    FileQuarantineStore.inDirectory(dir).decide(id, 'approved');
    await new Promise((resolve) => setTimeout(resolve, 250));
    // ...and after the interval the list path sees the other process's decision.
    assert.equal(gateway.find('weather', 'tools', 'get_weather', change.newDigest)?.status, 'approved');
  });

  test('a damaged file is refused, not read as empty', () => {
    const file = join(dir, 'quarantine.json');
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.slice(0, text.length / 2));
    assert.throws(() => FileQuarantineStore.inDirectory(dir), /not valid JSON .* holds the quarantined definitions/);
    writeFileSync(file, '{"version": 2}');
    assert.throws(() => FileQuarantineStore.inDirectory(dir), /not a Bastion quarantine file/);
  });
});
