import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  AUDIT_ARCH,
  CLONE_NAMESPACE_FLAGS,
  compileSeccomp,
  encodeBpf,
  ERRNO,
  ociSeccompProfile,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  seccompPolicy,
  syscallTable,
  TIOCLINUX,
  TIOCSTI,
  type BpfInstruction,
  type SeccompArch,
} from '../../src/sandbox/seccomp.js';

/**
 * A small classic-BPF interpreter with the kernel's seccomp semantics for the instructions the
 * generator may emit. Anything else is an error, so an unexpected opcode fails the test.
 */
function runBpf(program: BpfInstruction[], data: Buffer): number {
  let a = 0;
  let pc = 0;
  for (let steps = 0; steps < 10_000; steps += 1) {
    const insn = program[pc];
    if (!insn) throw new Error(`fell off the program at ${pc}`);
    switch (insn.code) {
      case 0x20: // ld [k]
        a = data.readUInt32LE(insn.k);
        pc += 1;
        break;
      case 0x15: // jeq #k
        pc += 1 + (a === insn.k ? insn.jt : insn.jf);
        break;
      case 0x35: // jge #k
        pc += 1 + (a >= insn.k ? insn.jt : insn.jf);
        break;
      case 0x45: // jset #k
        pc += 1 + ((a & insn.k) !== 0 ? insn.jt : insn.jf);
        break;
      case 0x06: // ret #k
        return insn.k >>> 0;
      default:
        throw new Error(`unexpected opcode 0x${insn.code.toString(16)} at ${pc}`);
    }
  }
  throw new Error('program did not terminate');
}

/** struct seccomp_data: nr, arch, instruction_pointer, args[6] (little-endian). */
function seccompData(arch: number, nr: number, args: Array<number | bigint> = []): Buffer {
  const data = Buffer.alloc(64);
  data.writeUInt32LE(nr >>> 0, 0);
  data.writeUInt32LE(arch >>> 0, 4);
  data.writeBigUInt64LE(0x401000n, 8);
  args.forEach((value, i) => data.writeBigUInt64LE(BigInt.asUintN(64, BigInt(value)), 16 + 8 * i));
  return data;
}

const ARCHES: SeccompArch[] = ['x86_64', 'aarch64'];
const errno = (e: number): number => (SECCOMP_RET_ERRNO | e) >>> 0;

function evaluator(arch: SeccompArch, allowInet = false): (name: string, args?: Array<number | bigint>) => number {
  const program = compileSeccomp(seccompPolicy({ allowInet }), arch);
  const table = syscallTable(arch);
  return (name, args = []) => {
    const nr = table[name];
    if (nr === undefined) throw new Error(`${name} is not in the ${arch} table`);
    return runBpf(program, seccompData(AUDIT_ARCH[arch], nr, args));
  };
}

