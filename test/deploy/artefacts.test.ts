// The deploy artefacts a user copies: the Kubernetes example parses and its pieces refer to each
// other, the configs in it and in the image load through Bastion's own validator, the systemd unit
// passes systemd-analyze verify and keeps what bubblewrap needs, and the Containerfile copies only
// files that exist and that the build context sends.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { loadConfigText } from '../../src/config/index.js';
import { loadPolicyFiles } from '../../src/policy/index.js';
import { removeTree } from '../helpers/tmp.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** Loads a policy text through Bastion's policy loader; fails the test with its problems. */
function assertPolicyLoads(text: string, what: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-policy-'));
  try {
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, text);
    const result = loadPolicyFiles([file]);
    assert.ok(result.ok, `${what}: ${result.ok ? '' : JSON.stringify(result.problems)}`);
  } finally {
    removeTree(dir);
  }
}

type Obj = Record<string, unknown>;
const obj = (value: unknown, what: string): Obj => {
  assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), `${what} is an object`);
  return value as Obj;
};
const list = (value: unknown, what: string): unknown[] => {
  assert.ok(Array.isArray(value), `${what} is a list`);
  return value;
};

describe('deploy/kubernetes/bastion.yaml', () => {
  const docs = parseAllDocuments(read('deploy/kubernetes/bastion.yaml'));
  const objects = docs.map((doc, index) => {
    assert.deepEqual(doc.errors.map((error) => error.message), [], `document ${index} parses`);
    return obj(doc.toJS(), `document ${index}`);
  });
  const byKind = (kind: string): Obj => {
    const found = objects.filter((o) => o['kind'] === kind);
    assert.equal(found.length, 1, `exactly one ${kind}`);
    return found[0] as Obj;
  };
  const name = (o: Obj): string => obj(o['metadata'], 'metadata')['name'] as string;

  test('has a ConfigMap, Secret, PersistentVolumeClaim, Deployment and Service, each with apiVersion and a name', () => {
    assert.deepEqual(objects.map((o) => o['kind']).sort(), ['ConfigMap', 'Deployment', 'PersistentVolumeClaim', 'Secret', 'Service']);
    for (const o of objects) {
      assert.equal(typeof o['apiVersion'], 'string');
      assert.match(name(o), /^[a-z0-9-]+$/);
    }
    assert.equal(byKind('Deployment')['apiVersion'], 'apps/v1');
  });

  const deployment = byKind('Deployment');
  const spec = obj(deployment['spec'], 'Deployment spec');
  const pod = obj(obj(spec['template'], 'template')['spec'], 'pod spec');
  const containers = list(pod['containers'], 'containers').map((c, i) => obj(c, `container ${i}`));
  const container = containers[0] as Obj;

  test('one replica, recreated (one writer per audit log), non-root, no privilege escalation, read-only root, no capabilities', () => {
    assert.equal(spec['replicas'], 1);
    assert.equal(obj(spec['strategy'], 'strategy')['type'], 'Recreate');
    const podSecurity = obj(pod['securityContext'], 'pod securityContext');
    assert.equal(podSecurity['runAsNonRoot'], true);
    assert.equal(podSecurity['runAsUser'], 10001, 'the image user');
    assert.equal(podSecurity['fsGroup'], 10001);
    assert.equal(pod['automountServiceAccountToken'], false);
    const security = obj(container['securityContext'], 'container securityContext');
    assert.equal(security['allowPrivilegeEscalation'], false);
    assert.equal(security['readOnlyRootFilesystem'], true);
    assert.equal(security['privileged'], false);
    assert.deepEqual(obj(security['capabilities'], 'capabilities')['drop'], ['ALL']);
    // What bubblewrap needs inside a container (the image test runs the same with podman).
    assert.equal(obj(podSecurity['seccompProfile'], 'seccompProfile')['type'], 'Unconfined');
    assert.equal(security['procMount'], 'Unmasked');
  });

  test('probes, resources and the selector agree with the container port and the Service', () => {
    const ports = list(container['ports'], 'ports').map((p) => obj(p, 'port'));
    assert.deepEqual(ports.map((p) => [p['name'], p['containerPort']]), [['mcp', 8080]]);
    const config = byKind('ConfigMap');
    const gatewayConfig = String(obj(config['data'], 'data')['bastion.yaml']);
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      const get = obj(obj(container[probe], probe)['httpGet'], `${probe}.httpGet`);
      assert.equal(get['path'], '/healthz');
      assert.equal(get['port'], 'mcp');
      const host = list(get['httpHeaders'], 'httpHeaders').map((h) => obj(h, 'header')).find((h) => h['name'] === 'Host');
      assert.ok(host !== undefined, `${probe} sends a Host header`);
      assert.ok(gatewayConfig.includes(String(host['value'])), `${probe}'s Host ${String(host['value'])} is in listeners.http.allowedHosts`);
    }
    const resources = obj(container['resources'], 'resources');
    for (const side of ['requests', 'limits']) {
      const values = obj(resources[side], side);
      assert.ok(values['cpu'] !== undefined && values['memory'] !== undefined, `${side} has cpu and memory`);
    }
    const labels = obj(obj(obj(spec['template'], 'template')['metadata'], 'template metadata')['labels'], 'labels');
    assert.deepEqual(obj(spec['selector'], 'selector')['matchLabels'], labels);
    const service = obj(byKind('Service')['spec'], 'Service spec');
    assert.deepEqual(service['selector'], labels);
    const servicePorts = list(service['ports'], 'Service ports').map((p) => obj(p, 'Service port'));
    assert.deepEqual(servicePorts.map((p) => p['targetPort']), ['mcp']);
  });

  test('the volumes name the ConfigMap, Secret and claim defined here, and the mounts cover the config, state and servers paths', () => {
    const volumes = new Map(list(pod['volumes'], 'volumes').map((v) => obj(v, 'volume')).map((v) => [String(v['name']), v]));
    assert.equal(obj(volumes.get('config')?.['configMap'], 'configMap volume')['name'], name(byKind('ConfigMap')));
    assert.equal(obj(volumes.get('secrets')?.['secret'], 'secret volume')['secretName'], name(byKind('Secret')));
    assert.equal(obj(volumes.get('state')?.['persistentVolumeClaim'], 'claim volume')['claimName'], name(byKind('PersistentVolumeClaim')));
    const mounts = new Map(list(container['volumeMounts'], 'volumeMounts').map((m) => obj(m, 'mount')).map((m) => [String(m['mountPath']), m]));
    for (const mount of mounts.values()) assert.ok(volumes.has(String(mount['name'])), `mount ${String(mount['mountPath'])} names a volume`);
    assert.equal(mounts.get('/etc/bastion')?.['readOnly'], true);
    for (const path of ['/var/lib/bastion', '/srv/bastion/workspace', '/srv/bastion/memory', '/tmp', '/run/secrets/bastion']) assert.ok(mounts.has(path), `${path} is mounted (the root filesystem is read-only)`);
    const secretKeys = Object.keys(obj(byKind('Secret')['stringData'], 'stringData'));
    const gatewayConfig = String(obj(byKind('ConfigMap')['data'], 'data')['bastion.yaml']);
    for (const key of secretKeys) assert.ok(gatewayConfig.includes(`/run/secrets/bastion/${key}`), `bastion.yaml reads the Secret's ${key}`);
  });

  test("the ConfigMap's bastion.yaml and policy.yaml pass Bastion's own validation", () => {
    const data = obj(byKind('ConfigMap')['data'], 'data');
    const loaded = loadConfigText(String(data['bastion.yaml']), 'configmap/bastion.yaml', '/etc/bastion');
    assert.equal(loaded.config.stateDir, '/var/lib/bastion');
    assert.equal(loaded.config.listeners.http?.host, '0.0.0.0');
    assert.equal(loaded.config.listeners.http?.port, 8080);
    assert.deepEqual(Object.keys(loaded.config.servers).sort(), ['everything', 'filesystem', 'memory']);
    assert.equal(loaded.config.auth.apiTokens.length, 1);
    assertPolicyLoads(String(data['policy.yaml']), 'configmap/policy.yaml');
  });
});

