// A worker thread that inspects the texts of large answers off the gateway's event loop (see
// inspect-offload.ts). It builds the same TextInspector as the guard, from the settings it is
// started with, and answers each job with the findings of every text.
import { parentPort, workerData } from 'node:worker_threads';
import { TextInspector } from './guard.js';
import type { InspectJob, InspectReply, InspectWorkerSettings } from './inspect-offload.js';

const settings = workerData as InspectWorkerSettings;
const inspector = new TextInspector({ blockAt: settings.blockAt, ...(settings.categories ? { categories: settings.categories } : {}) });

parentPort?.on('message', (job: InspectJob) => {
  let reply: InspectReply;
  try {
    reply = { id: job.id, findings: inspector.inspectTexts(job.texts, job.subject, job.field) };
  } catch (error) {
    reply = { id: job.id, error: error instanceof Error ? error.message : String(error) };
  }
  parentPort?.postMessage(reply);
});
