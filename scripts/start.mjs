// `npm start`: runs the gateway in this process, so the signals npm forwards (SIGTERM, SIGINT)
// reach the gateway itself and it stops its upstream servers before exiting. It builds first
// only when dist/ is missing or older than a source file, and says so.
import { readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'dist', 'src', 'cli', 'bastion.js');
const buildInfo = join(root, 'dist', 'tsconfig.tsbuildinfo');

/** Newest modification time under `dir` of files that feed the build. */
function newestSource(dir) {
  let newest = 0;
  for (const entryName of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entryName.name);
    if (entryName.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (/\.(ts|json)$/.test(entryName.name)) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

function buildIsCurrent() {
  const built = statSync(entry, { throwIfNoEntry: false });
  if (built === undefined) return false;
  const inputs = Math.max(newestSource(join(root, 'src')), statSync(join(root, 'tsconfig.json')).mtimeMs, statSync(join(root, 'package.json')).mtimeMs);
  return built.mtimeMs >= inputs;
}

if (!buildIsCurrent()) {
  process.stderr.write('bastion: building dist/ (it is missing or older than src/) ...\n');
  const started = Date.now();
  // The build is incremental: tsc trusts dist/tsconfig.tsbuildinfo and does not re-emit outputs
  // that were deleted behind its back. With the entry missing, the record goes, for a full build.
  if (statSync(entry, { throwIfNoEntry: false }) === undefined) rmSync(buildInfo, { force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit', cwd: root });
  // As `npm run build`: the scanner's derived data (rules prepared at build time; src/scan/prepared.ts).
  const prepared = result.status === 0 ? spawnSync(process.execPath, [join(root, 'scripts', 'prepare-scan-data.mjs')], { stdio: 'inherit', cwd: root }) : result;
  if (result.status !== 0 || prepared.status !== 0) {
    process.stderr.write(`bastion: the build failed (exit ${prepared.status ?? prepared.signal}); fix the errors above and run npm start again\n`);
    process.exit(1);
  }
  // An incremental build leaves unchanged outputs as they were, so a source touched but not
  // changed would leave the entry older than it and rebuild on every start; the entry's time
  // stands for the start of the last build that found dist/ current (a source saved during the
  // build is newer and builds again next time).
  const builtEntry = statSync(entry, { throwIfNoEntry: false });
  if (builtEntry !== undefined && builtEntry.mtimeMs < started) utimesSync(entry, new Date(started), new Date(started));
  process.stderr.write(`bastion: built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

// The CLI reads process.argv: `npm start -- --port 9000` arrives here as extra arguments.
process.argv = [process.argv[0], entry, 'serve', ...process.argv.slice(2)];
await import(pathToFileURL(entry).href);
