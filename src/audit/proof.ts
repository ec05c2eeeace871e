import { readFileSync } from 'node:fs';
import { parseCheckpoint, verifyCheckpointSignature, type ParsedCheckpoint } from './checkpoint.js';
import type { NoteVerifier } from './keys.js';
import { listCheckpoints } from './layout.js';
import { inclusionProof, leafHash, rootFromInclusionProof } from './merkle.js';
import { scanLog } from './scan.js';

/** An RFC 6962 inclusion proof of one record against a signed checkpoint, self-contained. */
export interface InclusionProofDocument {
  format: 'bastion.audit-proof/1';
  seq: number;
  treeSize: number;
  /** The record line exactly as stored (its leaf hash is SHA-256(0x00 || line)). */
  record: string;
  leafHash: string;
  /** Sibling hashes, leaf upwards, base64. */
  proof: string[];
  checkpoint: string;
}

/** Builds a proof for `seq` against the given checkpoint, or the newest one that covers it. */
export function proveInclusion(dir: string, seq: number, verifier: NoteVerifier, checkpointFile?: string): InclusionProofDocument {
  const checkpoint = chooseCheckpoint(dir, seq, checkpointFile);
  verifyCheckpointSignature(checkpoint, verifier, `checkpoint of size ${checkpoint.size}`);
  let recordLine: string | undefined;
  const scan = scanLog(dir, {
    checkpoints: [checkpoint],
    collectLeaves: true,
    onRecord: (line, recordSeq) => {
      if (recordSeq === seq) recordLine = line.toString('utf8');
    },
  });
  if (scan.firstSeq > 0) throw new Error(`records before seq ${scan.firstSeq} were removed by retention: an inclusion proof needs every leaf; use an exported bundle that still holds them`);
  if (scan.problem && scan.problem.seq < checkpoint.size) throw new Error(`the log does not verify up to the checkpoint (${scan.problem.message}); run mcp-auditctl verify`);
  const leaves = scan.leaves ?? [];
  if (recordLine === undefined || leaves.length < checkpoint.size) throw new Error(`record ${seq} is not in the log`);
  const proof = inclusionProof(leaves, seq, checkpoint.size);
  return { format: 'bastion.audit-proof/1', seq, treeSize: checkpoint.size, record: recordLine, leafHash: (leaves[seq] as Buffer).toString('hex'), proof: proof.map((item) => item.toString('base64')), checkpoint: checkpoint.text };
}

function chooseCheckpoint(dir: string, seq: number, checkpointFile?: string): ParsedCheckpoint {
  if (checkpointFile !== undefined) {
    const checkpoint = parseCheckpoint(readFileSync(checkpointFile, 'utf8'), checkpointFile);
    if (checkpoint.size <= seq) throw new Error(`checkpoint ${checkpointFile} covers ${checkpoint.size} records; record ${seq} is not in it`);
    return checkpoint;
  }
  const covering = listCheckpoints(dir).map((item) => item.checkpoint).filter((item) => item.size > seq);
  const newest = covering[covering.length - 1];
  if (newest === undefined) throw new Error(`no checkpoint covers record ${seq} yet: checkpoints are written every audit.checkpoint.everyRecords records or everySeconds seconds`);
  return newest;
}

/** Checks a proof document: the checkpoint signature, the leaf hash of the record, and the path to the root. */
export function verifyInclusionProof(document: InclusionProofDocument, verifier: NoteVerifier): { seq: number; treeSize: number; origin: string } {
  if (document.format !== 'bastion.audit-proof/1') throw new Error('not a bastion.audit-proof/1 document');
  const checkpoint = parseCheckpoint(document.checkpoint, 'proof checkpoint');
  verifyCheckpointSignature(checkpoint, verifier, 'proof checkpoint');
  if (checkpoint.size !== document.treeSize) throw new Error(`proof is for a tree of ${document.treeSize} leaves but its checkpoint has ${checkpoint.size}`);
  const leaf = leafHash(Buffer.from(document.record, 'utf8'));
  if (leaf.toString('hex') !== document.leafHash) throw new Error('the record does not hash to the proof leaf: the record was altered');
  const record = JSON.parse(document.record) as { seq?: unknown };
  if (record.seq !== document.seq) throw new Error(`the record has seq ${String(record.seq)}, the proof says ${document.seq}`);
  const root = rootFromInclusionProof(leaf, document.seq, document.treeSize, document.proof.map((item) => Buffer.from(item, 'base64')));
  if (!root.equals(checkpoint.root)) throw new Error('the inclusion path does not lead to the checkpoint root: the proof or record is not genuine');
  return { seq: document.seq, treeSize: document.treeSize, origin: checkpoint.origin };
}
