// Shared helpers of the dashboard and the console. No framework, no inline
// script (the pages' CSP is script-src 'self'), no third-party code. Every
// value from the server is put on the page with textContent, never as HTML.

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = String(v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// GET (or POST) JSON from this origin; an OperationOutcome or a non-2xx
// answer becomes an Error whose message is the server's diagnostics.
export async function api(path, options = {}) {
  const res = await fetch(path, { credentials: 'same-origin', cache: 'no-store', ...options });
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!res.ok && !(options.allowStatus || []).includes(res.status)) {
    const why = body && body.issue && body.issue[0] ? (body.issue[0].diagnostics || body.issue[0].code) : text;
    const err = new Error(`${res.status}: ${why}`);
    err.status = res.status;
    throw err;
  }
  return { status: res.status, body };
}

export function showError(where, err) {
  const box = document.getElementById(where);
  if (!box) return;
  box.textContent = err ? String(err.message || err) : '';
  box.hidden = !err;
}

// YYYY-MM-DD of a Date, in UTC (the reports' days are UTC days).
export function ymd(d) { return d.toISOString().slice(0, 10); }

export function fillTable(tbody, rows, columns) {
  tbody.replaceChildren();
  for (const row of rows) {
    const tr = el('tr');
    for (const c of columns) {
      const v = typeof c === 'function' ? c(row) : row[c];
      tr.append(v instanceof Node ? el('td', {}, v) : el('td', { text: v ?? '', class: typeof v === 'number' ? 'num' : null }));
    }
    tbody.append(tr);
  }
}
