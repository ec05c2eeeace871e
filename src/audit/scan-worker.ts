import { parentPort, workerData } from 'node:worker_threads';
import { checkChunkSafely, claimRange, type WorkerJob } from './scan-chunk.js';

/** Worker thread entry for scanLogParallel: checks ranges until none is left unclaimed. */

const job = workerData as WorkerJob;
for (let claim = claimRange(job.claimed, job.requests.length); claim !== undefined; claim = claimRange(job.claimed, job.requests.length)) {
  parentPort?.postMessage(checkChunkSafely(job.requests[claim] as (typeof job.requests)[number]));
}
