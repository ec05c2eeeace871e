import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CallContext, ErrorCode, compose, failure, success, type Guard, type Outcome } from '../../src/pipeline/index.js';
import { AuditLog, createAuditGuard, verifyLog, type AuditRecord } from '../../src/audit/index.js';
import { readRecords } from '../../src/audit/reader.js';
import { requestRecord } from '../../src/audit/record.js';
import { canonicalJson, digestOf } from '../../src/audit/canonical.js';
import { createRedactor } from '../../src/audit/redact.js';
import { auditOptions, tempDir } from './helpers.js';

function context(requestId: number, args: Record<string, unknown>, taskId?: string): CallContext {
  const ctx = new CallContext({
    requestId,
    method: 'tools/call',
    params: { name: 'files.read', arguments: args, ...(taskId === undefined ? {} : { _meta: { taskId } }) },
    session: { sessionId: 'session-1', transport: 'http', protocolVersion: '2025-06-18' },
    identity: { agentId: 'ci-bot', tokenFingerprint: 'fp:1a2b3c4d', method: 'api-token' },
    requestBytes: 120,
    limits: { timeoutMs: 1000, maxOutputBytes: 65536, maxRequestBytes: 65536 },
    signal: new AbortController().signal,
  });
  ctx.target = { server: 'files', name: 'read' };
  return ctx;
}

function records(dir: string): AuditRecord[] {
  return [...readRecords(dir)].map((item) => item.record).filter((record) => record.kind === 'request');
}

describe('the audit guard', () => {
  test('writes exactly one record per call for allowed, denied, failed and timed-out calls', async () => {
    const temp = tempDir();
    try {
      const options = auditOptions(temp.dir);
      const log = await AuditLog.open(options);
      const behaviours: Record<string, (ctx: CallContext) => Promise<Outcome>> = {
        allow: async () => success({ content: [{ type: 'text', text: 'hello' }] }),
        deny: async (ctx) => {
          ctx.audit.decision = 'deny';
          ctx.audit.reason = 'scope read:filesystem:/etc not granted';
          ctx.audit.deniedBy = 'policy';
          return failure(ErrorCode.Forbidden, 'denied');
        },
        error: async () => {
          throw new Error('upstream crashed');
        },
        timeout: async (ctx) => {
          ctx.audit.timedOut = true;
          return failure(ErrorCode.RequestTimeout, 'tool call timed out after 1000 ms');
        },
      };
      const kinds = Object.keys(behaviours);
      const calls = Array.from({ length: 40 }, (_, index) => {
        const kind = kinds[index % kinds.length] as string;
        const handler = compose([createAuditGuard(log, { arguments: 'full', outputs: 'truncated', maxChars: 64 })], behaviours[kind] as (ctx: CallContext) => Promise<Outcome>);
        return Promise.resolve(handler(context(index, { path: `/data/${index}` }, `task-${index}`))).then(
          (outcome) => ({ index, kind, outcome }),
          (error: unknown) => ({ index, kind, error }),
        );
      });
      const results = await Promise.all(calls);
      const written = records(options.dir);
      assert.equal(written.length, 40);
      for (const result of results) {
        const matching = written.filter((record) => record.request_id === result.index);
        assert.equal(matching.length, 1, `call ${result.index} has exactly one record`);
        const record = matching[0] as AuditRecord;
        assert.equal(record.task_id, `task-${result.index}`);
        assert.equal(record.agent_id, 'ci-bot');
        assert.equal(record.token_fingerprint, 'fp:1a2b3c4d');
        assert.deepEqual(record.tools_invoked, ['files.read']);
        assert.match(record.args_digest ?? '', /^hmac-sha256:[0-9a-f]{64}$/, 'keyed under the log (see forgery.test.ts)');
        assert.match(record.output_digest ?? '', /^hmac-sha256:[0-9a-f]{64}$/, 'keyed too: outputs are digested before redaction');
        assert.equal(typeof record.exec_duration_ms, 'number');
        if (result.kind === 'allow') assert.equal(record.decision, 'allow');
        if (result.kind === 'deny') {
          assert.equal(record.decision, 'deny');
          assert.equal(record.denied_by, 'policy');
        }
        if (result.kind === 'error') {
          assert.equal(record.decision, 'error');
          assert.ok('error' in result, 'a thrown error still reaches the caller');
        }
        if (result.kind === 'timeout') {
          assert.equal(record.decision, 'error');
          assert.equal(record.timed_out, true);
          assert.equal(record.error_code, ErrorCode.RequestTimeout);
        }
      }
      await log.close();
      assert.equal(verifyLog(options.dir).status, 'clean');
    } finally {
      temp.cleanup();
    }
  });

  test('a call denied before routing still records the tool the client asked for', async () => {
    const temp = tempDir();
    try {
      const options = auditOptions(temp.dir);
      const log = await AuditLog.open(options);
      const ctx = context(7, {});
      ctx.target = undefined;
      const handler = compose([createAuditGuard(log, options.capture)], async (inner) => {
        inner.audit.decision = 'deny';
        inner.audit.deniedBy = 'authn';
        return failure(ErrorCode.Unauthenticated, 'no token');
      });
      await handler(ctx);
      await log.close();
      const [record] = records(options.dir);
      assert.equal(record?.tool, 'files.read');
      assert.deepEqual(record?.tools_invoked, ['files.read']);
      assert.equal(record?.decision, 'deny');
    } finally {
      temp.cleanup();
    }
  });

  test('in durable mode the outcome is released only after its record is on disk', async () => {
    const temp = tempDir();
    try {
      const options = auditOptions(temp.dir);
      const log = await AuditLog.open(options);
      const handler = compose([createAuditGuard(log, { arguments: 'none', outputs: 'none', maxChars: 64 })], async () => success({ ok: 1 }));
      for (let index = 0; index < 5; index += 1) {
        await handler(context(100 + index, {}));
        const onDisk = records(options.dir).map((record) => record.request_id);
        assert.ok(onDisk.includes(100 + index), `record ${100 + index} is in the file when the outcome returns`);
      }
      await log.close();
    } finally {
      temp.cleanup();
    }
  });

  test('fails closed: if the record cannot be written the client gets an error, not the result', async () => {
    const broken = { append: async () => Promise.reject(new Error('disk full')) };
    const handler = compose([createAuditGuard(broken, { arguments: 'none', outputs: 'none', maxChars: 64 })], async () => success({ secret: 'the result' }));
    const outcome = await handler(context(1, {}));
    assert.equal(outcome.ok, false);
    assert.doesNotMatch(JSON.stringify(outcome), /the result/);
    assert.match(JSON.stringify(outcome), /audit_unavailable/);
  });

  test('a closed log makes every call fail closed', async () => {
    const temp = tempDir();
    try {
      const log = await AuditLog.open(auditOptions(temp.dir));
      await log.close();
      const handler = compose([createAuditGuard(log, { arguments: 'none', outputs: 'none', maxChars: 64 })], async () => success({ ok: 1 }));
      const outcome = await handler(context(1, {}));
      assert.equal(outcome.ok, false);
    } finally {
      temp.cleanup();
    }
  });
});

