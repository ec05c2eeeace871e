#!/usr/bin/env node
import { existsSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { packageVersion } from './version.js';
import { CliError } from './errors.js';
import { defaultVerifyThreads, VerifyExit } from '../audit/verify.js';
import { availableParallelism } from 'node:os';
import { LogUnreadableError } from '../audit/scan.js';
import { matches, readLines, readRecords, type RecordFilter } from '../audit/reader.js';
import { listSegments, readMetadata, PUBLIC_KEY_FILE } from '../audit/layout.js';
import { exportBundle } from '../audit/bundle.js';
import { compact, toEcs, toOcsf } from '../audit/siem.js';
import { proveInclusion, verifyInclusionProof, type InclusionProofDocument } from '../audit/proof.js';
import { loadVerifier, type NoteVerifier } from '../audit/keys.js';
import { AuditEvent, type AuditRecord } from '../audit/schema.js';
import { collectLog, mergeByTime, worstExit } from './audit-logs.js';
import { verifyOne, type VerifyFlags } from './audit-verify.js';

/** mcp-auditctl: verify, read, export and prove records of a Bastion audit log. */

// A reader piping into head or less must not die with a stack trace when the pipe closes.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const DEFAULT_LOG = process.env['BASTION_AUDIT_DIR'] ?? join('.bastion', 'audit');

const program = new Command();
program
  .name('mcp-auditctl')
  .description('Inspect and verify a Bastion tamper-evident audit log.\nExit codes of verify: 0 clean, 2 tampered, 3 unreadable, 4 records after the newest signed checkpoint (unsigned tail);\nwith --witness also 5 fork (the log was rewritten), 6 truncated, 7 a witnessed checkpoint is missing locally.')
  .version(packageVersion(), '-V, --version')
  .option('-l, --log <dir>', 'the audit log directory or an exported bundle (env BASTION_AUDIT_DIR); verify and query take several (--log a --log b: replicas)', collectLog)
  .showHelpAfterError()
  .exitOverride();

/** Every --log given (default: BASTION_AUDIT_DIR or .bastion/audit). */
function logDirs(command: Command): string[] {
  const given = (command.optsWithGlobals() as { log?: string[] }).log;
  return given === undefined || given.length === 0 ? [DEFAULT_LOG] : given;
}

/** The one log a command reads; several are refused (only verify and query merge logs). */
function logDir(command: Command): string {
  const dirs = logDirs(command);
  if (dirs.length > 1) throw new CliError(`${command.name()} reads one log; pass a single --log (verify and query take several)`, 1);
  return checkedLog(dirs[0] as string);
}

function checkedLog(dir: string): string {
  if (!existsSync(dir)) throw new CliError(`audit log ${dir} does not exist: pass --log DIR (audit.dir in bastion.yaml, under the state dir)`, VerifyExit.Unreadable);
  try {
    readMetadata(dir);
  } catch (error) {
    throw new CliError((error as Error).message, VerifyExit.Unreadable);
  }
  return dir;
}

program
  .command('verify')
  .description('check every record hash, chain link, sequence number and checkpoint signature; several --log are verified one by one (the worst result is the exit code)')
  .option('--from-checkpoint', 'start at the segment holding the newest checkpoint (faster; older records are trusted)')
  .option('--checkpoint <file>', 'also check the log against this checkpoint (e.g. one kept in another location)')
  .option('--key <pubkey>', "the log's public key: PEM file or C2SP vkey (default: the key stored in the log, which proves less)")
  .option('--json', 'print the report as JSON')
  .option('--allow-unsigned-tail', 'exit 0 even when records follow the newest signed checkpoint (a live log between checkpoints)')
  .option('--workers <count>', 'threads that check records, this one included (default: one per core; 1: this thread only)', String(defaultVerifyThreads()))
  .option('--witness <dir|url>', 'also compare with checkpoints kept elsewhere: a mirror directory, a file or URL of shipped checkpoint lines (exit 5 fork, 6 truncated, 7 missing checkpoint)')
  .action(async (options: VerifyFlags, command: Command) => {
    const dirs = logDirs(command).map(checkedLog);
    const workers = Number(options.workers);
    if (!Number.isInteger(workers) || workers < 1 || workers > availableParallelism() * 2) throw new CliError(`--workers must be an integer from 1 to ${availableParallelism() * 2}, not '${options.workers}'`, 1);
    if (dirs.length > 1 && (options.witness !== undefined || options.checkpoint !== undefined)) throw new CliError('--witness and --checkpoint belong to one log; verify the logs one at a time with them', 1);
    const codes: number[] = [];
    // Each replica's log is its own chain under its own key: each is verified on its own.
    for (const dir of dirs) {
      if (dirs.length > 1 && options.json !== true) process.stdout.write(`${dir}:\n`);
      codes.push(await verifyOne(dir, options, workers, dirs.length > 1 ? dir : undefined));
    }
    process.exitCode = worstExit(codes);
  });

function addFilters(command: Command): Command {
  return command
    .option('--since <time>', 'ISO time or a duration back from now: 30m, 12h, 7d')
    .option('--until <time>', 'ISO time or a duration back from now')
    .option('--agent <id>', 'only this agent')
    .option('--tool <name>', 'only this tool')
    .option('--server <name>', 'only this upstream server')
    .option('--decision <decision>', 'allow, deny or error')
    .option('--task <id>', 'only this task id')
    .option('--event <type>', 'only events of this type');
}

interface FilterOptions {
  since?: string;
  until?: string;
  agent?: string;
  tool?: string;
  server?: string;
  decision?: string;
  task?: string;
  event?: string;
}

function filterFrom(options: FilterOptions): RecordFilter {
  return { since: parseTime(options.since, '--since'), until: parseTime(options.until, '--until'), agent: options.agent, tool: options.tool, server: options.server, decision: options.decision, task: options.task, event: options.event };
}

function parseTime(text: string | undefined, flag: string): Date | undefined {
  if (text === undefined) return undefined;
  const relative = /^(\d+)([smhd])$/.exec(text);
  if (relative) {
    const unit = { s: 1, m: 60, h: 3600, d: 86400 }[relative[2] as 's' | 'm' | 'h' | 'd'];
    return new Date(Date.now() - Number(relative[1]) * unit * 1000);
  }
  const parsed = Date.parse(text);
  if (Number.isNaN(parsed)) throw new CliError(`${flag} '${text}' is neither an ISO time (2026-01-31T12:00:00Z) nor a duration (30m, 12h, 7d)`, 1);
  return new Date(parsed);
}

function humanLine(record: AuditRecord): string {
  const target = record.tool !== undefined ? `${record.server ?? ''}.${record.tool}` : (record.server ?? '');
  const what = record.kind === 'event' ? `event ${record.event ?? ''}` : `${record.method ?? ''} ${target}`.trim();
  const extra = record.kind === 'event' && record.info !== undefined ? ` ${JSON.stringify(record.info)}` : '';
  return `${record.ts} #${record.seq} ${record.agent_id ?? '-'} ${what} ${record.decision ?? ''}${record.reason ? ` (${record.reason})` : ''}${record.exec_duration_ms !== undefined ? ` ${record.exec_duration_ms}ms` : ''}${extra}`.replace(/\s+/g, ' ').trim();
}

program
  .command('tail')
  .description('print the newest records; -f keeps following as they are written')
  .option('-n, --lines <count>', 'how many records to show first', '10')
  .option('-f, --follow', 'keep printing new records')
  .option('--json', 'print JSON Lines instead of one readable line per record')
  .option('--interval <ms>', 'poll interval when following', '250')
  .option('--seals', 'also show the audit.seal record that ends each written batch')
  .action(async (options: { lines: string; follow?: boolean; json?: boolean; interval: string; seals?: boolean }, command: Command) => {
    const dir = logDir(command);
    const shown = (raw: string): boolean => options.seals === true || !isSealLine(raw);
    const print = (raw: string): void => {
      if (!shown(raw)) return;
      if (options.json) process.stdout.write(`${raw}\n`);
      else {
        try {
          process.stdout.write(`${humanLine(JSON.parse(raw) as AuditRecord)}\n`);
        } catch {
          process.stdout.write(`(unreadable line) ${raw.slice(0, 120)}\n`);
        }
      }
    };
    const count = Number(options.lines);
    const last: string[] = [];
    // Read up to a position remembered per file, and follow from exactly there: nothing written
    // meanwhile is skipped or printed twice.
    let segments = listSegments(dir);
    let current = segments[segments.length - 1];
    let offset = 0;
    for (const segment of segments) {
      const state = { offset: 0 };
      for (const raw of readLines(segment.path, 0, state)) {
        if (!shown(raw)) continue;
        last.push(raw);
        if (last.length > count) last.shift();
      }
      if (segment === current) offset = state.offset;
    }
    last.forEach(print);
    if (!options.follow) return;
    const interval = Math.max(20, Number(options.interval));
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, interval));
      segments = listSegments(dir);
      if (current === undefined) {
        current = segments[0];
        offset = 0;
        if (current === undefined) continue;
      }
      const state = { offset };
      for (const raw of readLines(current.path, offset, state)) print(raw);
      offset = state.offset;
      const next = segments.find((segment) => current !== undefined && segment.firstSeq > current.firstSeq);
      if (next !== undefined && statSync(current.path).size === offset) {
        current = next;
        offset = 0;
      }
    }
  });

