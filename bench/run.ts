// Runs every benchmark under dist/bench (files named *.bench.js), one process each, in order.
// Each prints its own table with ratios against a baseline measured in the same run.
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(here)
  .filter((name) => name.endsWith('.bench.js'))
  .filter((name) => only.length === 0 || only.some((needle) => name.includes(needle)))
  .sort();
let failed = 0;
for (const name of files) {
  process.stdout.write(`\n=== ${name.replace(/\.bench\.js$/, '')} ===\n`);
  const result = spawnSync(process.execPath, ['--expose-gc', join(here, name)], { stdio: 'inherit' });
  if (result.status !== 0) failed += 1;
}
process.exit(failed === 0 ? 0 : 1);
