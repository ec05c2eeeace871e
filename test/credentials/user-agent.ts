// The test as the user's browser: follows a consent link through oidc-provider's development
// login and consent pages with fetch and a cookie jar, and ends at Bastion's callback.

/** Cookies by name, as a browser would send them back to the one authorization server. */
class CookieJar {
  private readonly cookies = new Map<string, string>();

  take(response: Response): void {
    for (const header of response.headers.getSetCookie()) {
      const [pair] = header.split(';');
      const index = pair?.indexOf('=') ?? -1;
      if (pair === undefined || index < 1) continue;
      const name = pair.slice(0, index).trim();
      const value = pair.slice(index + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(header) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

export interface ConsentResult {
  status: number;
  page: string;
  /** The callback URL the authorization server sent the browser to. */
  callback: string;
}

/**
 * Opens `link`, signs in as `user` and approves. Stops at the first URL outside the
 * authorization server (Bastion's callback), which it opens and returns.
 */
export async function consentAs(link: string, user: string): Promise<ConsentResult> {
  const jar = new CookieJar();
  const issuer = new URL(link).origin;
  let next: { url: string; method: 'GET' | 'POST'; body?: URLSearchParams } = { url: link, method: 'GET' };
  for (let step = 0; step < 20; step += 1) {
    if (new URL(next.url).origin !== issuer) {
      const response = await fetch(next.url, { redirect: 'manual' });
      return { status: response.status, page: await response.text(), callback: next.url };
    }
    const response = await fetch(next.url, {
      method: next.method,
      redirect: 'manual',
      headers: { cookie: jar.header(), ...(next.body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }) },
      ...(next.body === undefined ? {} : { body: next.body }),
    });
    jar.take(response);
    const location = response.headers.get('location');
    if (location !== null) {
      await response.body?.cancel();
      next = { url: new URL(location, next.url).toString(), method: 'GET' };
      continue;
    }
    const html = await response.text();
    if (response.status !== 200) throw new Error(`the authorization server answered ${response.status}: ${html.slice(0, 500)}`);
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    if (action === undefined) throw new Error(`no form on the authorization server's page: ${html.slice(0, 500)}`);
    const prompt = /name="prompt" value="([^"]+)"/.exec(html)?.[1] ?? (html.includes('name="login"') ? 'login' : 'consent');
    const body = new URLSearchParams({ prompt });
    if (prompt === 'login') {
      body.set('login', user);
      body.set('password', 'any');
    }
    next = { url: new URL(action.replace(/&amp;/g, '&'), next.url).toString(), method: 'POST', body };
  }
  throw new Error('too many steps following the consent link');
}
