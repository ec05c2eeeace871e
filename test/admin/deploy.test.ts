import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { GatewayMetrics } from '../../src/admin/index.js';

const DEPLOY = join(process.cwd(), 'deploy');
const alertsFile = join(DEPLOY, 'prometheus', 'bastion-alerts.yml');

/** Every series name the gateway exports, with the suffixes Prometheus gives histograms. */
async function exportedNames(): Promise<Set<string>> {
  const metrics = new GatewayMetrics({ agentLabel: true, sources: { sessions: () => [], audit: () => ({ records: 0, batches: 0, syncMillis: 0, largestBatch: 0, dropped: 0 }) } });
  const names = new Set<string>(['up']);
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_count', '_sum']) names.add(`${metric.name}${suffix}`);
  }
  return names;
}

/** Names in a PromQL expression that look like metric names (not functions, labels or keywords). */
function referencedMetrics(expr: string): string[] {
  const withoutStrings = expr.replace(/"[^"]*"/g, '""').replace(/\{[^}]*\}/g, '{}').replace(/\[[^\]]*\]/g, '[]').replace(/\((?:instance|le|server|tool|decision|denied_by|reason|breaker|target|transport|agent|event|[a-z_, ]+)\)/g, '()');
  return [...withoutStrings.matchAll(/\b(bastion_[a-z0-9_]+|up)\b/g)].map((match) => match[1] ?? '');
}

test('the alert rules pass promtool and use only metrics the gateway exports', async () => {
  const check = spawnSync('promtool', ['check', 'rules', alertsFile], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  const names = await exportedNames();
  const rules = (parse(readFileSync(alertsFile, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] }).groups.flatMap((group) => group.rules);
  assert.ok(rules.length >= 5);
  for (const rule of rules) for (const name of referencedMetrics(rule.expr)) assert.ok(names.has(name), `${rule.alert} uses ${name}, which the gateway does not export`);
});

test('the Grafana dashboard queries only metrics the gateway exports', async () => {
  const names = await exportedNames();
  const dashboard = JSON.parse(readFileSync(join(DEPLOY, 'grafana', 'bastion-dashboard.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
  const exprs = dashboard.panels.flatMap((panel) => panel.targets.map((target) => ({ panel: panel.title, expr: target.expr })));
  assert.ok(exprs.length >= 10);
  for (const { panel, expr } of exprs) {
    const used = referencedMetrics(expr);
    assert.ok(used.length > 0, `${panel}: no metric in ${expr}`);
    for (const name of used) assert.ok(names.has(name), `${panel} uses ${name}, which the gateway does not export`);
  }
});
