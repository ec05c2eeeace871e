import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createRedactor } from '../../src/audit/index.js';

// Made-up secrets of the listed shapes (none is a real credential).
const AWS_SECRET = 'k9Vb2Qz/T7mWq4Lr8NcXe1Hs6Ju0Pd3Yf5Ga+IoW';
const AWS_KEY_ID = 'AKIAZ7Q4M2X9K3L8P5RT';
const BEARER = 'c2VjcmV0LXRva2VuLXZhbHVl9f8e7d';

function redacted(text: string): { text: string; count: number } {
  const redactor = createRedactor();
  return { text: redactor.text(text), count: redactor.count };
}

describe('redaction of the forms the review found unredacted', () => {
  test('the made-up values have the shapes under test', () => {
    assert.equal(AWS_SECRET.length, 40);
    assert.equal(AWS_KEY_ID.length, 20);
  });

  test('a standalone AWS secret access key is redacted, alone, in a sentence and after a separator', () => {
    for (const text of [AWS_SECRET, `use ${AWS_SECRET} for the bucket`, `creds:${AWS_SECRET}`, `"${AWS_SECRET}"`, `${AWS_SECRET},next`]) {
      const result = redacted(text);
      assert.ok(!result.text.includes(AWS_SECRET), `${text} -> ${result.text}`);
      assert.match(result.text, /\[REDACTED:aws-secret-access-key\]/);
      assert.equal(result.count, 1);
    }
  });

  test('an AWS access key id glued to a word by an underscore is redacted', () => {
    for (const text of [`token_${AWS_KEY_ID}`, `key_id_${AWS_KEY_ID}_prod`, `${AWS_KEY_ID}`, `x-${AWS_KEY_ID}`]) {
      const result = redacted(text);
      assert.ok(!result.text.includes(AWS_KEY_ID), `${text} -> ${result.text}`);
      assert.match(result.text, /\[REDACTED:aws-access-key-id\]/);
    }
    // The other prefixed token patterns had the same blind spot.
    assert.match(redacted(`token_ghp_${'a1B2'.repeat(9)}`).text, /^token_\[REDACTED:github-token\]$/);
    assert.match(redacted(`key_sk-ant-${'x9Y8'.repeat(6)}`).text, /^key_\[REDACTED:openai-anthropic-key\]$/);
  });

  test('percent-encoded secrets are redacted at their place in the original text, which otherwise stays encoded', () => {
    const url = `https://api.example.com/cb?auth=bearer%20${BEARER}&next=%2Fhome`;
    const result = redacted(url);
    assert.equal(result.text, 'https://api.example.com/cb?auth=bearer%20[REDACTED:bearer]&next=%2Fhome');
    assert.equal(result.count, 1);
    assert.equal(redacted(`Authorization%3A%20Bearer%20${BEARER}`).text, 'Authorization%3A%20Bearer%20[REDACTED:bearer]');
    assert.equal(redacted('login?password%3Dhunter22%26user%3Droot').text, 'login?password%3D[REDACTED:assignment]%26user%3Droot');
    // An escape inside the secret itself: %41 is 'A'.
    assert.equal(redacted(`id=%41${AWS_KEY_ID.slice(1)}`).text, 'id=[REDACTED:aws-access-key-id]');
    assert.equal(redacted(`s=${encodeURIComponent(AWS_SECRET)}`).text, 's=[REDACTED:aws-secret-access-key]');
  });

  test('near misses stay as they are', () => {
    const keep = [
      // A git commit id: 40 hex digits, lower or upper case only.
      '3f1c9e2b7a6d4c0e8b5a1f2d3c4b5a69788e7f60',
      '3F1C9E2B7A6D4C0E8B5A1F2D3C4B5A69788E7F60',
      // 39 and 41 characters of the secret-key alphabet, and 40 without digits.
      AWS_SECRET.slice(1),
      `${AWS_SECRET}Z`,
      'abcdefghijKLMNOPQRSTuvwxyzABCDEFGHIJklmn',
      // Not an access key id: too short, lower case, glued to a letter.
      `AKIA${'Z7Q4M2X9K3L8P5R'}`,
      AWS_KEY_ID.toLowerCase(),
      `X${AWS_KEY_ID}`,
      // Percent-encoded text without a secret, a short bearer value, and stray percent signs.
      'hello%20world%21%20see%20%2Fdocs',
      'Bearer%20abc',
      '100% sure, %zz and %',
      'path/to/some-file_name.v2.txt',
    ];
    for (const text of keep) {
      const result = redacted(text);
      assert.equal(result.text, text, `${text} must not be redacted`);
      assert.equal(result.count, 0);
    }
  });
});

describe('texts remembered as clean across redactors (the per-call fast path)', () => {
  test('a secret is redacted and counted on every use, however often it is seen', () => {
    for (let round = 0; round < 3; round += 1) {
      const result = redacted(`use ${AWS_SECRET} for the bucket`);
      assert.ok(!result.text.includes(AWS_SECRET), `round ${round}: ${result.text}`);
      assert.equal(result.count, 1, `round ${round}`);
    }
  });

  test('a clean text seen before comes back unchanged with nothing counted, and a secret appended to it is still found', () => {
    const clean = 'content: 1 item (1 text)';
    for (let round = 0; round < 3; round += 1) assert.deepEqual(redacted(clean), { text: clean, count: 0 });
    const withSecret = redacted(`${clean} ${AWS_SECRET}`);
    assert.equal(withSecret.count, 1);
    assert.ok(!withSecret.text.includes(AWS_SECRET));
  });

  test('a text with a lone surrogate is repaired on every use, not remembered as it came', () => {
    const broken = `name\uD800tail`;
    for (let round = 0; round < 2; round += 1) assert.equal(createRedactor().text(broken), 'name\uFFFDtail');
  });

  test('strings inside JSON values take the same path: a secret in an argument is redacted on its second call too', () => {
    for (let round = 0; round < 2; round += 1) {
      const redactor = createRedactor();
      const copy = redactor.json({ query: 'plain words', note: `key ${AWS_SECRET}` }) as Record<string, string>;
      assert.equal(copy['query'], 'plain words');
      assert.ok(!String(copy['note']).includes(AWS_SECRET));
      assert.equal(redactor.count, 1);
    }
  });
});
