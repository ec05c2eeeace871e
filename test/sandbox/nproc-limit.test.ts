// The RLIMIT_NPROC backstop is scaled by the number of copies of a server, which for a gateway
// with thousands of sessions exceeds the hard limit the gateway itself runs under. Raising a hard
// limit needs CAP_SYS_RESOURCE (containers drop it), so prlimit failed with EPERM and no server
// started; the value is now capped at the gateway's own hard limit.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { planBwrap } from '../../src/sandbox/bwrap.js';
import { nprocLimit } from '../../src/sandbox/config.js';
import { findBinary, processHardLimit } from '../../src/sandbox/host.js';
import { resolveSandboxConfig } from '../../src/sandbox/index.js';

describe('RLIMIT_NPROC for many copies of a server', () => {
  const config = resolveSandboxConfig({});
  const plan = planBwrap({
    spec: { serverName: 'files', command: '/usr/bin/node', args: [], env: {}, packageDirs: [], scopes: [], instances: 5000 },
    config,
    root: false,
    binaries: { bwrap: '/usr/bin/bwrap', prlimit: '/usr/bin/prlimit' },
  });
  const flag = plan.argv.find((arg) => arg.startsWith('--nproc='));
  const value = Number(flag?.slice('--nproc='.length).split(':')[0]);

  it('is the scaled backstop, capped at the hard limit the gateway runs under', () => {
    const hard = processHardLimit();
    assert.equal(value, Math.min(nprocLimit(config.limits, 5000), hard ?? Number.MAX_SAFE_INTEGER));
    if (hard !== undefined) assert.ok(value <= hard);
  });

  it('is a value the real prlimit can set here', () => {
    const prlimit = findBinary('prlimit');
    assert.ok(prlimit !== undefined, 'prlimit (util-linux) is installed');
    const result = spawnSync(prlimit, [`--nproc=${value}:${value}`, '--', '/bin/true'], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
  });
});
