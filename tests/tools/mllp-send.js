#!/usr/bin/env node
// Sends HL7 v2 messages to an MLLP listener with node-hl7-client (a client
// nobody on this project wrote) and prints one line per ACK: "MSA-1|MSA-2".
// Exits non-zero on a connection error, a timeout, or fewer ACKs than sent.
//
//   node mllp-send.js --port P [--host 127.0.0.1] [--count N] [--prefix ID]
//                     [--timeout MS] [FILE...]
//
// With FILEs, each file is one message (LF or CRLF line ends become CR);
// otherwise N ADT^A28 messages are generated with MSH-10 = PREFIX<i>.
'use strict';
const fs = require('fs');
const { Client, Message } = require('node-hl7-client');

function parseArgs(argv) {
  const opts = { host: '127.0.0.1', port: 0, count: 1, prefix: 'NODE', timeout: 10000, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--host') opts.host = next();
    else if (a === '--port') opts.port = Number(next());
    else if (a === '--count') opts.count = Number(next());
    else if (a === '--prefix') opts.prefix = next();
    else if (a === '--timeout') opts.timeout = Number(next());
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else opts.files.push(a);
  }
  if (!Number.isInteger(opts.port) || opts.port <= 0) throw new Error('--port is required');
  return opts;
}

function generated(prefix, i) {
  return [
    `MSH|^~\\&|NODEFEED|RXX|CPISGW|CPIS|20240101120000||ADT^A28^ADT_A05|${prefix}${i}|P|2.4`,
    'EVN|A28|20240101120000',
    'PID|1||TEST000001^^^RXX^PI||TEST^PERSON',
  ].join('\r');
}

function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`mllp-send: ${e.message}\n`);
    process.exit(2);
  }
  const texts = opts.files.length > 0
    ? opts.files.map((f) => fs.readFileSync(f, 'utf8').replace(/\r\n|\n/g, '\r').replace(/\r+$/, ''))
    : Array.from({ length: opts.count }, (_, i) => generated(opts.prefix, i));

  let acked = 0;
  let finished = false;
  const finish = (code, why) => {
    if (finished) return;
    finished = true;
    if (why) process.stderr.write(`mllp-send: ${why}\n`);
    try { client.closeAll(); } catch (e) { /* exiting anyway */ }
    process.exit(code);
  };
  const timer = setTimeout(() => finish(3, `timeout after ${acked}/${texts.length} ACKs`), opts.timeout);
  timer.unref();

  const client = new Client({ host: opts.host });
  // waitAck: one message on the wire at a time; the next goes when its ACK is in.
  const conn = client.createConnection(
    { port: opts.port, waitAck: true, maxConnectionAttempts: 1 },
    async (res) => {
      const ack = res.getMessage();
      process.stdout.write(`${ack.get('MSA.1').toString()}|${ack.get('MSA.2').toString()}\n`);
      acked += 1;
      if (acked === texts.length) return finish(0);
      conn.sendMessage(new Message({ text: texts[acked] })).catch((e) => finish(4, `send: ${e.message}`));
    },
  );
  conn.on('client.error', (e) => finish(5, `connection: ${e && e.message ? e.message : e}`));
  conn.on('data.error', (e) => finish(6, `ACK: ${e && e.message ? e.message : e}`));
  conn.on('close', () => { if (acked < texts.length) finish(7, `closed after ${acked}/${texts.length} ACKs`); });
  if (texts.length === 0) return finish(0);
  conn.sendMessage(new Message({ text: texts[0] })).catch((e) => finish(4, `send: ${e.message}`));
}

main();
