// What a call meets when the shared store cannot answer: refused (failClosed, the default), or
// counted in this process until Redis is back (fallbackLocal; limits then hold per replica only).
import { MemoryStore } from './memory.js';
import { StoreUnavailableError, type AddEntry, type CounterValue, type LimitStore, type StoreAnswer, type StoredCounter, type TakeEntry, type TakeResult } from './types.js';

export class FallbackStore implements LimitStore {
  readonly kind = 'redis' as const;
  private readonly local = new MemoryStore();
  private degraded = false;

  constructor(
    private readonly primary: LimitStore,
    private readonly onFallback: (active: boolean, detail: string) => void,
  ) {}

  take(entries: readonly TakeEntry[]): Promise<TakeResult> {
    return this.either(async (store) => store.take(entries));
  }

  add(entries: readonly AddEntry[]): Promise<CounterValue[]> {
    return this.either(async (store) => store.add(entries));
  }

  peek(keys: readonly string[]): Promise<CounterValue[]> {
    return this.either(async (store) => store.peek(keys));
  }

  snapshot(limit: number): Promise<{ counters: StoredCounter[]; truncated: boolean }> {
    return this.either((store) => store.snapshot(limit));
  }

  async close(): Promise<void> {
    await this.local.close();
    await this.primary.close();
  }

  private async either<T>(operation: (store: LimitStore) => Promise<T> | StoreAnswer<T>): Promise<T> {
    try {
      const result = await operation(this.primary);
      if (this.degraded) {
        this.degraded = false;
        this.onFallback(false, 'the shared store answers again');
      }
      return result;
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      if (!this.degraded) {
        this.degraded = true;
        this.onFallback(true, error.message);
      }
      return operation(this.local);
    }
  }
}
