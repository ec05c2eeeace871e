// The operator console: three static files (HTML, one ES module, CSS) written for Bastion and
// served from memory by the admin listener, with a Content-Security-Policy that allows nothing
// but those files and the API on the same origin: no inline script, no inline style, no eval, no
// framing. The page renders every value with textContent (docs/console.md).
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { AdminRoute } from '../listener.js';

export const CONSOLE_PATH = '/console';

/** Same-origin only, nothing inline: the page's own module, its stylesheet and the API. */
export const CONSOLE_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const FILES: Record<string, { file: string; type: string }> = {
  '/console': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/console.js': { file: 'console.js', type: 'text/javascript; charset=utf-8' },
  '/console/console.css': { file: 'console.css', type: 'text/css; charset=utf-8' },
};

/** The static files sit next to this module in src/, and are found from dist/ too (tsc does not copy them). */
function staticDir(): string {
  const beside = fileURLToPath(new URL('./static/', import.meta.url));
  if (existsSync(beside)) return beside;
  const fromDist = fileURLToPath(new URL('../../../../src/admin/console/static/', import.meta.url));
  if (existsSync(fromDist)) return fromDist;
  throw new Error(`the console's static files are missing (looked in ${beside} and ${fromDist})`);
}

export class ConsoleAssets implements AdminRoute {
  private readonly contents = new Map<string, { body: Buffer; type: string }>();

  constructor() {
    const dir = staticDir();
    for (const [path, { file, type }] of Object.entries(FILES)) this.contents.set(path, { body: readFileSync(`${dir}${file}`), type });
  }

  matches(path: string): boolean {
    return path === CONSOLE_PATH || path.startsWith(`${CONSOLE_PATH}/`);
  }

  handle(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const headers = { 'Content-Security-Policy': CONSOLE_CSP, 'X-Content-Type-Options': 'nosniff', 'X-Frame-Options': 'DENY', 'Referrer-Policy': 'no-referrer', 'Cache-Control': 'no-store', 'Cross-Origin-Opener-Policy': 'same-origin' };
    const asset = this.contents.get(url.pathname);
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { ...headers, Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' });
      response.end('only GET is served here\n');
    } else if (asset === undefined) {
      response.writeHead(404, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
      response.end('no such console file\n');
    } else {
      response.writeHead(200, { ...headers, 'Content-Type': asset.type, 'Content-Length': String(asset.body.length) });
      response.end(request.method === 'HEAD' ? undefined : asset.body);
    }
    return Promise.resolve();
  }
}
