import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import {
  base58Decode, base58Encode, generateKeyPair, hashData, multibaseDecode, privateKeyFromMultibase, publicKeyFromMultibase,
  publicKeyToMultibase, signDocument, verifyDocument, type KeyPair,
} from '../../src/integrity/index.js';

const vectors = join(process.cwd(), 'test', 'integrity', 'vectors');
const keyPair = JSON.parse(readFileSync(join(vectors, 'eddsa-jcs-2022-keypair.json'), 'utf8')) as { publicKeyMultibase: string; privateKeyMultibase: string };
const signed = JSON.parse(readFileSync(join(vectors, 'eddsa-jcs-2022-signed.json'), 'utf8')) as Record<string, unknown> & { proof: Record<string, unknown> };
const EXPECTED_SIGNATURE_HEX = 'fc91dec6565f35fbe185a77352e7fc512f95d1904da305cfef32ab8135469301f5a72d4e7a58368fc6ffc497b44633993bac054e3bc1436e3c846db8f1544503';

describe('W3C vc-di-eddsa eddsa-jcs-2022 test vector', () => {
  test('the published signed credential verifies with the published public key', () => {
    const result = verifyDocument(signed, publicKeyFromMultibase(keyPair.publicKeyMultibase));
    assert.equal(result.ok, true, result.ok ? '' : result.message);
  });

  test('signing the unsigned credential with the published secret key reproduces the published proofValue', () => {
    const { proof, ...unsigned } = signed;
    const privateKey = privateKeyFromMultibase(keyPair.privateKeyMultibase);
    assert.equal(publicKeyToMultibase(createPublicKey(privateKey)), keyPair.publicKeyMultibase);
    const ours = signDocument(unsigned, privateKey, { verificationMethod: String(proof['verificationMethod']), created: new Date(String(proof['created'])) });
    assert.equal(Buffer.from(multibaseDecode(ours.proof.proofValue)).toString('hex'), EXPECTED_SIGNATURE_HEX);
    assert.equal(ours.proof.proofValue, proof['proofValue']);
  });

  test('a credential with one changed claim no longer verifies', () => {
    const tampered = structuredClone(signed);
    (tampered['credentialSubject'] as Record<string, unknown>)['alumniOf'] = 'The School of Exampels';
    const result = verifyDocument(tampered, publicKeyFromMultibase(keyPair.publicKeyMultibase));
    assert.equal(result.ok, false);
    assert.equal(result.ok ? '' : result.reason, 'bad-signature');
  });

  test('hashData is the proof-config hash followed by the document hash (64 bytes)', () => {
    const { proofValue: _v, ...config } = signed.proof;
    const { proof: _p, ...doc } = signed;
    assert.equal(hashData(config, doc).length, 64);
  });
});

describe('base58btc', () => {
  test('leading zero bytes survive a round trip', () => {
    const bytes = Uint8Array.from([0, 0, 1, 2, 255, 0]);
    assert.deepEqual(base58Decode(base58Encode(bytes)), bytes);
    assert.equal(base58Encode(Uint8Array.from([0, 0])), '11');
  });
  test('a character outside the alphabet is refused', () => {
    assert.throws(() => base58Decode('0OIl'), /not a base58btc character/);
  });
});

describe('sign and verify round trips', () => {
  let rsa: KeyPair;
  let ed: KeyPair;
  before(async () => {
    [rsa, ed] = await Promise.all([generateKeyPair('rsa-4096'), generateKeyPair('ed25519')]);
  });

  for (const which of ['ed25519', 'rsa-4096'] as const) {
    test(`${which}: a signed document verifies, and fails with another key of the same type`, async () => {
      const pair = which === 'ed25519' ? ed : rsa;
      const doc = signDocument({ name: 'io.example/x', version: '1.0.0', tools: [{ name: 't', description: 'd' }] }, pair.privateKey);
      assert.equal(doc.proof.cryptosuite, which === 'ed25519' ? 'eddsa-jcs-2022' : 'bastion-rsa-pss-jcs-2026');
      const ok = verifyDocument(doc, pair.publicKey);
      assert.equal(ok.ok, true);
      const other = which === 'ed25519' ? await generateKeyPair('ed25519') : rsa;
      if (which === 'ed25519') assert.equal(verifyDocument(doc, other.publicKey).ok, false);
      const swapped = verifyDocument(doc, which === 'ed25519' ? rsa.publicKey : ed.publicKey);
      assert.equal(swapped.ok ? '' : swapped.reason, 'wrong-key-type');
    });
  }

  test('rsa-4096: the proof is RSA-PSS (two signatures of the same document differ by their random salt)', () => {
    const created = new Date('2026-01-01T00:00:00Z');
    const a = signDocument({ a: 1 }, rsa.privateKey, { created });
    const b = signDocument({ a: 1 }, rsa.privateKey, { created });
    assert.notEqual(a.proof.proofValue, b.proof.proofValue);
    assert.equal(verifyDocument(b, rsa.publicKey).ok, true);
  });

  test('an RSA key shorter than 4096 bits is refused for signing', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const small = generateKeyPairSync('rsa', { modulusLength: 2048 });
    assert.throws(() => signDocument({ a: 1 }, small.privateKey), /at least 4096/);
  });
});
