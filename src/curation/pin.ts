// The hash lock pins a server's curation apart from its definitions: `bastion lock` writes the
// operator's overrides as `curation` in the server's lock entry, next to (never mixed into) the
// upstream definitions. A change upstream is compared with the upstream pin and quarantined as
// before; a change of the overrides is a config change, reported at start, never a rug pull.
import { digestJson, digestsEqual, parseDigest, type DigestAlgorithm } from '../integrity/digest.js';
import type { LockedDefinition } from '../integrity/hashlock.js';
import { CURATION_FIELDS, type CuratedServerConfig, type ToolCurationConfig } from './config.js';

export type CurationPinStatus = 'none' | 'unpinned' | 'pinned' | 'changed';

function curatedFields(tools: Readonly<Record<string, ToolCurationConfig>> | undefined): Record<string, ToolCurationConfig> {
  const out: Record<string, ToolCurationConfig> = {};
  for (const [name, entry] of Object.entries(tools ?? {})) {
    const picked: Record<string, unknown> = {};
    for (const field of CURATION_FIELDS) if (entry[field] !== undefined) picked[field] = entry[field];
    if (Object.keys(picked).length > 0) out[name] = picked as ToolCurationConfig;
  }
  return out;
}

/** The server's curation as the lock pins it, or undefined when it has none. */
export function curationPin(server: CuratedServerConfig, algorithm: DigestAlgorithm): LockedDefinition | undefined {
  const tools = curatedFields(server.tools);
  const agents: Record<string, { tools: Record<string, ToolCurationConfig> }> = {};
  for (const [agent, own] of Object.entries(server.agents ?? {})) {
    const fields = curatedFields(own.tools);
    if (Object.keys(fields).length > 0) agents[agent] = { tools: fields };
  }
  if (Object.keys(tools).length === 0 && Object.keys(agents).length === 0) return undefined;
  const definition = { tools, agents };
  return { digest: digestJson(definition, algorithm), definition };
}

/** How the configured curation compares with what the lock pinned. */
export function checkCurationPin(server: CuratedServerConfig, pinned: LockedDefinition | undefined): { status: CurationPinStatus; digest?: string } {
  const algorithm = pinned === undefined ? 'sha256' : parseDigest(pinned.digest).algorithm;
  const current = curationPin(server, algorithm);
  if (current === undefined) return pinned === undefined ? { status: 'none' } : { status: 'changed' };
  if (pinned === undefined) return { status: 'unpinned', digest: current.digest };
  return { status: digestsEqual(current.digest, pinned.digest) ? 'pinned' : 'changed', digest: current.digest };
}
