import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import type { SyslogSinkConfig } from './config.js';
import { payloadOf } from './format.js';
import type { ShipItem } from './source.js';
import type { SinkTransport } from './transport.js';

/**
 * Syslog RFC 5424 messages over TCP (RFC 6587) or TLS (RFC 5425), framed by octet counting
 * ("<length> <message>"), so a message may hold any byte. Syslog has no acknowledgement, so
 * `deliver` only sends; `confirm` half-closes the connection and waits for the receiver to close
 * its side, which it does only after reading everything up to the end of the stream.
 */

/** Private enterprise number 32473 is reserved for documentation (RFC 5612). */
const SD_ID = 'bastion@32473';
const SEVERITY = { error: 3, warning: 4, notice: 5, info: 6 } as const;

export function syslogMessage(item: ShipItem, config: Pick<SyslogSinkConfig, 'facility' | 'appName' | 'format'>, logId: string, host = syslogHostname()): string {
  const severity = item.kind === 'checkpoint' ? SEVERITY.notice : item.record.decision === 'deny' ? SEVERITY.warning : item.record.decision === 'error' ? SEVERITY.error : SEVERITY.info;
  const timestamp = item.kind === 'checkpoint' ? new Date().toISOString() : item.record.ts;
  const msgid = item.kind === 'checkpoint' ? 'checkpoint' : 'audit';
  const params = item.kind === 'checkpoint' ? `index="${item.index}" size="${item.size}"` : `seq="${item.seq}"`;
  return `<${config.facility * 8 + severity}>1 ${timestamp} ${host} ${config.appName} ${process.pid} ${msgid} [${SD_ID} log="${sdEscape(logId)}" ${params}] ${payloadOf(item, config.format)}`;
}

/** RFC 5424 section 6.3.3: '"', '\' and ']' are escaped in a parameter value. */
function sdEscape(value: string): string {
  return value.replace(/["\\\]]/g, (match) => `\\${match}`);
}

/** RFC 5424 HOSTNAME: printable US-ASCII, at most 255 characters, or '-'. */
function syslogHostname(): string {
  const name = hostname().replace(/[^!-~]/g, '').slice(0, 255);
  return name === '' ? '-' : name;
}

export function octetFrame(message: string): Buffer {
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}

export class SyslogTransport implements SinkTransport {
  readonly acknowledges = false;
  private socket: Socket | TLSSocket | undefined;
  private failure: Error | undefined;
  private readonly tlsFiles: { ca?: Buffer; cert?: Buffer; key?: Buffer };

  constructor(private readonly config: SyslogSinkConfig, private readonly logId: string) {
    const tls = config.tls;
    // Read once at start: a missing CA file is a configuration error the gateway refuses to start with.
    this.tlsFiles = tls === undefined ? {} : { ca: readFileSync(tls.caFile), cert: tls.certFile === undefined ? undefined : readFileSync(tls.certFile), key: tls.keyFile === undefined ? undefined : readFileSync(tls.keyFile) };
  }

  async deliver(items: ShipItem[]): Promise<undefined> {
    const socket = await this.connected();
    const frames = Buffer.concat(items.map((item) => octetFrame(syslogMessage(item, this.config, this.logId))));
    await new Promise<void>((resolve, reject) => {
      socket.write(frames, (error) => (error ? reject(error) : resolve()));
    });
    if (this.failure) throw this.failure;
  }

  /** Resolves once the receiver has read everything sent on this connection and closed it. */
  async confirm(): Promise<void> {
    const socket = this.socket;
    if (socket === undefined) return;
    this.socket = undefined;
    await new Promise<void>((resolve, reject) => {
      let peerEnded = false;
      socket.once('end', () => {
        peerEnded = true;
      });
      socket.once('close', () => {
        if (peerEnded && this.failure === undefined) resolve();
        else reject(this.failure ?? new Error('the syslog receiver closed the connection without reading to its end'));
      });
      socket.end();
      // The receiver sends nothing; data arriving would only fill the buffer.
      socket.resume();
    });
  }

  reset(): void {
    this.socket?.destroy();
    this.socket = undefined;
    this.failure = undefined;
  }

  close(): Promise<void> {
    this.reset();
    return Promise.resolve();
  }

  private connected(): Promise<Socket | TLSSocket> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.socket !== undefined) return Promise.resolve(this.socket);
    const { host, port, tls } = this.config;
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => {
        this.failure = error;
        reject(error);
      };
      const socket =
        tls === undefined
          ? connectTcp({ host, port }, () => ready())
          : connectTls({ host, port, servername: tls.serverName ?? (isIpAddress(host) ? undefined : host), ca: this.tlsFiles.ca, cert: this.tlsFiles.cert, key: this.tlsFiles.key, minVersion: 'TLSv1.2' }, () => ready());
      const ready = (): void => {
        socket.off('error', onError);
        socket.on('error', (error: Error) => {
          this.failure = error;
        });
        socket.on('close', () => {
          if (this.socket === socket) this.failure ??= new Error('the syslog receiver closed the connection');
        });
        this.socket = socket;
        resolve(socket);
      };
      socket.once('error', onError);
      socket.setNoDelay(true);
    });
  }
}

function isIpAddress(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.includes(':');
}
