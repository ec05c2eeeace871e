// Quarantines shared by replicas. Redis holds the records (one hash, id -> record JSON) and a
// channel names each record that changed; every replica keeps a mirror, because the gateway
// consults the store synchronously on the list path. Ids are derived from the change itself
// (server, kind, name, new digest), so two replicas that see the same change hold one record.
//
// Fail closed while Redis is away: an approval cannot be confirmed current (another replica may
// have rejected it since), so approved records read as held until Redis answers again; decisions
// are refused; holds stay local and are written when Redis is back. On every reconnect the
// mirror is replaced by what Redis holds.
import { MemoryQuarantineStore, type QuarantineInput, type QuarantineRecord } from '../integrity/quarantine.js';
import { QuarantineDecisionError } from '../integrity/quarantine-decision.js';
import type { ClusterConnection } from './connection.js';

const HASH = 'quarantine';
const CHANNEL = 'quarantine';

function parseRecord(text: string | null): QuarantineRecord | undefined {
  if (text === null) return undefined;
  const value = JSON.parse(text) as Partial<QuarantineRecord>;
  if (typeof value.id !== 'string' || typeof value.server !== 'string' || typeof value.name !== 'string' || typeof value.newDigest !== 'string') return undefined;
  if (value.status !== 'held' && value.status !== 'approved' && value.status !== 'rejected') return undefined;
  return value as QuarantineRecord;
}

export class SharedQuarantineStore extends MemoryQuarantineStore {
  /** Writes not yet acknowledged by Redis (a CLI waits for them before it exits). */
  private readonly writes = new Set<Promise<void>>();
  private failed: Error | undefined;

  constructor(
    private readonly cluster: ClusterConnection,
    private readonly onError: (error: unknown) => void,
  ) {
    super();
    void cluster.subscribe(CHANNEL, (id) => void this.refresh(id).catch(onError)).catch(onError);
    cluster.onState((state) => {
      this.changed();
      if (state === 'up') this.reload().catch(onError);
    });
    if (cluster.up) this.reload().catch(onError);
  }

  /** Resolves once the mirror holds what Redis holds; false when Redis did not answer in time. */
  async ready(timeoutMs: number): Promise<boolean> {
    if (!(await this.cluster.ready(timeoutMs))) return false;
    await this.reload();
    return true;
  }

  /** Waits for every write so far; throws when one did not reach Redis. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.writes]);
    const failed = this.failed;
    this.failed = undefined;
    if (failed !== undefined) throw failed;
  }

  override hold(input: QuarantineInput): QuarantineRecord {
    const before = this.records.size;
    const record = super.hold(input);
    if (this.records.size !== before) this.write(async () => {
      const created = await this.cluster.redis.hsetnx(this.cluster.key(HASH), record.id, JSON.stringify(record));
      // Another replica held the same change first: its record (and any decision on it) wins.
      if (created === 0) await this.refresh(record.id);
      else await this.cluster.publish(CHANNEL, record.id);
    });
    return this.asSeen(record)!;
  }

  override find(...args: Parameters<MemoryQuarantineStore['find']>): QuarantineRecord | undefined {
    return this.asSeen(super.find(...args));
  }

  override get(id: string): QuarantineRecord | undefined {
    return this.asSeen(super.get(id));
  }

  override list(): QuarantineRecord[] {
    return super.list().map((record) => this.asSeen(record)!);
  }

  override decide(id: string, status: 'approved' | 'rejected'): QuarantineRecord {
    if (!this.cluster.up) throw new QuarantineDecisionError(`cannot decide ${id}: the cluster's Redis does not answer, and a decision must reach every replica; retry when it is back`, 'not-allowed');
    const previous = super.get(id);
    const decided = super.decide(id, status);
    this.write(async () => {
      try {
        await this.cluster.redis.hset(this.cluster.key(HASH), id, JSON.stringify(decided));
        await this.cluster.publish(CHANNEL, id);
      } catch (error) {
        // Not shared, so not made: the record goes back to what every replica has.
        if (previous !== undefined) this.put(previous);
        this.changed();
        throw error;
      }
    });
    return decided;
  }

  override version(): string {
    return `${super.version()}:${this.cluster.up ? 'up' : 'down'}`;
  }

  /** While Redis is away an approval reads as held (fail closed). */
  private asSeen(record: QuarantineRecord | undefined): QuarantineRecord | undefined {
    if (record === undefined || record.status !== 'approved' || this.cluster.up) return record;
    return { ...record, status: 'held' };
  }

  private write(operation: () => Promise<void>): void {
    const pending = operation().catch((error: unknown) => {
      this.failed = error instanceof Error ? error : new Error(String(error));
      this.onError(error);
    });
    this.writes.add(pending);
    void pending.finally(() => this.writes.delete(pending));
  }

  private async refresh(id: string): Promise<void> {
    const record = parseRecord(await this.cluster.redis.hget(this.cluster.key(HASH), id));
    if (record === undefined) return;
    this.put(record);
    this.changed();
  }

  /** Replaces the mirror with Redis's records; holds made while Redis was away are written first. */
  private async reload(): Promise<void> {
    const key = this.cluster.key(HASH);
    for (const record of this.records.values()) await this.cluster.redis.hsetnx(key, record.id, JSON.stringify(record));
    const all = await this.cluster.redis.hgetall(key);
    this.records = new Map();
    this.byName = new Map();
    for (const text of Object.values(all)) {
      const record = parseRecord(text);
      if (record !== undefined) this.put(record);
    }
    this.changed();
  }
}
