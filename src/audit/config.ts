import { dirname, isAbsolute, join } from 'node:path';
import type { AppendOnlyMode } from './append-only.js';
import { resolveSinks, sinksSchema, type SinkConfig } from './ship/config.js';

/** The `audit:` section of bastion.yaml. Paths are relative to the gateway's state dir. */
export interface AuditConfig {
  /** Log directory. */
  dir: string;
  /** durable: a response is released only after its record is on disk. async: bounded queue. */
  mode: 'durable' | 'async';
  /**
   * thread: the log (record building, chaining, hashing, sealing, writing) runs on a worker thread
   * of its own, so the gateway's main thread only hands each call over. inline: on the main thread.
   * adaptive: on the writer thread while calls overlap, on the main thread while they come one at
   * a time (no thread wake-ups per call; src/audit/thread/placement.ts).
   */
  writer: 'adaptive' | 'thread' | 'inline';
  queue: {
    /** Records waiting for disk before the queue counts as full (async mode). */
    maxRecords: number;
    /** deny: append fails, so the gateway denies the call. drop: count, and record the count later. */
    onFull: 'deny' | 'drop';
  };
  capture: {
    arguments: CaptureLevel;
    outputs: CaptureLevel;
    /** Upper bound, in characters of canonical JSON, for a 'truncated' capture. */
    maxChars: number;
  };
  checkpoint: {
    everyRecords: number;
    everySeconds: number;
    /** Ed25519 PKCS8 PEM; created with mode 0600 when absent. */
    keyFile: string;
    keyName: string;
    /**
     * 32-byte secret (hex) the log's batch-seal and argument-digest keys derive from; created
     * with mode 0600 when absent. Defaults to audit-mac.key beside keyFile.
     */
    macKeyFile?: string;
    /** A second directory that receives a copy of every checkpoint. */
    mirrorDir?: string;
    /** Also print every checkpoint to stdout (for a log shipper). */
    mirrorStdout: boolean;
  };
  rotation: { maxBytes: number; maxAgeSeconds: number };
  retention: { maxAgeDays?: number; maxTotalBytes?: number };
  /** Start a new chain when tampering is found at open, instead of refusing to start. */
  startNewSegmentAfterTamper: boolean;
  /** chattr +a on the active segment, +i on sealed ones and on checkpoint notes (append-only.ts). Default auto. */
  appendOnly: AppendOnlyMode;
  /** Checkpoint origin line; defaults to bastion.local/audit/<log id>. */
  origin?: string;
  /** Live shipping of committed records and checkpoints (src/audit/ship/). */
  sinks: SinkConfig[];
}

export type CaptureLevel = 'none' | 'truncated' | 'full';

export const defaultAuditConfig: AuditConfig = {
  dir: 'audit',
  mode: 'durable',
  writer: 'adaptive',
  queue: { maxRecords: 10_000, onFull: 'deny' },
  capture: { arguments: 'truncated', outputs: 'none', maxChars: 1024 },
  checkpoint: { everyRecords: 1000, everySeconds: 60, keyFile: 'keys/audit-signing-key.pem', keyName: 'bastion-audit', mirrorStdout: false },
  rotation: { maxBytes: 64 * 1024 * 1024, maxAgeSeconds: 86_400 },
  retention: {},
  startNewSegmentAfterTamper: false,
  appendOnly: 'auto',
  sinks: [],
};

const capture = { enum: ['none', 'truncated', 'full'], description: "'none' (digest only), 'truncated' or 'full'; secrets are redacted first" };

