// Integrity costs on the gateway's paths, each against a baseline measured in the same run:
//   - every tools/list answer: checkLiveDefinitions over 100 tools vs JSON.stringify of the list
//     (the least the gateway does with a list anyway);
//   - boot: verifying one signed manifest (Ed25519, RSA-4096) vs SHA-256 of its canonical JSON;
//   - before start: the tree digest of a real package directory vs reading its files.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { hashlockInspector } from '../src/app/integrity.js';
import { createRuntimeInspection, DefinitionScanner, definitionInspectionDefaults } from '../src/inspection/index.js';
import { silentLogger } from '../src/observability/index.js';
import { loadRules } from '../src/scan/index.js';
import {
  buildLockEntry, checkLiveDefinitions, createHashlockInspector, trustConfigDefaults, digestJson, generateKeyPair, signDocument, treeDigest, verifyDocument, type Definition, type Manifest,
} from '../src/integrity/index.js';

const require = createRequire(import.meta.url);

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** Median microseconds per operation over several rounds of `iterations`. */
async function measure(iterations: number, operation: () => unknown, rounds = 7): Promise<number> {
  for (let warm = 0; warm < Math.min(iterations, 50); warm++) await operation();
  const samples: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const start = process.hrtime.bigint();
    for (let index = 0; index < iterations; index++) await operation();
    samples.push(Number(process.hrtime.bigint() - start) / 1000 / iterations);
  }
  return median(samples);
}

const rows: [string, number, number][] = [];

const tools: Definition[] = Array.from({ length: 100 }, (_, index) => ({
  name: `tool_${index}`,
  description: `Tool number ${index}: does a careful, well-described thing with its arguments and returns text.`.repeat(3),
  inputSchema: { type: 'object', properties: { path: { type: 'string', description: 'a path' }, depth: { type: 'integer', minimum: 0 } }, required: ['path'] },
  annotations: { readOnlyHint: index % 2 === 0 },
}));
const manifest: Manifest = { name: 'io.example/bench', version: '1.0.0', tools: tools.map((tool) => ({ ...(tool as unknown as Manifest['tools'][number]), scopes: ['read:filesystem:${path}'] })) };
const entry = buildLockEntry({ live: { tools, prompts: [], resourceTemplates: [] } });
const list = await measure(200, () => JSON.stringify(tools));
const check = await measure(200, () => checkLiveDefinitions(entry, manifest, tools));
rows.push(['tools/list check, 100 tools (vs JSON.stringify)', list, check]);

const [ed, rsa] = await Promise.all([generateKeyPair('ed25519'), generateKeyPair('rsa-4096')]);
const document = manifest as unknown as Record<string, unknown>;
const edSigned = signDocument(document, ed.privateKey);
const rsaSigned = signDocument(document, rsa.privateKey);
const hashOnly = await measure(100, () => digestJson(document));
rows.push(['verify manifest Ed25519 (vs SHA-256 of JCS)', hashOnly, await measure(100, () => verifyDocument(edSigned, ed.publicKey))]);
rows.push(['verify manifest RSA-4096 PSS (vs SHA-256 of JCS)', hashOnly, await measure(100, () => verifyDocument(rsaSigned, rsa.publicKey))]);

const packageDir = dirname(require.resolve('@modelcontextprotocol/sdk/package.json'));
function readAll(dir: string): number {
  let bytes = 0;
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    const stat = statSync(full);
    bytes += stat.isDirectory() ? readAll(full) : readFileSync(full).length;
  }
  return bytes;
}
const read = await measure(1, () => readAll(packageDir), 5);
const tree = await measure(1, () => treeDigest(packageDir), 5);
rows.push([`tree digest of @modelcontextprotocol/sdk (vs reading its files)`, read, tree]);

// Runtime definition inspection on the same 100 tools, against the uninspected path measured here
// too: the hash-lock check alone, which is all the gateway did with a list before. "First time"
// scans every definition (a fresh scanner, so no verdict is cached); "cached" is the gateway's own
// composition (app/integrity.ts) seeing a list it has seen before: one hash of the list.
const admitted = new Map([['bench', { manifest: undefined, lockEntry: entry }]]);
const lockOnly = createHashlockInspector(admitted, { unlocked: 'quarantine' });
const rules = loadRules();
const uninspected = await measure(200, () => lockOnly('bench', 'tools', tools));
const firstTime = await measure(3, () => {
  const inspection = createRuntimeInspection({ scanner: new DefinitionScanner(rules), settingsFor: () => definitionInspectionDefaults });
  return inspection.inspect('bench', 'tools', lockOnly('bench', 'tools', tools).published);
}, 5);
const gatewayInspector = hashlockInspector({ admitted: admitted as never, refused: new Map(), context: { baseDir: '.', signers: undefined, lock: undefined, config: { ...trustConfigDefaults, unlocked: 'quarantine' } } }, () => undefined, silentLogger());
gatewayInspector('bench', 'tools', tools);
const cached = await measure(200, () => gatewayInspector('bench', 'tools', tools));
rows.push(['definition inspection, 100 tools, first time (vs hash-lock check alone)', uninspected, firstTime]);
rows.push(['definition inspection, 100 tools, cached (vs hash-lock check alone)', uninspected, cached]);

const width = Math.max(...rows.map(([name]) => name.length));
process.stdout.write(`${'operation'.padEnd(width)}  baseline µs   integrity µs   ratio\n`);
for (const [name, base, measured] of rows) {
  process.stdout.write(`${name.padEnd(width)}  ${base.toFixed(1).padStart(11)}  ${measured.toFixed(1).padStart(13)}  ${(measured / base).toFixed(2).padStart(6)}x\n`);
}
