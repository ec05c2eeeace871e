import { sign, verify } from 'node:crypto';
import type { NoteSigner, NoteVerifier } from './keys.js';

/**
 * Checkpoints in the C2SP tlog-checkpoint format, signed as a C2SP signed note:
 *
 *   <origin>\n<tree size>\n<base64 root>\nchain-head <hex>\ntimestamp <RFC 3339>\n\n— <key name> <base64(key id || signature)>\n
 */

export interface CheckpointBody {
  origin: string;
  size: number;
  root: Buffer;
  /** Hash of record size-1 (the chain head), or 64 zeros for an empty log. */
  head: string;
  timestamp: string;
  /**
   * 1 for a log's first checkpoint, then one more for each: a gap shows a deleted checkpoint.
   * Absent in checkpoints of bastion.audit/1 logs.
   */
  index?: number;
}

export interface ParsedCheckpoint extends CheckpointBody {
  text: string;
  signedText: string;
  signatures: Array<{ name: string; keyId: Buffer; signature: Buffer }>;
}

const SIGNATURE_PREFIX = '\u2014 ';

export function checkpointText(body: CheckpointBody): string {
  if (body.origin.length === 0 || /\s/.test(body.origin)) throw new Error(`checkpoint origin '${body.origin}' must be non-empty without spaces`);
  const index = body.index === undefined ? '' : `index ${body.index}\n`;
  return `${body.origin}\n${body.size}\n${body.root.toString('base64')}\nchain-head ${body.head}\ntimestamp ${body.timestamp}\n${index}`;
}

export function signCheckpoint(body: CheckpointBody, signer: NoteSigner): string {
  const text = checkpointText(body);
  const signature = sign(null, Buffer.from(text, 'utf8'), signer.privateKey);
  return `${text}\n${SIGNATURE_PREFIX}${signer.name} ${Buffer.concat([signer.keyId, signature]).toString('base64')}\n`;
}

export class CheckpointFormatError extends Error {
  override name = 'CheckpointFormatError';
}

export function parseCheckpoint(note: string, where = 'checkpoint'): ParsedCheckpoint {
  const split = note.indexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw new CheckpointFormatError(`${where}: not a signed note (no blank line before the signatures, or no final newline)`);
  const signedText = note.slice(0, split + 1);
  const lines = signedText.slice(0, -1).split('\n');
  if (lines.length < 3) throw new CheckpointFormatError(`${where}: a checkpoint needs origin, size and root lines`);
  const [origin, sizeLine, rootLine] = lines as [string, string, string];
  if (!/^(0|[1-9][0-9]*)$/.test(sizeLine)) throw new CheckpointFormatError(`${where}: line 2 (tree size) '${sizeLine}' is not a decimal number`);
  const root = Buffer.from(rootLine, 'base64');
  if (root.length !== 32 || root.toString('base64') !== rootLine) throw new CheckpointFormatError(`${where}: line 3 (root hash) is not base64 of 32 bytes`);
  let head: string | undefined;
  let timestamp = '';
  let index: number | undefined;
  for (const extension of lines.slice(3)) {
    if (extension.startsWith('chain-head ')) head = extension.slice(11);
    else if (extension.startsWith('timestamp ')) timestamp = extension.slice(10);
    else if (extension.startsWith('index ')) {
      if (!/^[1-9][0-9]{0,14}$/.test(extension.slice(6))) throw new CheckpointFormatError(`${where}: malformed 'index' extension line`);
      index = Number(extension.slice(6));
    }
  }
  if (head === undefined || !/^[0-9a-f]{64}$/.test(head)) throw new CheckpointFormatError(`${where}: missing or malformed 'chain-head' extension line`);
  const signatures: ParsedCheckpoint['signatures'] = [];
  for (const line of note.slice(split + 2, -1).split('\n')) {
    if (!line.startsWith(SIGNATURE_PREFIX)) throw new CheckpointFormatError(`${where}: signature line '${line.slice(0, 40)}' does not start with '— '`);
    const [name, encoded] = line.slice(SIGNATURE_PREFIX.length).split(' ');
    const decoded = Buffer.from(encoded ?? '', 'base64');
    if (name === undefined || name.length === 0 || decoded.length !== 68) throw new CheckpointFormatError(`${where}: malformed signature line for '${name ?? ''}'`);
    signatures.push({ name, keyId: decoded.subarray(0, 4), signature: decoded.subarray(4) });
  }
  return { origin, size: Number(sizeLine), root, head, timestamp, index, text: note, signedText, signatures };
}

/** Throws unless the note carries a valid signature by `verifier`. */
export function verifyCheckpointSignature(checkpoint: ParsedCheckpoint, verifier: NoteVerifier, where = 'checkpoint'): void {
  const candidates = checkpoint.signatures.filter((item) => item.name === verifier.name && item.keyId.equals(verifier.keyId));
  if (candidates.length === 0) {
    const names = checkpoint.signatures.map((item) => `${item.name}/${item.keyId.toString('hex')}`).join(', ');
    throw new CheckpointFormatError(`${where}: no signature by key ${verifier.name}/${verifier.keyId.toString('hex')} (signed by: ${names || 'nobody'}). Is --key the log's public key?`);
  }
  const data = Buffer.from(checkpoint.signedText, 'utf8');
  if (!candidates.some((item) => verify(null, data, verifier.publicKey, item.signature))) throw new CheckpointFormatError(`${where}: signature by ${verifier.name} does not verify: the checkpoint was altered or signed by another key`);
}
