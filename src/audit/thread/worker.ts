// The audit writer thread: it opens the log with the ordinary AuditLog, then builds, chains,
// seals and writes every record the gateway hands it, in the order they arrive. Answers are sent
// back once per turn of this thread's event loop, so one synced batch costs the main thread one
// message, not one per record.
import { parentPort, workerData } from 'node:worker_threads';
import { AuditLog, type AuditLogOptions } from '../log.js';
import { buildRequestRecord } from '../record.js';
import { toWire, type LogState, type WriterAnswer, type WriterMessage, type WriterRequest } from './protocol.js';

const port = parentPort;
if (port === null) throw new Error('the audit writer runs as a worker thread');

const answers: WriterAnswer[] = [];
let commits = 0;
let scheduled = false;
let log: AuditLog;

function state(): LogState {
  const failed = log.failedWith;
  return { size: log.size, head: log.chainHead, stats: { ...log.stats }, ...(failed === undefined ? {} : { failed: toWire(failed) }) };
}

function send(message: WriterMessage): void {
  port?.postMessage(message);
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(() => {
    scheduled = false;
    const message: WriterMessage = { type: 'answers', answers: answers.splice(0), commits, state: state() };
    commits = 0;
    send(message);
  });
}

function answer(id: number, work: Promise<Omit<WriterAnswer, 'id'>>): void {
  work.then(
    (done) => answers.push({ id, ...done }),
    (error: unknown) => answers.push({ id, error: toWire(error) }),
  ).finally(schedule);
}

async function appendCall(request: Extract<WriterRequest, { op: 'call' }>): Promise<Omit<WriterAnswer, 'id'>> {
  const fields = buildRequestRecord(request.call, request.capture, (text) => log.digestText(text));
  const result = await log.append(fields);
  return request.wantFields ? { result, fields } : { result };
}

function handle(request: WriterRequest): void {
  switch (request.op) {
    case 'append':
      return answer(request.id, log.append(request.fields).then((result) => ({ result })));
    case 'call':
      // Built and appended synchronously, before the next request: the log's order is the arrival order.
      return answer(request.id, appendCall(request));
    case 'flush':
      return answer(request.id, log.flush().then(() => ({})));
    case 'checkpoint':
      return answer(request.id, log.checkpoint().then(() => ({})));
    case 'close':
      return answer(request.id, log.close().then(() => ({})));
  }
}

try {
  // This thread does nothing but the log: its synced writes may block it (no thread-pool round trip).
  log = await AuditLog.open({ ...(workerData as AuditLogOptions), blockingWrites: true });
  log.onCommit(() => {
    commits += 1;
    schedule();
  });
  const { keys, verifier } = log.sharedKeys;
  send({ type: 'opened', log: { ...state(), dir: log.dir, metadata: log.metadata, appendOnly: log.appendOnly, recovery: log.recovery, keys: { seal: keys.seal, digest: keys.digest }, verifier } });
  port.on('message', (batch: WriterRequest[]) => {
    for (const request of batch) {
      try {
        handle(request);
      } catch (error) {
        answers.push({ id: request.id, error: toWire(error) });
        schedule();
      }
    }
  });
} catch (error) {
  send({ type: 'open-failed', error: toWire(error) });
}
