// `mcp-auditctl verify` for one log: the report, the witness comparison and the exit code.
import { join } from 'node:path';
import { CliError } from './errors.js';
import { verifyLogParallel, VerifyExit, type VerifyReport } from '../audit/verify.js';
import { LogUnreadableError } from '../audit/scan.js';
import { PUBLIC_KEY_FILE } from '../audit/layout.js';
import { loadVerifier } from '../audit/keys.js';
import { compareWithWitness, notesAt, witnessExitCode, type WitnessReport } from '../audit/witness.js';

export interface VerifyFlags {
  fromCheckpoint?: boolean;
  checkpoint?: string;
  key?: string;
  json?: boolean;
  allowUnsignedTail?: boolean;
  workers: string;
  witness?: string;
}

export async function verifyOne(dir: string, options: VerifyFlags, workers: number, label: string | undefined): Promise<number> {
  let report: VerifyReport;
  try {
    report = await verifyLogParallel(dir, { fromCheckpoint: options.fromCheckpoint, checkpointFile: options.checkpoint, key: options.key, workers });
  } catch (error) {
    if (error instanceof LogUnreadableError) {
      if (label === undefined) throw new CliError(error.message, VerifyExit.Unreadable);
      process.stdout.write(`UNREADABLE: ${error.message}\n`);
      return VerifyExit.Unreadable;
    }
    throw error;
  }
  const witness = options.witness === undefined ? undefined : await witnessReport(dir, report, options.witness, options.key);
  printVerifyReport(report, options.json === true, witness, label);
  const witnessCode = witness === undefined ? undefined : witnessExitCode(witness);
  if (report.status !== 'clean') return VerifyExit.Tampered;
  if (witnessCode !== undefined) return witnessCode;
  return report.unsignedTail !== undefined && options.allowUnsignedTail !== true ? VerifyExit.UnsignedTail : VerifyExit.Clean;
}

/** The witnessed checkpoints compared with the local log, under the key verify used. */
async function witnessReport(dir: string, report: VerifyReport, source: string, key: string | undefined): Promise<WitnessReport> {
  let notes: string[];
  try {
    notes = await notesAt(source);
  } catch (error) {
    throw new CliError((error as Error).message, VerifyExit.Unreadable);
  }
  const verifier = loadVerifier(key ?? join(dir, PUBLIC_KEY_FILE), report.metadata.keyName);
  const witness = compareWithWitness(dir, report.metadata.origin, notes, verifier);
  if (witness.witnessed === 0) throw new CliError(`witness ${source} holds no checkpoint of ${report.metadata.origin} signed by this log's key (${witness.ignored} other note(s)): nothing to compare`, VerifyExit.Unreadable);
  return witness;
}

function printVerifyReport(report: VerifyReport, json: boolean, witness: WitnessReport | undefined, log: string | undefined): void {
  const { scan, problem } = report;
  if (json) {
    process.stdout.write(`${JSON.stringify({ ...(log === undefined ? {} : { log }), status: report.status, origin: report.metadata.origin, records: scan.records, firstSeq: scan.firstSeq, nextSeq: scan.nextSeq, head: scan.head, segments: scan.segments.length, checkpoints: report.checkpoints, checkpointsMatched: scan.checkpointsMatched, checkpointsSkipped: scan.checkpointsSkipped, key: report.keySource, bundleFiles: report.bundle?.files, unsignedTail: report.unsignedTail, legacyFormat: report.legacyFormat, problem, witness })}\n`);
    return;
  }
  if (witness !== undefined) {
    for (const finding of witness.findings) process.stdout.write(`WITNESS ${finding.kind.toUpperCase()}: ${finding.message}\n`);
    if (witness.findings.length === 0) process.stdout.write(`witness: ${witness.witnessed} witnessed checkpoint(s) agree with the local log\n`);
  }
  if (problem) {
    process.stdout.write(`TAMPERED: ${problem.segment} line ${problem.line} (byte ${problem.offset}), seq ${problem.seq}: ${problem.message}\n`);
    if ('tornTail' in problem && problem.tornTail) process.stdout.write('note: this looks like an incomplete write at the end of the log (a crash); Bastion truncates it and records a recovery event when it next opens the log.\n');
    return;
  }
  process.stdout.write(`clean: ${scan.records} records (seq ${scan.firstSeq}..${scan.nextSeq - 1}) in ${scan.segments.length} segment(s); ${scan.checkpointsMatched} of ${report.checkpoints} checkpoint(s) matched, signatures valid\n`);
  if (report.bundle) process.stdout.write(`bundle: ${report.bundle.files} files match the manifest\n`);
  const tail = report.unsignedTail;
  if (tail !== undefined) process.stdout.write(`UNSIGNED TAIL: ${tail.records} record(s), seq ${tail.fromSeq}..${tail.fromSeq + tail.records - 1}, follow the newest signed checkpoint: their chain is intact but nothing signed vouches for them yet (the gateway signs them at the next checkpoint, after checking their batch seals)\n`);
  if (report.legacyFormat) process.stdout.write('note: a bastion.audit/1 log: it has no batch seals or checkpoint indices, so a deleted newest checkpoint is not detectable here\n');
  if (scan.startedAfterRetention) process.stdout.write(`note: records before seq ${scan.firstSeq} were removed by retention; ${scan.checkpointsSkipped} older checkpoint(s) could not be compared\n`);
  if (report.keySource === 'log directory') process.stderr.write('warning: verified with the public key stored in the log directory; pass --key with a copy kept elsewhere for an independent check\n');
}
