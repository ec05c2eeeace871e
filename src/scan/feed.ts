import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { makeFinding } from './finding.js';
import { compareVersions } from './semver.js';
import type { Finding } from './types.js';

/** The subset of an OSV record (https://ossf.github.io/osv-schema/) the feed uses. */
export interface OsvRecord {
  id: string;
  modified?: string;
  summary?: string;
  details?: string;
  affected?: {
    package?: { ecosystem?: string; name?: string };
    versions?: string[];
    ranges?: { type?: string; events?: { introduced?: string; fixed?: string; last_affected?: string; limit?: string }[] }[];
  }[];
}

export type BlockEntry =
  | { kind: 'package'; ecosystem: 'npm'; name: string; versions?: string[]; reason: string }
  | { kind: 'publisherKey'; key: string; reason: string }
  | { kind: 'toolDigest'; digest: string; reason: string };

export interface ThreatFeed {
  version: 1;
  osv: OsvRecord[];
  blocks: BlockEntry[];
}

/** What the gateway (at boot) or a scan knows about a server, to match against the feed. */
export interface FeedSubject {
  packages?: { ecosystem?: string; name: string; version?: string }[];
  publisherKeys?: string[];
  toolDigests?: string[];
}

export class FeedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FeedError';
  }
}

export function emptyFeed(): ThreatFeed {
  return { version: 1, osv: [], blocks: [] };
}

/** Loads the local feed. A configured feed that is missing or broken is an error: the gateway fails closed. */
export function loadFeed(path: string, options: { missingOk?: boolean } = {}): ThreatFeed {
  if (!existsSync(path)) {
    if (options.missingOk) return emptyFeed();
    throw new FeedError(`${path}: threat feed not found; create it with \`bastion feed import FILE --feed ${path}\``);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new FeedError(`${path}: threat feed is not valid JSON (${(error as Error).message})`);
  }
  const feed = doc as Partial<ThreatFeed>;
  if (feed.version !== 1 || !Array.isArray(feed.osv) || !Array.isArray(feed.blocks)) throw new FeedError(`${path}: expected { "version": 1, "osv": [...], "blocks": [...] }`);
  feed.blocks.forEach((b, i) => validateBlock(b, `${path}: blocks[${i}]`));
  return feed as ThreatFeed;
}

function validateBlock(raw: unknown, where: string): BlockEntry {
  const b = raw as Partial<BlockEntry> & Record<string, unknown>;
  if (typeof b !== 'object' || b === null) throw new FeedError(`${where}: expected an object`);
  if (typeof b.reason !== 'string' || b.reason.length === 0) throw new FeedError(`${where}: every block needs a "reason"`);
  if (b.kind === 'package' && typeof b.name === 'string' && (b.ecosystem === undefined || b.ecosystem === 'npm')) return { ...(b as BlockEntry), ecosystem: 'npm' } as BlockEntry;
  if (b.kind === 'publisherKey' && typeof b.key === 'string') return b as BlockEntry;
  if (b.kind === 'toolDigest' && typeof b.digest === 'string' && /^sha256:[0-9a-f]{64}$/.test(b.digest)) return b as BlockEntry;
  throw new FeedError(`${where}: expected kind package {name, versions?}, publisherKey {key} or toolDigest {digest: "sha256:<hex>"}`);
}

function isOsv(value: unknown): value is OsvRecord {
  return typeof value === 'object' && value !== null && typeof (value as { id?: unknown }).id === 'string' && Array.isArray((value as { affected?: unknown }).affected);
}

function readImport(path: string): { osv: OsvRecord[]; blocks: BlockEntry[] } {
  if (statSync(path).isDirectory()) {
    const out = { osv: [] as OsvRecord[], blocks: [] as BlockEntry[] };
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir).sort()) {
        const full = join(dir, name);
        if (statSync(full).isDirectory()) walk(full);
        else if (name.endsWith('.json')) {
          const part = readImport(full);
          out.osv.push(...part.osv);
          out.blocks.push(...part.blocks);
        }
      }
    };
    walk(path);
    return out;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new FeedError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  if (isOsv(doc)) return { osv: [doc], blocks: [] };
  if (Array.isArray(doc)) {
    if (!doc.every(isOsv)) throw new FeedError(`${path}: an array must hold OSV records (each with "id" and "affected")`);
    return { osv: doc, blocks: [] };
  }
  const d = doc as { blocks?: unknown; osv?: unknown };
  if (Array.isArray(d.blocks) || Array.isArray(d.osv)) {
    return {
      osv: Array.isArray(d.osv) ? d.osv.filter(isOsv) : [],
      blocks: Array.isArray(d.blocks) ? d.blocks.map((b, i) => validateBlock(b, `${path}: blocks[${i}]`)) : [],
    };
  }
  throw new FeedError(`${path}: expected an OSV record, an array of them, a directory of them, or { "blocks": [...] }`);
}

