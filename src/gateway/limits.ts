import type { BastionConfig } from '../config/index.js';

/** The largest request any server or tool allows: the most a transport ever buffers for one message. */
export function largestRequestCap(config: BastionConfig): number {
  const caps = [config.limits.maxRequestBytes];
  for (const server of Object.values(config.servers)) {
    if (server.limits?.maxRequestBytes !== undefined) caps.push(server.limits.maxRequestBytes);
    for (const tool of Object.values(server.tools ?? {})) if (tool.limits?.maxRequestBytes !== undefined) caps.push(tool.limits.maxRequestBytes);
  }
  return Math.max(...caps);
}
