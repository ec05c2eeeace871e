// Runs every compiled test file under dist/test with Node's built-in test runner.
// Node 20's --test does not expand globs, so the file list is built here.
import { chmodSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...collect(full));
    else if (name.endsWith('.test.js')) out.push(full);
  }
  return out;
}

// Sandboxed test servers run as unprivileged uids and read their code from dist, and tests hand
// them files they write. Under a private umask (077) neither would be readable to them, which
// Bastion rightly refuses; the tests run as a deployment would, with code readable by others.
process.umask(0o022);
function openUp(path) {
  const stat = statSync(path);
  const wanted = stat.isDirectory() ? 0o005 : 0o004;
  if ((stat.mode & wanted) !== wanted) chmodSync(path, stat.mode | wanted | (stat.isDirectory() ? 0o050 : 0o040));
  if (stat.isDirectory()) for (const name of readdirSync(path)) openUp(join(path, name));
}
if (statSync('dist', { throwIfNoEntry: false })) openUp('dist');

// --times (or TEST_TIMES=1) adds a reporter that lists each file's wall time, slowest first.
const args = process.argv.slice(2);
const times = args.includes('--times') || process.env.TEST_TIMES === '1';
const filter = args.filter((arg) => arg !== '--times');
let files = collect('dist/test');
if (filter.length > 0) files = files.filter((f) => filter.some((needle) => f.includes(needle)));
if (files.length === 0) {
  console.error('run-tests: no test files found under dist/test (did the build run?)');
  process.exit(1);
}
const started = Date.now();
// Naming a reporter replaces node's default, so the default (spec on a terminal, tap otherwise)
// is named as well.
const reporters = times
  ? [
      `--test-reporter=${process.stdout.isTTY ? 'spec' : 'tap'}`,
      '--test-reporter-destination=stdout',
      `--test-reporter=${new URL('./test-file-timer.mjs', import.meta.url).href}`,
      '--test-reporter-destination=stdout',
    ]
  : [];
// Most test files wait (on sandboxed servers, synced writes, child processes) far more than they
// compute: at two files at a time a full run kept under one of the two cores busy. Three at a time
// keeps both busy; four was faster still but leaves less headroom for the slower CI machine.
// TEST_CONCURRENCY overrides it (1 to debug an interleaving).
const concurrency = testConcurrency(process.env.TEST_CONCURRENCY);
const result = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=120000', ...reporters, ...files], {
  stdio: 'inherit',
});
liftAuditAttributes(started);
if (times && existsSync('/proc/self/stat')) reportCpu(started);
process.exit(result.status ?? 1);

// Whether the run was bound by the CPU or by waiting: the CPU time of every process of the run
// that was waited for (the test files and what they started), against the wall time. Linux only.
function reportCpu(since) {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // Fields after the command name (which may hold spaces): cutime and cstime are the 14th and
  // 15th, in clock ticks (100 a second on Linux).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = (Number(fields[13]) + Number(fields[14])) / 100;
  const wall = (Date.now() - since) / 1000;
  if (Number.isFinite(cpu)) console.log(`# CPU of the test processes ${cpu.toFixed(1)} s over ${wall.toFixed(0)} s wall (${(cpu / wall).toFixed(2)} cores busy on average)`);
}

// Run as root with CAP_LINUX_IMMUTABLE, gateways under test protect their audit logs (the default
// audit.appendOnly: auto sets chattr +a / +i), and those attributes outlive them. Tests delete
// their directories through test/helpers/tmp.ts, which lifts them first; a test cancelled by its
// timeout never cleans up. So that what it leaves can still be deleted with rm -rf, the
// attributes are lifted in the bastion-* temporary directories this run created. Nothing is
// deleted here.
function liftAuditAttributes(since) {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return;
  const base = tmpdir();
  const created = readdirSync(base)
    .filter((name) => name.startsWith('bastion-'))
    .map((name) => join(base, name))
    .filter((path) => {
      const stat = statSync(path, { throwIfNoEntry: false });
      return stat?.isDirectory() === true && stat.birthtimeMs >= since;
    });
  for (let start = 0; start < created.length; start += 200) {
    spawnSync('chattr', ['-R', '-a', '-i', ...created.slice(start, start + 200)], { stdio: 'ignore', timeout: 120_000 });
  }
}

function testConcurrency(value) {
  if (value === undefined || value === '') return 3;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    console.error(`run-tests: TEST_CONCURRENCY must be a whole number from 1 to 64, not ${JSON.stringify(value)}`);
    process.exit(2);
  }
  return n;
}
