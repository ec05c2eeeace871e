// Runs inside the sandbox (as /run/bastion/relay.mjs) in front of a server that was granted
// network scopes. The network namespace has nothing but its loopback; the relay forwards, and
// the egress broker on the gateway side (reached through the bound unix socket) decides:
//  - 127.0.0.1:3128, the proxy for clients configured with HTTPS_PROXY: raw bytes to the broker;
//  - 127.0.0.1:3129 and [::1]:3129, where the namespace's nftables rules redirect every other
//    TCP connection: the broker is told the client's port (`ORIGIN`), finds the original
//    destination in conntrack and answers 200 (then bytes flow) or refuses (the client's
//    connection is reset);
//  - UDP 127.0.0.1:5353, where DNS queries are redirected: A queries are answered with the
//    broker's `RESOLVE` result (an address standing for that granted name), others are refused.
// Then it runs the server with the same stdio and exits with its status. Node built-ins only:
// nothing else is bound next to it. The server can kill or impersonate the relay (same uid):
// that gains nothing, since every decision is the broker's.
import { createServer, connect, type Socket } from 'node:net';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

const [socketPath, portText, separator, command, ...args] = process.argv.slice(2);
if (!socketPath || !portText || separator !== '--' || !command) {
  process.stderr.write('usage: relay.mjs SOCKET PORT -- COMMAND [ARGS...]\n');
  process.exit(2);
}
const TRANSPARENT_PORT = Number(portText) + 1;
const DNS_PORT = 5353;

function closeBoth(a: Socket, b: Socket): void {
  const close = (): void => {
    a.destroy();
    b.destroy();
  };
  for (const socket of [a, b]) {
    socket.on('error', close);
    socket.on('close', close);
  }
}

/** Sends one request line to the broker and hands back its status, headers and the socket. */
function askBroker(request: string, onAnswer: (status: number, head: string, rest: Buffer, broker: Socket) => void, onError: () => void): void {
  const broker = connect(socketPath as string);
  let head = Buffer.alloc(0);
  broker.once('error', onError);
  broker.on('connect', () => broker.write(`${request} HTTP/1.1\r\n\r\n`));
  const onData = (chunk: Buffer): void => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > 8192) broker.destroy();
      return;
    }
    broker.off('data', onData);
    broker.off('error', onError);
    const text = head.subarray(0, end).toString('latin1');
    onAnswer(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text, head.subarray(end + 4), broker);
  };
  broker.on('data', onData);
}

const proxy = createServer((inside) => {
  const broker = connect(socketPath);
  inside.pipe(broker);
  broker.pipe(inside);
  closeBoth(inside, broker);
});

const transparent = (inside: Socket): void => {
  inside.pause();
  inside.on('error', () => inside.destroy());
  askBroker(
    `ORIGIN ${String(inside.remotePort)}`,
    (status, _head, rest, broker) => {
      if (status !== 200) {
        broker.destroy();
        inside.resetAndDestroy();
        return;
      }
      if (rest.length > 0) inside.write(rest);
      inside.pipe(broker);
      broker.pipe(inside);
      closeBoth(inside, broker);
    },
    () => inside.resetAndDestroy(),
  );
};
const transparent4 = createServer(transparent);
const transparent6 = createServer(transparent);

/** Answers cached per name: `null` for refused names (the broker already reported them). */
const resolved = new Map<string, string | null>();

interface Question {
  id: number;
  name: string;
  type: number;
  end: number;
}

function parseQuestion(message: Buffer): Question | undefined {
  if (message.length < 17 || message.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let offset = 12;
  while (offset < message.length) {
    const length = message[offset] as number;
    if (length === 0) break;
    if (length > 63 || offset + 1 + length > message.length) return undefined;
    labels.push(message.toString('latin1', offset + 1, offset + 1 + length));
    offset += 1 + length;
  }
  if (offset + 5 > message.length) return undefined;
  return { id: message.readUInt16BE(0), name: labels.join('.').toLowerCase(), type: message.readUInt16BE(offset + 1), end: offset + 5 };
}

/** A response to `query`: rcode 0 (with an A record when `address` is set), 3 NXDOMAIN, 5 REFUSED. */
function dnsAnswer(query: Buffer, question: Question, rcode: number, address?: string): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(question.id, 0);
  header.writeUInt16BE(0x8180 | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(address ? 1 : 0, 6);
  const parts = [header, query.subarray(12, question.end)];
  if (address) {
    const record = Buffer.alloc(16);
    record.writeUInt16BE(0xc00c, 0);
    record.writeUInt16BE(1, 2);
    record.writeUInt16BE(1, 4);
    record.writeUInt32BE(60, 6);
    record.writeUInt16BE(4, 10);
    address.split('.').forEach((octet, index) => record.writeUInt8(Number(octet), 12 + index));
    parts.push(record);
  }
  return Buffer.concat(parts);
}

const dns = createSocket('udp4');
dns.on('error', () => undefined);
dns.on('message', (message: Buffer, from: RemoteInfo) => {
  const question = parseQuestion(message);
  if (!question) return;
  const reply = (rcode: number, address?: string): void => {
    dns.send(dnsAnswer(message, question, rcode, address), from.port, from.address);
  };
  const answer = (address: string | null): void => {
    if (address === null) reply(3);
    else if (question.type === 1) reply(0, address);
    else reply(0);
  };
  const known = resolved.get(question.name);
  if (known !== undefined) {
    answer(known);
    return;
  }
  askBroker(
    `RESOLVE ${question.name}`,
    (status, head, _rest, broker) => {
      broker.destroy();
      const address = status === 200 ? (/^Address: (127\.\d+\.\d+\.\d+)$/m.exec(head)?.[1] ?? null) : null;
      resolved.set(question.name, address);
      answer(address);
    },
    () => reply(2),
  );
});

function listening(start: (done: () => void) => void): Promise<void> {
  return new Promise((resolve) => start(resolve));
}

await listening((done) => proxy.listen(Number(portText), '127.0.0.1', done));
await listening((done) => transparent4.listen(TRANSPARENT_PORT, '127.0.0.1', done));
// IPv6 can be off in the namespace; then IPv6 connections fail, unaudited but closed.
await listening((done) => {
  transparent6.once('error', done);
  transparent6.listen(TRANSPARENT_PORT, '::1', done);
});
await listening((done) => dns.bind(DNS_PORT, '127.0.0.1', done));
for (const server of [proxy, transparent4, transparent6]) server.unref();
dns.unref();

const server = spawn(command, args, { stdio: 'inherit' });
server.on('error', (error) => {
  process.stderr.write(`relay: cannot start ${command}: ${error.message}\n`);
  process.exit(127);
});
// 128 + signal number, as a shell and bwrap report it, so the gateway can name the signal.
server.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1)));
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => server.kill(signal));
