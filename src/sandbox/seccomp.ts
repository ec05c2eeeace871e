// Seccomp policy for sandboxed tool servers, compiled to classic BPF (what bwrap's --seccomp
// loads) and rendered as an OCI / Docker seccomp profile. No library does this for Node.
//
// The policy is a deny list over a default of "allow": it removes the kernel surface a tool
// server never needs (namespaces, mounts, tracing, keyrings, eBPF, io_uring, module loading,
// terminal injection, clock changes) while leaving ordinary programs (node, python, coreutils)
// working. Denials return an errno rather than killing, so a probing server sees a clean
// failure and the gateway can report what happened.
import { AARCH64_SYSCALLS, X86_64_SYSCALLS } from './syscalls.js';

export type SeccompArch = 'x86_64' | 'aarch64';

export const AUDIT_ARCH: Readonly<Record<SeccompArch, number>> = Object.freeze({
  x86_64: 0xc000003e,
  aarch64: 0xc00000b7,
});

/** The x32 ABI marks its syscall numbers with this bit on x86_64; a filter written for the
 * 64-bit numbers would misread them, so x32 calls are killed. */
export const X32_SYSCALL_BIT = 0x40000000;

export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;

export const ERRNO = Object.freeze({ EPERM: 1, ENOSYS: 38, EAFNOSUPPORT: 97 });

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;

export const CLONE_NAMESPACE_FLAGS =
  0x00020000 | // CLONE_NEWNS
  0x02000000 | // CLONE_NEWCGROUP
  0x04000000 | // CLONE_NEWUTS
  0x08000000 | // CLONE_NEWIPC
  0x10000000 | // CLONE_NEWUSER
  0x20000000 | // CLONE_NEWPID
  0x40000000; // CLONE_NEWNET

export const TIOCSTI = 0x5412;
export const TIOCLINUX = 0x541c;

/**
 * A condition on the low 32 bits of one argument. Every argument inspected here (clone flags,
 * ioctl request, socket domain, personality) is truncated to 32 bits by the kernel itself, so
 * the high half cannot be used to sneak past the check.
 */
export type ArgCondition =
  | { arg: number; op: 'maskedAny'; mask: number }
  | { arg: number; op: 'in'; values: number[] }
  | { arg: number; op: 'notIn'; values: number[] };

export interface SyscallRule {
  name: string;
  errno: number;
  /** Without a condition every call is denied; with one, only calls matching it are. */
  when?: ArgCondition;
  why: string;
}

export interface SeccompPolicyOptions {
  /** Let the server open AF_INET/AF_INET6 sockets. Only safe inside an empty network
   * namespace, where the only reachable address is the in-sandbox relay on loopback. */
  allowInet: boolean;
}

const ALWAYS_DENIED: ReadonlyArray<[string[], string]> = [
  [['mount', 'umount2', 'pivot_root', 'chroot', 'mount_setattr', 'move_mount', 'open_tree', 'fsopen', 'fsconfig', 'fsmount', 'fspick'], 'changes the mount table'],
  [['unshare', 'setns'], 'enters or creates namespaces'],
  [['ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp', 'pidfd_getfd'], 'reads or controls other processes'],
  [['keyctl', 'add_key', 'request_key'], 'reaches the kernel keyrings'],
  [['bpf', 'perf_event_open', 'userfaultfd'], 'a common kernel exploitation primitive'],
  [['io_uring_setup', 'io_uring_enter', 'io_uring_register'], 'io_uring bypasses syscall filtering'],
  [['kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module', 'create_module', 'query_module', 'get_kernel_syms'], 'loads kernel code'],
  [['acct', 'swapon', 'swapoff', 'reboot', 'settimeofday', 'clock_settime', 'clock_adjtime', 'adjtimex', 'syslog', 'quotactl', 'quotactl_fd', 'vhangup', 'iopl', 'ioperm', 'uselib', 'sysfs', '_sysctl', 'nfsservctl', 'lookup_dcookie', 'fanotify_init'], 'host administration'],
  [['open_by_handle_at', 'name_to_handle_at'], 'opens files by handle, bypassing the mount view'],
];