const QUERY_COLUMNS: ReadonlyArray<keyof AuditRecord> = ['ts', 'seq', 'kind', 'event', 'agent_id', 'method', 'server', 'tool', 'decision', 'reason', 'task_id', 'exec_duration_ms'];

addFilters(
  program
    .command('query')
    .description('filter records by time, agent, tool, server, decision or task; several --log are merged by time')
    .option('--format <format>', 'table, jsonl or csv', 'table')
    .option('--limit <count>', 'stop after this many records')
    .option('--seals', 'also show the audit.seal record that ends each written batch'),
).action((options: FilterOptions & { format: string; limit?: string; seals?: boolean }, command: Command) => {
  const dirs = logDirs(command).map(checkedLog);
  if (!['table', 'jsonl', 'csv'].includes(options.format)) throw new CliError(`--format must be table, jsonl or csv, not '${options.format}'`, 1);
  const filter = filterFrom(options);
  const limit = options.limit === undefined ? Infinity : Number(options.limit);
  // Several logs (replicas): merged by time, and the table names the replica of each record.
  const columns: ReadonlyArray<keyof AuditRecord> = dirs.length > 1 ? ['ts', 'replica', ...QUERY_COLUMNS.slice(1)] : QUERY_COLUMNS;
  const rows: string[][] = [];
  let shown = 0;
  if (options.format === 'csv') process.stdout.write(`${columns.join(',')}\n`);
  for (const { item } of mergeByTime(dirs.map((dir) => readRecords(dir)))) {
    const { record, raw } = item;
    if (shown >= limit) break;
    if (!matches(record, filter)) continue;
    if (record.event === AuditEvent.Seal && record.kind === 'event' && options.seals !== true && filter.event !== AuditEvent.Seal) continue;
    shown += 1;
    const cells = columns.map((column) => (record[column] === undefined ? '' : String(record[column])));
    if (options.format === 'jsonl') process.stdout.write(`${raw}\n`);
    else if (options.format === 'csv') process.stdout.write(`${cells.map(csvCell).join(',')}\n`);
    else rows.push(cells);
  }
  if (options.format === 'table') printTable([...columns], rows);
});

