import { getHeapStatistics } from 'node:v8';
import type { Logger } from '../../observability/index.js';

/** Memory samples kept for the log line written when the process is in trouble. */
const SAMPLES_KEPT = 12;
const SAMPLE_EVERY_MS = 10_000;
/** Uncaught exceptions tolerated per minute before the gateway gives up and exits. */
const MAX_UNCAUGHT_PER_MINUTE = 20;

interface MemorySample {
  at: string;
  rssMb: number;
  heapUsedMb: number;
}

const mb = (bytes: number): number => Math.round(bytes / 1048576);

/**
 * Process-level safety net for `bastion serve`. An unhandled rejection or an uncaught exception
 * is logged with its cause and the memory trend, and the gateway keeps serving (each one is a
 * bug, but one client's bad luck should not end every session); a burst of them means the state
 * is no longer trustworthy, so it exits. A heap exhaustion cannot be caught: the memory trend is
 * sampled all along and logged as a warning when the heap nears its limit, so the cause of such
 * a death is on record before it happens.
 */
export function installProcessGuard(logger: Logger, onFatal: (reason: string) => void): () => void {
  const samples: MemorySample[] = [];
  const heapLimit = getHeapStatistics().heap_size_limit;
  let warnedAt = 0;
  const sample = (): void => {
    const usage = process.memoryUsage();
    samples.push({ at: new Date().toISOString(), rssMb: mb(usage.rss), heapUsedMb: mb(usage.heapUsed) });
    if (samples.length > SAMPLES_KEPT) samples.shift();
    if (usage.heapUsed > heapLimit * 0.85 && Date.now() - warnedAt > 60_000) {
      warnedAt = Date.now();
      logger.warn({ heapLimitMb: mb(heapLimit), trend: samples }, 'the heap is near its limit: the process may be ended by V8 (out of memory)');
    }
  };
  sample();
  const timer = setInterval(sample, SAMPLE_EVERY_MS);
  timer.unref();

  let recent: number[] = [];
  const onUncaught = (error: Error, origin: string): void => {
    const now = Date.now();
    recent = [...recent.filter((at) => now - at < 60_000), now];
    logger.error({ err: error, origin, trend: samples, count: recent.length }, 'uncaught exception (a bug): logged, the gateway keeps serving');
    if (recent.length > MAX_UNCAUGHT_PER_MINUTE) onFatal(`${recent.length} uncaught exceptions within a minute; last: ${error.message}`);
  };
  const onRejection = (reason: unknown): void => {
    logger.error({ err: reason, trend: samples }, 'unhandled promise rejection (a bug): logged, the gateway keeps serving');
  };
  const onExit = (code: number): void => {
    if (code !== 0) logger.error({ code, trend: samples }, 'gateway exiting with an error');
  };
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onRejection);
  process.on('exit', onExit);
  return () => {
    clearInterval(timer);
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onRejection);
    process.off('exit', onExit);
  };
}