const privateKeyBody = 'MC4CAQAwBQYDK2VwBCIEIPrivateKeyMaterialThatMustNeverLeakXYZ0123';
const secrets = {
  awsKeyId: 'AKIAIOSFODNN7EXAMPLE',
  awsSecret: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  bearer: 'abcDEF123456ghiJKL789mnoPQR',
  jwt: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlLXRoYXQtbXVzdC1ub3QtbGVhaw',
  urlPassword: 'hunter2-db-pass',
  githubToken: 'ghp_0123456789abcdefghijABCDEFGHIJ012345',
  openai: 'sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789',
  password: 'correct-horse-battery-staple',
  slack: 'xoxb-123456789012-abcdefghijkl',
  google: 'AIzaSyA1234567890abcdefghijklmnopqrstuv',
};

test('secrets in arguments, outputs and error messages never appear in the log files', async () => {
  const temp = tempDir();
  try {
    const options = auditOptions(temp.dir, { capture: { arguments: 'full', outputs: 'full' } });
    const log = await AuditLog.open(options);
    const args = {
      command: `aws configure set aws_access_key_id ${secrets.awsKeyId}`,
      env: `AWS_SECRET_ACCESS_KEY=${secrets.awsSecret}`,
      headers: { Authorization: `Bearer ${secrets.bearer}`, 'X-Api-Key': secrets.openai },
      url: `postgres://admin:${secrets.urlPassword}@db.internal:5432/app`,
      note: `token ${secrets.jwt} and ${secrets.githubToken} and ${secrets.slack} and ${secrets.google}`,
      config: { password: secrets.password, nested: [{ client_secret: secrets.password }] },
      key: `-----BEGIN PRIVATE KEY-----\n${privateKeyBody}\n-----END PRIVATE KEY-----\n`,
    };
    const leak: Guard = {
      name: 'leaky-upstream',
      async handle(ctx) {
        ctx.audit.reason = `upstream said: bad credentials ${secrets.githubToken}`;
        return failure(ErrorCode.InternalError, `failed to connect to postgres://admin:${secrets.urlPassword}@db`);
      },
    };
    const allowed = compose([createAuditGuard(log, options.capture)], async () => success({ content: [{ type: 'text', text: `here is the key ${secrets.openai} and password=${secrets.password}` }] }));
    const failing = compose([createAuditGuard(log, options.capture), leak], async () => success({}));
    await allowed(context(1, args));
    await failing(context(2, args));
    await log.close();
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else files.push(path);
      }
    };
    walk(temp.dir);
    const everything = Buffer.concat(files.filter((path) => !path.endsWith('.pem')).map((path) => readFileSync(path)));
    for (const [name, value] of Object.entries({ ...secrets, privateKeyBody })) {
      assert.equal(everything.indexOf(Buffer.from(value)), -1, `${name} leaked into the audit files`);
    }
    const written = records(options.dir);
    assert.equal(written.length, 2);
    assert.ok((written[0]?.redactions ?? 0) >= 10, 'redactions are counted');
    assert.match(JSON.stringify(written[0]?.input), /REDACTED:private-key/);
    assert.match(JSON.stringify(written[0]?.input), /db\.internal/, 'non-secret context survives redaction');
  } finally {
    temp.cleanup();
  }
});

