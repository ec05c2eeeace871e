import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  /** Open connections in total. */
  total: number;
  /** Open connections from one remote address. */
  perAddress: number;
}

/** Why a connection was closed on accept (the listener logs it, rate-limited). */
export type ConnectionRefusal = 'total' | 'per-address';

/**
 * Caps the connections a listener holds, in total and per client address, so one client
 * cannot hold every file descriptor of the process (which would starve the sandbox launcher and
 * the audit log). A connection over a cap is destroyed as soon as it is accepted: it never gets
 * a parser, a timer or a buffer.
 */
export class ConnectionLimiter {
  private readonly perAddress = new Map<string, number>();
  private open = 0;

  constructor(
    private readonly limits: ConnectionLimits,
    private readonly onRefused: (reason: ConnectionRefusal, address: string) => void,
  ) {}

  /** Attaches to `server`: must run before the server accepts anything. */
  attach(server: Server): void {
    // Node's own cap: connections beyond it are closed by the server before 'connection' fires.
    server.maxConnections = this.limits.total;
    server.on('connection', (socket: Socket) => this.admit(socket));
    server.on('drop', (data?: { remoteAddress?: string }) => this.onRefused('total', data?.remoteAddress ?? 'unknown'));
  }

  get openConnections(): number {
    return this.open;
  }

  private admit(socket: Socket): void {
    const address = socket.remoteAddress ?? 'unknown';
    const held = this.perAddress.get(address) ?? 0;
    if (held >= this.limits.perAddress || this.open >= this.limits.total) {
      this.onRefused(held >= this.limits.perAddress ? 'per-address' : 'total', address);
      socket.destroy();
      return;
    }
    this.perAddress.set(address, held + 1);
    this.open += 1;
    socket.once('close', () => {
      this.open -= 1;
      const now = (this.perAddress.get(address) ?? 1) - 1;
      if (now <= 0) this.perAddress.delete(address);
      else this.perAddress.set(address, now);
    });
  }
}