describe('deploy/container', () => {
  test("the image's bastion.yaml and policy.yaml pass Bastion's own validation; the config has no credentials until the user adds one", () => {
    const loaded = loadConfigText(read('deploy/container/bastion.yaml'), 'bastion.yaml', '/etc/bastion');
    assert.equal(loaded.config.listeners.http?.host, '0.0.0.0');
    assert.deepEqual(loaded.config.auth.apiTokens, []);
    for (const server of Object.values(loaded.config.servers)) {
      const args = (server as { args?: string[] }).args ?? [];
      assert.ok(args[0]?.startsWith('/opt/bastion/node_modules/@modelcontextprotocol/'), 'servers run from the image');
    }
    assertPolicyLoads(read('deploy/container/policy.yaml'), 'deploy/container/policy.yaml');
  });

  test('the Containerfile: base images as build arguments, two stages, a numeric non-root USER, COPY sources that exist and that .dockerignore sends', () => {
    const text = read('Containerfile');
    assert.match(text, /^ARG BUILD_IMAGE=docker\.io\/library\/node:20-bookworm-slim$/m);
    assert.match(text, /^ARG RUNTIME_IMAGE=docker\.io\/library\/node:20-bookworm-slim$/m);
    assert.deepEqual([...text.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]), ['${BUILD_IMAGE}', '${RUNTIME_IMAGE}']);
    const user = [...text.matchAll(/^USER (\S+)/gm)].map((m) => m[1]);
    assert.deepEqual(user, ['10001:10001']);
    assert.match(text, /^ENTRYPOINT \["\/usr\/bin\/tini", "--"/m);
    const ignore = read('.dockerignore').split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
    assert.equal(ignore[0], '*', '.dockerignore sends only what it lists');
    const sent = ignore.filter((line) => line.startsWith('!')).map((line) => line.slice(1).replace(/\/$/, ''));
    for (const match of text.matchAll(/^COPY (?!--from)(.+)$/gm)) {
      const parts = (match[1] as string).trim().split(/\s+/);
      for (const source of parts.slice(0, -1)) {
        assert.ok(existsSync(join(ROOT, source)), `COPY source ${source} exists`);
        assert.ok(sent.some((path) => source === path || source.startsWith(`${path}/`)), `COPY source ${source} is in the build context (.dockerignore)`);
      }
    }
  });
});

