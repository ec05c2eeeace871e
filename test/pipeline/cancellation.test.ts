import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallCancellation, type CancelSignal } from '../../src/pipeline/index.js';

test('a call cancellation runs each listener once, on the first abort, with the reason kept', () => {
  const cancellation = new CallCancellation();
  const calls: string[] = [];
  const first = (): void => void calls.push('first');
  const second = (): void => void calls.push('second');
  cancellation.addEventListener('abort', first, { once: true });
  cancellation.addEventListener('abort', first); // the same listener twice is one listener, as on an EventTarget
  cancellation.addEventListener('abort', second);
  assert.equal(cancellation.aborted, false);
  assert.equal(cancellation.reason, undefined);
  const reason = new Error('client cancelled');
  cancellation.abort(reason);
  cancellation.abort(new Error('later'));
  assert.deepEqual(calls, ['first', 'second']);
  assert.equal(cancellation.aborted, true);
  assert.equal(cancellation.reason, reason);
});

test('a removed listener is not called, and one added after the abort is not called either', () => {
  const cancellation = new CallCancellation();
  let removedCalled = false;
  let lateCalled = false;
  const removed = (): void => {
    removedCalled = true;
  };
  cancellation.addEventListener('abort', removed);
  cancellation.removeEventListener('abort', removed);
  cancellation.abort();
  cancellation.addEventListener('abort', () => {
    lateCalled = true;
  });
  assert.equal(removedCalled, false);
  assert.equal(lateCalled, false);
  assert.ok(cancellation.reason instanceof DOMException);
  assert.equal((cancellation.reason as DOMException).name, 'AbortError');
});

test('a listener removed by another during the abort is skipped, as on an AbortSignal', () => {
  const cancellation = new CallCancellation();
  const calls: number[] = [];
  const third = (): void => void calls.push(3);
  cancellation.addEventListener('abort', () => {
    calls.push(1);
    cancellation.removeEventListener('abort', third);
  });
  cancellation.addEventListener('abort', () => void calls.push(2));
  cancellation.addEventListener('abort', third);
  cancellation.abort();
  assert.deepEqual(calls, [1, 2]);
});

test('a standard AbortSignal fits wherever a CancelSignal is expected', () => {
  const controller = new AbortController();
  const signal: CancelSignal = controller.signal;
  let called = 0;
  signal.addEventListener('abort', () => void (called += 1), { once: true });
  controller.abort('why');
  assert.equal(called, 1);
  assert.equal(signal.reason, 'why');
});
