// The pure parts of transparent egress: reading the original destination out of conntrack, the
// relay's requests to the broker, the synthetic addresses of granted names, the refusal rate limit.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { findOriginalDestination, transparentEgressRuleset, RELAY_TRANSPARENT_PORT } from '../../src/sandbox/netns.js';
import { parseRelayRequest } from '../../src/sandbox/broker.js';
import { RefusalLimiter, scopeThatWouldAllow, SyntheticAddresses } from '../../src/sandbox/egress-names.js';

const CONNTRACK = [
  'ipv4     2 udp      17 29 src=127.0.0.1 dst=127.0.0.53 sport=46322 dport=53 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=5353 dport=46322 mark=0 zone=0 use=2',
  `ipv4     2 tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=169.254.169.254 sport=52706 dport=80 src=127.0.0.1 dst=127.0.0.1 sport=${RELAY_TRANSPARENT_PORT} dport=52706 [ASSURED] mark=0 zone=0 use=2`,
  `ipv6     10 tcp      6 120 FIN_WAIT src=0000:0000:0000:0000:0000:0000:0000:0001 dst=2001:0db8:0000:0000:0000:0000:0000:0001 sport=52076 dport=443 src=0000:0000:0000:0000:0000:0000:0000:0001 dst=0000:0000:0000:0000:0000:0000:0000:0001 sport=${RELAY_TRANSPARENT_PORT} dport=52076 [ASSURED] mark=0 zone=0 use=2`,
  'ipv4     2 tcp      6 100 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=40000 dport=3128 src=127.0.0.1 dst=127.0.0.1 sport=3128 dport=40000 [ASSURED] mark=0 zone=0 use=2',
].join('\n');

describe('transparent egress (pure parts)', () => {
  test('the original destination of a redirected connection comes from conntrack, by the client port', () => {
    assert.deepEqual(findOriginalDestination(CONNTRACK, 52706), { host: '169.254.169.254', port: 80 });
    assert.deepEqual(findOriginalDestination(CONNTRACK, 52076), { host: '2001:db8::1', port: 443 });
    // Not redirected to the catch-all port (a proxy connection), or unknown: nothing.
    assert.equal(findOriginalDestination(CONNTRACK, 40000), undefined);
    assert.equal(findOriginalDestination(CONNTRACK, 46322), undefined);
    assert.equal(findOriginalDestination('garbage\n\n', 1), undefined);
  });

  test('the ruleset redirects all TCP but the relay ports, and DNS to the stub', () => {
    const rules = transparentEgressRuleset();
    assert.match(rules, /type nat hook output/);
    assert.match(rules, /meta l4proto tcp redirect to :3129/);
    assert.match(rules, /udp dport 53 redirect to :5353/);
    assert.match(rules, /ip daddr 127\.0\.0\.1 tcp dport \{ 3128, 3129 \} accept/);
  });

  test('relay requests: ORIGIN port and RESOLVE name, nothing else', () => {
    assert.deepEqual(parseRelayRequest('ORIGIN 52706 HTTP/1.1'), { kind: 'origin', clientPort: 52706 });
    assert.deepEqual(parseRelayRequest('RESOLVE Api.Example.COM. HTTP/1.1'), { kind: 'resolve', name: 'api.example.com' });
    for (const bad of ['ORIGIN x HTTP/1.1', 'RESOLVE a b HTTP/1.1', 'RESOLVE a/b HTTP/1.1', 'GET / HTTP/1.1', 'ORIGIN 1 HTTP/1.1 extra']) assert.equal(parseRelayRequest(bad), undefined, bad);
  });

  test('each granted name gets its own loopback address, stable, and maps back', () => {
    const names = new SyntheticAddresses();
    const a = names.addressOf('a.example');
    const b = names.addressOf('b.example');
    assert.match(a ?? '', /^127\.100\.\d+\.\d+$/);
    assert.notEqual(a, b);
    assert.equal(names.addressOf('a.example'), a);
    assert.equal(names.nameOf(a as string), 'a.example');
    assert.equal(names.nameOf('127.0.0.1'), undefined);
  });

  test('the scope that would allow a refused destination', () => {
    assert.equal(scopeThatWouldAllow('127.0.0.1', 8080), 'write:network:127.0.0.1:8080');
    assert.equal(scopeThatWouldAllow('2001:db8::1', 443), 'write:network:[2001:db8::1]:443');
    assert.equal(scopeThatWouldAllow('evil.example', 0), 'write:network:evil.example:PORT');
  });

  test('refusals: once per destination per window, with the suppressed count carried by the next report, and a cap per window', () => {
    let now = 0;
    const limiter = new RefusalLimiter(1000, 3, () => now);
    assert.equal(limiter.admit('x:1'), 0);
    assert.equal(limiter.admit('x:1'), undefined);
    assert.equal(limiter.admit('x:1'), undefined);
    assert.equal(limiter.admit('y:1'), 0);
    assert.equal(limiter.admit('z:1'), 0);
    assert.equal(limiter.admit('w:1'), undefined, 'over the per-window cap');
    now = 1000;
    assert.equal(limiter.admit('x:1'), 2);
    assert.equal(limiter.admit('w:1'), 1);
  });
});
