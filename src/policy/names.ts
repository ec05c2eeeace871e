// Caps on the names and URIs a client sends. A name is looked up, logged and keyed on before
// the policy decides anything, so an unbounded one costs memory, disk and CPU for nothing:
// tool and prompt names (as the client writes them, `server.tool`) and resource URIs longer
// than the configured caps are refused at routing, with a message that does not echo them.
import type { PolicyConfig } from './config.js';

const DEFAULT_MAX_NAME_BYTES = 256;
const DEFAULT_MAX_URI_BYTES = 4096;

type NameCaps = Partial<Pick<PolicyConfig, 'maxNameBytes' | 'maxUriBytes'>>;

function tooLong(value: unknown, max: number): number | undefined {
  if (typeof value !== 'string') return undefined;
  // A UTF-8 character is at most 4 bytes: short strings skip the byte count.
  if (value.length * 4 <= max) return undefined;
  const bytes = Buffer.byteLength(value, 'utf8');
  return bytes > max ? bytes : undefined;
}

/** Why the request's name or URI is refused as too long, or undefined when it is within the caps. */
export function oversizedName(method: string, params: Readonly<Record<string, unknown>>, caps: NameCaps | undefined): string | undefined {
  const maxName = caps?.maxNameBytes ?? DEFAULT_MAX_NAME_BYTES;
  const maxUri = caps?.maxUriBytes ?? DEFAULT_MAX_URI_BYTES;
  let name: unknown;
  let uri: unknown;
  switch (method) {
    case 'tools/call':
    case 'prompts/get':
      name = params['name'];
      break;
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      uri = params['uri'];
      break;
    case 'completion/complete': {
      const ref = params['ref'];
      if (ref !== null && typeof ref === 'object') {
        name = (ref as Record<string, unknown>)['name'];
        uri = (ref as Record<string, unknown>)['uri'];
      }
      break;
    }
    default:
      return undefined;
  }
  const nameBytes = tooLong(name, maxName);
  if (nameBytes !== undefined) return `the name is ${nameBytes} bytes long; names longer than ${maxName} bytes are refused (policy.maxNameBytes)`;
  const uriBytes = tooLong(uri, maxUri);
  if (uriBytes !== undefined) return `the resource URI is ${uriBytes} bytes long; URIs longer than ${maxUri} bytes are refused (policy.maxUriBytes)`;
  return undefined;
}
