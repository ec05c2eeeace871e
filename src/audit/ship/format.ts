import { compact, toEcs, toOcsf } from '../siem.js';
import type { ShipFormat } from './config.js';
import type { ShipItem } from './source.js';

/**
 * The payload of one shipped item, a single line of JSON. Records in `bastion` format are the
 * stored lines, byte for byte, so a receiver can check hashes, chain and seals; `ocsf` and `ecs`
 * are the mappings of `mcp-auditctl export`. Checkpoints are the same in every format.
 */
export function payloadOf(item: ShipItem, format: ShipFormat): string {
  if (item.kind === 'checkpoint') return JSON.stringify({ checkpoint: { index: item.index, size: item.size, note: item.note } });
  if (format === 'bastion') return item.line;
  return JSON.stringify(compact(format === 'ocsf' ? toOcsf(item.record) : toEcs(item.record)));
}
