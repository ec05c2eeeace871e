import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { covers, parseScope, type Scope } from '../../src/policy/index.js';

function scope(text: string, mode: 'grant' | 'declared' | 'concrete' = 'grant'): Scope {
  const result = parseScope(text, mode);
  if (!result.ok) throw new Error(result.error);
  return result.value;
}

function refused(text: string, mode: 'grant' | 'declared' | 'concrete' = 'grant'): string {
  const result = parseScope(text, mode);
  assert.equal(result.ok, false, `expected '${text}' to be refused`);
  return result.ok ? '' : result.error;
}

describe('scope grammar', () => {
  test('an unknown resource kind is a parse error (so it can never be granted or met)', () => {
    assert.match(refused('read:database:users'), /unknown resource kind 'database'/);
    assert.match(refused('read:Filesystem:/tmp'), /unknown resource kind/);
  });

  test('an action that does not apply to the resource is a parse error', () => {
    assert.match(refused('exec:filesystem:/tmp'), /use read or write/);
    assert.match(refused('write:tools:[a]'), /use exec/);
  });

  test('malformed scopes are refused', () => {
    refused('read:filesystem');
    refused('read:filesystem:');
    refused('read:filesystem:relative/path');
    refused('write:network:host:99999');
    refused('write:network:host:0');
    refused('exec:tools:[a, , b]');
    refused('exec:tools:[a, b');
    refused('read:resources:not a uri');
    refused('read:resources:memo://x/../y');
    refused('read:resources:https://x/%2e%2e/y');
  });

  test('grants may not bind arguments', () => {
    assert.match(refused('read:filesystem:${path}'), /only tool declarations/);
  });

  test('concrete values cannot be wildcards or lists', () => {
    refused('read:filesystem:*', 'concrete');
    refused('write:network:*.example.com:443', 'concrete');
    refused('write:network:example.com:[80, 443]', 'concrete');
    refused('write:network:example.com', 'concrete');
    refused('exec:tools:[a, b]', 'concrete');
    refused('exec:tools:*', 'concrete');
  });

  test('the examples from the issue parse', () => {
    for (const text of ['read:filesystem:/tmp/logs', 'write:filesystem:/srv/out', 'write:network:443', 'write:network:api.example.com:443', 'exec:tools:[dns_lookup, ipscan]', 'read:resources:file:///docs/*', 'exec:prompts:[summarize]']) {
      assert.equal(scope(text).text, text);
    }
  });
});

describe('what covers means', () => {
  test('filesystem: subtree containment after canonicalization, never a shared string prefix', () => {
    assert.ok(covers(scope('read:filesystem:/tmp/x'), scope('read:filesystem:/tmp/x', 'concrete')));
    assert.ok(covers(scope('read:filesystem:/tmp/x'), scope('read:filesystem:/tmp/x/a/b', 'concrete')));
    assert.ok(!covers(scope('read:filesystem:/tmp/x'), scope('read:filesystem:/tmp/xy', 'concrete')));
    assert.ok(!covers(scope('read:filesystem:/tmp/x'), scope('read:filesystem:/tmp/x/../y', 'concrete')));
    assert.ok(covers(scope('read:filesystem:/tmp/x/'), scope('read:filesystem:/tmp//x/./a', 'concrete')));
  });

  test('actions are independent: write does not imply read', () => {
    assert.ok(!covers(scope('write:filesystem:/tmp/x'), scope('read:filesystem:/tmp/x/a', 'concrete')));
    assert.ok(!covers(scope('read:filesystem:/tmp/x'), scope('write:filesystem:/tmp/x/a', 'concrete')));
  });

  test('network: host patterns and port sets', () => {
    const concrete = (target: string) => scope(`write:network:${target}`, 'concrete');
    assert.ok(covers(scope('write:network:443'), concrete('anything.example:443')));
    assert.ok(!covers(scope('write:network:443'), concrete('anything.example:80')));
    assert.ok(covers(scope('write:network:api.example.com:443'), concrete('API.Example.com.:443')));
    assert.ok(!covers(scope('write:network:api.example.com:443'), concrete('api.example.com.evil.net:443')));
    assert.ok(covers(scope('write:network:*.example.com:443'), concrete('a.b.example.com:443')));
    assert.ok(!covers(scope('write:network:*.example.com:443'), concrete('example.com:443')));
    assert.ok(!covers(scope('write:network:*.example.com:443'), concrete('evilexample.com:443')));
    assert.ok(covers(scope('write:network:10.0.0.1:[80, 8000-8100]'), concrete('10.0.0.1:8080')));
    assert.ok(!covers(scope('write:network:10.0.0.1:[80, 8000-8100]'), concrete('10.0.0.1:8101')));
    assert.ok(covers(scope('write:network:127.0.0.1:80'), concrete('127.1:80')), 'numeric host spellings are normalized');
    assert.ok(covers(scope('write:network:[::1]:443'), concrete('[0:0::1]:443')));
    assert.ok(covers(scope('write:network:api.example.com:443'), concrete('https://api.example.com/v1?q=1')), 'a bound URL means its host and default port');
    assert.ok(!covers(scope('write:network:api.example.com:443'), concrete('http://api.example.com/')));
    assert.ok(!covers(scope('write:network:api.example.com:443'), concrete('https://api.example.com@evil.net/')));
  });

  test('names: lists, server.tool, server.* and *', () => {
    const concrete = (name: string) => scope(`exec:tools:${name}`, 'concrete');
    assert.ok(covers(scope('exec:tools:[dns_lookup, ipscan]'), concrete('net.ipscan')));
    assert.ok(!covers(scope('exec:tools:[net.dns_lookup]'), concrete('other.dns_lookup')));
    assert.ok(covers(scope('exec:tools:net.*'), concrete('net.anything')));
    assert.ok(!covers(scope('exec:tools:net.*'), concrete('network.anything')));
    assert.ok(covers(scope('exec:tools:*'), concrete('x.y')));
    assert.ok(!covers(scope('exec:tools:[a, b]'), scope('exec:tools:[a, c]', 'declared')));
  });

  test('resources: exact URIs and prefixes ending in *; file: URIs canonicalized', () => {
    const concrete = (uri: string) => scope(`read:resources:${uri}`, 'concrete');
    assert.ok(covers(scope('read:resources:file:///docs/*'), concrete('file:///docs/a.md')));
    assert.ok(!covers(scope('read:resources:file:///docs/*'), concrete('file:///docs/../etc/passwd')));
    assert.ok(!covers(scope('read:resources:file:///docs/*'), concrete('file:///docsecret')));
    assert.ok(!covers(scope('read:resources:file:///docs/*'), concrete('file:///docs/%2e%2e/etc/passwd')));
    assert.ok(covers(scope('read:resources:memo://notes/1'), concrete('memo://notes/1')));
    assert.ok(!covers(scope('read:resources:memo://notes/1'), concrete('memo://notes/10')));
  });
});

