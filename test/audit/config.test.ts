import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { auditConfigSchema, defaultAuditConfig, resolveAuditConfig } from '../../src/audit/index.js';

function validator(): (value: unknown) => boolean {
  return new Ajv({ allErrors: true, useDefaults: true, strict: false }).compile(auditConfigSchema);
}

test('the audit config schema fills every default (durable mode, deny on a full queue) into an empty section', () => {
  const section: Record<string, unknown> = {};
  assert.equal(validator()(section), true);
  assert.deepEqual(section, { ...defaultAuditConfig, checkpoint: { ...defaultAuditConfig.checkpoint }, retention: {} });
  assert.equal(section['mode'], 'durable');
});

test('the audit config schema rejects unknown keys and unsafe values', () => {
  const validate = validator();
  assert.equal(validate({ mode: 'fast' }), false);
  assert.equal(validate({ capture: { arguments: 'everything' } }), false);
  assert.equal(validate({ checkpoint: { keyName: 'has space' } }), false);
  assert.equal(validate({ rotation: { maxBytes: 10 } }), false);
  assert.equal(validate({ sink: 'syslog' }), false);
});

test('relative paths resolve against the state dir; absolute ones are kept', () => {
  const resolved = resolveAuditConfig({ checkpoint: { mirrorDir: '/mnt/worm' } }, '/var/lib/bastion');
  assert.equal(resolved.dir, '/var/lib/bastion/audit');
  assert.equal(resolved.checkpoint.keyFile, '/var/lib/bastion/keys/audit-signing-key.pem');
  assert.equal(resolved.checkpoint.mirrorDir, '/mnt/worm');
  assert.equal(resolved.mode, 'durable');
});
