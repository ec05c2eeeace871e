import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CredentialVault, VaultError, parseVaultKey } from '../../src/credentials/index.js';
import { BASTION_BIN, tempDir } from '../helpers/gateway.js';

const dir = tempDir('bastion-vault-');
after(() => dir.cleanup());

const key = randomBytes(32);
const ACCESS = 'at-secret-value-that-must-not-appear-0123456789';
const REFRESH = 'rt-secret-value-that-must-not-appear-9876543210';

function fileText(path: string): string {
  return readFileSync(path, 'utf8');
}

describe('credential vault', () => {
  it('holds no token in clear, and decrypts only with its key', async () => {
    const path = join(dir.path, 'clear', 'vault.json');
    const vault = new CredentialVault(path, key);
    await vault.saveTokens('alice', 'jira', { accessToken: ACCESS, refreshToken: REFRESH, expiresAt: Date.now() + 60_000, scope: 'tools offline_access' });
    const text = fileText(path);
    for (const secret of [ACCESS, REFRESH]) {
      assert.ok(!text.includes(secret), 'a token is in the file in clear');
      assert.ok(!text.includes(Buffer.from(secret).toString('base64').slice(0, 24)), 'a token is in the file merely base64-encoded');
    }
    assert.deepEqual(vault.tokens('alice', 'jira')?.accessToken, ACCESS);
    assert.equal(vault.tokens('bob', 'jira'), undefined);
    const listed = vault.list();
    assert.equal(listed.length, 1);
    assert.deepEqual(listed[0]?.scopes, ['tools', 'offline_access']);
    assert.ok(!JSON.stringify(listed).includes(ACCESS));
  });

  it('rotates: a new save replaces the record with a fresh nonce and the old token is gone', async () => {
    const path = join(dir.path, 'rotate', 'vault.json');
    const vault = new CredentialVault(path, key);
    await vault.saveTokens('alice', 'jira', { accessToken: 'first-access-token-aaaaaaaaaaaaaaa', scope: 'tools' });
    const first = JSON.parse(fileText(path)) as { records: Array<{ nonce: string; ciphertext: string }> };
    await vault.saveTokens('alice', 'jira', { accessToken: 'second-access-token-bbbbbbbbbbbbbbb', scope: 'tools' });
    const second = JSON.parse(fileText(path)) as { records: Array<{ nonce: string; ciphertext: string }> };
    assert.equal(second.records.length, 1);
    assert.notEqual(second.records[0]?.nonce, first.records[0]?.nonce);
    assert.equal(vault.tokens('alice', 'jira')?.accessToken, 'second-access-token-bbbbbbbbbbbbbbb');
  });

  it('detects tampering: a changed ciphertext, a record moved to another agent, edited metadata', async () => {
    const path = join(dir.path, 'tamper', 'vault.json');
    const vault = new CredentialVault(path, key);
    await vault.saveTokens('alice', 'jira', { accessToken: ACCESS, expiresAt: Date.now() + 60_000, scope: 'tools' });
    const original = fileText(path);
    const edit = (change: (record: Record<string, unknown>) => void): void => {
      const file = JSON.parse(original) as { records: Array<Record<string, unknown>> };
      change(file.records[0] as Record<string, unknown>);
      writeFileSync(path, JSON.stringify(file));
    };

    edit((record) => {
      const bytes = Buffer.from(String(record['ciphertext']), 'base64');
      bytes[0] = (bytes[0] as number) ^ 1;
      record['ciphertext'] = bytes.toString('base64');
    });
    assert.throws(() => vault.tokens('alice', 'jira'), (error: unknown) => error instanceof VaultError && /fails authentication/.test(error.message));

    // Alice's record copied into Bob's slot: Bob must not get Alice's upstream identity.
    edit((record) => {
      record['agent'] = 'bob';
    });
    assert.throws(() => vault.tokens('bob', 'jira'), VaultError);

    edit((record) => {
      record['scopes'] = ['admin'];
    });
    assert.throws(() => vault.tokens('alice', 'jira'), VaultError);
  });

  it('refuses a file written under another key, naming both key ids', async () => {
    const path = join(dir.path, 'wrong-key', 'vault.json');
    await new CredentialVault(path, key).saveTokens('alice', 'jira', { accessToken: ACCESS });
    const other = new CredentialVault(path, randomBytes(32));
    assert.throws(() => other.tokens('alice', 'jira'), (error: unknown) => error instanceof VaultError && /written under key id [0-9a-f]{16}.*configured key .* has id [0-9a-f]{16}/.test(error.message));
  });

  it('refuses a key that is not 32 random bytes', () => {
    assert.throws(() => parseVaultKey('hunter2', 'credentials.key'), /32 random bytes/);
    assert.throws(() => parseVaultKey(randomBytes(16).toString('base64'), 'credentials.key'), /32 random bytes/);
    assert.equal(parseVaultKey(key.toString('hex'), 'k').length, 32);
    assert.equal(parseVaultKey(key.toString('base64'), 'k').length, 32);
  });

  it('bastion credentials list shows agent, server, expiry and scopes, never a token; revoke deletes', async () => {
    const base = join(dir.path, 'cli');
    const config = join(base, 'bastion.yaml');
    const vaultKey = key.toString('base64');
    const vault = new CredentialVault(join(base, 'state', 'credentials', 'vault.json'), key);
    await vault.saveTokens('alice', 'remote', { accessToken: ACCESS, refreshToken: REFRESH, expiresAt: Date.parse('2030-01-01T00:00:00Z'), scope: 'tools' });
    await vault.saveTokens('bob', 'remote', { accessToken: 'bob-token-cccccccccccccccccccccccccc', scope: 'tools' });
    writeFileSync(config, `version: 1
stateDir: state
credentials:
  key: { fromEnv: TEST_VAULT_KEY }
servers:
  remote:
    transport: http
    url: https://mcp.example.com/mcp
    auth: { type: oauth }
`);
    const run = (args: string[], env: Record<string, string> = { TEST_VAULT_KEY: vaultKey }): { status: number | null; stdout: string; stderr: string } => {
      const result = spawnSync(process.execPath, [BASTION_BIN, 'credentials', ...args, '--config', config], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', ...env } });
      return { status: result.status, stdout: result.stdout, stderr: result.stderr };
    };
    const listed = run(['list']);
    assert.equal(listed.status, 0, listed.stderr);
    assert.match(listed.stdout, /alice {2}remote {2}2030-01-01T00:00:00.000Z {2}tools/);
    assert.match(listed.stdout, /bob {2}remote {2}no expiry/);
    assert.ok(!listed.stdout.includes(ACCESS) && !listed.stdout.includes(REFRESH));

    const revoked = run(['revoke', 'alice', 'remote']);
    assert.equal(revoked.status, 0, revoked.stderr);
    assert.equal(vault.tokens('alice', 'remote'), undefined);
    assert.equal(vault.tokens('bob', 'remote')?.accessToken, 'bob-token-cccccccccccccccccccccccccc');

    const noKey = run(['list'], {});
    assert.equal(noKey.status, 2);
    assert.match(noKey.stderr, /credentials\.key: environment variable TEST_VAULT_KEY is not set/);
  });

  it('a server with auth and no credentials section is a config error with the field and the fix', () => {
    const config = join(dir.path, 'no-vault.yaml');
    writeFileSync(config, `version: 1
servers:
  remote:
    transport: http
    url: https://mcp.example.com/mcp
    auth: { type: oauth }
`);
    const result = spawnSync(process.execPath, [BASTION_BIN, 'credentials', 'list', '--config', config], { encoding: 'utf8' });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /servers\.remote\.auth/);
    assert.match(result.stderr, /credentials: \{ key: \{ fromEnv: BASTION_VAULT_KEY \} \}/);
  });
});
