import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { httpClient, referenceServer, startGateway, stdioServer, tempDir, type RunningGateway } from '../helpers/gateway.js';
import { policyGatewayYaml } from './helpers.js';

const PROMPT = 'everything.completable-prompt';
const TEMPLATE = 'everything+demo://resource/dynamic/text/{resourceId}';
const RESOURCE = 'everything+demo://resource/dynamic/text/1';

/** The error message of a request, or undefined when it succeeded. */
async function refusal(request: Promise<unknown>): Promise<string | undefined> {
  return request.then(
    () => undefined,
    (error: Error) => error.message,
  );
}

/**
 * Methods besides tools/call, prompts/get and resources/read also read or change upstream
 * state; each needs the grant that the corresponding read or call would need. The real
 * server-everything answers all of them, so every refusal here is the gateway's.
 */
describe('every method that reads or changes upstream state is a policy decision', () => {
  const tmp = tempDir('bastion-policy-methods-');
  let gw: RunningGateway;
  let outsider: Client;
  let insider: Client;

  before(async () => {
    writeFileSync(
      join(tmp.path, 'policy.yaml'),
      `version: 1
agents:
  outsider:
    grants: ["exec:tools:[everything.echo]"]
  insider:
    grants:
      - "exec:tools:[everything.echo]"
      - "exec:prompts:[${PROMPT}]"
      - "read:resources:demo://resource/dynamic/text/*"
      - "exec:logging:[everything]"
`,
    );
    const yaml = policyGatewayYaml({ agents: ['outsider', 'insider'], policyFile: join(tmp.path, 'policy.yaml'), servers: stdioServer('everything', referenceServer('everything'), ['stdio'], '    tools:\n      echo: { scopes: [] }\n') });
    gw = await startGateway(yaml);
    [outsider, insider] = await Promise.all([httpClient(gw.url, 'outsider-token'), httpClient(gw.url, 'insider-token')]);
  });

  after(async () => {
    await Promise.all([outsider?.close(), insider?.close()]);
    await gw?.stop();
    tmp.cleanup();
  });

  const completePrompt = (client: Client) => client.complete({ ref: { type: 'ref/prompt', name: PROMPT }, argument: { name: 'department', value: 'E' } });
  const completeTemplate = (client: Client) => client.complete({ ref: { type: 'ref/resource', uri: TEMPLATE }, argument: { name: 'resourceId', value: '1' } });

  test('an agent without the prompt grant asks completion/complete for its argument values: denied', async () => {
    assert.match((await refusal(completePrompt(outsider))) ?? 'allowed', /denied by policy.*exec:prompts:everything\.completable-prompt/);
    const granted = await completePrompt(insider);
    assert.deepEqual(granted.completion.values, ['Engineering']);
  });

  test('an agent without a resource grant asks completion/complete for a template: denied', async () => {
    assert.match((await refusal(completeTemplate(outsider))) ?? 'allowed', /denied by policy/);
    assert.equal(await refusal(completeTemplate(insider)), undefined);
  });

  test('an agent without the resource grant subscribes and unsubscribes: denied', async () => {
    assert.match((await refusal(outsider.subscribeResource({ uri: RESOURCE }))) ?? 'allowed', /denied by policy.*read:resources/);
    assert.match((await refusal(outsider.unsubscribeResource({ uri: RESOURCE }))) ?? 'allowed', /denied by policy.*read:resources/);
    assert.equal(await refusal(insider.subscribeResource({ uri: RESOURCE })), undefined);
    assert.equal(await refusal(insider.unsubscribeResource({ uri: RESOURCE })), undefined);
  });

  test('an agent without exec:logging sets the log level of every server: denied', async () => {
    assert.match((await refusal(outsider.setLoggingLevel('debug'))) ?? 'allowed', /denied by policy.*exec:logging:everything/);
    assert.equal(await refusal(insider.setLoggingLevel('debug')), undefined);
  });
});
