// At start: one audit record per curated server with the digest of its curation and how it
// compares with the lock's pin, and a warning when it changed since `bastion lock`.
import type { LockEntry } from '../integrity/hashlock.js';
import type { Logger } from '../observability/index.js';
import type { CuratedServerConfig } from './config.js';
import { checkCurationPin } from './pin.js';

type Recorder = (type: string, info: { [key: string]: string | null }) => void;

export function reportCuration(servers: Readonly<Record<string, CuratedServerConfig>>, lockEntryOf: (server: string) => LockEntry | undefined, record: Recorder, logger: Logger): void {
  for (const [server, config] of Object.entries(servers)) {
    const entry = lockEntryOf(server);
    const { status, digest } = checkCurationPin(config, entry?.curation);
    if (status === 'none') continue;
    record('curation.loaded', { server, status, digest: digest ?? null, pinned_digest: entry?.curation?.digest ?? null });
    if (status === 'changed') logger.warn({ server }, `the curation of server '${server}' (renames, overrides, hidden tools) differs from the hash lock's pin: a config change, applied as configured; run bastion lock --update ${server} to pin it`);
  }
}
