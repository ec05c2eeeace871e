import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256Hex } from './canonical.js';
import { CHECKPOINTS_DIR, MANIFEST_FILE, METADATA_FILE, PUBLIC_KEY_FILE, SEGMENTS_DIR, listCheckpoints, listSegments, readMetadata } from './layout.js';
import { verifyLog, type BundleManifest, type ManifestEntry } from './verify.js';

/**
 * Writes a compliance bundle: the segments, checkpoints, public key and metadata in the log layout
 * (so `verify` reads a bundle like a log), plus manifest.json with each file's SHA-256.
 * Refuses to export a log that does not verify, so a bundle is evidence of a clean log.
 */
export function exportBundle(dir: string, out: string, key?: string): BundleManifest {
  const report = verifyLog(dir, key === undefined ? {} : { key });
  if (report.status !== 'clean') throw new Error(`the log does not verify (${report.problem?.message ?? 'unknown problem'}); a bundle would certify a damaged log. Investigate with mcp-auditctl verify`);
  if (existsSync(out) && readdirSync(out).length > 0) throw new Error(`${out} exists and is not empty: choose a new directory for the bundle`);
  mkdirSync(join(out, SEGMENTS_DIR), { recursive: true });
  mkdirSync(join(out, CHECKPOINTS_DIR), { recursive: true });
  const files: ManifestEntry[] = [];
  const copy = (relativePath: string): void => {
    copyFileSync(join(dir, relativePath), join(out, relativePath));
    const data = readFileSync(join(out, relativePath));
    files.push({ path: relativePath, sha256: sha256Hex(data), bytes: data.length });
  };
  copy(METADATA_FILE);
  if (key === undefined) copy(PUBLIC_KEY_FILE);
  else {
    writeFileSync(join(out, PUBLIC_KEY_FILE), readFileSync(key));
    const data = readFileSync(join(out, PUBLIC_KEY_FILE));
    files.push({ path: PUBLIC_KEY_FILE, sha256: sha256Hex(data), bytes: data.length });
  }
  for (const segment of listSegments(dir)) copy(join(SEGMENTS_DIR, segment.name));
  for (const checkpoint of listCheckpoints(dir)) copy(join(CHECKPOINTS_DIR, checkpoint.name));
  const metadata = readMetadata(dir);
  const manifest: BundleManifest = { schema: 'bastion.audit-bundle/1', logId: metadata.logId, origin: metadata.origin, created: new Date().toISOString(), records: report.scan.nextSeq, head: report.scan.head, files };
  writeFileSync(join(out, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
