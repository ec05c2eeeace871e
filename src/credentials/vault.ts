import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFileDurably } from '../storage/index.js';

/** What the vault keeps for one agent at one upstream (never shown by `bastion credentials list`). */
export interface StoredTokens {
  accessToken: string;
  refreshToken?: string;
  /** Milliseconds since the epoch; undefined when the server gave no lifetime. */
  expiresAt?: number;
  scope?: string;
}

/** What the gateway registered at an upstream's authorization server (RFC 7591) or was configured with. */
export interface StoredClient {
  clientId: string;
  clientSecret?: string;
  redirectUri: string;
  /** The authorization server this registration belongs to: a different one needs a new registration. */
  issuer: string;
}

/** A record's metadata, safe to list: who, where, until when, which scopes. */
export interface CredentialSummary {
  kind: RecordKind;
  agent: string;
  server: string;
  expiresAt: string | null;
  scopes: string[];
  updatedAt: string;
}

type RecordKind = 'tokens' | 'client';

interface SealedRecord extends CredentialSummary {
  nonce: string;
  ciphertext: string;
  tag: string;
}

interface VaultFile {
  format: 'bastion-credential-vault';
  version: 1;
  keyId: string;
  records: SealedRecord[];
}

/** The vault refused to work: a bad key, a file written under another key, or a record that fails authentication. */
export class VaultError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VaultError';
  }
}

const KEY_BYTES = 32;
const NONCE_BYTES = 12;
/** The agent slot of a record that belongs to the gateway itself (a client registration), not to an agent. */
const GATEWAY_SLOT = '';

/**
 * Turns the configured key text into 32 bytes: 64 hex digits, or base64/base64url of 32 bytes
 * (`openssl rand -base64 32`). Anything else is refused rather than stretched, so a short
 * passphrase cannot quietly become the key.
 */
export function parseVaultKey(text: string, source: string): Buffer {
  const trimmed = text.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) key = Buffer.from(trimmed, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}={0,1}$/.test(trimmed)) key = Buffer.from(trimmed, 'base64');
  if (key?.length !== KEY_BYTES) {
    throw new VaultError(`${source}: the credential vault key must be 32 random bytes as 64 hex digits or base64 (make one with: openssl rand -base64 32)`);
  }
  return key;
}

/** A short public name of the key (not the key): written in the file so a wrong key is named as such. */
export function vaultKeyId(key: Buffer): string {
  return createHash('sha256').update('bastion-vault-key-id\u0000').update(key).digest('hex').slice(0, 16);
}

/**
 * Upstream credentials encrypted at rest, one AES-256-GCM record per (agent, upstream) with a
 * fresh random nonce per write. The additional authenticated data binds the key id, the
 * record kind, the agent and the server: a record copied into another agent's slot, or its
 * metadata edited, fails to decrypt. The file is read on every use, so `bastion credentials
 * revoke` takes effect in a running gateway without a restart.
 */
export class CredentialVault {
  readonly keyId: string;
  private writes: Promise<unknown> = Promise.resolve();

  constructor(
    readonly path: string,
    private readonly key: Buffer,
  ) {
    if (key.length !== KEY_BYTES) throw new VaultError('the credential vault key must be 32 bytes');
    this.keyId = vaultKeyId(key);
  }

  list(): CredentialSummary[] {
    return this.read().records.map(({ kind, agent, server, expiresAt, scopes, updatedAt }) => ({ kind, agent, server, expiresAt, scopes, updatedAt }));
  }

  tokens(agent: string, server: string): StoredTokens | undefined {
    return this.open<StoredTokens>('tokens', agent, server);
  }

  client(server: string): StoredClient | undefined {
    return this.open<StoredClient>('client', GATEWAY_SLOT, server);
  }

  /** Stores (or rotates: the old record is replaced, never kept) an agent's tokens for a server. */
  saveTokens(agent: string, server: string, tokens: StoredTokens): Promise<void> {
    const scopes = tokens.scope === undefined ? [] : tokens.scope.split(' ').filter((scope) => scope !== '');
    return this.update((file) => this.put(file, 'tokens', agent, server, tokens, tokens.expiresAt, scopes));
  }

