// /console: a message browser (kept inbound messages and files), one
// message's raw input, answer, reasons and the FHIR it became, replay with
// one click, and dead letters per subscription and GP practice. Messages are
// named by their opaque inbound id; filters are channels, senders, types and
// times; nothing about a patient is ever put in a URL.
import { api, el, fillTable, showError } from './common.js';

const $ = (id) => document.getElementById(id);
let before = 0;
let current = 0;

function filterQuery() {
  const q = new URLSearchParams();
  q.set('status', $('f-status').value);
  for (const k of ['adapter', 'channel', 'sender', 'kind', 'from', 'to']) {
    const v = $(`f-${k}`).value.trim();
    if (v) q.set(k, v);
  }
  q.set('_count', '50');
  return q;
}

async function list(append = false) {
  const state = $('list-state');
  state.dataset.state = 'loading';
  state.textContent = 'Loading…';
  showError('error', null);
  try {
    const q = filterQuery();
    if (append && before) q.set('before', String(before));
    const { body } = await api(`/console/api/messages?${q}`);
    const tbody = $('messages');
    if (!append) tbody.replaceChildren();
    for (const m of body.messages) {
      const tr = el('tr', { 'data-id': m.id, 'data-status': m.status, 'data-replay-of': m.replay_of || null },
        el('td', { text: m.id }), el('td', { text: m.received }), el('td', { text: m.adapter }),
        el('td', { text: m.channel }), el('td', { text: `${m.sender_ods} ${m.sender_system}` }),
        el('td', { text: m.kind }), el('td', { text: m.control_id }),
        el('td', { class: `status-${m.status}`, text: m.replay_of ? `${m.status} (replay of ${m.replay_of})` : m.status }),
        el('td', { text: m.reason }),
        el('td', {}, el('button', { class: 'secondary view', text: 'View', onclick: () => show(m.id) })));
      if (m.id === current) tr.classList.add('selected');
      tbody.append(tr);
    }
    before = body.next_before || 0;
    $('older').hidden = !before;
    state.dataset.state = 'done';
    state.textContent = `${tbody.children.length} message(s) shown.`;
  } catch (e) {
    showError('error', e);
    state.dataset.state = 'error';
  }
}

async function show(id) {
  showError('error', null);
  try {
    const { body: m } = await api(`/console/api/messages/${encodeURIComponent(id)}`);
    current = m.id;
    for (const tr of $('messages').children) tr.classList.toggle('selected', Number(tr.dataset.id) === m.id);
    $('detail').hidden = false;
    $('detail').dataset.id = m.id;
    $('d-id').textContent = String(m.id);
    $('d-status').textContent = m.status;
    $('d-status').className = `status-${m.status}`;
    fillTable($('d-meta'), [
      ['received', m.received], ['adapter', m.adapter], ['channel', m.channel],
      ['sender', `${m.sender_ods} ${m.sender_system}`], ['type', m.kind], ['control id', m.control_id],
      ['size', `${m.raw_bytes} bytes`], ['replay of', m.replay_of || ''],
    ].map(([k, v]) => ({ k, v })), ['k', 'v']);
    $('d-reason').textContent = m.reason || (m.status === 'quarantined' ? '' : 'not quarantined');
    $('d-issues').replaceChildren(...(m.issues || []).map((i) =>
      el('li', { text: `${i.severity || ''} ${i.code || ''} ${i.expression || ''}: ${i.message || i.diagnostics || ''}` })));
    const raw = $('d-raw');
    raw.classList.toggle('withheld', !!m.raw_withheld);
    raw.textContent = m.raw_withheld ? `withheld: ${m.raw_withheld}` : (m.raw !== undefined ? m.raw.replace(/\r/g, '\n') : `(base64) ${m.raw_base64}`);
    $('d-answer').textContent = m.answer ? m.answer.replace(/\r/g, '\n')
      : (m.status === 'quarantined' ? '(not kept for this message)' : '(accepted: the sender got AA)');
    const became = $('d-became');
    became.replaceChildren();
    if (!m.became.length) became.append(el('p', { class: 'muted', text: m.became_note || 'nothing (not accepted)' }));
    for (const b of m.became) {
      became.append(el('h4', { text: `${b.type}/${b.id} version ${b.version}` }));
      if (b.withheld) became.append(el('p', { class: 'withheld', text: `withheld: ${b.withheld}` }));
      else if (b.resource) became.append(el('pre', { class: 'fhir', text: JSON.stringify(b.resource, null, 2) }));
    }
    $('replay').hidden = m.status !== 'quarantined';
    $('replay').disabled = false;
    $('replay-result').textContent = '';
  } catch (e) {
    showError('error', e);
  }
}

async function replay() {
  const id = current;
  $('replay').disabled = true;
  const out = $('replay-result');
  out.textContent = 'Replaying…';
  try {
    const { status, body } = await api(`/console/api/messages/${encodeURIComponent(id)}/replay`,
      { method: 'POST', allowStatus: [422, 409] });
    const issues = (body.issues || []).map((i) => `${i.expression || ''} ${i.diagnostics || i.message || ''}`).join('; ');
    out.textContent = status === 200 ? `Replayed: ${body.outcome} (ACK ${body.ack_code}), new message ${body.inbound_id}`
      : `Still failing (${status}): ${body.outcome || ''} ${issues}`;
    out.dataset.outcome = body.outcome || String(status);
    await list();
    await show(id);
    out.dataset.outcome = body.outcome || String(status);
  } catch (e) {
    out.textContent = String(e.message);
    $('replay').disabled = false;
  }
}

async function replayDead(queue) {
  try {
    const { body } = await api(`/console/api/dead-letters/${encodeURIComponent(queue)}/replay`, { method: 'POST' });
    $('dead-result').textContent = `${queue}: ${body.replayed} dead letter(s) queued for delivery again.`;
    await status();
  } catch (e) {
    showError('error', e);
  }
}

async function status() {
  const { body } = await api('/console/api/status');
  const replayButton = (queue, dead) => el('button', { class: 'secondary', text: 'Replay dead letters', disabled: dead ? null : 'disabled',
    onclick: () => replayDead(queue) });
  fillTable($('subscriptions'), body.subscriptions, ['id', 'status', 'criteria', 'endpoint', 'pending', 'delivered', 'dead',
    'oldest_pending', (s) => replayButton(s.id, s.dead)]);
  fillTable($('practices'), body.practices, ['practice', 'pending', 'delivered', 'dead', 'oldest_pending',
    (p) => replayButton(p.queue, p.dead)]);
}

$('filters').addEventListener('submit', (e) => { e.preventDefault(); before = 0; list(); });
$('older').addEventListener('click', () => list(true));
$('replay').addEventListener('click', replay);
list();
status().catch((e) => showError('error', e));
