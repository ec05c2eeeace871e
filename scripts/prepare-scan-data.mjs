#!/usr/bin/env node
// Run by `npm run build` after tsc: writes dist/src/scan/prepared-data.json, the derived scanner data
// (rewritten regex sources, pattern atoms, atom indexes) for the shipped rules in data/scan, so that
// `bastion scan` does not derive it at every start (src/scan/prepared.ts). It loads the rules exactly as a
// scan does and records every answer; a scan of other rules computes what was not prepared.
import { writeFileSync, renameSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const scanDist = join(root, 'dist/src/scan');
const prepared = await import(join(scanDist, 'prepared.js'));
prepared.startPreparing();
const { loadRules } = await import(join(scanDist, 'rules.js'));
const { loadConceptData } = await import(join(scanDist, 'concepts.js'));
const { loadDirectiveData } = await import(join(scanDist, 'directives.js'));
const { analyzeMetadata } = await import(join(scanDist, 'analyzers/metadata.js'));
const dataDir = join(root, 'data/scan');
const rules = loadRules(dataDir);
loadConceptData(rules.dataDir);
loadDirectiveData(rules.dataDir);
// One small server through the metadata analysis builds what a scan builds lazily (the rule index, the weak signals' atoms).
analyzeMetadata({ name: 'prepare', tools: [{ name: 'read_note', description: 'Read a note by its id.', inputSchema: { type: 'object', properties: { id: { type: 'string' } } } }], prompts: [], resources: [], resourceTemplates: [], scopes: [] }, rules);
const out = join(scanDist, 'prepared-data.json');
writeFileSync(`${out}.tmp`, prepared.preparedFile());
renameSync(`${out}.tmp`, out);
const { misses } = prepared.preparedCounts();
process.stderr.write(`prepare-scan-data: ${misses} answers prepared into ${out}\n`);