  saveClient(server: string, client: StoredClient): Promise<void> {
    return this.update((file) => this.put(file, 'client', GATEWAY_SLOT, server, client, undefined, []));
  }

  /** Deletes an agent's tokens for a server; resolves with whether there were any. */
  async revoke(agent: string, server: string): Promise<boolean> {
    let found = false;
    await this.update((file) => {
      const before = file.records.length;
      file.records = file.records.filter((record) => !(record.kind === 'tokens' && record.agent === agent && record.server === server));
      found = file.records.length !== before;
    });
    return found;
  }

  private open<T>(kind: RecordKind, agent: string, server: string): T | undefined {
    const record = this.read().records.find((entry) => entry.kind === kind && entry.agent === agent && entry.server === server);
    if (record === undefined) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(record.nonce, 'base64'));
      decipher.setAAD(associatedData(this.keyId, record));
      decipher.setAuthTag(Buffer.from(record.tag, 'base64'));
      const plain = Buffer.concat([decipher.update(Buffer.from(record.ciphertext, 'base64')), decipher.final()]);
      return JSON.parse(plain.toString('utf8')) as T;
    } catch {
      throw new VaultError(`credential vault ${this.path}: the ${kind} record for agent '${agent}' at server '${server}' fails authentication (tampered with, or moved from another slot); revoke it with: bastion credentials revoke ${agent === GATEWAY_SLOT ? '<agent>' : agent} ${server}`);
    }
  }

  private put(file: VaultFile, kind: RecordKind, agent: string, server: string, value: unknown, expiresAt: number | undefined, scopes: string[]): void {
    const nonce = randomBytes(NONCE_BYTES);
    const meta: CredentialSummary = { kind, agent, server, expiresAt: expiresAt === undefined ? null : new Date(expiresAt).toISOString(), scopes, updatedAt: new Date().toISOString() };
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    cipher.setAAD(associatedData(this.keyId, meta));
    const ciphertext = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
    const sealed: SealedRecord = { ...meta, nonce: nonce.toString('base64'), ciphertext: ciphertext.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
    file.records = [...file.records.filter((record) => !(record.kind === kind && record.agent === agent && record.server === server)), sealed];
  }

  /** Writes one at a time within this process; each write starts from the file as it is now. */
  private update(change: (file: VaultFile) => void): Promise<void> {
    const next = this.writes.then(() => {
      const file = this.read();
      change(file);
      writeFileDurably(this.path, `${JSON.stringify(file, null, 1)}\n`, 0o600);
    });
    this.writes = next.catch(() => undefined);
    return next;
  }

  private read(): VaultFile {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { format: 'bastion-credential-vault', version: 1, keyId: this.keyId, records: [] };
      throw new VaultError(`cannot read the credential vault ${this.path}: ${(error as Error).message}`);
    }
    let file: VaultFile;
    try {
      file = JSON.parse(text) as VaultFile;
    } catch {
      throw new VaultError(`the credential vault ${this.path} is not valid JSON; restore it from a backup or move it away (every agent then consents again)`);
    }
    if (file.format !== 'bastion-credential-vault' || file.version !== 1 || !Array.isArray(file.records)) {
      throw new VaultError(`${this.path} is not a version 1 Bastion credential vault`);
    }
    if (file.keyId !== this.keyId) {
      throw new VaultError(`the credential vault ${this.path} was written under key id ${file.keyId}, but the configured key (credentials.key) has id ${this.keyId}: configure the key it was written with`);
    }
    return file;
  }
}

function associatedData(keyId: string, record: Pick<CredentialSummary, 'kind' | 'agent' | 'server' | 'expiresAt' | 'scopes'>): Buffer {
  return Buffer.from(JSON.stringify(['bastion-vault/1', keyId, record.kind, record.agent, record.server, record.expiresAt, record.scopes]), 'utf8');
}
