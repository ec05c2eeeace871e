// The structural diff a config reload is planned from (src/config/diff.ts): which servers came,
// went, changed or were only curated, and which other sections changed, live or not.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diffConfig, loadConfigText, type BastionConfig } from '../../src/config/index.js';

const TOKEN = 'a'.repeat(64);

function config(servers: string, extra = ''): BastionConfig {
  const text = `version: 1
stateDir: state
listeners: { http: { host: 127.0.0.1, port: 0 } }
auth: { apiTokens: [{ agent: alice, sha256: ${TOKEN} }] }
policy: { enforce: false }
${extra}
servers:
${servers}`;
  return loadConfigText(text, 'bastion.yaml', '/tmp').config;
}

const ONE = '  one: { transport: stdio, command: /bin/true, args: [a] }\n';
const TWO = '  two: { transport: http, url: "http://127.0.0.1:9/mcp" }\n';

describe('config diff', () => {
  it('the same config read twice is empty, whatever the key order', () => {
    const diff = diffConfig(config(ONE + TWO), config(TWO + '  one: { args: [a], command: /bin/true, transport: stdio }\n'));
    assert.equal(diff.empty, true);
    assert.deepEqual(diff.sections, []);
  });

  it('servers added and removed', () => {
    const diff = diffConfig(config(ONE), config(TWO));
    assert.deepEqual(diff.servers.added, ['two']);
    assert.deepEqual(diff.servers.removed, ['one']);
    assert.deepEqual(diff.servers.changed, []);
    assert.equal(diff.empty, false);
  });

  it('any field of a server other than curation is a change, with the fields named', () => {
    const diff = diffConfig(config(ONE + TWO), config('  one: { transport: stdio, command: /bin/true, args: [b], env: { X: y } }\n' + TWO));
    assert.deepEqual(diff.servers.changed, ['one']);
    assert.deepEqual(diff.servers.fields['one'], ['args', 'env']);
    assert.deepEqual(diff.servers.curated, []);
  });

  it('a tool scope or limit is a change (the sandbox and the policy read it), not curation', () => {
    const diff = diffConfig(config(ONE), config('  one: { transport: stdio, command: /bin/true, args: [a], tools: { t: { scopes: ["read:filesystem:/tmp"] } } }\n'));
    assert.deepEqual(diff.servers.changed, ['one']);
  });

  it('renames, titles, descriptions, hidden tools and per-agent entries are curation only', () => {
    const curated = '  one:\n    transport: stdio\n    command: /bin/true\n    args: [a]\n    tools: { t: { rename: u, description: new text, hidden: false } }\n    agents: { alice: { tools: { t: { hidden: true } } } }\n';
    const diff = diffConfig(config(ONE), config(curated));
    assert.deepEqual(diff.servers.curated, ['one']);
    assert.deepEqual(diff.servers.changed, []);
    assert.deepEqual(diff.servers.fields['one'], ['agents', 'tools']);
  });

  it('curation next to a scope change is a change', () => {
    const before = config('  one: { transport: stdio, command: /bin/true, args: [a], tools: { t: { rename: u } } }\n');
    const after = config('  one: { transport: stdio, command: /bin/true, args: [a], tools: { t: { rename: v, scopes: ["read:filesystem:/tmp"] } } }\n');
    assert.deepEqual(diffConfig(before, after).servers.changed, ['one']);
  });

  it('live sections and restart_required sections are told apart; auth and quotas by their parts', () => {
    const before = config(ONE);
    const after = config(ONE, `limits: { timeoutMs: 5000 }
upstream: { startTimeoutMs: 1234 }
quotas: { rates: [{ name: r, points: 5, durationMs: 1000, scope: agent }], store: { kind: memory } }
reload: { drainSeconds: 5 }`);
    // auth is written once in config(); its tokens are replaced on the parsed object.
    after.auth.apiTokens = [{ agent: 'bob', sha256: 'b'.repeat(64) }];
    const diff = diffConfig(before, after);
    assert.deepEqual(diff.sections.sort(), ['auth.apiTokens', 'limits', 'quotas.rates', 'reload', 'upstream']);
    assert.deepEqual(diff.live.sort(), ['auth.apiTokens', 'limits', 'quotas.rates', 'reload']);
    assert.deepEqual(diff.restartRequired, ['upstream']);
  });

  it('the quota store and the listeners wait for a restart', () => {
    const diff = diffConfig(config(ONE), config(ONE, 'quotas: { store: { kind: redis, url: "redis://127.0.0.1:6379" } }'));
    assert.deepEqual(diff.restartRequired, ['quotas.store']);
    const port = config(ONE);
    const other = config(ONE);
    if (other.listeners.http !== undefined) other.listeners.http.port = 9999;
    assert.deepEqual(diffConfig(port, other).restartRequired, ['listeners']);
  });

  it('neither config is changed by the comparison', () => {
    const before = config(ONE);
    const after = config(TWO, 'limits: { timeoutMs: 5000 }');
    const [beforeText, afterText] = [JSON.stringify(before), JSON.stringify(after)];
    diffConfig(before, after);
    assert.equal(JSON.stringify(before), beforeText);
    assert.equal(JSON.stringify(after), afterText);
  });
});
