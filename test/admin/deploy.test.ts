import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { GatewayMetrics } from '../../src/admin/index.js';
import { removeTree } from '../helpers/tmp.js';

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

/** The sink gauges as a gateway with one OTLP sink exposes them: name and label set, from the real exposition. */
async function sinkSeries(): Promise<Map<string, string>> {
  const sink = { sink: 'siem', type: 'otlp', shipped: 1, checkpointsShipped: 1, failures: 1, resent: 1, lagRecords: 1, lagSeconds: 1, lostToRetention: 1, newChains: 1, rejected: 1 };
  const metrics = new GatewayMetrics({ agentLabel: false, sources: { sessions: () => [], audit: () => ({ records: 0, batches: 0, syncMillis: 0, largestBatch: 0, dropped: 0 }), shipping: () => [sink] } });
  const series = new Map<string, string>();
  for (const match of (await metrics.registry.metrics()).matchAll(/^(bastion_audit_ship\w*|bastion_audit_shipped_\w+)\{([^}]*)\} /gm)) series.set(match[1] ?? '', match[2] ?? '');
  return series;
}

test('the audit shipping alerts fire on a lagging, failing, stalled, lossy, rejecting or restarted sink, and stay quiet on a healthy one (promtool test rules, over the real series)', async () => {
  const series = await sinkSeries();
  const input = (name: string, sinkName: string, values: string): { series: string; values: string } => {
    const labels = series.get(name);
    assert.ok(labels !== undefined, `the gateway exports ${name} with sink labels`);
    return { series: `${name}{${labels.replace('sink="siem"', `sink="${sinkName}"`)},instance="gw:9090",job="bastion"}`, values };
  };
  const healthy = [input('bastion_audit_ship_lag_seconds', 'ok', '0x60'), input('bastion_audit_ship_lag_records', 'ok', '0x60'), input('bastion_audit_ship_failures', 'ok', '0x60'), input('bastion_audit_shipped_records', 'ok', '0+50x60'), input('bastion_audit_ship_lost_to_retention', 'ok', '0x60'), input('bastion_audit_ship_rejected_records', 'ok', '0x60'), input('bastion_audit_ship_new_chains', 'ok', '0x60')];
  const firing = (alertname: string, severity: string): { exp_labels: Record<string, string> } => ({ exp_labels: { alertname, severity, instance: 'gw:9090', sink: 'siem' } });
  const expectAt = (evalTime: string, alertname: string, severity: string, fires = true): object => ({ eval_time: evalTime, alertname, exp_alerts: fires ? [firing(alertname, severity)] : [] });
  const tests = [
    { interval: '1m', input_series: [...healthy, input('bastion_audit_ship_lag_seconds', 'siem', '0+60x30')], alert_rule_test: [expectAt('4m', 'BastionAuditShippingLag', 'warning', false), expectAt('15m', 'BastionAuditShippingLag', 'warning')] },
    { interval: '1m', input_series: [...healthy, input('bastion_audit_ship_failures', 'siem', '0+1x40'), input('bastion_audit_ship_lag_records', 'siem', '5x40')], alert_rule_test: [expectAt('25m', 'BastionAuditShippingFailing', 'warning')] },
    { interval: '1m', input_series: [...healthy, input('bastion_audit_ship_lag_records', 'siem', '5x90'), input('bastion_audit_shipped_records', 'siem', '0+10x30 300x60')], alert_rule_test: [expectAt('45m', 'BastionAuditShippingStalled', 'critical', false), expectAt('80m', 'BastionAuditShippingStalled', 'critical')] },
    { interval: '1m', input_series: [...healthy, input('bastion_audit_ship_lost_to_retention', 'siem', '0 0 7x10')], alert_rule_test: [expectAt('1m', 'BastionAuditShippingLost', 'critical', false), expectAt('5m', 'BastionAuditShippingLost', 'critical')] },
    { interval: '1m', input_series: [...healthy, input('bastion_audit_ship_rejected_records', 'siem', '0 0 2 2 2x10')], alert_rule_test: [expectAt('5m', 'BastionAuditRecordsRejected', 'warning'), expectAt('30m', 'BastionAuditRecordsRejected', 'warning', false)] },
    { interval: '1m', input_series: [...healthy, input('bastion_audit_ship_new_chains', 'siem', '0 1x10')], alert_rule_test: [expectAt('5m', 'BastionAuditNewChain', 'critical')] },
  ];
  const dir = mkdtempSync(join(tmpdir(), 'bastion-alerts-'));
  try {
    // The rules as shipped, less their annotations (promtool would compare the rendered texts; `check rules` above validates their templates).
    const rules = parse(readFileSync(alertsFile, 'utf8')) as { groups: { rules: { annotations?: unknown }[] }[] };
    for (const group of rules.groups) for (const rule of group.rules) delete rule.annotations;
    const rulesFile = join(dir, 'bastion-alerts.yml');
    writeFileSync(rulesFile, stringify(rules));
    const unitFile = join(dir, 'shipping-alerts.test.yml');
    writeFileSync(unitFile, stringify({ rule_files: [rulesFile], evaluation_interval: '1m', tests }));
    const run = spawnSync('promtool', ['test', 'rules', unitFile], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stdout + run.stderr);
  } finally {
    removeTree(dir);
  }
});
