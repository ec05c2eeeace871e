import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The fields tests look at in an audit record (docs/audit.md has them all). */
export interface LoggedRecord {
  kind: string;
  event?: string;
  method?: string;
  tool?: string;
  server?: string;
  decision?: string;
  reason?: string;
  denied_by?: string;
  error_code?: number;
  request_id?: string | number;
  agent_id?: string;
  token_fingerprint?: string;
  transport?: string;
  info?: Record<string, unknown>;
}

/** Every record of an audit log directory, segment by segment, in order. */
export function auditRecords(dir: string): LoggedRecord[] {
  const segments = join(dir, 'segments');
  return readdirSync(segments)
    .filter((file) => file.endsWith('.jsonl'))
    .sort()
    .flatMap((file) => readFileSync(join(segments, file), 'utf8').split('\n').filter((line) => line !== ''))
    .map((line) => JSON.parse(line) as LoggedRecord);
}
