// Runs inside the sandbox (as /run/bastion/relay.mjs) in front of a server that was granted
// network scopes: it listens on the sandbox's own loopback (the network namespace has nothing
// else) and forwards each TCP connection to the egress broker's unix socket, so ordinary
// clients configured with HTTPS_PROXY=http://127.0.0.1:PORT reach the broker. It then runs the
// server with the same stdio and exits with its status. Node built-ins only: nothing else is
// bound next to it.
import { createServer, connect } from 'node:net';
import { spawn } from 'node:child_process';

const [socketPath, portText, separator, command, ...args] = process.argv.slice(2);
if (!socketPath || !portText || separator !== '--' || !command) {
  process.stderr.write('usage: relay.mjs SOCKET PORT -- COMMAND [ARGS...]\n');
  process.exit(2);
}

const relay = createServer((inside) => {
  const broker = connect(socketPath);
  inside.pipe(broker);
  broker.pipe(inside);
  const close = (): void => {
    inside.destroy();
    broker.destroy();
  };
  inside.on('error', close);
  broker.on('error', close);
  inside.on('close', close);
  broker.on('close', close);
});

relay.listen(Number(portText), '127.0.0.1', () => {
  const server = spawn(command, args, { stdio: 'inherit' });
  server.on('error', (error) => {
    process.stderr.write(`relay: cannot start ${command}: ${error.message}\n`);
    process.exit(127);
  });
  server.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => server.kill(signal));
});
relay.unref();
