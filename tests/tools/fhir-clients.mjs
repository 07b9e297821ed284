// Two FHIR clients nobody on the project wrote, run against the gateway
// (issue 13): fhir-kit-client and Medplum's MedplumClient (@medplum/core).
// Each reads the CapabilityStatement and runs the searches of a spec file
// the way its users call it; what each client made of the answers is
// printed as JSON for the C++ test (tests/gateway/e2e/real_clients_test.cc)
// to compare with what it seeded and with its own strict parse.
//
//   node fhir-clients.mjs SPEC.json
//   SPEC: {"base": "https://127.0.0.1:PORT/fhir", "ca": PEM, "cert": PEM, "key": PEM,
//          "searches": [{"name": N, "type": T, "params": [[k, v], ...]}]}
//   out:  {"fhir-kit-client": {"urls": [...], "capability": C, "searches": {N: [ids]}},
//          "medplum": {...}}  where C = {type: {"searchParam": [...], "operation": [...],
//          "interaction": [...]}, "": {"operation": [...]}} (sorted names).
//
// Only the transport is ours: the gateway wants a client certificate, which
// neither client's own fetch can present, so both are handed a fetch that
// sends their request over node's https with the dev PKI. URLs, query
// strings, headers and the reading of each answer are the clients' own.
import fs from 'node:fs';
import https from 'node:https';

// Node 20 has no global WebSocket; @medplum/core refers to it when loaded
// (for subscriptions, not used here).
globalThis.WebSocket ??= class {
  constructor() {
    throw new Error('WebSocket is not used by this test');
  }
};

const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const agent = new https.Agent({
  ca: fs.readFileSync(spec.ca),
  cert: fs.readFileSync(spec.cert),
  key: fs.readFileSync(spec.key),
  keepAlive: false,
});

function tlsFetch(urls) {
  return async (input, init = {}) => {
    const req = input instanceof Request ? input : new Request(input, init);
    const body = req.body ? Buffer.from(await req.arrayBuffer()) : undefined;
    urls.push(`${req.method} ${req.url}`);
    const headers = Object.fromEntries(req.headers.entries());
    return new Promise((resolve, reject) => {
      const r = https.request(req.url, { method: req.method, headers, agent }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) h.set(k, Array.isArray(v) ? v.join(', ') : String(v));
          const noBody = res.statusCode === 204 || res.statusCode === 304 || req.method === 'HEAD';
          resolve(new Response(noBody ? null : Buffer.concat(chunks), { status: res.statusCode, headers: h }));
        });
      });
      r.on('error', reject);
      if (body) r.write(body);
      r.end();
    });
  };
}

function capabilitySummary(cs) {
  const out = {};
  const names = (xs, key) => (xs ?? []).map((x) => x[key]).sort();
  for (const rest of cs.rest ?? []) {
    out[''] = { operation: names(rest.operation, 'name') };
    for (const r of rest.resource ?? []) {
      out[r.type] = {
        searchParam: names(r.searchParam, 'name'),
        operation: names(r.operation, 'name'),
        interaction: names(r.interaction, 'code'),
      };
    }
  }
  return out;
}

const ids = (bundle) =>
  (bundle.entry ?? [])
    .filter((e) => e.search?.mode !== 'outcome' && e.resource?.resourceType !== 'OperationOutcome')
    .map((e) => e.resource.id)
    .sort();

async function withFhirKit() {
  const { Client } = await import('fhir-kit-client');
  const urls = [];
  globalThis.fetch = tlsFetch(urls);  // fhir-kit-client calls the global fetch
  const client = new Client({ baseUrl: spec.base });
  const out = { urls, capability: capabilitySummary(await client.capabilityStatement()), searches: {} };
  for (const s of spec.searches) {
    // Its own shape: an object whose array values are repeated parameters.
    const searchParams = {};
    for (const [k, v] of s.params) searchParams[k] = k in searchParams ? [].concat(searchParams[k], v) : v;
    out.searches[s.name] = ids(await client.search({ resourceType: s.type, searchParams }));
  }
  return out;
}

async function withMedplum() {
  const { MedplumClient } = await import('@medplum/core');
  const urls = [];
  const medplum = new MedplumClient({ baseUrl: spec.base.replace(/fhir\/?$/, ''), fhirUrlPath: 'fhir', fetch: tlsFetch(urls) });
  const cs = await medplum.get(medplum.fhirUrl('metadata'));
  const out = { urls, capability: capabilitySummary(cs), searches: {} };
  for (const s of spec.searches) {
    // URLSearchParams: Medplum joins an array value with commas (an OR), so
    // an AND of two date bounds is two parameters.
    out.searches[s.name] = ids(await medplum.search(s.type, new URLSearchParams(s.params)));
  }
  return out;
}

try {
  const result = { 'fhir-kit-client': await withFhirKit(), medplum: await withMedplum() };
  process.stdout.write(JSON.stringify(result) + '\n');
} catch (e) {
  process.stderr.write(`fhir-clients: ${e.stack ?? e}\n${e.response ? JSON.stringify(e.response.data ?? e.response) : ''}\n`);
  process.exit(1);
}
