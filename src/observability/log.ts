import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * The operational log. Always stderr: in stdio mode stdout carries the MCP protocol,
 * and one stray byte there corrupts the client's stream.
 */
export function createLogger(level: string = process.env['BASTION_LOG_LEVEL'] ?? 'info'): Logger {
  return pino({ level, base: { service: 'bastion' } }, pino.destination({ fd: 2, sync: false }));
}

/** A logger that discards everything, for library use and tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
