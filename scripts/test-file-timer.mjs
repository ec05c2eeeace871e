// A node:test reporter that prints each test file's wall time, slowest first, once the run ends,
// so that whoever looks at a slow CI run can see which files the time went to.
// run-tests.mjs adds it with --times (or TEST_TIMES=1); on its own:
//   node --test --test-reporter=spec --test-reporter-destination=stdout \
//     --test-reporter=./scripts/test-file-timer.mjs --test-reporter-destination=stdout dist/test/...
import { relative, resolve } from 'node:path';

export default async function* fileTimer(source) {
  const files = new Map();
  const entry = (file) => {
    let found = files.get(file);
    if (found === undefined) {
      found = { first: Date.now(), last: Date.now(), wall: undefined, failed: false };
      files.set(file, found);
    }
    return found;
  };
  for await (const event of source) {
    const file = event.data?.file;
    if (typeof file !== 'string') continue;
    const seen = entry(file);
    seen.last = Date.now();
    if (event.type === 'test:fail') seen.failed = true;
    // Node reports each file as a test named by its path (absolute on 20, relative on 22); its
    // duration covers the child process from spawn to exit. Without it, first to last event.
    if (event.type === 'test:complete' && event.data.nesting === 0 && typeof event.data.name === 'string' && resolve(event.data.name) === file) {
      seen.wall = event.data.details?.duration_ms;
      if (event.data.details?.passed === false) seen.failed = true;
    }
  }
  const rows = [...files].map(([file, seen]) => ({
    file: relative(process.cwd(), file),
    ms: seen.wall ?? seen.last - seen.first,
    failed: seen.failed,
  }));
  rows.sort((a, b) => b.ms - a.ms);
  const total = rows.reduce((sum, row) => sum + row.ms, 0);
  yield `\n# per-file wall time, slowest first (${rows.length} files, ${(total / 1000).toFixed(1)} s summed)\n`;
  for (const row of rows) {
    yield `# ${(row.ms / 1000).toFixed(1).padStart(7)} s  ${row.file}${row.failed ? '  (failed)' : ''}\n`;
  }
}
