// The operator console in a real browser: Debian's Chromium driven by playwright-core (no
// browser download; as root Chromium needs --no-sandbox, which only affects the browser's own
// process isolation here, not the page's same-origin rules or its CSP). One browser for the file.
// The gateway runs a real server that rug-pulls a tool into a description with a <script>.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { callError, firstText, httpClient, type RunningGateway } from '../helpers/gateway.js';
import { ALICE, APPROVER, BOB, VIEWER, api, startConsoleGateway } from './api/helpers.js';

// The fixture's text, written out: importing the fixture module would start its server on this process's stdin.
const SCRIPT_DESCRIPTION = 'Weather.</pre></div><script>window.__bastionPwned = 1; document.title = "pwned"</script><img src="x" onerror="window.__bastionPwned = 2">';
const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'console');
/** "Within a second" of the call's answer, as the issue asks. */
const LIVE_WITHIN_MS = 1000;

async function loginAs(browser: Browser, admin: string, token: string): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (message) => {
    // The browser asks for /favicon.ico on its own; the console has none.
    if (message.type() === 'error' && !message.location().url.endsWith('/favicon.ico')) errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`${admin}/console`);
  await page.fill('#token', token);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#operator-name');
  return { page, errors };
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

const shot = (page: Page, name: string): Promise<Buffer> => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

