import { createInterface } from 'node:readline';

/** How long a client that launched Bastion over stdio gets to read why it did not start. */
const LINGER_MS = 30_000;

/**
 * When Bastion cannot start under a client that launched it over stdio, the client would only
 * see "connection closed". Instead, answer each of its requests with a JSON-RPC error that says
 * why, until it hangs up (or LINGER_MS passes), so the reason reaches the user's screen.
 */
export async function explainFailureToStdioClient(reason: string): Promise<void> {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  const timer = setTimeout(() => lines.close(), LINGER_MS);
  timer.unref();
  const message = `Bastion could not start: ${reason}`;
  lines.on('line', (line) => {
    let id: unknown;
    try {
      id = (JSON.parse(line) as { id?: unknown }).id;
    } catch {
      id = null;
    }
    if (typeof id !== 'string' && typeof id !== 'number' && id !== null) return; // a notification: nothing to answer
    process.stdout.write(`${JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32603, message } })}\n`);
  });
  await new Promise<void>((resolve) => lines.once('close', resolve));
  clearTimeout(timer);
}