/** The rules for one server. Pure data, so the OCI profile and the BPF program agree. */
export function seccompPolicy(options: SeccompPolicyOptions): SyscallRule[] {
  const rules: SyscallRule[] = [];
  for (const [names, why] of ALWAYS_DENIED) {
    for (const name of names) rules.push({ name, errno: ERRNO.EPERM, why });
  }
  rules.push({ name: 'clone3', errno: ERRNO.ENOSYS, why: 'its flags live in memory a filter cannot read; ENOSYS makes libc fall back to clone' });
  rules.push({ name: 'clone', errno: ERRNO.EPERM, when: { arg: 0, op: 'maskedAny', mask: CLONE_NAMESPACE_FLAGS }, why: 'creates namespaces' });
  rules.push({ name: 'ioctl', errno: ERRNO.EPERM, when: { arg: 1, op: 'in', values: [TIOCSTI, TIOCLINUX] }, why: 'injects input into a terminal' });
  rules.push({ name: 'personality', errno: ERRNO.EPERM, when: { arg: 0, op: 'notIn', values: [0, 0xffffffff] }, why: 'changes the execution domain (e.g. disables ASLR)' });
  const families = options.allowInet ? [AF_UNIX, AF_INET, AF_INET6] : [AF_UNIX];
  rules.push({ name: 'socket', errno: ERRNO.EAFNOSUPPORT, when: { arg: 0, op: 'notIn', values: families }, why: 'socket family not granted' });
  return rules;
}

export function syscallTable(arch: SeccompArch): Readonly<Record<string, number>> {
  return arch === 'x86_64' ? X86_64_SYSCALLS : AARCH64_SYSCALLS;
}

export function hostSeccompArch(): SeccompArch {
  if (process.arch === 'x64') return 'x86_64';
  if (process.arch === 'arm64') return 'aarch64';
  throw new Error(`seccomp: no syscall table for architecture ${process.arch}; the sandbox supports x86_64 and arm64 hosts`);
}

/** One classic BPF instruction (struct sock_filter). */
export interface BpfInstruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

const BPF_LD_W_ABS = 0x20;
const BPF_JEQ_K = 0x15;
const BPF_JGE_K = 0x35;
const BPF_JSET_K = 0x45;
const BPF_RET_K = 0x06;

const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
/** Low 32 bits of args[i] on a little-endian host (both supported arches are). */
const argLowOffset = (arg: number): number => 16 + 8 * arg;

const load = (offset: number): BpfInstruction => ({ code: BPF_LD_W_ABS, jt: 0, jf: 0, k: offset });
const ret = (value: number): BpfInstruction => ({ code: BPF_RET_K, jt: 0, jf: 0, k: value >>> 0 });
const jump = (code: number, k: number, jt: number, jf: number): BpfInstruction => {
  if (jt > 255 || jf > 255) throw new Error('seccomp: jump offset over 255 (a rule block grew too large)');
  return { code, jt, jf, k: k >>> 0 };
};

const errnoReturn = (errno: number): number => (SECCOMP_RET_ERRNO | (errno & 0xffff)) >>> 0;

/** Instructions that run with the syscall number in A and end in a return, for one rule. */
function conditionBlock(rule: SyscallRule & { when: ArgCondition }): BpfInstruction[] {
  const deny = ret(errnoReturn(rule.errno));
  const allow = ret(SECCOMP_RET_ALLOW);
  const { when } = rule;
  const body: BpfInstruction[] = [load(argLowOffset(when.arg))];
  if (when.op === 'maskedAny') {
    body.push(jump(BPF_JSET_K, when.mask, 0, 1), deny, allow);
    return body;
  }
  // A chain of equality tests; each jumps to the "matched" return at the end of the chain.
  const n = when.values.length;
  when.values.forEach((value, i) => body.push(jump(BPF_JEQ_K, value, n - i, 0)));
  if (when.op === 'in') body.push(allow, deny);
  else body.push(deny, allow);
  return body;
}

/** Compiles the policy for one architecture; unknown syscall names (absent on that arch) are skipped. */
export function compileSeccomp(rules: SyscallRule[], arch: SeccompArch): BpfInstruction[] {
  const table = syscallTable(arch);
  const seen = new Set<string>();
  const program: BpfInstruction[] = [
    load(OFFSET_ARCH),
    jump(BPF_JEQ_K, AUDIT_ARCH[arch], 1, 0),
    ret(SECCOMP_RET_KILL_PROCESS),
    load(OFFSET_NR),
  ];
  if (arch === 'x86_64') program.push(jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1), ret(SECCOMP_RET_KILL_PROCESS));
  for (const rule of rules) {
    if (seen.has(rule.name)) throw new Error(`seccomp: syscall ${rule.name} has two rules; merge them into one`);
    seen.add(rule.name);
    const nr = table[rule.name];
    if (nr === undefined) continue;
    const block = rule.when === undefined ? [ret(errnoReturn(rule.errno))] : conditionBlock({ ...rule, when: rule.when });
    program.push(jump(BPF_JEQ_K, nr, 0, block.length), ...block);
  }
  program.push(ret(SECCOMP_RET_ALLOW));
  if (program.length > 4096) throw new Error('seccomp: program longer than BPF_MAXINSNS (4096)');
  return program;
}