for (const arch of ARCHES) {
  describe(`seccomp filter (${arch})`, () => {
    const call = evaluator(arch);

    test('every unconditionally denied syscall that exists on the arch returns its errno', () => {
      const table = syscallTable(arch);
      let checked = 0;
      for (const rule of seccompPolicy({ allowInet: false })) {
        if (rule.when !== undefined || table[rule.name] === undefined) continue;
        assert.equal(call(rule.name), errno(rule.errno), rule.name);
        checked += 1;
      }
      assert.ok(checked >= 40, `only ${checked} rules checked`);
    });

    test('mount, unshare, setns, ptrace, bpf, keyctl, io_uring and module loading are refused with EPERM', () => {
      for (const name of ['mount', 'umount2', 'pivot_root', 'unshare', 'setns', 'ptrace', 'process_vm_readv', 'bpf', 'keyctl', 'add_key', 'perf_event_open', 'io_uring_setup', 'userfaultfd', 'kexec_load', 'init_module', 'finit_module', 'open_by_handle_at', 'reboot']) {
        assert.equal(call(name), errno(ERRNO.EPERM), name);
      }
    });

    test('clone3 answers ENOSYS so libc falls back to clone, where flags are visible', () => {
      assert.equal(call('clone3', [0x7fff0000, 88]), errno(ERRNO.ENOSYS));
    });

    test('clone with any namespace flag is refused; thread and fork clones pass', () => {
      for (let bit = 1; bit !== 0; bit = (bit << 1) >>> 0) {
        if ((CLONE_NAMESPACE_FLAGS & bit) === 0) continue;
        assert.equal(call('clone', [bit | 0x11]), errno(ERRNO.EPERM), `flag 0x${bit.toString(16)}`);
      }
      const threadFlags = 0x003d0f00; // CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID
      assert.equal(call('clone', [threadFlags]), SECCOMP_RET_ALLOW);
      assert.equal(call('clone', [0x01200011]), SECCOMP_RET_ALLOW); // fork(): CHILD_SETTID|CHILD_CLEARTID|SIGCHLD
    });

    test('the high half of a clone flags argument cannot hide a namespace flag', () => {
      // The kernel truncates clone flags to 32 bits; the filter reads exactly those.
      assert.equal(call('clone', [(0xffffffffn << 32n) | 0x10000000n]), errno(ERRNO.EPERM));
      assert.equal(call('clone', [0xffffffffn << 32n]), SECCOMP_RET_ALLOW);
    });

    test('only AF_UNIX sockets without a network grant', () => {
      assert.equal(call('socket', [AF_UNIX, 1, 0]), SECCOMP_RET_ALLOW);
      for (const family of [AF_INET, AF_INET6, 16 /* netlink */, 17 /* packet */, 40 /* vsock */, 0]) {
        assert.equal(call('socket', [family, 1, 0]), errno(ERRNO.EAFNOSUPPORT), `family ${family}`);
      }
    });

    test('a network grant adds AF_INET and AF_INET6 only (raw netlink and packet stay closed)', () => {
      const networked = evaluator(arch, true);
      assert.equal(networked('socket', [AF_INET, 1, 0]), SECCOMP_RET_ALLOW);
      assert.equal(networked('socket', [AF_INET6, 2, 0]), SECCOMP_RET_ALLOW);
      assert.equal(networked('socket', [16, 3, 0]), errno(ERRNO.EAFNOSUPPORT));
      assert.equal(networked('socket', [17, 3, 0]), errno(ERRNO.EAFNOSUPPORT));
    });

    test('TIOCSTI and TIOCLINUX terminal injection is refused; other ioctls pass', () => {
      assert.equal(call('ioctl', [0, TIOCSTI, 0]), errno(ERRNO.EPERM));
      assert.equal(call('ioctl', [0, TIOCLINUX, 0]), errno(ERRNO.EPERM));
      assert.equal(call('ioctl', [0, 0x5401 /* TCGETS */, 0]), SECCOMP_RET_ALLOW);
      assert.equal(call('ioctl', [0, 0x541b /* FIONREAD */, 0]), SECCOMP_RET_ALLOW);
    });

    test('personality may be queried but not changed (e.g. to disable ASLR)', () => {
      assert.equal(call('personality', [0xffffffff]), SECCOMP_RET_ALLOW);
      assert.equal(call('personality', [0]), SECCOMP_RET_ALLOW);
      assert.equal(call('personality', [0x0040000 /* ADDR_NO_RANDOMIZE */]), errno(ERRNO.EPERM));
    });

    test('syscalls an ordinary server needs are allowed', () => {
      for (const name of ['read', 'write', 'openat', 'close', 'mmap', 'mprotect', 'futex', 'epoll_pwait', 'execve', 'wait4', 'getpid', 'connect', 'sendmsg', 'prctl', 'seccomp']) {
        assert.equal(call(name, [3, 0, 0]), SECCOMP_RET_ALLOW, name);
      }
    });

    test('a call made under any other architecture kills the process', () => {
      const program = compileSeccomp(seccompPolicy({ allowInet: false }), arch);
      const other = arch === 'x86_64' ? AUDIT_ARCH.aarch64 : AUDIT_ARCH.x86_64;
      for (const foreign of [other, 0x40000003 /* i386 */, 0x40000028 /* arm */, 0]) {
        assert.equal(runBpf(program, seccompData(foreign, 0)), SECCOMP_RET_KILL_PROCESS, `arch 0x${foreign.toString(16)}`);
      }
    });

    test('any syscall outside the deny list is allowed, whatever its arguments (property)', () => {
      const program = compileSeccomp(seccompPolicy({ allowInet: false }), arch);
      const table = syscallTable(arch);
      const denied = new Set(seccompPolicy({ allowInet: false }).map((r) => table[r.name]));
      const limit = arch === 'x86_64' ? 0x40000000 : 0xffffffff;
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 600 }), fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { maxLength: 6 }), (nr, args) => {
          fc.pre(!denied.has(nr) && nr < limit);
          return runBpf(program, seccompData(AUDIT_ARCH[arch], nr, args)) === SECCOMP_RET_ALLOW;
        }),
        { numRuns: 500 },
      );
    });
  });
}