/** Merges OSV records (newer `modified` wins per id) and block entries into the local feed file, atomically. */
export function importFeed(feedPath: string, inputPath: string): { osvAdded: number; blocksAdded: number; feed: ThreatFeed } {
  const feed = loadFeed(feedPath, { missingOk: true });
  const incoming = readImport(inputPath);
  const byId = new Map(feed.osv.map((r) => [r.id, r]));
  let osvAdded = 0;
  for (const record of incoming.osv) {
    const existing = byId.get(record.id);
    if (!existing) osvAdded += 1;
    if (!existing || (record.modified ?? '') >= (existing.modified ?? '')) byId.set(record.id, record);
  }
  const blockKeys = new Set(feed.blocks.map((b) => JSON.stringify(b)));
  let blocksAdded = 0;
  for (const block of incoming.blocks) {
    const key = JSON.stringify(block);
    if (blockKeys.has(key)) continue;
    blockKeys.add(key);
    feed.blocks.push(block);
    blocksAdded += 1;
  }
  const next: ThreatFeed = { version: 1, osv: [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : 1)), blocks: feed.blocks };
  mkdirSync(dirname(feedPath), { recursive: true });
  const tmp = `${feedPath}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(next, null, 2)}\n`);
  renameSync(tmp, feedPath);
  return { osvAdded, blocksAdded, feed: next };
}

function inRange(version: string, events: { introduced?: string; fixed?: string; last_affected?: string }[]): boolean {
  let affected = false;
  // OSV events are ordered; walk them keeping whether the version is inside an open interval.
  for (const event of events) {
    if (event.introduced !== undefined) {
      const c = event.introduced === '0' ? 1 : compareVersions(version, event.introduced);
      if (c === undefined) return true;
      if (c >= 0) affected = true;
    } else if (event.fixed !== undefined) {
      const c = compareVersions(version, event.fixed);
      if (c === undefined) return true;
      if (c >= 0) affected = false;
    } else if (event.last_affected !== undefined) {
      const c = compareVersions(version, event.last_affected);
      if (c === undefined) return true;
      if (c > 0) affected = false;
    }
  }
  return affected;
}

/** Unknown versions match (fail closed): a package named in a malicious-packages record is refused. */
export function osvAffects(record: OsvRecord, name: string, version: string | undefined): boolean {
  for (const a of record.affected ?? []) {
    if (a.package?.name !== name || (a.package.ecosystem ?? '').toLowerCase() !== 'npm') continue;
    const hasVersions = Array.isArray(a.versions) && a.versions.length > 0;
    const ranges = (a.ranges ?? []).filter((r) => r.type === 'SEMVER' || r.type === 'ECOSYSTEM');
    if (version === undefined || (!hasVersions && ranges.length === 0)) return true;
    if (hasVersions && a.versions?.includes(version)) return true;
    if (ranges.some((r) => inRange(version, r.events ?? []))) return true;
  }
  return false;
}

const FEED_REMEDIATION = 'Do not run this server. If the match is wrong, remove or correct the entry in the local feed (a reviewed change).';

/** Every match is a critical finding; the gateway refuses a server with any. */
export function matchThreatFeed(feed: ThreatFeed, subject: FeedSubject): Finding[] {
  const findings: Finding[] = [];
  for (const pkg of subject.packages ?? []) {
    if (pkg.ecosystem !== undefined && pkg.ecosystem !== 'npm') continue;
    const label = `${pkg.name}${pkg.version ? `@${pkg.version}` : ''}`;
    for (const record of feed.osv) {
      if (!osvAffects(record, pkg.name, pkg.version)) continue;
      findings.push(makeFinding({ ruleId: 'BST-F001', analyzer: 'feed', title: 'Package is in the threat feed (OSV)', severity: 'critical', confidence: 0.95, location: { subject: `package:${label}` }, evidence: `${record.id}: ${record.summary ?? record.details?.slice(0, 120) ?? 'malicious package'}`, why: `The imported threat feed lists ${label} as affected by ${record.id}.`, remediation: FEED_REMEDIATION, discriminator: record.id }));
    }
    for (const block of feed.blocks) {
      if (block.kind !== 'package' || block.name !== pkg.name) continue;
      if (block.versions && block.versions.length > 0 && pkg.version !== undefined && !block.versions.includes(pkg.version)) continue;
      findings.push(makeFinding({ ruleId: 'BST-F002', analyzer: 'feed', title: 'Package is blocked locally', severity: 'critical', confidence: 1, location: { subject: `package:${label}` }, evidence: `block: ${block.reason}`, why: `A local block entry names ${pkg.name}.`, remediation: FEED_REMEDIATION, discriminator: block.reason }));
    }
  }
  for (const key of subject.publisherKeys ?? []) {
    for (const block of feed.blocks) {
      if (block.kind === 'publisherKey' && block.key === key) findings.push(makeFinding({ ruleId: 'BST-F003', analyzer: 'feed', title: 'Publisher key is blocked', severity: 'critical', confidence: 1, location: { subject: `publisher:${key}` }, evidence: `block: ${block.reason}`, why: 'A local block entry names the key that signed this server.', remediation: FEED_REMEDIATION }));
    }
  }
  for (const digest of subject.toolDigests ?? []) {
    for (const block of feed.blocks) {
      if (block.kind === 'toolDigest' && block.digest === digest) findings.push(makeFinding({ ruleId: 'BST-F004', analyzer: 'feed', title: 'Tool definition is blocked', severity: 'critical', confidence: 1, location: { subject: `tool-digest:${digest}` }, evidence: `block: ${block.reason}`, why: 'A local block entry names this exact tool definition (by digest).', remediation: FEED_REMEDIATION }));
    }
  }
  return findings;
}
