// Where the audit log runs while the gateway works (audit.writer: adaptive). A record built and
// synced on the writer thread costs the main thread two thread wake-ups a call but almost no CPU;
// on the main thread it costs no wake-up but blocks every other call for the synced write. So the
// log runs on the main thread only while calls come one at a time, and goes back to the writer
// thread as soon as they overlap.

/** Consecutive one-at-a-time calls before the log moves to the main thread. */
export const TO_MAIN_AFTER = 64;
/** Overlapping calls, among the last RECENT, that send the log back to the writer thread. */
export const TO_THREAD_AT = 2;
const RECENT = 8;

export class Placement {
  private aloneStreak = 0;
  /** Bit i set: the i-th latest call overlapped another one. */
  private recent = 0;

  /**
   * One finished call; `alone` when no other call was in flight at its commit. Returns whether the
   * log should be on the main thread, given where it is.
   */
  observe(alone: boolean, onMain: boolean): boolean {
    this.aloneStreak = alone ? this.aloneStreak + 1 : 0;
    this.recent = ((this.recent << 1) | (alone ? 0 : 1)) & ((1 << RECENT) - 1);
    if (onMain) return overlaps(this.recent) < TO_THREAD_AT;
    return this.aloneStreak >= TO_MAIN_AFTER;
  }
}

function overlaps(bits: number): number {
  let count = 0;
  for (let rest = bits; rest !== 0; rest &= rest - 1) count += 1;
  return count;
}
