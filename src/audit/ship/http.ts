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

/** One HTTP POST of a delivery; only a 2xx answer counts as received (the shipper retries anything else). */
export async function postDelivery(url: string, headers: Record<string, string>, body: string | Uint8Array, signal: AbortSignal): Promise<void> {
  const response = await fetch(url, { method: 'POST', headers, body: typeof body === 'string' ? body : new Uint8Array(body), signal, redirect: 'error' });
  // The body is not needed, but must be read for the connection to be reused.
  const answer = await response.text().catch(() => '');
  if (response.status < 200 || response.status > 299) throw new Error(`${url} answered HTTP ${response.status}${answer === '' ? '' : `: ${answer.slice(0, 200)}`}`);
}
