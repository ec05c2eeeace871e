/* global document, sessionStorage, TextDecoderStream */
// The Bastion operator console: one ES module, no dependencies, no build step. Every value from
// the gateway (tool names, descriptions, arguments, reasons) reaches the page through
// textContent only: nothing here parses data as HTML. The token lives in sessionStorage (this tab
// only) and goes in the Authorization header; the API refuses actions the role does not allow,
// and the page disables what the role cannot do.

const TOKEN_KEY = 'bastion.operatorToken';
const MAX_LIVE_ROWS = 300;

const state = { token: sessionStorage.getItem(TOKEN_KEY) ?? '', operator: undefined, mayApprove: false, view: 'live', stream: undefined, pending: new Map(), approvalLoads: new Set() };

const $ = (id) => document.getElementById(id);

/** Builds an element; strings among the children become text nodes, never markup. */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (key === 'onclick') node.addEventListener('click', value);
    else if (key === 'className') node.className = value;
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) if (child !== undefined && child !== null) node.append(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  return node;
}

const text = (value) => (value === undefined || value === null ? '' : typeof value === 'string' ? value : JSON.stringify(value, null, 2));
const time = (iso) => (typeof iso === 'string' ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '');

function status(message, isError = false) {
  const node = $('status');
  node.textContent = message;
  node.className = isError ? 'status error' : 'status';
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(`/api/v1/${path}`, { method: options.method ?? 'GET', headers, body: options.body === undefined ? undefined : JSON.stringify(options.body), cache: 'no-store', credentials: 'omit' });
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(body.error ?? `HTTP ${response.status}`);
  return body;
}

// ---- login ----

async function login(token) {
  state.token = token;
  const who = await api('whoami');
  sessionStorage.setItem(TOKEN_KEY, token);
  state.operator = who;
  state.mayApprove = who.may.approve === true;
  $('login').hidden = true;
  $('tabs').hidden = false;
  $('who').replaceChildren(el('span', { id: 'operator-name', text: `${who.operator} (${who.role})` }), el('button', { type: 'button', id: 'logout', onclick: logout }, 'Log out'));
  startStream();
  show('live');
}

function logout() {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = '';
  state.stream?.abort();
  document.location.reload();
}

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  login($('token').value.trim()).catch((error) => {
    $('login-error').textContent = `Login failed: ${error.message}`;
  });
});

for (const button of document.querySelectorAll('#tabs button')) button.addEventListener('click', () => show(button.dataset.view));

function show(view) {
  state.view = view;
  for (const section of document.querySelectorAll('section.view')) section.hidden = section.id !== view;
  for (const button of document.querySelectorAll('#tabs button')) button.classList.toggle('active', button.dataset.view === view);
  status('');
  const load = { denials: loadDenials, quarantines: loadQuarantines, approvals: loadApprovals, sessions: loadSessions, upstreams: loadUpstreams, findings: loadFindings }[view];
  if (load !== undefined) load().catch((error) => status(error.message, true));
}

// ---- live feed (SSE read through fetch, so the token stays in a header) ----

$('live-filter').addEventListener('change', () => {
  state.stream?.abort();
  $('live-rows').replaceChildren();
  startStream();
});

