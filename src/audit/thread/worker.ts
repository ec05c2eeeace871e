// The audit writer thread: it opens the log with the ordinary AuditLog, then builds, chains,
// seals and writes every record the gateway hands it, in the order they arrive. Answers are sent
// back once per turn of this thread's event loop, so one synced batch costs the main thread one
// message, not one per record. The log can be handed to the main thread and back (release,
// adopt); while the main thread has it, this thread holds no log and takes no records.
import { parentPort, workerData } from 'node:worker_threads';
import { AuditLog, type AuditLogOptions } from '../log.js';
import { AuditUnavailableError } from '../log-types.js';
import { buildRequestRecord } from '../record.js';
import { toWire, type LogState, type WriterAnswer, type WriterMessage, type WriterRequest } from './protocol.js';

const port = parentPort;
if (port === null) throw new Error('the audit writer runs as a worker thread');

// This thread does nothing but the log: its synced writes may block it (no thread-pool round trip).
const options: AuditLogOptions = { ...(workerData as AuditLogOptions), blockingWrites: true };
const answers: WriterAnswer[] = [];
let commits = 0;
let scheduled = false;
let log: AuditLog | undefined;
let lastState: LogState = { size: 0, head: '', stats: { batches: 0, records: 0, syncMillis: 0, largestBatch: 0, dropped: 0 } };

function state(): LogState {
  if (log === undefined) return lastState;
  const failed = log.failedWith;
  lastState = { size: log.size, head: log.chainHead, stats: { ...log.stats }, ...(failed === undefined ? {} : { failed: toWire(failed) }) };
  return lastState;
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

function held(): AuditLog {
  if (log === undefined) throw new AuditUnavailableError('audit log is on the main thread: the writer thread takes no records');
  return log;
}

function listen(opened: AuditLog): AuditLog {
  opened.onCommit(() => {
    commits += 1;
    schedule();
  });
  return opened;
}

async function appendCall(request: Extract<WriterRequest, { op: 'call' }>): Promise<Omit<WriterAnswer, 'id'>> {
  const writer = held();
  const fields = buildRequestRecord(request.call, request.capture, (text) => writer.digestText(text));
  const result = await writer.append(fields);
  return request.wantFields ? { result, fields } : { result };
}

async function release(): Promise<Omit<WriterAnswer, 'id'>> {
  const releasing = held();
  const handoff = await releasing.release();
  state();
  log = undefined;
  return { handoff };
}

async function adopt(request: Extract<WriterRequest, { op: 'adopt' }>): Promise<Omit<WriterAnswer, 'id'>> {
  if (log !== undefined) throw new Error('audit writer thread: asked to adopt a log while it holds one');
  log = listen(await AuditLog.adopt(options, request.handoff));
  return {};
}

function handle(request: WriterRequest): void {
  switch (request.op) {
    case 'append':
      return answer(request.id, held().append(request.fields).then((result) => ({ result })));
    case 'call':
      // Built and appended synchronously, before the next request: the log's order is the arrival order.
      return answer(request.id, appendCall(request));
    case 'flush':
      return answer(request.id, held().flush().then(() => ({})));
    case 'checkpoint':
      return answer(request.id, held().checkpoint().then(() => ({})));
    case 'close':
      return answer(request.id, log === undefined ? Promise.resolve({}) : log.close().then(() => ({})));
    case 'release':
      return answer(request.id, release());
    case 'adopt':
      return answer(request.id, adopt(request));
  }
}

try {
  const opened = listen(await AuditLog.open(options));
  log = opened;
  const { keys, verifier } = opened.sharedKeys;
  send({ type: 'opened', log: { ...state(), dir: opened.dir, metadata: opened.metadata, appendOnly: opened.appendOnly, recovery: opened.recovery, keys: { seal: keys.seal, digest: keys.digest }, verifier } });
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
