// What the config reload tests share: reference servers in a config, waiting, listing, a client
// that keeps calling, and the reload audit records.
import assert from 'node:assert/strict';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { firstText, referenceServer, type RunningGateway } from '../helpers/gateway.js';
import type { PooledProcess } from '../../src/gateway/pool/process.js';
import { auditRecords, type LoggedRecord } from '../helpers/audit.js';

export function server(name: string, which: 'everything' | 'memory', extra = ''): string {
  return `  ${name}:
    transport: stdio
    command: ${JSON.stringify(process.execPath)}
    args: ${JSON.stringify([referenceServer(which)])}
    trust: unsigned
${extra}`;
}

export const RELOAD = 'reload: { watch: false, drainSeconds: 30 }';
/** The everything server with an env mark, a rename, an override, and an entry for a tool it does not list. */
export const CURATED = '    env: { RELOAD_MARK: second }\n    tools:\n      echo: { rename: say, description: Repeats the message. }\n      no-such-tool: { hidden: true }';

export async function until(check: () => boolean | Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function toolNames(client: Client): Promise<string[]> {
  return (await client.listTools()).tools.map((tool) => tool.name);
}

/** Calls the memory server in a loop until stopped; counts calls and keeps every error. */
export function keepCalling(client: Client): { stop(): Promise<{ calls: number; errors: string[] }> } {
  let running = true;
  let calls = 0;
  const errors: string[] = [];
  const loop = (async () => {
    while (running) {
      try {
        const result = await client.callTool({ name: 'mem.read_graph', arguments: {} });
        if (result.isError === true) errors.push(firstText(result));
        calls += 1;
        // A short pause: the loop stands for a busy client, not a flood.
        await new Promise((resolve) => setTimeout(resolve, 20));
      } catch (error) {
        errors.push(error instanceof Error ? error.message : String(error));
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { calls, errors };
    },
  };
}

/** The pooled process of `server` that serves bob (the watching session's agent). */
export function bobs(gw: RunningGateway, server: string): PooledProcess | undefined {
  return gw.gateway.pools.list(server).find((process) => process.facts.agentId === 'bob');
}

export function reloadRecords(gw: RunningGateway, event = 'config.reload'): LoggedRecord[] {
  return auditRecords(gw.bastion.audit.dir).filter((record) => record.event === event);
}