describe('the operator console', () => {
  let browser: Browser;
  let running: RunningGateway;
  let admin: string;
  let cleanup: () => Promise<void>;
  let alice: Client;
  let bob: Client;
  let approver: { page: Page; errors: string[] };
  let viewer: { page: Page; errors: string[] };

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    ({ running, admin, cleanup } = await startConsoleGateway({
      rugpullAfter: 1,
      descriptionScript: true,
      // Curation shows `add` as `sum`; checkpoints come often so a record's badge can show one.
      renameAdd: 'sum',
      extraYaml: ['audit: { checkpoint: { everyRecords: 5, everySeconds: 1 } }', 'quotas:', '  rates:', '    - { name: per-agent, scope: agent, points: 1000, durationMs: 60000 }'],
    }));
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
    alice = await httpClient(running.url, ALICE);
    bob = await httpClient(running.url, BOB);
    approver = await loginAs(browser, admin, APPROVER);
    viewer = await loginAs(browser, admin, VIEWER);
  });
  after(async () => {
    await browser?.close();
    await alice?.close();
    await bob?.close();
    await cleanup?.();
  });

  test('the page is served with a strict Content-Security-Policy and no inline script', async () => {
    const response = await fetch(`${admin}/console`);
    const csp = response.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const html = await response.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'every script is a file');
    assert.equal(await approver.page.textContent('#operator-name'), 'abe (approver)');
  });

  test('a call appears in the live feed within a second, with its decision and latency', async () => {
    const { page } = approver;
    await page.click('#tabs button[data-view=live]');
    assert.equal(firstText(await alice.callTool({ name: 'rugpull.echo', arguments: { message: 'seen live' } })), 'seen live');
    const row = await page.waitForSelector('#live-rows tr[data-tool="rugpull.echo"][data-decision="allow"]', { timeout: LIVE_WITHIN_MS });
    const cells = await row.$$eval('td', (tds) => tds.map((td) => td.textContent));
    assert.equal(cells[2], 'alice');
    assert.equal(cells[3], 'tools/call');
    assert.match(cells[6] ?? '', /^\d+\.\d$/);
    await shot(page, '1-live-feed');
    await row.click();
    await page.waitForSelector('#record:not([hidden])');
    assert.equal(await page.textContent('#badge-link'), 'hash link: verified');
    assert.equal(await page.textContent('#badge-seal'), 'seal: verified');
    assert.match((await page.textContent('#record-chain')) ?? '', /^seq \d+ in .* line \d+; hash [0-9a-f]{64}; prev [0-9a-f]{64} \(= hash of seq \d+\)$/);
    // A checkpoint covers the record within a second or so (everySeconds: 1); then the badge shows it too.
    const seq = Number(await row.getAttribute('data-seq'));
    await until(async () => ((await api(admin, `audit/records/${seq}`, VIEWER)).body['checkpoint'] as { status: string }).status === 'verified', 'a checkpoint covering the record');
    await page.click('#tabs button[data-view=live]');
    await page.locator(`#live-rows tr[data-seq="${seq}"]`).click();
    await page.waitForSelector('#badge-checkpoint[data-status="verified"]');
    assert.equal(await page.textContent('#badge-checkpoint'), 'checkpoint: verified');
    assert.match((await page.textContent('#record-proof')) ?? '', /^sealed by seq \d+; in checkpoint #\d+ of \d+ records/);
    await shot(page, '2-record');
  });

  test('the live feed carries events (a session opening), and the filter narrows it to one category', async () => {
    const { page } = approver;
    await page.click('#tabs button[data-view=live]');
    const carol = await httpClient(running.url, ALICE);
    try {
      // This session's own row: the feed may already hold other sessions' openings, which would
      // match at once (and carry another agent).
      const ownSession = (carol.transport as { sessionId?: string } | undefined)?.sessionId ?? '';
      assert.notEqual(ownSession, '', 'the gateway gave the session an id');
      const row = await page.waitForSelector(`#live-rows tr[data-event="session.created"]:has-text("session ${ownSession.slice(0, 18)}")`, { timeout: LIVE_WITHIN_MS });
      assert.match((await row.textContent()) ?? '', /alicesession\.created/);
      await page.selectOption('#live-filter', 'sessions');
      await page.waitForSelector('#live-rows tr[data-event="session.created"]');
      assert.equal(await page.locator('#live-rows tr[data-kind="request"]').count(), 0, 'no call under the sessions filter');
      await shot(page, '1b-live-events');
      await page.selectOption('#live-filter', '');
      await page.waitForSelector('#live-rows tr[data-kind="request"]');
    } finally {
      await carol.close();
    }
  });

  test('denials show why: the denying guard, the reason, and the policy rules with file and line', async () => {
    await callError(bob, 'rugpull.echo', { message: 'not granted' });
    const { page } = approver;
    await page.waitForSelector('#live-rows tr[data-tool="rugpull.echo"][data-decision="deny"]', { timeout: LIVE_WITHIN_MS, state: 'attached' });
    await page.click('#tabs button[data-view=denials]');
    const row = await page.waitForSelector('#denial-rows tr:has(td:text-is("bob"))');
    assert.match((await row.textContent()) ?? '', /policytool_not_granted/);
    await row.click();
    await (await row.$('button.explain'))?.click();
    await page.waitForSelector('#explain-out h3');
    assert.equal(await page.textContent('#explain-out h3'), 'bob → rugpull.echo: denied (tool_not_granted)');
    await shot(page, '3-denials');
  });

  test('a rug pull appears in quarantines with its diff, the <script> in it renders as text, and approving it lets the next call through', async () => {
    const refused = await callError(alice, 'rugpull.get_weather', { city: 'Oslo' });
    const id = /quarantine (q-[0-9a-f]{16})/.exec(refused.message)?.[1] ?? assert.fail(refused.message);
    const { page, errors } = approver;
    await page.click('#tabs button[data-view=quarantines]');
    await page.click(`#quarantine-rows tr[data-id="${id}"]`);
    await page.waitForSelector('#quarantine-diff');
    const diffText = (await page.textContent('#quarantine-diff')) ?? '';
    assert.ok(diffText.includes('<script>'), diffText);
    const whole = (await page.textContent('#quarantine-whole')) ?? '';
    assert.ok(whole.includes('Returns the weather forecast for a city.'), 'the approved definition sits beside the new one');
    assert.ok(whole.includes(SCRIPT_DESCRIPTION.replaceAll('"', '\\"')), whole);
    assert.equal(await page.locator('#quarantine-diff script, #quarantine-diff img').count(), 0, 'no element was made from the description');
    assert.equal(await page.evaluate(() => (globalThis as { __bastionPwned?: number }).__bastionPwned), undefined);
    assert.notEqual(await page.title(), 'pwned');
    await shot(page, '4-quarantine-diff');
    await page.click('#quarantine-detail button.approve');
    await page.waitForSelector('#quarantine-title:text-matches("approved$")');
    assert.match(firstText(await alice.callTool({ name: 'rugpull.get_weather', arguments: { city: 'Bergen' } })), /Bergen/);
    assert.deepEqual(errors, [], 'no script error or CSP violation in the page');
  });

  test('a call that needs approval waits; the approver clicks Allow; the client gets its result', async () => {
    const { page } = approver;
    // The tab's snapshot is taken before the call starts and delivered only after the stream has shown
    // the call: the page must keep the card the stream brought, not the stale snapshot's empty list.
    let snapshotFetched!: () => void;
    const fetched = new Promise<void>((resolve) => (snapshotFetched = resolve));
    let releaseSnapshot!: () => void;
    const released = new Promise<void>((resolve) => (releaseSnapshot = resolve));
    let snapshotServed!: () => void;
    const served = new Promise<void>((resolve) => (snapshotServed = resolve));
    await page.route('**/api/v1/approvals', async (route) => {
      const stale = await route.fetch();
      snapshotFetched();
      await released;
      await route.fulfill({ response: stale });
      snapshotServed();
    });
    await page.click('#tabs button[data-view=approvals]');
    await fetched;
    const call = alice.callTool({ name: 'rugpull.sum', arguments: { a: 2, b: 3 } });
    await page.waitForSelector('#approval-list .approval:has(h3:text-is("alice → rugpull.sum"))');
    releaseSnapshot();
    await served;
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 200)));
    await page.unroute('**/api/v1/approvals');
    assert.equal(await page.locator('#approval-list .approval').count(), 1, 'the stale snapshot did not remove the waiting call');
    const card = await page.waitForSelector('#approval-list .approval:has(h3:text-is("alice → rugpull.sum"))');
    assert.match((await card.textContent()) ?? '', /"a": 2/);
    assert.match((await card.textContent()) ?? '', /curated name; the server calls it add/);
    assert.equal(await page.textContent('#approval-count'), '1');
    await shot(page, '5-approvals');
    await page.locator('#approval-list .approval:has(h3:text-is("alice → rugpull.sum")) button.approve').click();
    assert.equal(firstText(await call), '5');
    const row = await page.waitForSelector('#live-rows tr[data-tool="rugpull.sum"]', { timeout: LIVE_WITHIN_MS, state: 'attached' });
    assert.match((await row.textContent()) ?? '', /rugpull\.sum \(upstream: add\)/);
    assert.match((await row.textContent()) ?? '', /allowed by abe/);
    assert.equal(await page.textContent('#approval-count'), '');
  });

  test('a viewer sees pending calls and quarantines read-only; the API refuses the action even if the page is bypassed', async () => {
    const { page } = viewer;
    await page.click('#tabs button[data-view=approvals]');
    const call = alice.callTool({ name: 'rugpull.sum', arguments: { a: 1, b: 1 } }).then(() => 'allowed', (error: Error) => error.message);
    const card = await page.waitForSelector('#approval-list .approval');
    assert.equal(await card.$eval('button.approve', (button) => (button as HTMLButtonElement).disabled), true);
    assert.equal(await card.$eval('button.reject', (button) => (button as HTMLButtonElement).disabled), true);
    assert.match((await card.textContent()) ?? '', /read-only: your role \(viewer\) may only look/);
    await shot(page, '6-viewer-approvals');
    const id = await card.getAttribute('data-id');
    const status = await page.evaluate(async ({ id: approval, token }) => (await fetch(`/api/v1/approvals/${approval}/allow`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: '{}' })).status, { id, token: VIEWER });
    assert.equal(status, 403);
    viewer.errors.length = 0; // the browser logs the refused request it was told to make
    // The approver ends the wait so the client is not left hanging.
    await approver.page.click('#tabs button[data-view=approvals]');
    // A locator, not an element handle: the list re-renders on every refresh and a handle can go stale between finding and clicking.
    await approver.page.locator(`#approval-list .approval[data-id="${id}"] button.reject`).click();
    assert.match(await call, /an approver denied this call/);
  });

  test('sessions are listed with their transport and kind', async () => {
    const { page } = viewer;
    await page.click('#tabs button[data-view=sessions]');
    const row = await page.waitForSelector('#session-rows tr[data-transport="http"][data-kind="session"]');
    assert.match((await row.textContent()) ?? '', /alicehttpsession2025-11-25bastion-test 1\.0\.0/);
    assert.match((await page.textContent('#agent-rows tr[data-agent="alice"]')) ?? '', /^alice\d+yes$/);
    await shot(page, '9-sessions');
  });

  test('upstream health, breakers, quotas and scanner findings have their views', async () => {
    const { page } = viewer;
    await page.click('#tabs button[data-view=upstreams]');
    const row = await page.waitForSelector('#upstream-rows tr[data-server="rugpull"]');
    assert.match((await row.textContent()) ?? '', /rugpullstdioadmitted \(unsigned\)up/);
    assert.match((await page.textContent('#quota-text')) ?? '', /"enabled": true/);
    // The counter as the store holds it: alice's bucket, spent by the calls above.
    const counter = await page.waitForSelector('#quota-rows tr[data-key="rate:per-agent:a:alice"]');
    assert.match((await counter.textContent()) ?? '', /^rate:per-agent:a:alicetokenBucket9\d\d(\.\d\d)?\d+\.\d$/);
    assert.equal(await page.textContent('#quota-store'), 'held by the memory store');
    await shot(page, '7-upstreams');
    await page.click('#tabs button[data-view=findings]');
    const card = await page.waitForSelector('#finding-list .card[data-server="rugpull"]');
    assert.match((await card.textContent()) ?? '', /1 quarantine\(s\)/);
    await shot(page, '8-findings');
    assert.deepEqual(viewer.errors, []);
  });
});
