// Makes a filesystem decision hold while the call runs, against every other call through this
// gateway. A call that reads paths holds them shared, one that writes holds them exclusively,
// from its final policy check until its answer is back. Two paths overlap when one contains the
// other: renaming a directory changes what every path below it resolves to. So an agent cannot
// move a directory with an escaping symlink onto a path that another call has just had checked.
//
// A call takes all its paths at once or waits for all of them (no hold-and-wait, so no
// deadlock), and waiters are served first come, first served (a stream of readers cannot
// starve a writer). What this does not cover, by construction: changes made by anything that
// does not pass through this gateway process (other processes, other replicas, a server's own
// undeclared writes).
import type { CancelSignal } from '../pipeline/index.js';
import type { FilesystemTouch } from './evaluator.js';
import { pathCovers } from './path.js';

interface Claim {
  readonly touched: readonly FilesystemTouch[];
}

interface Waiter extends Claim {
  grant(): void;
}

function overlaps(a: string, b: string): boolean {
  return pathCovers(a, b) || pathCovers(b, a);
}

function conflict(a: Claim, b: Claim): boolean {
  for (const left of a.touched) {
    for (const right of b.touched) if ((left.write || right.write) && overlaps(left.path, right.path)) return true;
  }
  return false;
}

export class PathLocks {
  private readonly held = new Set<Claim>();
  private readonly waiting: Waiter[] = [];

  /** Calls waiting for a path another call holds. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /**
   * Resolves with a release function once no conflicting call holds (or waits before this one
   * for) an overlapping path. Rejects if the call is cancelled while it waits.
   */
  acquire(touched: readonly FilesystemTouch[], signal?: CancelSignal, onWait?: () => void): Promise<() => void> {
    const claim: Claim = { touched };
    if (this.waiting.length === 0 && ![...this.held].some((other) => conflict(claim, other))) return Promise.resolve(this.hold(claim));
    if (signal?.aborted === true) return Promise.reject(new Error('cancelled before the paths were free'));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.waiting.indexOf(waiter);
        if (index === -1) return;
        this.waiting.splice(index, 1);
        this.wake();
        reject(new Error('cancelled while waiting for a path another call holds'));
      };
      const waiter: Waiter = {
        touched,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.hold(waiter));
        },
      };
      this.waiting.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      onWait?.();
    });
  }

  private hold(claim: Claim): () => void {
    this.held.add(claim);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held.delete(claim);
      this.wake();
    };
  }

  /** Grants, in arrival order, every waiter that conflicts with nothing held and no earlier waiter. */
  private wake(): void {
    const earlier: Claim[] = [];
    for (let index = 0; index < this.waiting.length; ) {
      const waiter = this.waiting[index] as Waiter;
      const blocked = [...this.held].some((other) => conflict(waiter, other)) || earlier.some((other) => conflict(waiter, other));
      if (blocked) {
        earlier.push(waiter);
        index += 1;
        continue;
      }
      this.waiting.splice(index, 1);
      waiter.grant();
    }
  }
}
