/**
 * What a call's cancellation offers the guards and the upstream connection: the part of
 * AbortSignal they use, so a standard AbortSignal fits wherever a CancelSignal is expected.
 */
export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * The cancellation of one client request, with AbortSignal's semantics (listeners run once, in
 * order, on the first abort; one removed during the abort or added after it is not called). Every request makes one, and an
 * AbortController with its EventTarget costs several microseconds per request where this costs
 * an object and an array.
 */
export class CallCancellation implements CancelSignal {
  private abortReason: unknown;
  private isAborted = false;
  private listeners: Array<() => void> = [];

  get aborted(): boolean {
    return this.isAborted;
  }

  get reason(): unknown {
    return this.abortReason;
  }

  abort(reason: unknown = new DOMException('This operation was aborted', 'AbortError')): void {
    if (this.isAborted) return;
    this.isAborted = true;
    this.abortReason = reason;
    // As on an EventTarget, a listener removed by an earlier one during this dispatch is skipped.
    for (const listener of this.listeners.slice()) {
      const index = this.listeners.indexOf(listener);
      if (index < 0) continue;
      this.listeners.splice(index, 1);
      listener();
    }
    this.listeners = [];
  }

  /** Every listener runs at most once (the abort happens once), so `once` changes nothing. */
  addEventListener(_type: 'abort', listener: () => void, _options?: { once?: boolean }): void {
    if (!this.isAborted && !this.listeners.includes(listener)) this.listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const index = this.listeners.indexOf(listener);
    if (index >= 0) this.listeners.splice(index, 1);
  }
}
