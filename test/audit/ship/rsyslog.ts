import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A real rsyslogd (Debian's rsyslog, rsyslog-gnutls for TLS) on 127.0.0.1 with its own config:
 * imtcp (octet-counted frames), and an omfile action writing every message as received.
 */

export interface Certificates {
  ca: string;
  cert: string;
  key: string;
}

/** A CA and a server certificate for IP 127.0.0.1, made by Debian's openssl (argv, no shell). */
export function makeCertificates(dir: string, name = 'ca'): Certificates {
  const at = (file: string): string => join(dir, file);
  const run = (args: string[]): void => {
    const result = spawnSync('openssl', args, { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${result.stderr}`);
  };
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', at(`${name}.key`), '-out', at(`${name}.pem`), '-days', '2', '-subj', `/CN=${name}`]);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', at(`${name}-server.key`), '-out', at(`${name}-server.csr`), '-subj', '/CN=127.0.0.1']);
  writeFileSync(at(`${name}-ext.cnf`), 'subjectAltName=IP:127.0.0.1\n');
  run(['x509', '-req', '-in', at(`${name}-server.csr`), '-CA', at(`${name}.pem`), '-CAkey', at(`${name}.key`), '-CAcreateserial', '-out', at(`${name}-server.pem`), '-days', '2', '-extfile', at(`${name}-ext.cnf`)]);
  return { ca: at(`${name}.pem`), cert: at(`${name}-server.pem`), key: at(`${name}-server.key`) };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface Received {
  seq?: number;
  msgid: string;
  payload: string;
}

export class Rsyslog {
  private child: ChildProcess | undefined;
  port = 0;

  constructor(private readonly dir: string, private readonly tls?: Certificates) {}

  get output(): string {
    return join(this.dir, 'received.log');
  }

  /** Starts rsyslogd (on the port of its last run, if any) and resolves once it listens. */
  async start(): Promise<void> {
    const portFile = join(this.dir, 'port');
    const driver = this.tls === undefined ? '' : ` DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="${this.tls.ca}" DefaultNetstreamDriverCertFile="${this.tls.cert}" DefaultNetstreamDriverKeyFile="${this.tls.key}"`;
    const module = this.tls === undefined ? 'module(load="imtcp")' : 'module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")';
    const config = [
      `global(workDirectory="${this.dir}" parser.escapeControlCharactersOnReceive="off" maxMessageSize="1m"${driver})`,
      module,
      `input(type="imtcp" address="127.0.0.1" port="${this.port}" listenPortFileName="${portFile}" ruleset="bastion")`,
      'template(name="raw" type="string" string="%rawmsg%\\n")',
      `ruleset(name="bastion") { action(type="omfile" file="${this.output}" template="raw" flushOnTXEnd="on") }`,
      '',
    ].join('\n');
    const configFile = join(this.dir, 'rsyslog.conf');
    writeFileSync(configFile, config);
    writeFileSync(portFile, '');
    const child = spawn('rsyslogd', ['-n', '-f', configFile, '-i', join(this.dir, 'rsyslogd.pid')], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    // rsyslogd writes the port file once a listener on port 0 is bound; a fixed port is probed.
    const listening = async (): Promise<boolean> => (this.port === 0 ? readFileSync(portFile, 'utf8').trim() !== '' : await accepts(this.port));
    while (!(await listening())) {
      if (child.exitCode !== null) throw new Error(`rsyslogd exited with ${child.exitCode}: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    if (this.port === 0) this.port = Number(readFileSync(portFile, 'utf8').trim());
  }

  /** SIGTERM, and resolves when rsyslogd has exited (its queue flushed to the output file). */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }

  /** Every message received so far, parsed from RFC 5424. */
  received(): Received[] {
    if (!existsSync(this.output)) return [];
    const messages: Received[] = [];
    for (const line of readFileSync(this.output, 'utf8').split('\n')) {
      if (line === '') continue;
      const match = /^<\d+>1 \S+ \S+ \S+ \d+ (\S+) \[bastion@32473 log="[0-9a-f]+" (?:seq="(\d+)"|index="\d+" size="\d+")\] (.*)$/.exec(line);
      if (match === null) throw new Error(`rsyslog received a message that is not Bastion's RFC 5424 form: ${line.slice(0, 200)}`);
      messages.push({ msgid: match[1] as string, seq: match[2] === undefined ? undefined : Number(match[2]), payload: match[3] as string });
    }
    return messages;
  }
}