/** JSON Schema fragment for `audit:`; ajv fills the defaults. */
export const auditConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    dir: { type: 'string', minLength: 1, default: defaultAuditConfig.dir, description: 'the audit log directory, relative to stateDir, e.g. audit' },
    mode: { enum: ['durable', 'async'], default: 'durable', description: "'durable' (default: a response waits for its record to reach disk) or 'async'" },
    writer: { enum: ['adaptive', 'thread', 'inline'], default: 'adaptive', description: "'adaptive' (default: the log runs on a writer thread of its own while calls overlap, and on the gateway's main thread while they come one at a time), 'thread' (always on the writer thread) or 'inline' (always on the main thread)" },
    queue: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        maxRecords: { type: 'integer', minimum: 1, maximum: 10_000_000, default: defaultAuditConfig.queue.maxRecords, description: 'records, e.g. 10000' },
        onFull: { enum: ['deny', 'drop'], default: 'deny', description: "'deny' (new calls fail while the queue is full) or 'drop' (records are counted and the count is logged)" },
      },
    },
    capture: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        arguments: { ...capture, default: defaultAuditConfig.capture.arguments },
        outputs: { ...capture, default: defaultAuditConfig.capture.outputs },
        maxChars: { type: 'integer', minimum: 16, maximum: 1_048_576, default: defaultAuditConfig.capture.maxChars, description: 'characters kept by truncated capture, e.g. 1024' },
      },
    },
    checkpoint: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        everyRecords: { type: 'integer', minimum: 1, maximum: 10_000_000, default: defaultAuditConfig.checkpoint.everyRecords, description: 'records between checkpoints, e.g. 1000' },
        everySeconds: { type: 'integer', minimum: 1, maximum: 86_400, default: defaultAuditConfig.checkpoint.everySeconds, description: 'seconds between checkpoints, e.g. 60' },
        keyFile: { type: 'string', minLength: 1, default: defaultAuditConfig.checkpoint.keyFile, description: 'an Ed25519 PKCS8 PEM file, relative to stateDir; created (mode 0600) when absent' },
        keyName: { type: 'string', pattern: '^[^\\s+]+$', default: defaultAuditConfig.checkpoint.keyName, description: 'the signer name on checkpoint signature lines, without spaces or +' },
        macKeyFile: { type: 'string', minLength: 1, description: 'the secret for batch seals and argument digests, relative to stateDir; default audit-mac.key beside keyFile; created (mode 0600) when absent' },
        mirrorDir: { type: 'string', minLength: 1, description: 'a second directory (ideally another disk or host mount) that receives every checkpoint' },
        mirrorStdout: { type: 'boolean', default: false, description: 'also print each checkpoint to stdout' },
      },
    },
    rotation: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        maxBytes: { type: 'integer', minimum: 4096, default: defaultAuditConfig.rotation.maxBytes, description: 'segment size in bytes before a new segment starts, e.g. 67108864' },
        maxAgeSeconds: { type: 'integer', minimum: 1, default: defaultAuditConfig.rotation.maxAgeSeconds, description: 'segment age in seconds before a new segment starts, e.g. 86400' },
      },
    },
    retention: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        maxAgeDays: { type: 'number', exclusiveMinimum: 0, description: 'delete segments whose newest record is older than this many days (only segments covered by a checkpoint)' },
        maxTotalBytes: { type: 'integer', minimum: 4096, description: 'delete the oldest checkpointed segments while the log is larger than this' },
      },
    },
    startNewSegmentAfterTamper: { type: 'boolean', default: false, description: 'true starts a new chain (moving the damaged files to quarantine/) when tampering is found at start; false refuses to start' },
    appendOnly: { enum: ['auto', 'required', 'off'], default: defaultAuditConfig.appendOnly, description: "'auto' (default: append-only active segment, immutable sealed segments and checkpoints where the filesystem and CAP_LINUX_IMMUTABLE allow, ordinary files and one info log line elsewhere), 'required' (refuse to start without them) or 'off'" },
    origin: { type: 'string', pattern: '^\\S+$', description: 'the checkpoint origin line, e.g. audit.example.com/bastion-prod' },
    sinks: sinksSchema,
  },
} as const;

/** Fills defaults and resolves relative paths against the gateway's state dir. */
export function resolveAuditConfig(partial: DeepPartial<AuditConfig> | undefined, stateDir: string): AuditConfig {
  const merged: AuditConfig = {
    ...defaultAuditConfig,
    ...(partial as Partial<AuditConfig> | undefined),
    queue: { ...defaultAuditConfig.queue, ...partial?.queue },
    capture: { ...defaultAuditConfig.capture, ...partial?.capture },
    checkpoint: { ...defaultAuditConfig.checkpoint, ...partial?.checkpoint },
    rotation: { ...defaultAuditConfig.rotation, ...partial?.rotation },
    retention: { ...defaultAuditConfig.retention, ...partial?.retention },
  };
  const within = (path: string): string => (isAbsolute(path) ? path : join(stateDir, path));
  merged.dir = within(merged.dir);
  merged.checkpoint.keyFile = within(merged.checkpoint.keyFile);
  merged.checkpoint.macKeyFile = merged.checkpoint.macKeyFile === undefined ? join(dirname(merged.checkpoint.keyFile), 'audit-mac.key') : within(merged.checkpoint.macKeyFile);
  if (merged.checkpoint.mirrorDir !== undefined) merged.checkpoint.mirrorDir = within(merged.checkpoint.mirrorDir);
  merged.sinks = resolveSinks(partial?.sinks as ReadonlyArray<Partial<SinkConfig>> | undefined).map((sink) => {
    if (sink.type === 'webhook') return 'fromFile' in sink.secret ? { ...sink, secret: { fromFile: within(sink.secret.fromFile) } } : sink;
    if (sink.type !== 'syslog' || sink.tls === undefined) return sink;
    const { caFile, certFile, keyFile } = sink.tls;
    return { ...sink, tls: { ...sink.tls, caFile: within(caFile), ...(certFile === undefined ? {} : { certFile: within(certFile) }), ...(keyFile === undefined ? {} : { keyFile: within(keyFile) }) } };
  });
  return merged;
}

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };
