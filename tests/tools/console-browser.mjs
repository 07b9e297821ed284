// Drives Debian's headless Chromium (puppeteer-core, /usr/bin/chromium)
// through the gateway's /dashboard and /console with a real client
// certificate, for tests/gateway/e2e/console_browser_e2e_test.cc.
//
//   node console-browser.mjs --phase dashboard|backlog|find|replay|forbidden --port P --pki DIR --out DIR
//        [--role ROLE] [--from ISO --to ISO] [--message ID]
//
// Chromium takes the client certificate from an NSS database in $HOME
// (made here in a temporary HOME with certutil/pk12util from libnss3-tools,
// the dev CA trusted) and selects it without a dialog by the
// AutoSelectCertificateForUrls policy that deploy/install-deps.sh installs
// in /etc/chromium/policies/managed/ (Chromium reads policies from there
// only). Prints one JSON line of what it saw; exits 1 with the reason when a
// check fails.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
  return acc;
}, []));
const port = Number(args.port);
const pki = args.pki;
const out = args.out;
const base = `https://127.0.0.1:${port}`;
const POLICY = '/etc/chromium/policies/managed/cpis-gateway-dev-tests.json';

function fail(why) {
  console.error(`FAIL: ${why}`);
  process.exit(1);
}
function check(cond, why) { if (!cond) fail(why); }

// A temporary HOME whose NSS database holds the role's certificate and trusts the dev CA.
function nssHome(role) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), `gw-chromium-${role}-`));
  const db = path.join(home, '.pki', 'nssdb');
  fs.mkdirSync(db, { recursive: true });
  const p12 = path.join(home, 'client.p12');
  execFileSync('openssl', ['pkcs12', '-export', '-in', `${pki}/client-${role}.pem`, '-inkey', `${pki}/client-${role}.key`,
    '-out', p12, '-passout', 'pass:', '-name', `cpis-${role}`]);
  execFileSync('certutil', ['-N', '-d', `sql:${db}`, '--empty-password']);
  execFileSync('certutil', ['-A', '-d', `sql:${db}`, '-n', 'cpis-gateway dev CA', '-t', 'C,,', '-i', `${pki}/ca.pem`]);
  execFileSync('pk12util', ['-i', p12, '-d', `sql:${db}`, '-W', '']);
  return home;
}

async function browserFor(role) {
  check(fs.existsSync(POLICY), `${POLICY} is missing: run deploy/install-deps.sh (Chromium selects the client certificate by that policy)`);
  const home = nssHome(role);
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    userDataDir: path.join(home, 'profile'),
    env: { ...process.env, HOME: home },
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
  return { browser, home };
}

// The JSON the pages read, fetched here directly with the same certificate.
function apiGet(role, p) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: p, method: 'GET',
      cert: fs.readFileSync(`${pki}/client-${role}.pem`), key: fs.readFileSync(`${pki}/client-${role}.key`),
      ca: fs.readFileSync(`${pki}/ca.pem`), servername: 'localhost', checkServerIdentity: () => undefined }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

function watchUrls(page, seen) {
  page.on('request', (r) => seen.push(r.url()));
}

async function dashboard() {
  const role = args.role || 'commissioner';
  const { browser } = await browserFor(role);
  const page = await browser.newPage();
  const urls = [];
  watchUrls(page, urls);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.setViewport({ width: 1400, height: 1800 });
  const res = await page.goto(`${base}/dashboard`, { waitUntil: 'networkidle0' });
  check(res.status() === 200, `/dashboard answered ${res.status()}`);
  const h = res.headers();
  check((h['content-security-policy'] || '').includes("script-src 'self'"), 'no CSP script-src self');
  check(!(h['content-security-policy'] || '').includes('unsafe-inline'), 'CSP allows inline');
  check(h['cache-control'] === 'no-store', 'no Cache-Control: no-store');
  check(h['x-content-type-options'] === 'nosniff', 'no nosniff');
  // The period of the scripted load: set in the picker, shown with the button.
  const toLocal = (iso) => iso.replace(/Z$/, '').slice(0, 19);
  await page.$eval('#from', (e, v) => { e.value = v; }, toLocal(args.from));
  await page.$eval('#to', (e, v) => { e.value = v; }, toLocal(args.to));
  await page.$eval('#loaded', (e) => { e.dataset.state = 'stale'; });
  await page.click('#show');
  await page.waitForFunction(() => !['stale', 'loading'].includes(document.getElementById('loaded').dataset.state),
    { timeout: 20000 });
  const state = await page.$eval('#loaded', (e) => e.dataset.state);
  check(state === 'done', `the dashboard did not load: ${await page.$eval('#error', (e) => e.textContent)} ${errors}`);
  const shown = await page.evaluate(() => {
    const t = (id) => document.getElementById(id).textContent.trim();
    const rows = (id) => [...document.getElementById(id).children].map((tr) => [...tr.children].map((td) => td.textContent.trim()));
    return {
      events: t('total-events'), flows: t('total-flows'), failures: t('total-failures'), delivered: t('total-delivered'),
      dead: t('total-dead'), quarantined: t('quarantined'), dead_letters: t('dead-letters'), undelivered: t('undelivered'),
      oldest: t('oldest-undelivered'), flowRows: rows('flows'), cpis: rows('cpis'), disclosures: rows('disclosures'),
      bars: [...document.querySelectorAll('#chart rect.bar:not(.failures)')].map((b) => [b.dataset.day, Number(b.dataset.events)]),
      csv: document.getElementById('csv').getAttribute('href'),
    };
  });
  const periodShown = await page.$eval('#period-text', (e) => e.textContent);
  check(periodShown === `[${args.from}, ${args.to}) UTC`, `the page shows the period ${periodShown}, not the one picked`);
  await page.screenshot({ path: path.join(out, 'dashboard.png'), fullPage: true });
  // What /audit/flows answers for the same period, fetched now: the rows
  // of the period were all committed before the period ended.
  const q = `from=${encodeURIComponent(args.from)}&to=${encodeURIComponent(args.to)}`;
  const api = await apiGet(role, `/audit/flows?${q}`);
  check(api.status === 200, `/audit/flows answered ${api.status}`);
  const flows = JSON.parse(api.body);
  const sum = (k) => flows.flows.reduce((a, f) => a + (f[k] || 0), 0);
  check(shown.events === String(sum('events')), `events: page ${shown.events}, /audit/flows ${sum('events')}`);
  check(shown.flows === String(flows.flows.length), `flows: page ${shown.flows}, /audit/flows ${flows.flows.length}`);
  check(shown.failures === String(sum('failures')), `failures: page ${shown.failures}, api ${sum('failures')}`);
  check(shown.delivered === String(sum('delivered')), `delivered: page ${shown.delivered}, api ${sum('delivered')}`);
  check(shown.dead === String(sum('dead')), `dead: page ${shown.dead}, api ${sum('dead')}`);
  const cell = (v) => (v === undefined || v === null ? '' : String(v));
  const apiRows = flows.flows.map((f) => [f.from_org, f.from_system, f.to_org, f.channel, f.topic, f.purpose, f.events,
    f.failures, f.retries, f.dead, f.delivered, f.latency_median_ms, f.latency_p99_ms].map(cell));
  check(JSON.stringify(shown.flowRows) === JSON.stringify(apiRows),
    `flow table differs from /audit/flows:\npage ${JSON.stringify(shown.flowRows)}\napi  ${JSON.stringify(apiRows)}`);
  const sg = flows.safeguarding;
  const cpisRows = sg.cpis_queries_by_unscheduled_care_site.map((s) => [s.site, s.queries, s.found_plan].map(cell));
  check(JSON.stringify(shown.cpis) === JSON.stringify(cpisRows), `CP-IS figures differ: ${JSON.stringify(shown.cpis)} vs ${JSON.stringify(cpisRows)}`);
  const discRows = sg.disclosures_by_topic.map((t) => [t.topic, t.delivered, t.retries, t.dead, t.latency_median_ms, t.latency_p99_ms].map(cell));
  check(JSON.stringify(shown.disclosures) === JSON.stringify(discRows), 'disclosure figures differ');
  const barTotal = shown.bars.reduce((a, [, n]) => a + n, 0);
  check(barTotal === sum('events'), `chart bars add up to ${barTotal}, /audit/flows has ${sum('events')} events`);
  const status = JSON.parse((await apiGet(role, '/dashboard/api/status')).body);
  check(shown.quarantined === String(status.quarantine.quarantined || 0), `quarantine: page ${shown.quarantined}, api ${JSON.stringify(status.quarantine)}`);
  check(shown.dead_letters === String(status.dead_letters), 'dead letters differ');
  check(shown.csv.includes('format=csv'), 'no CSV link');
  const csv = await apiGet(role, shown.csv);
  check(csv.status === 200 && csv.body.split('\r\n').filter(Boolean).length === flows.flows.length + 1,
    `the CSV link ${shown.csv} answered ${csv.status}: ${JSON.stringify(csv.body)} for ${flows.flows.length} flows`);
  check(errors.length === 0, `script errors: ${errors}`);
  await browser.close();
  return { shown, urls };
}

async function openConsole(role) {
  const { browser } = await browserFor(role);
  const page = await browser.newPage();
  const urls = [];
  watchUrls(page, urls);
  await page.setViewport({ width: 1400, height: 1600 });
  const res = await page.goto(`${base}/console`, { waitUntil: 'networkidle0' });
  check(res.status() === 200, `/console answered ${res.status()}`);
  check(res.headers()['cache-control'] === 'no-store', 'console: no Cache-Control: no-store');
  return { browser, page, urls };
}

// Finds the quarantined message by channel and status in the browser, and opens it.
async function findAndView(page, id) {
  await page.select('#f-status', 'quarantined');
  await page.$eval('#f-channel', (e) => { e.value = 'mllp'; });
  await page.click('#search');
  await page.waitForFunction(() => document.getElementById('list-state').dataset.state === 'done', { timeout: 20000 });
  const row = await page.$(`#messages tr[data-id="${id}"]`);
  check(row, `message ${id} is not in the console's quarantine list`);
  check(await row.evaluate((tr) => tr.dataset.status) === 'quarantined', 'the row does not say quarantined');
  await (await row.$('button.view')).click();
  await page.waitForFunction((i) => document.getElementById('detail').dataset.id === String(i), { timeout: 20000 }, id);
  return page.evaluate(() => ({
    status: document.getElementById('d-status').textContent,
    reason: document.getElementById('d-reason').textContent,
    raw: document.getElementById('d-raw').textContent,
    answer: document.getElementById('d-answer').textContent,
    issues: document.getElementById('d-issues').textContent,
    replayVisible: !document.getElementById('replay').hidden,
  }));
}

async function find() {
  const { browser, page, urls } = await openConsole(args.role || 'integration');
  const seen = await findAndView(page, Number(args.message));
  await page.screenshot({ path: path.join(out, 'console-quarantined.png'), fullPage: true });
  await browser.close();
  return { seen, urls };
}

async function replay() {
  const { browser, page, urls } = await openConsole(args.role || 'integration');
  const id = Number(args.message);
  const before = await findAndView(page, id);
  await page.click('#replay');
  await page.waitForFunction(() => document.getElementById('replay-result').dataset.outcome, { timeout: 30000 });
  const outcome = await page.$eval('#replay-result', (e) => ({ text: e.textContent, outcome: e.dataset.outcome }));
  check(outcome.outcome === 'accepted', `the replay from the page answered: ${outcome.text}`);
  // The page now shows the message as replayed and the new copy as accepted.
  await page.waitForFunction((i) => document.getElementById('detail').dataset.id === String(i) &&
    document.getElementById('d-status').textContent === 'replayed', { timeout: 20000 }, id);
  await page.select('#f-status', 'all');
  await page.$eval('#f-channel', (e) => { e.value = ''; });
  await page.click('#search');
  await page.waitForFunction(() => document.getElementById('list-state').dataset.state === 'done', { timeout: 20000 });
  const rows = await page.$$eval('#messages tr', (trs) => trs.map((tr) => ({ id: Number(tr.dataset.id), status: tr.dataset.status,
    replayOf: Number(tr.dataset.replayOf || 0), text: tr.textContent })));
  // The accepted copy the replay made, pointing back at the quarantined message.
  const copy = rows.find((r) => r.replayOf === id && r.status === 'accepted');
  check(copy, `no accepted copy of message ${id} in the list: ${JSON.stringify(rows)}`);
  await (await page.$(`#messages tr[data-id="${copy.id}"] button.view`)).click();
  await page.waitForFunction((i) => document.getElementById('detail').dataset.id === String(i), { timeout: 20000 }, copy.id);
  const became = await page.$$eval('#d-became pre.fhir', (ps) => ps.map((p) => JSON.parse(p.textContent).resourceType));
  check(became.includes('Patient'), `the replayed message shows no FHIR Patient it became: ${became}`);
  await page.screenshot({ path: path.join(out, 'console-replayed.png'), fullPage: true });
  await browser.close();
  return { before, outcome, copy: copy.id, became, urls };
}

async function forbidden() {
  const role = args.role || 'gp';
  const { browser } = await browserFor(role);
  const page = await browser.newPage();
  const statuses = {};
  for (const p of ['/dashboard', '/console', '/console/api/messages', '/web/console.js']) {
    const res = await page.goto(`${base}${p}`);
    statuses[p] = res.status();
    check(res.status() === 403, `${role} got ${res.status()} for ${p}`);
  }
  await page.goto(`${base}/dashboard`);
  await page.screenshot({ path: path.join(out, `forbidden-${role}.png`) });
  await browser.close();
  return { statuses };
}

// What waits to be acknowledged and what escalated (issue 17), and the
// break-glass accesses by person: the page over its default period shows
// exactly what /dashboard/api/status and /audit/flows answer, and its
// break-glass CSV link holds the same rows. The caller checks the figures
// themselves against what it did.
async function backlog() {
  const role = args.role || 'commissioner';
  const { browser } = await browserFor(role);
  const page = await browser.newPage();
  const urls = [];
  watchUrls(page, urls);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.setViewport({ width: 1400, height: 2200 });
  const res = await page.goto(`${base}/dashboard`, { waitUntil: 'networkidle0' });
  check(res.status() === 200, `/dashboard answered ${res.status()}`);
  await page.waitForFunction(() => !['stale', 'loading'].includes(document.getElementById('loaded').dataset.state),
    { timeout: 20000 });
  const state = await page.$eval('#loaded', (e) => e.dataset.state);
  check(state === 'done', `the dashboard did not load: ${await page.$eval('#error', (e) => e.textContent)} ${errors}`);
  const shown = await page.evaluate(() => {
    const t = (id) => document.getElementById(id).textContent.trim();
    const rows = (id) => [...document.getElementById(id).children].map((tr) => [...tr.children].map((td) => td.textContent.trim()));
    return {
      unacknowledged: t('unacknowledged'), escalated: t('escalated'), escalatedToNurse: t('escalated-nurse'),
      backlog: rows('backlog'), breakGlass: rows('break-glass'),
      glassCsv: document.getElementById('glass-csv').getAttribute('href'),
      from: document.getElementById('from').value, to: document.getElementById('to').value,
    };
  });
  await page.screenshot({ path: path.join(out, 'dashboard-backlog.png'), fullPage: true });
  const status = JSON.parse((await apiGet(role, '/dashboard/api/status')).body);
  const ack = status.acknowledgement;
  check(ack, `/dashboard/api/status has no acknowledgement: ${JSON.stringify(status)}`);
  check(shown.unacknowledged === String(ack.unacknowledged), `unacknowledged: page ${shown.unacknowledged}, api ${ack.unacknowledged}`);
  check(shown.escalated === String(ack.escalated), `escalated: page ${shown.escalated}, api ${ack.escalated}`);
  check(shown.escalatedToNurse === String(ack.escalated_to_nurse), 'escalated to the nurse differs');
  const apiBacklog = ack.by_organisation_and_topic.map((r) => [r.organisation, r.topic, r.unacknowledged, r.escalated,
    r.escalated_to_nurse].map(String));
  check(JSON.stringify(shown.backlog) === JSON.stringify(apiBacklog),
    `backlog differs:\npage ${JSON.stringify(shown.backlog)}\napi  ${JSON.stringify(apiBacklog)}`);
  const instant = (v) => (v.length === 16 ? `${v}:00Z` : `${v.slice(0, 19)}Z`);
  const q = `from=${encodeURIComponent(instant(shown.from))}&to=${encodeURIComponent(instant(shown.to))}`;
  const flows = JSON.parse((await apiGet(role, `/audit/flows?${q}`)).body);
  const apiGlass = flows.safeguarding.break_glass_by_person.map((g) => [g.organisation, g.person, g.name, g.accesses].map(String));
  check(JSON.stringify(shown.breakGlass) === JSON.stringify(apiGlass),
    `break-glass differs:\npage ${JSON.stringify(shown.breakGlass)}\napi  ${JSON.stringify(apiGlass)}`);
  check(shown.glassCsv.includes('table=break-glass'), `no break-glass CSV link: ${shown.glassCsv}`);
  const csv = await apiGet(role, shown.glassCsv);
  const lines = csv.body.split('\r\n').filter(Boolean);
  check(csv.status === 200 && lines[0] === 'organisation,person,name,issuer,accesses' && lines.length === apiGlass.length + 1,
    `the break-glass CSV link ${shown.glassCsv} answered ${csv.status}: ${JSON.stringify(csv.body)}`);
  shown.csvLines = lines;
  check(errors.length === 0, `script errors: ${errors}`);
  await browser.close();
  return { shown, urls };
}

const phases = { dashboard, backlog, find, replay, forbidden };
check(phases[args.phase], `--phase: one of ${Object.keys(phases)}`);
fs.mkdirSync(out, { recursive: true });
const result = await phases[args.phase]();
// No URL the pages asked for may carry a patient identifier (NHS numbers
// are 10 digits; the test's are known to the caller, which checks them too).
for (const u of result.urls || []) check(!/\d{10}/.test(u), `a URL carries a 10-digit number: ${u}`);
console.log(JSON.stringify(result));