async function startStream() {
  const controller = new AbortController();
  state.stream = controller;
  const category = $('live-filter').value;
  try {
    const response = await fetch(`/api/v1/audit/stream?backlog=50${category === '' ? '' : `&category=${encodeURIComponent(category)}`}`, { headers: { Authorization: `Bearer ${state.token}` }, signal: controller.signal, cache: 'no-store' });
    if (!response.ok || response.body === null) throw new Error(`stream refused: HTTP ${response.status}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        onStreamEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
      }
    }
  } catch (error) {
    if (controller.signal.aborted) return;
    status(`live stream interrupted: ${error.message}; reconnecting`, true);
  }
  if (!controller.signal.aborted) setTimeout(startStream, 2000);
}

function onStreamEvent(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) event = line.slice(7);
    else if (line.startsWith('data: ')) data.push(line.slice(6));
  }
  if (data.length === 0) return;
  const payload = JSON.parse(data.join('\n'));
  if (event === 'record') addLiveRow(payload);
  else if (event === 'approval' || event === 'approval-decided') {
    for (const missed of state.approvalLoads) missed.push([event, payload]);
    applyApprovalEvent(state.pending, event, payload);
    renderApprovals();
  }
}

/** A call's tool as the agent called it; with curation's rename, the upstream's own name beside it. */
function toolLabel(record) {
  const invoked = record.tools_invoked?.[0] ?? record.tool ?? '';
  if (record.tool_called_as === undefined || record.server === undefined) return { name: invoked, label: invoked };
  const name = `${record.server}.${record.tool_called_as}`;
  return { name, label: `${name} (upstream: ${record.tool ?? invoked})` };
}

/** What an event concerns, in a few words: its server, tool, session or target. */
function eventSubject(info = {}) {
  const parts = [];
  if (typeof info.server === 'string') parts.push(info.tool === undefined ? String(info.server) : `${info.server}.${info.tool}`);
  if (info.action !== undefined) parts.push(`${info.action} ${text(info.target)} → ${text(info.outcome)}`);
  if (typeof info.transport === 'string') parts.push(String(info.transport));
  if (typeof info.session_id === 'string' && info.action === undefined) parts.push(`session ${String(info.session_id).slice(0, 18)}`);
  if (info.reason !== undefined && info.reason !== null) parts.push(String(info.reason));
  return parts.join(' · ');
}

function addLiveRow(record) {
  const row = record.kind === 'event' ? eventRow(record) : callRow(record);
  const rows = $('live-rows');
  rows.prepend(row);
  while (rows.children.length > MAX_LIVE_ROWS) rows.lastElementChild.remove();
}

function callRow(record) {
  const tool = toolLabel(record);
  return el(
    'tr',
    { className: 'clickable', 'data-kind': 'request', 'data-seq': record.seq, 'data-tool': tool.name, 'data-decision': record.decision ?? '', onclick: () => openRecord(record.seq) },
    el('td', {}, time(record.ts)),
    el('td', {}, String(record.seq)),
    el('td', {}, text(record.agent_id)),
    el('td', {}, text(record.method)),
    el('td', {}, tool.label),
    el('td', { className: record.decision ?? '' }, text(record.decision)),
    el('td', {}, record.exec_duration_ms === undefined ? '' : record.exec_duration_ms.toFixed(1)),
    el('td', {}, record.approval === undefined ? '' : `${record.approval}${record.approval_by === undefined ? '' : ` by ${record.approval_by}`}`),
  );
}

function eventRow(record) {
  const info = record.info ?? {};
  const decision = typeof info.decision === 'string' ? info.decision : '';
  return el(
    'tr',
    { className: 'clickable event', 'data-kind': 'event', 'data-seq': record.seq, 'data-event': record.event, 'data-decision': decision, onclick: () => openRecord(record.seq) },
    el('td', {}, time(record.ts)),
    el('td', {}, String(record.seq)),
    el('td', {}, text(info.agent ?? info.agent_id ?? info.operator)),
    el('td', { className: 'event-name' }, text(record.event)),
    el('td', {}, eventSubject(info)),
    el('td', { className: decision }, decision),
    el('td', {}, ''),
    el('td', {}, info.verdict === undefined ? '' : `${info.verdict}${info.by === undefined || info.by === null ? '' : ` by ${info.by}`} via ${text(info.via)}`),
  );
}

// ---- one record, with its chain position and verification ----

const CHECK_WORDS = { verified: 'verified', failed: 'FAILED', pending: 'pending', unavailable: 'not checked' };

/** One part of the badge: hash link, seal or checkpoint, each with its own state. */
function badgePart(id, label, status, detail) {
  const className = status === 'verified' ? 'badge ok' : status === 'failed' ? 'badge bad' : 'badge wait';
  return el('span', { id, className, 'data-status': status, title: detail ?? '' }, `${label}: ${CHECK_WORDS[status] ?? status}`);
}

async function openRecord(seq) {
  const { record, verification, seal, checkpoint, segment, line } = await api(`audit/records/${seq}`);
  show('record');
  const linked = verification.hashValid && verification.linked ? 'verified' : 'failed';
  $('record-badge').replaceChildren(
    badgePart('badge-link', 'hash link', linked, verification.problem),
    badgePart('badge-seal', 'seal', seal.status, seal.problem ?? (seal.sealSeq === undefined ? undefined : `audit.seal at seq ${seal.sealSeq}`)),
    badgePart('badge-checkpoint', 'checkpoint', checkpoint.status, checkpoint.problem ?? (checkpoint.treeSize === undefined ? undefined : `signed checkpoint of ${checkpoint.treeSize} records`)),
  );
  const sealText = seal.sealSeq === undefined ? `seal: ${seal.problem ?? seal.status}` : `sealed by seq ${seal.sealSeq}`;
  const checkpointText = checkpoint.treeSize === undefined ? `checkpoint: ${checkpoint.problem ?? checkpoint.status}` : `in checkpoint ${checkpoint.index === undefined ? '' : `#${checkpoint.index} `}of ${checkpoint.treeSize} records (${time(checkpoint.timestamp)})${checkpoint.problem === undefined ? '' : ` — ${checkpoint.problem}`}`;
  $('record-chain').textContent = `seq ${record.seq} in ${segment} line ${line}; hash ${record.hash}; prev ${record.prev}${verification.previousSeq === undefined ? '' : ` (= hash of seq ${verification.previousSeq})`}${verification.problem === undefined ? '' : ` — ${verification.problem}`}`;
  $('record-proof').textContent = `${sealText}; ${checkpointText}`;
  $('record-fields').replaceChildren(...Object.entries(record).map(([key, value]) => el('tr', {}, el('th', {}, key), el('td', {}, el('pre', {}, text(value))))));
}

// ---- denials, and why (the policy rules with file and line, through explain) ----

async function loadDenials() {
  const { records } = await api('audit?kind=request&decision=deny&limit=100');
  $('denial-rows').replaceChildren(
    ...records.map((record) => {
      const { name: tool, label } = toolLabel(record);
      const explainable = record.method === 'tools/call' && tool.includes('.') && record.agent_id !== undefined;
      return el(
        'tr',
        { 'data-seq': record.seq },
        el('td', {}, time(record.ts)),
        el('td', {}, el('a', { href: '#', onclick: (event) => (event.preventDefault(), openRecord(record.seq)) }, String(record.seq))),
        el('td', {}, text(record.agent_id)),
        el('td', {}, label),
        el('td', {}, text(record.denied_by)),
        el('td', {}, text(record.reason)),
        el('td', {}, explainable ? el('button', { type: 'button', className: 'explain', onclick: () => explain(record.agent_id, tool, record.input) }, 'Why?') : ''),
      );
    }),
  );
}

async function explain(agent, tool, input) {
  const args = input !== null && typeof input === 'object' && !Array.isArray(input) ? input : {};
  const { decision, approval } = await api('explain', { method: 'POST', body: { agent, tool, arguments: args } });
  const rules = decision.rules.map((rule) => el('tr', {}, el('td', { className: rule.effect }, rule.effect), el('td', {}, rule.requirement), el('td', {}, text(rule.grant)), el('td', {}, text(rule.via)), el('td', {}, text(rule.source))));
  $('explain-out').replaceChildren(
    el('h3', {}, `${agent} → ${tool}: ${decision.allow ? 'allowed' : 'denied'} (${decision.reason})`),
    el('p', {}, decision.message),
    approval === null ? '' : el('p', {}, `needs approval within ${approval.timeoutSeconds} s (grant ${approval.grant} at ${approval.source})`),
    el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'effect'), el('th', {}, 'requirement'), el('th', {}, 'grant'), el('th', {}, 'held by'), el('th', {}, 'file:line'))), el('tbody', {}, ...rules)),
  );
}

// ---- quarantines: side-by-side diff, approve / reject ----

async function loadQuarantines() {
  const { quarantines } = await api('quarantines');
  $('quarantine-rows').replaceChildren(
    ...quarantines
      .slice()
      .reverse()
      .map((record) =>
        el('tr', { className: 'clickable', 'data-id': record.id, onclick: () => openQuarantine(record.id) }, el('td', {}, record.id), el('td', {}, record.status), el('td', {}, record.server), el('td', {}, record.kind), el('td', {}, record.name), el('td', {}, record.cause), el('td', {}, time(record.createdAt))),
      ),
  );
}

function actionButtons(onApprove, onReject, labels) {
  const title = state.mayApprove ? undefined : `your role (${state.operator.role}) may only look; deciding needs approver`;
  return el(
    'div',
    { className: 'actions' },
    el('button', { type: 'button', className: 'approve', disabled: !state.mayApprove, title, onclick: onApprove }, labels[0]),
    el('button', { type: 'button', className: 'reject', disabled: !state.mayApprove, title, onclick: onReject }, labels[1]),
    state.mayApprove ? '' : el('span', { className: 'hint' }, ` read-only: ${title}`),
  );
}

async function openQuarantine(id) {
  const record = await api(`quarantines/${id}`);
  const cells = [el('div', { className: 'head' }, 'field'), el('div', { className: 'head' }, 'approved definition'), el('div', { className: 'head' }, 'new definition')];
  for (const change of record.diff) cells.push(el('div', { className: 'code' }, change.field), el('div', { className: 'old' }, el('pre', {}, text(change.old))), el('div', { className: 'new' }, el('pre', {}, text(change.new))));
  const decide = (verb) => async () => {
    try {
      const result = await api(`quarantines/${id}/${verb}`, { method: 'POST', body: { via: 'console' } });
      status(`${result.record.status} ${id}: ${result.note}`);
      await loadQuarantines();
      await openQuarantine(id);
    } catch (error) {
      status(error.message, true);
    }
  };
  $('quarantine-detail').replaceChildren(
    el('h3', { id: 'quarantine-title' }, `${record.server} ${record.kind} '${record.name}' — ${record.cause}, ${record.status}`),
    el('p', {}, `old ${record.oldDigest ?? '(none approved)'} → new ${record.newDigest}`),
    record.findings.length === 0 ? '' : el('ul', {}, ...record.findings.map((finding) => el('li', {}, `${finding.severity} ${finding.ruleId} in ${finding.field}`))),
    el('div', { className: 'diff', id: 'quarantine-diff' }, ...cells),
    record.status === 'held' ? actionButtons(decide('approve'), decide('reject'), ['Approve', 'Reject']) : el('p', {}, `decided ${time(record.decidedAt)}`),
    el('h4', {}, 'Whole definitions'),
    el('div', { className: 'diff', id: 'quarantine-whole' }, el('div', { className: 'head' }, ''), el('div', { className: 'head' }, 'approved'), el('div', { className: 'head' }, 'new'), el('div', {}, 'definition'), el('div', { className: 'old' }, el('pre', {}, record.oldDefinition === undefined ? '(none approved)' : text(record.oldDefinition))), el('div', { className: 'new' }, el('pre', {}, text(record.newDefinition)))),
  );
}

// ---- approvals ----

function applyApprovalEvent(pending, event, payload) {
  if (event === 'approval') pending.set(payload.id, payload);
  else pending.delete(payload.id);
}

// The snapshot may have been taken before a stream event that arrived while it was on its way; replaying
// those events on top keeps a call that started waiting meanwhile from vanishing from the page.
async function loadApprovals() {
  const during = [];
  state.approvalLoads.add(during);
  let snapshot;
  try {
    snapshot = await api('approvals');
  } finally {
    state.approvalLoads.delete(during);
  }
  const { pending, enabled } = snapshot;
  const next = new Map(pending.map((approval) => [approval.id, approval]));
  for (const [event, payload] of during) applyApprovalEvent(next, event, payload);
  state.pending = next;
  renderApprovals();
  if (!enabled) status('approvals need an enforced policy (policy.enforce: true)');
}

function renderApprovals() {
  $('approval-count').textContent = state.pending.size === 0 ? '' : String(state.pending.size);
  const decide = (id, verb) => async () => {
    try {
      await api(`approvals/${id}/${verb}`, { method: 'POST', body: { via: 'console' } });
      state.pending.delete(id);
      renderApprovals();
      status(`${verb === 'allow' ? 'allowed' : 'denied'} ${id}`);
    } catch (error) {
      status(error.message, true);
    }
  };
  const cards = [...state.pending.values()].map((approval) =>
    el(
      'div',
      { className: 'card approval', 'data-id': approval.id },
      el('h3', {}, `${approval.agent} → ${approval.server}.${approval.calledAs ?? approval.tool}`),
      approval.calledAs === undefined ? '' : el('p', { className: 'hint' }, `curated name; the server calls it ${approval.tool}`),
      el('p', {}, `waiting since ${time(approval.requestedAt)}; denied automatically at ${time(approval.deadline)}; grant ${approval.grant} (${approval.source})`),
      el('pre', {}, text(approval.arguments)),
      actionButtons(decide(approval.id, 'allow'), decide(approval.id, 'deny'), ['Allow', 'Deny']),
    ),
  );
  $('approval-list').replaceChildren(...(cards.length === 0 ? [el('p', { className: 'hint' }, 'No call is waiting.')] : cards));
}

// ---- upstreams, breakers, quotas ----

async function loadUpstreams() {
  const [{ servers, health, breakers }, quotas] = await Promise.all([api('upstreams'), api('quotas')]);
  const byName = new Map(health.map((item) => [item.server, item]));
  $('upstream-rows').replaceChildren(
    ...servers.map((server) => {
      const item = byName.get(server.name) ?? {};
      return el('tr', { 'data-server': server.name }, el('td', {}, server.name), el('td', {}, server.transport), el('td', {}, server.admission.ok ? `admitted (${server.admission.trust})` : `refused: ${server.admission.reason}`), el('td', {}, text(item.state)), el('td', {}, `${text(item.lastEvent)} ${time(item.lastEventAt)} ${text(item.detail)}`), el('td', {}, text(item.starts)), el('td', {}, text(item.restarts)));
    }),
  );
  $('breaker-rows').replaceChildren(...breakers.map((breaker) => el('tr', {}, el('td', {}, breaker.breaker), el('td', {}, breaker.target), el('td', {}, breaker.state), el('td', {}, text(breaker.cause)), el('td', {}, time(breaker.since)))));
  const { store, ...rules } = quotas;
  $('quota-store').textContent = store.kind === 'none' ? '(quotas off)' : `held by the ${store.kind} store${store.reachable === false ? ` — NOT REACHABLE: ${store.error}` : ''}${store.truncated ? ' (first 500 shown)' : ''}`;
  $('quota-rows').replaceChildren(...store.counters.map((counter) => el('tr', { 'data-key': counter.key }, el('td', { className: 'code' }, counter.key), el('td', {}, counter.type), el('td', {}, Number.isInteger(counter.value) ? String(counter.value) : counter.value.toFixed(2)), el('td', {}, (counter.ttlMs / 1000).toFixed(1)))));
  $('quota-text').textContent = text(rules);
}

// ---- sessions and agents ----

async function loadSessions() {
  const { sessions, agents } = await api('sessions');
  $('session-rows').replaceChildren(
    ...sessions.map((session) =>
      el('tr', { 'data-session': session.sessionId, 'data-transport': session.transport, 'data-kind': session.kind }, el('td', { className: 'code' }, session.sessionId), el('td', {}, session.agent), el('td', {}, session.transport), el('td', {}, session.kind), el('td', {}, text(session.protocolVersion)), el('td', {}, `${text(session.client.name)} ${text(session.client.version)}`), el('td', {}, String(session.calls)), el('td', {}, String(session.inFlight)), el('td', {}, time(session.lastSeen))),
    ),
  );
  $('agent-rows').replaceChildren(...agents.map((agent) => el('tr', { 'data-agent': agent.agent }, el('td', {}, agent.agent), el('td', {}, String(agent.sessions)), el('td', {}, agent.hasPolicy ? 'yes' : 'no'))));
}

// ---- scanner findings per server ----

async function loadFindings() {
  const { servers } = await api('findings');
  $('finding-list').replaceChildren(
    ...servers.map((server) =>
      el(
        'div',
        { className: 'card', 'data-server': server.name },
        el('h3', {}, `${server.name}: ${server.admission.ok ? 'admitted' : 'refused'}; certification level required ${server.minCertificationLevel}`),
        server.admission.ok ? '' : el('p', { className: 'error' }, server.admission.reason),
        el('p', {}, `${server.quarantined.length} quarantine(s), ${server.withheld.length} withheld output(s), ${server.events.length} inspection event(s)`),
        el('ul', {}, ...server.quarantined.flatMap((item) => item.findings.map((finding) => el('li', {}, `${finding.severity} ${finding.ruleId} in ${item.kind} '${item.name}' ${finding.field} (${item.status})`)))),
        el('ul', {}, ...server.withheld.map((entry) => el('li', {}, `${time(entry.ts)} ${entry.subject}: ${entry.reason}`))),
        el('ul', {}, ...server.events.map((event) => el('li', {}, `${time(event.ts)} ${event.event} ${text(event.info)}`))),
      ),
    ),
  );
}

if (state.token !== '') login(state.token).catch(() => sessionStorage.removeItem(TOKEN_KEY));