test('x32 ABI calls (syscall numbers with bit 30 set) are killed on x86_64', () => {
  const program = compileSeccomp(seccompPolicy({ allowInet: false }), 'x86_64');
  assert.equal(runBpf(program, seccompData(AUDIT_ARCH.x86_64, 0x40000000 | 165)), SECCOMP_RET_KILL_PROCESS);
  assert.equal(runBpf(program, seccompData(AUDIT_ARCH.x86_64, 0x40000000)), SECCOMP_RET_KILL_PROCESS);
});

test('the program is encoded as struct sock_filter: u16 code, u8 jt, u8 jf, u32 k, little-endian', () => {
  const program = compileSeccomp(seccompPolicy({ allowInet: false }), 'x86_64');
  const bytes = encodeBpf(program);
  assert.equal(bytes.length, program.length * 8);
  // ld [4] (the arch field), then jeq AUDIT_ARCH_X86_64.
  assert.deepEqual([...bytes.subarray(0, 8)], [0x20, 0, 0, 0, 4, 0, 0, 0]);
  assert.deepEqual([...bytes.subarray(8, 16)], [0x15, 0, 1, 0, 0x3e, 0, 0, 0xc0]);
  const last = bytes.subarray(bytes.length - 8);
  assert.equal(last.readUInt16LE(0), 0x06);
  assert.equal(last.readUInt32LE(4), SECCOMP_RET_ALLOW);
});

test('two rules for one syscall are rejected instead of silently shadowing each other', () => {
  assert.throws(() => compileSeccomp([{ name: 'mount', errno: 1, why: 'a' }, { name: 'mount', errno: 38, why: 'b' }], 'x86_64'), /mount has two rules/);
});

describe('OCI / Docker seccomp profile', () => {
  const profile = ociSeccompProfile(seccompPolicy({ allowInet: false }));

  test('names every denied syscall with its errno', () => {
    const byName = new Map(profile.syscalls.map((s) => [s.names[0], s]));
    assert.equal(byName.get('mount')?.errnoRet, ERRNO.EPERM);
    assert.equal(byName.get('clone3')?.errnoRet, ERRNO.ENOSYS);
    assert.equal(profile.defaultAction, 'SCMP_ACT_ALLOW');
  });

  test('clone gets one masked rule per namespace flag (rules are OR-ed)', () => {
    const cloneRules = profile.syscalls.filter((s) => s.names[0] === 'clone');
    assert.equal(cloneRules.length, 7);
    for (const rule of cloneRules) {
      const arg = rule.args?.[0];
      assert.ok(arg && arg.op === 'SCMP_CMP_MASKED_EQ' && arg.value === arg.valueTwo && (arg.value & CLONE_NAMESPACE_FLAGS) === arg.value);
    }
  });

  test('socket families outside AF_UNIX are denied by complement ranges', () => {
    const rules = profile.syscalls.filter((s) => s.names[0] === 'socket').map((s) => s.args ?? []);
    const denies = (family: number): boolean =>
      rules.some((args) =>
        args.every((c) => (c.op === 'SCMP_CMP_LT' ? family < c.value : c.op === 'SCMP_CMP_GT' ? family > c.value : c.op === 'SCMP_CMP_EQ' ? family === c.value : false)),
      );
    assert.equal(denies(AF_UNIX), false);
    for (const family of [0, AF_INET, AF_INET6, 16, 17, 45]) assert.equal(denies(family), true, `family ${family}`);
  });
});
