import { closeSync, openSync, readSync, fstatSync } from 'node:fs';
import { listSegments, type SegmentFile } from './layout.js';
import type { AuditRecord } from './schema.js';

/** Reading records for tail, query, stats and export. Reading does not verify: `verify` does. */

export interface RecordFilter {
  since?: Date;
  until?: Date;
  agent?: string;
  tool?: string;
  server?: string;
  decision?: string;
  task?: string;
  event?: string;
  kind?: 'request' | 'event';
}

export function matches(record: AuditRecord, filter: RecordFilter): boolean {
  if (filter.since !== undefined || filter.until !== undefined) {
    const at = Date.parse(record.ts);
    if (filter.since !== undefined && at < filter.since.getTime()) return false;
    if (filter.until !== undefined && at > filter.until.getTime()) return false;
  }
  if (filter.agent !== undefined && record.agent_id !== filter.agent) return false;
  if (filter.tool !== undefined && record.tool !== filter.tool && !(record.tools_invoked ?? []).includes(filter.tool)) return false;
  if (filter.server !== undefined && record.server !== filter.server) return false;
  if (filter.decision !== undefined && record.decision !== filter.decision) return false;
  if (filter.task !== undefined && record.task_id !== filter.task) return false;
  if (filter.event !== undefined && record.event !== filter.event) return false;
  if (filter.kind !== undefined && record.kind !== filter.kind) return false;
  return true;
}

export interface RecordLocation {
  segment: SegmentFile;
  line: number;
}

/** Every complete record, in order. A line that is not JSON is reported through onBadLine. */
export function* readRecords(dir: string, onBadLine?: (where: RecordLocation, text: string) => void): Generator<{ record: AuditRecord; where: RecordLocation; raw: string }> {
  for (const segment of listSegments(dir)) {
    let lineNumber = 0;
    for (const raw of readLines(segment.path)) {
      lineNumber += 1;
      let record: AuditRecord;
      try {
        record = JSON.parse(raw) as AuditRecord;
      } catch {
        onBadLine?.({ segment, line: lineNumber }, raw);
        continue;
      }
      yield { record, where: { segment, line: lineNumber }, raw };
    }
  }
}

/** Complete lines of a file, read in chunks; a trailing partial line is left for a later read. */
export function* readLines(path: string, from = 0, state?: { offset: number }): Generator<string> {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    let position = from;
    let carry = Buffer.alloc(0);
    const chunk = Buffer.alloc(1 << 20);
    while (position < size) {
      const read = readSync(fd, chunk, 0, Math.min(chunk.length, size - position), position);
      if (read === 0) break;
      position += read;
      let data = Buffer.concat([carry, chunk.subarray(0, read)]);
      let start = 0;
      let end = data.indexOf(0x0a, start);
      while (end >= 0) {
        yield data.toString('utf8', start, end);
        start = end + 1;
        end = data.indexOf(0x0a, start);
      }
      carry = Buffer.from(data.subarray(start));
      data = carry;
    }
    if (state) state.offset = position - carry.length;
  } finally {
    closeSync(fd);
  }
}