describe('containment (properties)', () => {
  const label = fc.constantFrom('a', 'b', 'example', 'com', 'net');
  const host = fc.array(label, { minLength: 1, maxLength: 4 }).map((labels) => labels.join('.'));
  const hostPattern = fc.oneof(fc.constant('*'), host, host.map((h) => `*.${h}`));
  const ports = fc.oneof(fc.constant('*'), fc.integer({ min: 1, max: 20 }).map(String), fc.tuple(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 10 })).map(([lo, span]) => `${lo}-${lo + span}`), fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 3 }).map((list) => `[${list.join(', ')}]`));
  const network = fc.tuple(hostPattern, ports).map(([h, p]) => scope(`write:network:${h}:${p}`, 'declared'));
  const names = fc.oneof(fc.constant('*'), fc.array(fc.constantFrom('a', 'b', 's.a', 's.b', 's.*', 't.a'), { minLength: 1, maxLength: 3 }).map((list) => `[${list.join(', ')}]`)).map((target) => scope(`exec:tools:${target}`, 'declared'));
  const paths = fc.oneof(fc.constant('*'), fc.array(fc.constantFrom('a', 'b', 'ab'), { maxLength: 3 }).map((parts) => `/${parts.join('/')}`)).map((target) => scope(`read:filesystem:${target}`, 'declared'));

  for (const [kind, arbitrary] of [['network', network], ['names', names], ['paths', paths]] as const) {
    test(`${kind}: covers is reflexive and transitive`, () => {
      fc.assert(
        fc.property(arbitrary, arbitrary, arbitrary, (a, b, c) => {
          assert.ok(covers(a, a));
          if (covers(a, b) && covers(b, c)) assert.ok(covers(a, c), `${a.text} ⊇ ${b.text} ⊇ ${c.text}`);
        }),
        { numRuns: 3000 },
      );
    });
  }

  test('network: a concrete destination is covered exactly when its host and port both match', () => {
    fc.assert(
      fc.property(hostPattern, fc.integer({ min: 1, max: 20 }), host, fc.integer({ min: 1, max: 20 }), (pattern, grantPort, requestHost, requestPort) => {
        const grant = scope(`write:network:${pattern}:${grantPort}`);
        const request = scope(`write:network:${requestHost}:${requestPort}`, 'concrete');
        const hostMatches = pattern === '*' || pattern === requestHost || (pattern.startsWith('*.') && requestHost.endsWith(pattern.slice(1)));
        assert.equal(covers(grant, request), hostMatches && grantPort === requestPort);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('host spellings', () => {
  test('numeric and hex IPv4 spellings are normalized before matching, so they cannot dodge a host rule', () => {
    const grant = scope('write:network:127.0.0.1:80');
    for (const spelling of ['127.1', '0x7f.0.0.1', '2130706433', '127.0.0.1.', '0x7f000001']) {
      assert.ok(covers(grant, scope(`write:network:${spelling}:80`, 'concrete')), spelling);
    }
    assert.ok(!covers(scope('write:network:api.example.com:80'), scope('write:network:127.0.0.1:80', 'concrete')));
  });

  test('host names compare case-insensitively and without a trailing dot', () => {
    assert.ok(covers(scope('write:network:Api.Example.COM:443'), scope('write:network:api.example.com.:443', 'concrete')));
  });
});
