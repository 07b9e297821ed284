// /dashboard: the data-flow report (/audit/flows, by=day for the chart) and
// the queues' state (/dashboard/api/status), for commissioners. The period is
// held in the form only: nothing about a patient is ever in a URL here.
import { api, el, fillTable, showError, ymd } from './common.js';

// A datetime-local value, read as UTC, as the instant /audit/flows takes.
const instant = (v) => (v.length === 16 ? `${v}:00Z` : `${v.slice(0, 19)}Z`);

const $ = (id) => document.getElementById(id);
const num = (v) => (v === undefined || v === null || v < 0 ? '' : String(v));
const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

function drawChart(days) {
  const chart = $('chart');
  chart.replaceChildren();
  const W = 800, H = 200, pad = 24;
  chart.setAttribute('viewBox', `0 0 ${W} ${H + 20}`);
  const max = Math.max(1, ...days.map((d) => d.events));
  const w = (W - pad) / Math.max(1, days.length);
  chart.append(svg('text', { x: 0, y: 10 }));
  chart.lastChild.textContent = String(max);
  days.forEach((d, i) => {
    const h = Math.round((d.events / max) * (H - 10));
    const bar = svg('rect', { class: 'bar', x: pad + i * w + 1, y: H - h, width: Math.max(1, w - 2), height: h,
      'data-day': d.day, 'data-events': d.events });
    const title = svg('title', {});
    title.textContent = `${d.day}: ${d.events} events, ${d.failures} failures, ${d.delivered} delivered, ${d.dead} dead`;
    bar.append(title);
    chart.append(bar);
    const fh = Math.round((d.failures / max) * (H - 10));
    if (fh > 0) chart.append(svg('rect', { class: 'bar failures', x: pad + i * w + 1, y: H - fh, width: Math.max(1, w - 2), height: fh }));
    if (days.length <= 31 || i % Math.ceil(days.length / 31) === 0) {
      const t = svg('text', { x: pad + i * w + 1, y: H + 14 });
      t.textContent = d.day.slice(5);
      chart.append(t);
    }
  });
}

async function showFlows(from, to) {
  const q = new URLSearchParams({ from, to });
  $('csv').href = `/audit/flows?${q}&format=csv`;
  $('glass-csv').href = `/audit/flows?${q}&format=csv&table=break-glass`;
  $('period-text').textContent = `[${from}, ${to}) UTC`;
  const { body } = await api(`/audit/flows?${q}&by=day`);
  const flows = body.flows || [];
  const sum = (k) => flows.reduce((a, f) => a + (f[k] || 0), 0);
  $('total-events').textContent = String(sum('events'));
  $('total-flows').textContent = String(flows.length);
  $('total-failures').textContent = String(sum('failures'));
  $('total-delivered').textContent = String(sum('delivered'));
  $('total-dead').textContent = String(sum('dead'));
  fillTable($('flows'), flows, ['from_org', 'from_system', 'to_org', 'channel', 'topic', 'purpose',
    'events', 'failures', 'retries', 'dead', 'delivered', (f) => num(f.latency_median_ms), (f) => num(f.latency_p99_ms)]);
  for (const tr of $('flows').children) for (const td of [...tr.children].slice(6)) td.className = 'num';
  drawChart(body.days || []);
  const sg = body.safeguarding || {};
  fillTable($('cpis'), sg.cpis_queries_by_unscheduled_care_site || [], ['site', 'queries', 'found_plan']);
  fillTable($('disclosures'), sg.disclosures_by_topic || [], ['topic', 'delivered', 'retries', 'dead',
    (t) => num(t.latency_median_ms), (t) => num(t.latency_p99_ms)]);
  fillTable($('break-glass'), sg.break_glass_by_person || [], ['organisation', 'person', 'name', 'accesses']);
  $('not-counted').replaceChildren(...(sg.not_counted || []).map((n) => el('li', {}, el('code', { text: n.figure }), ` — ${n.why}`)));
}

async function showStatus() {
  const { body } = await api('/dashboard/api/status');
  const quarantined = body.quarantine ? (body.quarantine.quarantined || 0) : null;
  $('quarantined').textContent = quarantined === null ? 'not counted on this store' : String(quarantined);
  $('fig-quarantine').classList.toggle('bad', quarantined > 0);
  $('dead-letters').textContent = String(body.dead_letters);
  $('fig-dead').classList.toggle('bad', body.dead_letters > 0);
  $('undelivered').textContent = String(body.undelivered);
  $('oldest-undelivered').textContent = body.oldest_undelivered || 'none';
  const ack = body.acknowledgement || { by_organisation_and_topic: [] };
  $('unacknowledged').textContent = num(ack.unacknowledged);
  $('escalated').textContent = num(ack.escalated);
  $('escalated-nurse').textContent = num(ack.escalated_to_nurse);
  $('fig-escalated').classList.toggle('bad', ack.escalated > 0);
  fillTable($('backlog'), ack.by_organisation_and_topic, ['organisation', 'topic', 'unacknowledged', 'escalated',
    'escalated_to_nurse']);
  for (const tr of $('backlog').children) for (const td of [...tr.children].slice(2)) td.className = 'num';
  $('backlog-none').hidden = ack.by_organisation_and_topic.length > 0;
  $('backlog-truncated').hidden = !ack.truncated;
  const failing = [...(body.subscriptions || []).filter((s) => s.failing).map((s) => ({ queue: `Subscription/${s.id}`, ...s })),
    ...(body.practices || []).filter((p) => p.failing).map((p) => ({ queue: `GP practice ${p.practice}`, status: '', ...p }))];
  fillTable($('failing'), failing, ['queue', 'status', 'pending', 'dead', 'oldest_pending']);
  $('failing-none').hidden = failing.length > 0;
}

async function load() {
  const loaded = $('loaded');
  loaded.dataset.state = 'loading';
  loaded.textContent = 'Loading…';
  showError('error', null);
  try {
    await Promise.all([showFlows(instant($('from').value), instant($('to').value)), showStatus()]);
    loaded.dataset.state = 'done';
    loaded.textContent = `Loaded ${new Date().toISOString()}.`;
  } catch (e) {
    showError('error', e);
    loaded.dataset.state = 'error';
    loaded.textContent = '';
  }
}

function start() {
  const to = new Date(Date.now() + 86400000);
  const from = new Date(to.getTime() - 7 * 86400000);
  $('from').value = `${ymd(from)}T00:00:00`;
  $('to').value = `${ymd(to)}T00:00:00`;
  $('period').addEventListener('submit', (e) => { e.preventDefault(); load(); });
  load();
}

start();
