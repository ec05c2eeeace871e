import type { ShipItem } from './source.js';

/**
 * What a receiver said beyond "received": records of an accepted delivery that it will not keep
 * (OTLP partial success), and its message. Such records are not sent again: the receiver
 * rejected them for good, and the protocol forbids retrying the request.
 */
export interface DeliveryReport {
  rejected: number;
  message: string;
}

/** What a sink type implements. The shipper owns reading, cursors, retries and metrics. */
export interface SinkTransport {
  /**
   * True when a resolved `deliver` means the receiver has the items (HTTP 2xx). False when it
   * only means they were sent, and `confirm` tells when the receiver has read them (syslog).
   */
  readonly acknowledges: boolean;
  /** Sends the items in order; rejects on any failure (the shipper retries from its cursor). */
  deliver(items: ShipItem[]): Promise<DeliveryReport | undefined>;
  /** For a sink that does not acknowledge: resolves once everything sent so far was received. */
  confirm?(): Promise<void>;
  /** Drops the connection after a failure, so the next delivery starts afresh. */
  reset(): void;
  close(): Promise<void>;
}