/** The raw `struct sock_filter[]` bytes bwrap reads from its --seccomp fd (host byte order: little-endian). */
export function encodeBpf(program: BpfInstruction[]): Buffer {
  const bytes = Buffer.alloc(program.length * 8);
  program.forEach((insn, i) => {
    bytes.writeUInt16LE(insn.code, i * 8);
    bytes.writeUInt8(insn.jt, i * 8 + 2);
    bytes.writeUInt8(insn.jf, i * 8 + 3);
    bytes.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  return bytes;
}

export function seccompFilterBytes(options: SeccompPolicyOptions, arch: SeccompArch = hostSeccompArch()): Buffer {
  return encodeBpf(compileSeccomp(seccompPolicy(options), arch));
}

type OciCompareOp = 'SCMP_CMP_MASKED_EQ' | 'SCMP_CMP_EQ' | 'SCMP_CMP_LT' | 'SCMP_CMP_GT';
type OciArg = { index: number; value: number; valueTwo: number; op: OciCompareOp };

/**
 * "arg not in values" as OR-ed rules (libseccomp ORs rules and ANDs the comparisons inside
 * one): below the smallest, above the largest, and every gap between. Small gaps are listed
 * value by value; a wide gap becomes one rule with GT and LT on the same argument, which
 * needs libseccomp >= 2.5 (older versions refuse two comparisons on one argument).
 */
function complementComparisons(index: number, values: number[]): OciArg[][] {
  const sorted = [...new Set(values.map((v) => v >>> 0))].sort((a, b) => a - b);
  const rules: OciArg[][] = [];
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  if (first === undefined || last === undefined) return rules;
  if (first > 0) rules.push([{ index, value: first, valueTwo: 0, op: 'SCMP_CMP_LT' }]);
  if (last < 0xffffffff) rules.push([{ index, value: last, valueTwo: 0, op: 'SCMP_CMP_GT' }]);
  for (let i = 0; i + 1 < sorted.length; i += 1) {
    const low = sorted[i] as number;
    const high = sorted[i + 1] as number;
    if (high - low - 1 <= 64) {
      for (let v = low + 1; v < high; v += 1) rules.push([{ index, value: v, valueTwo: 0, op: 'SCMP_CMP_EQ' }]);
    } else {
      rules.push([{ index, value: low, valueTwo: 0, op: 'SCMP_CMP_GT' }, { index, value: high, valueTwo: 0, op: 'SCMP_CMP_LT' }]);
    }
  }
  return rules;
}

/** OCI runtime-spec / Docker seccomp profile (JSON) for the same policy. */
export interface OciSeccompProfile {
  defaultAction: 'SCMP_ACT_ALLOW';
  architectures: string[];
  syscalls: Array<{
    names: string[];
    action: 'SCMP_ACT_ERRNO';
    errnoRet: number;
    args?: Array<{ index: number; value: number; valueTwo: number; op: OciCompareOp }>;
    comment: string;
  }>;
}

export function ociSeccompProfile(rules: SyscallRule[]): OciSeccompProfile {
  const syscalls: OciSeccompProfile['syscalls'] = [];
  for (const rule of rules) {
    const base = { names: [rule.name], action: 'SCMP_ACT_ERRNO' as const, errnoRet: rule.errno, comment: rule.why };
    const { when } = rule;
    if (when === undefined) {
      syscalls.push(base);
    } else if (when.op === 'maskedAny') {
      // libseccomp ANDs the comparisons inside one rule and ORs separate rules: one rule per flag bit.
      for (let bit = 1; bit !== 0 && bit <= 0x80000000; bit = (bit << 1) >>> 0) {
        if ((when.mask & bit) !== 0) syscalls.push({ ...base, args: [{ index: when.arg, value: bit, valueTwo: bit, op: 'SCMP_CMP_MASKED_EQ' }] });
      }
    } else if (when.op === 'in') {
      for (const value of when.values) syscalls.push({ ...base, args: [{ index: when.arg, value, valueTwo: 0, op: 'SCMP_CMP_EQ' }] });
    } else {
      for (const args of complementComparisons(when.arg, when.values)) syscalls.push({ ...base, args });
    }
  }
  return { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_AARCH64'], syscalls };
}
