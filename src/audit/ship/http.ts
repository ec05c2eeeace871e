/** One HTTP POST of a delivery; only a 2xx answer counts as received (the shipper retries anything else). */
export async function postDelivery(url: string, headers: Record<string, string>, body: string | Uint8Array, timeoutSeconds: number, stop: AbortSignal): Promise<void> {
  const response = await fetch(url, { method: 'POST', headers, body: typeof body === 'string' ? body : new Uint8Array(body), signal: AbortSignal.any([stop, AbortSignal.timeout(timeoutSeconds * 1000)]), redirect: 'error' });
  // The body is not needed, but must be read for the connection to be reused.
  const answer = await response.text().catch(() => '');
  if (response.status < 200 || response.status > 299) throw new Error(`${url} answered HTTP ${response.status}${answer === '' ? '' : `: ${answer.slice(0, 200)}`}`);
}
