import { parentPort, workerData } from 'node:worker_threads';
import { checkChunkSafely, claimRange, type ChunkRequest } from './scan-chunk.js';

/**
 * Worker thread entry for scanLogParallel: started before the ranges are planned, it gets them in
 * one message, then checks ranges until none is left unclaimed.
 */

const claimed = workerData as Int32Array;
parentPort?.once('message', (requests: readonly ChunkRequest[]) => {
  for (let claim = claimRange(claimed, requests.length); claim !== undefined; claim = claimRange(claimed, requests.length)) {
    parentPort?.postMessage(checkChunkSafely(requests[claim] as ChunkRequest));
  }
});