describe('deploy/systemd/bastion.service', () => {
  const unit = read('deploy/systemd/bastion.service');
  const directives = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (match !== null) directives.set(match[1] as string, [...(directives.get(match[1] as string) ?? []), match[2] as string]);
  }
  const one = (key: string): string | undefined => directives.get(key)?.at(-1);

  test('a dedicated user, the config in /etc/bastion, state in /var/lib/bastion, a graceful stop and SIGHUP reload', () => {
    assert.equal(one('User'), 'bastion');
    assert.match(one('ExecStart') ?? '', / serve --config \/etc\/bastion\/bastion\.yaml$/);
    assert.equal(one('StateDirectory'), 'bastion');
    assert.equal(one('KillMode'), 'mixed');
    assert.equal(one('KillSignal'), 'SIGTERM');
    assert.ok(Number(one('TimeoutStopSec')) >= 10);
    assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
  });

  test('hardening leaves bubblewrap its namespaces and a mountable /proc', () => {
    assert.deepEqual((one('RestrictNamespaces') ?? '').split(/\s+/).sort(), ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'user', 'uts']);
    assert.ok((one('RestrictAddressFamilies') ?? '').includes('AF_NETLINK'), 'bwrap configures the sandbox loopback over netlink');
    for (const breaking of ['ProtectKernelTunables', 'ProtectKernelLogs', 'ProcSubset', 'ProtectProc', 'ProtectControlGroups', 'MemoryDenyWriteExecute', 'SystemCallFilter', 'PrivateUsers', 'DynamicUser']) {
      assert.equal(directives.has(breaking), false, `${breaking} is left out (the unit says why)`);
      assert.ok(unit.includes(breaking), `the unit explains leaving out ${breaking}`);
    }
    assert.equal(one('NoNewPrivileges'), 'yes');
    assert.equal(one('CapabilityBoundingSet'), '');
    assert.equal(one('ProtectSystem'), 'strict');
  });

  const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  test('systemd-analyze verify accepts it without a warning', { skip: analyze.status === 0 ? false : 'systemd-analyze is not installed' }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'bastion-unit-'));
    try {
      const file = join(dir, 'bastion.service');
      copyFileSync(join(ROOT, 'deploy/systemd/bastion.service'), file);
      const result = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', env: { ...process.env, SYSTEMD_LOG_COLOR: '0' } });
      const warnings = `${result.stdout}${result.stderr}`.split('\n').filter((line) => line.includes('bastion.service'));
      assert.deepEqual(warnings, [], 'no warning about the unit');
      assert.equal(result.status, 0, result.stderr);
    } finally {
      removeTree(dir);
    }
  });
});
