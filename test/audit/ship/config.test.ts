import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveAuditConfig } from '../../../src/audit/config.js';
import { octetFrame, syslogMessage } from '../../../src/audit/ship/index.js';
import { payloadOf } from '../../../src/audit/ship/format.js';
import type { AuditRecord } from '../../../src/audit/schema.js';
import { configProblems } from '../../helpers/config.js';

const base = 'version: 1\nservers: {}\naudit:\n  sinks:\n';

test('audit.sinks: a sink without its required settings is refused with the line, the field and the fix', () => {
  const syslog = configProblems(`${base}    - { name: siem, type: syslog, port: 6514 }\n`);
  assert.ok(syslog.some((problem) => problem.field.startsWith('audit.sinks') && /host/.test(problem.message) && problem.line === 5), JSON.stringify(syslog));
  const webhook = configProblems(`${base}    - { name: hook, type: webhook, url: 'https://collector.example/' }\n`);
  assert.ok(webhook.some((problem) => /secret/.test(problem.message)), JSON.stringify(webhook));
  const s3 = configProblems(`${base}    - { name: s3, type: s3 }\n`);
  assert.ok(s3.some((problem) => /bucket/.test(problem.message)), JSON.stringify(s3));
  const unknown = configProblems(`${base}    - { name: kafka, type: kafka }\n`);
  assert.ok(unknown.some((problem) => problem.field.endsWith('type') && /syslog/.test(problem.fix ?? problem.message)), JSON.stringify(unknown));
  const badFormat = configProblems(`${base}    - { name: siem, type: syslog, host: h, port: 1, format: cef }\n`);
  assert.ok(badFormat.some((problem) => problem.field.endsWith('format')), JSON.stringify(badFormat));
});

test('audit.sinks: two sinks of one name are refused; relative TLS and key paths resolve against stateDir', () => {
  assert.throws(() => resolveAuditConfig({ sinks: [{ name: 'a', type: 'syslog', host: 'h', port: 1 }, { name: 'a', type: 'syslog', host: 'h', port: 2 }] }, '/state'), /two sinks are named 'a'/);
  const resolved = resolveAuditConfig({ sinks: [{ name: 'a', type: 'syslog', host: 'h', port: 1, tls: { caFile: 'ca.pem' } }, { name: 'b', type: 'webhook', url: 'http://x/', secret: { fromFile: 'k' } }] }, '/state');
  assert.deepEqual(resolved.sinks.map((sink) => (sink.type === 'syslog' ? sink.tls?.caFile : sink.type === 'webhook' ? sink.secret : undefined)), ['/state/ca.pem', { fromFile: '/state/k' }]);
  assert.equal(resolved.sinks[0]?.format, 'bastion');
});

test('a syslog message is RFC 5424 with the seq in structured data, octet-counted in bytes; ocsf and ecs map the record', () => {
  const record = { schema: 'bastion.audit/2', seq: 7, prev: '0'.repeat(64), hash: 'a'.repeat(64), ts: '2026-01-01T00:00:00.000Z', kind: 'request', method: 'tools/call', decision: 'deny', server: 's', tool: 'ünïcode' } as AuditRecord;
  const item = { kind: 'record' as const, seq: 7, line: JSON.stringify(record), record };
  const message = syslogMessage(item, { facility: 10, appName: 'bastion', format: 'bastion' }, 'abcd', 'host1');
  assert.equal(message, `<84>1 2026-01-01T00:00:00.000Z host1 bastion ${process.pid} audit [bastion@32473 log="abcd" seq="7"] ${item.line}`);
  const frame = octetFrame(message).toString('utf8');
  assert.equal(frame, `${Buffer.byteLength(message)} ${message}`);
  assert.notEqual(Buffer.byteLength(message), message.length, 'the length counts bytes, not characters');
  assert.equal((JSON.parse(payloadOf(item, 'ocsf')) as { class_uid: number }).class_uid, 6003);
  assert.equal((JSON.parse(payloadOf(item, 'ecs')) as { event: { outcome: string } }).event.outcome, 'failure');
});
