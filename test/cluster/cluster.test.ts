// What replicas share through Redis, with a real redis-server and two cluster connections standing
// for two replicas: sealed requestStates (forgery, tampering, another key), single use across
// replicas, breakers opened on one replica opened on the other, and quarantines seen and decided
// everywhere, failing closed while Redis is away.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ClusterConnection, SharedQuarantineStore } from '../../src/cluster/index.js';
import { breakerSharing } from '../../src/cluster/breakers.js';
import { redisSpentLedger } from '../../src/cluster/request-states.js';
import { MemorySpentLedger, requestDigest, StateSealer, type SealedState } from '../../src/gateway/stateless/sealed-state.js';
import { Breakers, type Transition } from '../../src/limits/breaker.js';
import type { BreakerRule } from '../../src/limits/index.js';
import { QuarantineDecisionError } from '../../src/integrity/index.js';
import { startRedis, type RunningRedis } from '../limits/redis-helpers.js';

const state = (extra: Partial<SealedState> = {}): SealedState => ({
  replica: 'a', handle: 'h1', agentId: 'alice', deadline: Date.now() + 60_000, method: 'tools/call', name: 'input.ask',
  digest: requestDigest({ name: 'input.ask', arguments: { topic: 'x' } }), asked: [['7', 'sampling/createMessage']], answered: [], ...extra,
});