test('records of calls whose data JSON cannot hold as it is (lone surrogates, undefined members, bigint) are digested as their JSON-safe form', () => {
  const args = { text: 'a\uD800b', count: 2, skipped: undefined, nested: [1, undefined, 'c\uDC00'] };
  const ctx = context(7, args);
  const record = requestRecord(ctx, success({ content: [{ type: 'text', text: 'ok' }], size: 10n as unknown as number }), { arguments: 'full', outputs: 'full', maxChars: 1024 });
  const safeArgs = { text: 'a\uFFFDb', count: 2, nested: [1, null, 'c\uFFFD'] };
  assert.equal(record.args_digest, digestOf(safeArgs));
  assert.deepEqual(record.input, safeArgs);
  assert.deepEqual(record.output, { content: [{ type: 'text', text: 'ok' }], size: '10' });
  assert.equal(record.output_digest, digestOf({ content: [{ type: 'text', text: 'ok' }], size: '10' }));
  // Plain data takes the direct path and must digest exactly as canonical JSON of itself.
  const plain = requestRecord(context(8, { path: '/data/x', depth: 3 }), success({ content: [] }), { arguments: 'none', outputs: 'none', maxChars: 1024 });
  assert.equal(plain.args_digest, digestOf({ path: '/data/x', depth: 3 }));
  assert.equal(plain.output_digest, digestOf({ content: [] }));
});

test('truncated capture measures the redacted copy: the canonical text of the arguments is reused only when the redactor changed nothing', () => {
  const secret = 'AKIAIOSFODNN7EXAMPLE';
  const capture = (maxChars: number) => ({ arguments: 'truncated' as const, outputs: 'truncated' as const, maxChars });
  const ok = success({ content: [{ type: 'text', text: 'ok' }] });
  // Nothing redacted: the text the digest used is the capture's; cut at maxChars like any other.
  const clean = { path: '/data/report.csv', note: 'x'.repeat(40) };
  const cleanText = canonicalJson(clean);
  assert.deepEqual(requestRecord(context(1, clean), ok, capture(cleanText.length)).input, clean);
  assert.equal(requestRecord(context(2, clean), ok, capture(20)).input, `${cleanText.slice(0, 20)}…[truncated ${cleanText.length - 20} chars]`);
  // A redacted secret: the length and the cut text are the redacted copy's, never the original's.
  const withSecret = { key: `id ${secret}`, pad: 'y'.repeat(30) };
  const redactedText = canonicalJson(createRedactor().json(withSecret));
  const cut = requestRecord(context(3, withSecret), ok, capture(redactedText.length - 5)).input;
  assert.equal(cut, `${redactedText.slice(0, redactedText.length - 5)}…[truncated 5 chars]`);
  assert.ok(!String(cut).includes(secret));
  // A string past the redactor's depth limit is cut, not matched, and not counted as a redaction:
  // the plain text (which still holds it) must not be taken for the copy's.
  let deep: Record<string, unknown> = { s: secret };
  for (let level = 0; level < 64; level += 1) deep = { a: deep };
  const deepText = canonicalJson(createRedactor().json(deep));
  const deepRecord = requestRecord(context(4, deep), ok, capture(deepText.length - 3));
  assert.ok(typeof deepRecord.input === 'string' && deepRecord.input.includes('[TRUNCATED:depth]'), String(deepRecord.input));
  assert.ok(!String(deepRecord.input).includes(secret), 'the secret past the depth limit is not captured');
  assert.equal(deepRecord.args_digest, digestOf(deep));
  // Outputs take the same path.
  const output = requestRecord(context(5, clean), success({ content: [{ type: 'text', text: `token ${secret}` }] }), capture(1024)).output;
  assert.ok(!JSON.stringify(output).includes(secret));
});
