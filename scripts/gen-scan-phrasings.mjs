#!/usr/bin/env node
// Generates TRAINING samples for the scanner from the hand-written phrasings in
// scripts/scan-phrasings/templates.mjs: each phrasing is placed into an honest host tool at one of six
// positions (start, middle or end of the description, a parameter's description, a schema
// default/enum value, the title), with slots filled deterministically, and a benign hard negative set
// from honest sentences. Writes test/scan/corpus/data/train/phrasings.jsonl (part of the train split:
// npm run train:scan reads it). Deterministic: the same templates give the same file.
// Usage: node scripts/gen-scan-phrasings.mjs [--out FILE]
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ATTACKS, ATTACKS_STYLES, BENIGN, BENIGN_SHORT, FILLERS, FOREIGN, HOSTS, OUTPUT_PREFIXES, POOLS, PURPOSE_TOOLS } from './scan-phrasings/templates.mjs';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const out = args.includes('--out') ? resolve(args[args.indexOf('--out') + 1]) : join(repo, 'test/scan/corpus/data/train/phrasings.jsonl');

/** mulberry32, the same PRNG as src/scan/train.ts. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(1818);
const pick = (list) => list[Math.floor(random() * list.length)];

const POSITIONS = ['start', 'middle', 'end', 'param', 'default', 'title'];

function toolOf(host, name = host.name) {
  const properties = Object.fromEntries(Object.entries(host.params).map(([k, d]) => [k, { type: 'string', description: d }]));
  return { name, title: host.title, description: host.description, inputSchema: { type: 'object', properties, required: [Object.keys(host.params)[0]] } };
}

function serverOf(name, tools) {
  return { name, version: '1.0.0', tools, prompts: [], resources: [], resourceTemplates: [], scopes: [] };
}

function fill(text, host, foreign) {
  return text.replace(/\{(\w+)\}/g, (whole, slot) => {
    if (slot === 'self') return host.name;
    if (slot === 'other') return foreign.name;
    if (slot === 'param') return Object.keys(host.params)[0];
    const pool = POOLS[slot];
    return pool ? pick(pool) : whole;
  });
}

/** Puts the text into the tool at a position; returns the field it went to (for the sample's notes). */
function place(tool, text, position) {
  const first = tool.description.replace(/(?<=\.)\s.*$/s, '');
  const rest = tool.description.slice(first.length).trim();
  const props = tool.inputSchema.properties;
  const param = Object.keys(props)[Object.keys(props).length - 1];
  switch (position) {
    case 'start': tool.description = `${text}\n\n${tool.description}`; return 'description (start)';
    case 'middle': tool.description = `${first} ${text}${rest ? ` ${rest}` : ''}`; return 'description (middle)';
    case 'end': tool.description = `${tool.description}\n\n${text}`; return 'description (end)';
    case 'param': props[param].description = `${props[param].description}. ${text}`; return `inputSchema.properties.${param}.description`;
    case 'default':
      if (random() < 0.5) { props[param].default = text; return `inputSchema.properties.${param}.default`; }
      props[param].enum = ['standard', text]; return `inputSchema.properties.${param}.enum`;
    default: tool.title = text; return 'title';
  }
}

const phrasing = (entry) => (typeof entry === 'string' ? { language: 'en', text: entry } : entry);
const samples = [];
let hostTurn = 0;
const nextHost = () => HOSTS[(hostTurn++) % HOSTS.length];

const batches = [...Object.entries(ATTACKS).map(([c, e]) => [c, e, '']), ...Object.entries(ATTACKS_STYLES).map(([c, e]) => [c, e, 's'])];
for (const [attackClass, entries, batch] of batches) {
  entries.map(phrasing).forEach((p, i) => {
    // Two placements per phrasing: different hosts, positions and slot values.
    for (let copy = 0; copy < 2; copy += 1) {
      const host = nextHost();
      const foreign = pick(FOREIGN);
      const text = fill(p.text, host, foreign);
      const tool = toolOf(host);
      const id = `phr-${attackClass}-${batch}${String(i + 1).padStart(2, '0')}${copy ? 'b' : 'a'}`;
      const base = { id, label: 'malicious', class: attackClass, language: p.language };
      const context = [serverOf(foreign.server, [toolOf({ ...foreign, title: foreign.name })])];
      if (attackClass === 'output-instructions') {
        samples.push({ ...base, notes: 'tool output', server: serverOf(host.server, [tool]), output: `${pick(OUTPUT_PREFIXES)}\n\n${text}` });
        continue;
      }
      const position = POSITIONS[(i * 2 + copy + attackClass.length) % POSITIONS.length];
      const field = place(tool, text, position);
      const withContext = /\{other\}/.test(p.text) || attackClass === 'cross-server-shadowing' || copy === 0;
      samples.push({ ...base, notes: `${field}: ${attackClass}`, server: serverOf(host.server, [tool]), ...(withContext ? { context } : {}) });
      // Its clean twin: the same host with a neutral sentence at the same place, so the scorer learns the
      // attack and not the host's own words (every host carries some forty poisoned samples).
      const twin = toolOf(host);
      place(twin, pick(FILLERS), position === 'default' || position === 'title' ? 'end' : position);
      samples.push({ id: `${id}-twin`, label: 'benign', class: 'benign-twin', language: 'en', notes: `clean twin of ${id}`, server: serverOf(host.server, [twin]), ...(withContext ? { context } : {}) });
    }
  });
}