async function until(what: string, probe: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    if (probe()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('sealed requestStates', () => {
  const key = randomBytes(32);

  test('a replica with the shared key opens what another sealed; a bit flipped, another key or a made-up token opens nothing', () => {
    const sealed = new StateSealer(key).seal(state());
    assert.deepEqual(new StateSealer(key).open(sealed), state({ deadline: (new StateSealer(key).open(sealed) as SealedState).deadline }));
    const raw = Buffer.from(sealed.slice(4), 'base64url');
    raw[20] = (raw[20] as number) ^ 1;
    assert.equal(new StateSealer(key).open(`bs1.${raw.toString('base64url')}`), undefined, 'a tampered state is refused');
    assert.equal(new StateSealer(randomBytes(32)).open(sealed), undefined, 'another key opens nothing');
    assert.equal(new StateSealer(key).open('bs1.AAAA'), undefined);
    assert.equal(new StateSealer(key).open(42), undefined);
    assert.equal(new StateSealer(key).open(`bs1.${'A'.repeat(2_000_000)}`), undefined, 'an oversized token is refused before decryption');
    assert.throws(() => new StateSealer(randomBytes(16)), /32 bytes/);
  });

  test('the digest binds the arguments, not their key order or _meta', () => {
    assert.equal(requestDigest({ name: 't', arguments: { a: 1, b: 2 } }), requestDigest({ arguments: { b: 2, a: 1 }, name: 't', _meta: { progressToken: 9 } }));
    assert.notEqual(requestDigest({ name: 't', arguments: { a: 1 } }), requestDigest({ name: 't', arguments: { a: 2 } }));
  });

  test('the in-memory ledger spends a token once', async () => {
    const ledger = new MemorySpentLedger();
    assert.equal(await ledger.spend('t', 60_000), true);
    assert.equal(await ledger.spend('t', 60_000), false);
    assert.equal(await ledger.spend('u', 60_000), true);
  });
});

describe('cluster state in a real Redis, two replicas', () => {
  let redis: RunningRedis;
  let a: ClusterConnection;
  let b: ClusterConnection;
  const errors: unknown[] = [];
  const onError = (error: unknown): void => void errors.push(error);

  before(async () => {
    redis = await startRedis();
    const prefix = `test:${randomBytes(4).toString('hex')}:`;
    a = new ClusterConnection({ url: redis.url, replicaId: 'a', keyPrefix: prefix, commandTimeoutMs: 500 });
    b = new ClusterConnection({ url: redis.url, replicaId: 'b', keyPrefix: prefix, commandTimeoutMs: 500 });
    assert.equal(await a.ready(5000), true);
    assert.equal(await b.ready(5000), true);
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await redis?.kill();
  });

  test('a requestState spent on one replica cannot be spent on the other; the holder hears that its call was taken over', async () => {
    const onA = redisSpentLedger(a, onError);
    const onB = redisSpentLedger(b, onError);
    const taken: string[] = [];
    onA.onTakenOver((handle) => taken.push(handle));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(await onB.spend('token-1', 60_000), true);
    assert.equal(await onA.spend('token-1', 60_000), false, 'a replay on the other replica is refused');
    assert.equal(await onB.spend('token-1', 60_000), false, 'and on the same one');
    onB.takenOver('a', 'handle-9');
    onB.takenOver('c', 'handle-other');
    await until('a to hear of the takeover', () => taken.length > 0);
    assert.deepEqual(taken, ['handle-9']);
  });

  test('a breaker opened on one replica opens on the other for the time left; the other does not echo it back', async () => {
    const rule: BreakerRule = { name: 'flaky', scope: 'tool', consecutiveFailures: 2, openMs: 60_000, halfOpenProbes: 1, sampleMs: 100 };
    const seenA: Transition[] = [];
    const seenB: Transition[] = [];
    const onA = new Breakers([rule], (transition) => seenA.push(transition), Date.now, breakerSharing(a, onError));
    const onB = new Breakers([rule], (transition) => seenB.push(transition), Date.now, breakerSharing(b, onError));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const breaker = onA.applicable({ agent: 'alice', server: 'up', tool: 'flaky' })[0]!;
    breaker.record({ failed: true, timedOut: false, durationMs: 1 }, false);
    breaker.record({ failed: true, timedOut: false, durationMs: 1 }, false);
    assert.equal(onA.state('flaky', 'up.flaky'), 'open');
    await until('b to open its breaker', () => onB.state('flaky', 'up.flaky') === 'open');
    assert.deepEqual(seenB.map((transition) => [transition.to, transition.cause, transition.detail]), [['open', 'replica', 'opened by replica a']]);
    const admission = onB.applicable({ agent: 'bob', server: 'up', tool: 'flaky' })[0]!.admit();
    assert.equal(admission.ok, false);
    assert.ok(!admission.ok && admission.retryAfterMs > 50_000 && admission.retryAfterMs <= 60_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(seenA.length, 1, 'a did not reopen from its own announcement');
    const late = new Breakers([rule], () => undefined, Date.now, breakerSharing(b, onError));
    await until('a replica starting later to see the open breaker', () => late.state('flaky', 'up.flaky') === 'open');
  });

  test('a quarantine held on one replica is listed on the other; a decision there reaches the first; with Redis down approvals read as held and decisions are refused', async () => {
    const storeA = new SharedQuarantineStore(a, onError);
    const storeB = new SharedQuarantineStore(b, onError);
    assert.equal(await storeA.ready(5000), true);
    assert.equal(await storeB.ready(5000), true);
    const held = storeA.hold({ server: 'rug', kind: 'tools', name: 'get_weather', cause: 'changed', newDigest: 'sha256:abc', newDefinition: { name: 'get_weather' }, diff: [], findings: [] });
    await storeA.flush();
    await until('b to see the hold', () => storeB.get(held.id)?.status === 'held');
    const versionBefore = storeA.version();
    storeB.decide(held.id, 'approved');
    await storeB.flush();
    await until('a to see the approval', () => storeA.find('rug', 'tools', 'get_weather', 'sha256:abc')?.status === 'approved');
    assert.notEqual(storeA.version(), versionBefore, 'cached verdicts are invalidated');
    await redis.kill();
    await until('a to notice that Redis is gone', () => !a.up);
    assert.equal(storeA.get(held.id)?.status, 'held', 'fail closed: an approval cannot be confirmed current');
    assert.throws(() => storeA.decide(held.id, 'rejected'), (error: unknown) => error instanceof QuarantineDecisionError && /Redis does not answer/.test(error.message));
    await redis.restart();
    await until('a to reconnect', () => a.up && b.up);
    await until('the approval to read as approved again', () => storeA.get(held.id)?.status === 'approved');
  });
});
