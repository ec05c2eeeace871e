import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CreateMessageRequestSchema, ElicitRequestSchema, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { configYaml, firstText, httpClient, referenceServer, startGateway, stdioServer, tempDir, type RunningGateway } from '../helpers/gateway.js';

describe('the gateway over Streamable HTTP in front of the MCP reference servers', () => {
  let gw: RunningGateway;
  let client: Client;
  const files = tempDir('bastion-fs-');

  before(async () => {
    mkdirSync(join(files.path, 'docs'));
    writeFileSync(join(files.path, 'docs', 'hello.txt'), 'hello from the filesystem server\n');
    gw = await startGateway(
      configYaml(
        stdioServer('everything', referenceServer('everything'), ['stdio']) +
          stdioServer('filesystem', referenceServer('filesystem'), [files.path]) +
          stdioServer('memory', referenceServer('memory'), [], `    env:\n      MEMORY_FILE_PATH: ${JSON.stringify(join(files.path, 'memory.jsonl'))}\n`),
      ),
    );
    client = await httpClient(gw.url, undefined, { sampling: {}, elicitation: {}, roots: { listChanged: true } });
    client.setRequestHandler(CreateMessageRequestSchema, async (request) => ({
      role: 'assistant',
      content: { type: 'text', text: `sampled: ${JSON.stringify(request.params.messages[0]?.content)}` },
      model: 'test-model',
      stopReason: 'endTurn',
    }));
    client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { name: 'Ada' } }));
  });

  after(async () => {
    await client?.close();
    await gw?.stop();
    files.cleanup();
  });

  test('answers initialize as Bastion with the negotiated protocol version', () => {
    assert.equal(client.getServerVersion()?.name, 'bastion');
    assert.ok(client.getServerCapabilities()?.tools);
  });

  test('lists every server\'s tools under its own namespace, so names never collide', async () => {
    const { tools } = await client.listTools();
    const names = tools.map((tool) => tool.name);
    assert.ok(names.includes('everything.echo'));
    assert.ok(names.includes('filesystem.read_text_file'));
    assert.ok(names.includes('memory.create_entities'));
    assert.equal(new Set(names).size, names.length);
    assert.ok(names.every((name) => /^(everything|filesystem|memory)\./.test(name)));
  });

  test('calls tools on each upstream and returns their answers', async () => {
    assert.equal(firstText(await client.callTool({ name: 'everything.echo', arguments: { message: 'ping' } })), 'Echo: ping');
    const read = await client.callTool({ name: 'filesystem.read_text_file', arguments: { path: join(files.path, 'docs', 'hello.txt') } });
    assert.match(firstText(read), /hello from the filesystem server/);
    await client.callTool({ name: 'memory.create_entities', arguments: { entities: [{ name: 'bastion', entityType: 'gateway', observations: ['guards MCP'] }] } });
    const graph = await client.callTool({ name: 'memory.read_graph', arguments: {} });
    assert.match(JSON.stringify(graph), /guards MCP/);
  });

  test('reads resources and resource templates through namespaced URIs', async () => {
    const { resources } = await client.listResources();
    const first = resources[0];
    assert.ok(first !== undefined && first.uri.startsWith('everything+'));
    const read = await client.readResource({ uri: first.uri });
    assert.equal(read.contents[0]?.uri, first.uri);
    const { resourceTemplates } = await client.listResourceTemplates();
    assert.ok(resourceTemplates.some((template) => template.uriTemplate.startsWith('everything+')));
  });

  test('gets prompts with arguments', async () => {
    const { prompts } = await client.listPrompts();
    assert.ok(prompts.some((prompt) => prompt.name === 'everything.args-prompt'));
    const prompt = await client.getPrompt({ name: 'everything.args-prompt', arguments: { city: 'Lyon', state: 'Rhône' } });
    assert.match(JSON.stringify(prompt.messages), /Lyon/);
  });

  test('relays a sampling request from an upstream to the client that made the call, and the answer back', async () => {
    const result = await client.callTool({ name: 'everything.trigger-sampling-request', arguments: { prompt: 'say hi', maxTokens: 10 } });
    assert.match(JSON.stringify(result), /sampled:/);
  });

  test('relays an elicitation request and the user\'s answer', async () => {
    const result = await client.callTool({ name: 'everything.trigger-elicitation-request', arguments: {} });
    assert.match(JSON.stringify(result), /Ada/);
  });

  test('delivers progress notifications for a long-running call under the client\'s own progress token', async () => {
    const seen: number[] = [];
    const result = await client.callTool({ name: 'everything.trigger-long-running-operation', arguments: { duration: 1, steps: 3 } }, undefined, {
      onprogress: (progress) => seen.push(progress.progress),
    });
    assert.match(firstText(result), /completed/i);
    // The reference server may write its last progress after the result; the first ones are always in time.
    assert.ok(seen.length >= 2 && seen[0] === 1, `progress seen: ${JSON.stringify(seen)}`);
    assert.ok(seen.every((value, index) => value === index + 1));
  });

  test('forwards log messages from an upstream, labelled with the server name', async () => {
    const messages: string[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => {
      messages.push(String(notification.params.logger));
    });
    await client.setLoggingLevel('debug');
    await client.callTool({ name: 'everything.toggle-simulated-logging', arguments: {} });
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await client.callTool({ name: 'everything.toggle-simulated-logging', arguments: {} });
    assert.ok(messages.length > 0, 'no log message reached the client');
    assert.ok(messages.every((logger) => logger.startsWith('everything')));
  });

  test('rejects arguments that do not match the tool\'s inputSchema before they reach the server', async () => {
    const result = await client.callTool({ name: 'everything.echo', arguments: { wrong: 1 } }).catch((error: Error) => error);
    assert.ok(result instanceof Error);
    assert.match(result.message, /invalid arguments.*message/);
  });

  test('refuses a tool name without a known server namespace', async () => {
    const result = await client.callTool({ name: 'echo', arguments: { message: 'x' } }).catch((error: Error) => error);
    assert.ok(result instanceof Error);
    assert.match(result.message, /unknown tool/);
  });
});