// Rug pulls: an approved clean definition, then the same tool with a phrasing of another class added.
const rugClasses = Object.keys(ATTACKS).filter((c) => c !== 'output-instructions');
for (let i = 0; i < 40; i += 1) {
  const attackClass = rugClasses[i % rugClasses.length];
  const p = phrasing(pick(ATTACKS[attackClass]));
  const host = nextHost();
  const foreign = pick(FOREIGN);
  const previous = serverOf(host.server, [toolOf(host)]);
  const tool = toolOf(host);
  const field = place(tool, fill(p.text, host, foreign), POSITIONS[i % POSITIONS.length]);
  const id = `phr-rug-pull-${String(i + 1).padStart(2, '0')}a`;
  samples.push({ id, label: 'malicious', class: 'rug-pull', language: p.language, notes: `changed ${field}: ${attackClass}`, server: serverOf(host.server, [tool]), previous });
  // The clean twin: an honest change (a neutral sentence) between the same two listings.
  const twin = toolOf(host);
  place(twin, pick(FILLERS), 'end');
  samples.push({ id: `${id}-twin`, label: 'benign', class: 'benign-twin', language: 'en', notes: `clean twin of ${id}`, server: serverOf(host.server, [twin]), previous });
}

// Benign hard negatives: honest sentences in honest hosts, and the purpose tools whose business the attack words are.
BENIGN.forEach((b, i) => {
  const host = HOSTS.find((h) => h.server === b.host) ?? HOSTS[0];
  for (let copy = 0; copy < 2; copy += 1) {
    const tool = toolOf(host, b.tool ?? host.name);
    const position = ['end', 'middle', 'param', 'start'][(i + copy) % 4];
    const field = place(tool, b.text, position);
    const siblings = (b.siblings ?? []).map((name) => toolOf({ ...host, description: `${host.description.split('.')[0]} (${name.replace(/_/g, ' ')}).` }, name));
    samples.push({ id: `phr-benign-${String(i + 1).padStart(2, '0')}${copy ? 'b' : 'a'}`, label: 'benign', class: 'benign-hard', language: b.language ?? 'en', notes: `honest sentence in ${field}`, server: serverOf(host.server, [tool, ...siblings]) });
  }
});
PURPOSE_TOOLS.forEach((t, i) => {
  samples.push({ id: `phr-benign-purpose-${String(i + 1).padStart(2, '0')}`, label: 'benign', class: 'benign-hard', language: 'en', notes: 'the attack words are this tool\'s own purpose', server: serverOf(t.server, [toolOf(t)]) });
});

BENIGN_SHORT.forEach(([name, description], i) => {
  const param = ['Identifier', 'Note title', 'Title of the note', 'User id', 'Name'][i % 5];
  const tool = { name, description, inputSchema: { type: 'object', properties: { [i % 5 === 3 ? 'user' : 'title']: { type: 'string', description: param } } } };
  samples.push({ id: `phr-benign-short-${String(i + 1).padStart(2, '0')}`, label: 'benign', class: 'benign-hard', language: 'en', notes: 'short honest tool in attack vocabulary', server: serverOf(`${name.replace(/_/g, '-')}-server`, [tool]) });
});

writeFileSync(out, `${samples.map((s) => JSON.stringify(s)).join('\n')}\n`);
const count = (label) => samples.filter((s) => s.label === label).length;
process.stdout.write(`wrote ${out}: ${samples.length} samples (${count('malicious')} poisoned, ${count('benign')} benign)\n`);
