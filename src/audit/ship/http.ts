/**
 * The deliveries a transport has in flight, each with its own timeout, so that close() can
 * abort them. Each gets a fresh AbortController: combining a long-lived signal with a timeout per
 * delivery (AbortSignal.any) adds a listener to the long-lived one per delivery, which piles up
 * over a day of shipping.
 */
export class InFlight {
  private readonly controllers = new Set<AbortController>();

  async run<T>(timeoutSeconds: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error(`the delivery took longer than ${timeoutSeconds} s`)), timeoutSeconds * 1000);
    this.controllers.add(controller);
    try {
      return await work(controller.signal);
    } finally {
      clearTimeout(timer);
      this.controllers.delete(controller);
    }
  }

  abortAll(): void {
    for (const controller of this.controllers) controller.abort(new Error('the sink is closing'));
    this.controllers.clear();
  }
}

/** The body of a 2xx answer, for a sink whose protocol says more in it (OTLP partial success). */
export interface DeliveryAnswer {
  body: Uint8Array;
  contentType: string;
}

/** Answers are read up to this size; an OTLP or Loki answer is a few bytes. */
const MAX_ANSWER_BYTES = 64 * 1024;

/** One HTTP POST of a delivery; only a 2xx answer counts as received (the shipper retries anything else). */
export async function postDelivery(url: string, headers: Record<string, string>, body: string | Uint8Array, signal: AbortSignal): Promise<DeliveryAnswer> {
  const response = await fetch(url, { method: 'POST', headers, body: typeof body === 'string' ? body : new Uint8Array(body), signal, redirect: 'error' });
  // Read in any case: the connection is reused only once its answer was read.
  const answer = new Uint8Array(await response.arrayBuffer().catch(() => new ArrayBuffer(0))).subarray(0, MAX_ANSWER_BYTES);
  if (response.status < 200 || response.status > 299) {
    const text = Buffer.from(answer).toString('utf8').slice(0, 200);
    throw new Error(`${url} answered HTTP ${response.status}${text === '' ? '' : `: ${text}`}`);
  }
  return { body: answer, contentType: response.headers.get('content-type') ?? '' };
}