/** Seal records are bookkeeping (one per written batch): tail and query leave them out unless asked. */
function isSealLine(raw: string): boolean {
  if (!raw.includes(`"event":"${AuditEvent.Seal}"`)) return false;
  try {
    const record = JSON.parse(raw) as { kind?: unknown; event?: unknown };
    return record.kind === 'event' && record.event === AuditEvent.Seal;
  } catch {
    return false;
  }
}

function csvCell(value: string): string {
  // A leading =, +, - or @ would run as a formula in a spreadsheet.
  const safe = /^[=+\-@]/.test(value) ? `'${value}` : value;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((title, index) => Math.min(48, Math.max(title.length, ...rows.map((row) => (row[index] ?? '').length))));
  const format = (row: string[]): string => row.map((cell, index) => cell.slice(0, widths[index]).padEnd(widths[index] ?? 0)).join('  ').trimEnd();
  process.stdout.write(`${format(header)}\n`);
  for (const row of rows) process.stdout.write(`${format(row)}\n`);
}

addFilters(
  program
    .command('stats')
    .description('count records by agent, tool and decision over a time range')
    .option('--json', 'print JSON'),
).action((options: FilterOptions & { json?: boolean }, command: Command) => {
  const dir = logDir(command);
  const filter = filterFrom(options);
  const byAgent = new Map<string, number>();
  const byTool = new Map<string, number>();
  const byDecision = new Map<string, number>();
  let total = 0;
  const bump = (map: Map<string, number>, key: string): void => {
    map.set(key, (map.get(key) ?? 0) + 1);
  };
  for (const { record } of readRecords(dir)) {
    if (record.kind !== 'request' || !matches(record, filter)) continue;
    total += 1;
    bump(byAgent, record.agent_id ?? '(none)');
    bump(byTool, record.tool !== undefined ? `${record.server ?? ''}.${record.tool}` : (record.method ?? '(none)'));
    bump(byDecision, record.decision ?? '(none)');
  }
  const sorted = (map: Map<string, number>): Array<[string, number]> => [...map].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ total, byAgent: Object.fromEntries(sorted(byAgent)), byTool: Object.fromEntries(sorted(byTool)), byDecision: Object.fromEntries(sorted(byDecision)) })}\n`);
    return;
  }
  process.stdout.write(`requests: ${total}\n`);
  for (const [title, map] of [['agent', byAgent], ['tool', byTool], ['decision', byDecision]] as const) {
    process.stdout.write(`\nby ${title}:\n`);
    printTable([title, 'count'], sorted(map).map(([key, count]) => [key, String(count)]));
  }
});

addFilters(
  program
    .command('export')
    .description('write a compliance bundle (--out DIR), or convert records to OCSF or ECS (--format)')
    .option('--out <path>', 'bundle directory, or the output file for --format (default stdout)')
    .addOption(new Option('--format <format>', 'convert records instead of bundling').choices(['ocsf', 'ecs']))
    .option('--key <pubkey>', 'the public key to verify with and to ship in the bundle'),
).action((options: FilterOptions & { out?: string; format?: 'ocsf' | 'ecs'; key?: string }, command: Command) => {
  const dir = logDir(command);
  if (options.format === undefined) {
    if (options.out === undefined) throw new CliError('export needs --out DIR for a bundle, or --format ocsf|ecs for a SIEM conversion', 1);
    try {
      const manifest = exportBundle(dir, options.out, options.key);
      process.stdout.write(`bundle written to ${options.out}: ${manifest.files.length} files, ${manifest.records} records, head ${manifest.head}\n`);
    } catch (error) {
      if (error instanceof LogUnreadableError) throw new CliError(error.message, VerifyExit.Unreadable);
      throw new CliError((error as Error).message, VerifyExit.Tampered);
    }
    return;
  }
  const convert = options.format === 'ocsf' ? toOcsf : toEcs;
  const filter = filterFrom(options);
  const lines: string[] = [];
  for (const { record } of readRecords(dir)) if (matches(record, filter)) lines.push(JSON.stringify(compact(convert(record))));
  const text = lines.length > 0 ? `${lines.join('\n')}\n` : '';
  if (options.out === undefined) process.stdout.write(text);
  else writeFileSync(options.out, text);
});

function verifierFor(dir: string | undefined, key: string | undefined): NoteVerifier {
  const source = key ?? (dir === undefined ? undefined : join(dir, PUBLIC_KEY_FILE));
  if (source === undefined || (key === undefined && !existsSync(source))) throw new CliError('no public key: pass --key PUBKEY (PEM or vkey)', VerifyExit.Unreadable);
  try {
    return loadVerifier(source, dir !== undefined && existsSync(dir) ? readMetadata(dir).keyName : 'bastion-audit');
  } catch (error) {
    throw new CliError(`cannot use key ${source}: ${(error as Error).message}`, VerifyExit.Unreadable);
  }
}

program
  .command('prove')
  .description('print an RFC 6962 inclusion proof of record SEQ against a signed checkpoint')
  .argument('<seq>', 'the record sequence number')
  .option('--checkpoint <file>', 'prove against this checkpoint (default: the newest that covers SEQ)')
  .option('--key <pubkey>', "the log's public key")
  .option('--out <file>', 'write the proof here instead of stdout')
  .action((seqText: string, options: { checkpoint?: string; key?: string; out?: string }, command: Command) => {
    const dir = logDir(command);
    const seq = Number(seqText);
    if (!Number.isSafeInteger(seq) || seq < 0) throw new CliError(`SEQ must be a record number, not '${seqText}'`, 1);
    let proof: InclusionProofDocument;
    try {
      proof = proveInclusion(dir, seq, verifierFor(dir, options.key), options.checkpoint);
    } catch (error) {
      if (error instanceof CliError) throw error;
      throw new CliError((error as Error).message, VerifyExit.Tampered);
    }
    const text = `${JSON.stringify(proof, null, 2)}\n`;
    if (options.out === undefined) process.stdout.write(text);
    else writeFileSync(options.out, text);
  });

program
  .command('verify-proof')
  .description('check an inclusion proof written by prove, offline')
  .argument('<file>', 'the proof file')
  .option('--key <pubkey>', "the log's public key (default: the key in --log)")
  .action((file: string, options: { key?: string }, command: Command) => {
    let document: InclusionProofDocument;
    try {
      document = JSON.parse(readFileSync(file, 'utf8')) as InclusionProofDocument;
    } catch (error) {
      throw new CliError(`cannot read proof ${file}: ${(error as Error).message}`, VerifyExit.Unreadable);
    }
    const dir = logDirs(command)[0] as string;
    const verifier = verifierFor(options.key === undefined ? dir : undefined, options.key);
    try {
      const result = verifyInclusionProof(document, verifier);
      process.stdout.write(`valid: record ${result.seq} is included in ${result.origin} at tree size ${result.treeSize}\n`);
    } catch (error) {
      throw new CliError(`proof is NOT valid: ${(error as Error).message}`, VerifyExit.Tampered);
    }
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode;
  } else if (error instanceof CliError) {
    process.stderr.write(`mcp-auditctl: ${error.message}\n`);
    process.exitCode = error.exitCode;
  } else {
    process.stderr.write(`mcp-auditctl: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = VerifyExit.Unreadable;
  }
}
