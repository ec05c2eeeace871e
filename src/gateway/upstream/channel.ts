import type { JsonRpcMessage } from '../jsonrpc.js';

/** A bidirectional JSON-RPC message pipe to one upstream server. */
export interface UpstreamChannel {
  /** Queues one message; false if the channel is closed or the upstream is not reading its input. */
  send(message: JsonRpcMessage): boolean;
  close(): Promise<void>;
  /** A parsed message from the upstream, with its size on the wire. */
  onMessage: (message: unknown, bytes: number) => void;
  /** Bytes the upstream sent that were not a JSON-RPC message, or a message over the size cap; `raw` is the start of an unparseable line. */
  onProtocolViolation: (kind: ViolationKind, description: string, bytes: number, raw?: string) => void;
  /** The channel is gone (process exited, connection closed); `reason` says why. */
  onClose: (reason: string) => void;
}

/** What to start for a stdio server: argv only, never a shell string. */
/**
 * Whom a process serves: one session's agent, one agent's sessions, or everyone (`agentId`
 * null). The launcher derives the sandbox view from it (src/app/sandbox.ts).
 */
export interface ProcessSubject {
  isolation: 'session' | 'agent' | 'shared';
  agentId: string | null;
}

export interface LaunchSpec {
  server: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string | undefined;
  /** Unset: the server's declared view, whoever calls (no policy to narrow it by). */
  serves?: ProcessSubject;
}

/** `oversize`: a message over the cap (discarded); `garbage`: not JSON-RPC; `transport`: the link failed. */
export type ViolationKind = 'oversize' | 'garbage' | 'transport';
