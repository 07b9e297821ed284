#!/usr/bin/env python3
"""Durable MLLP ingest: the gateway beside the durable Node peer, one load generator, one run.

usage: write_path.py [--build BUILD] [--peers DIR] [--runs 3] [--secs 3] [--conns 1,32]
                     [--messages 60000] [--out FILE] [--bin BIN] [--targets gateway,peer]
                     [--store SEEDED_DIR] [--before-bin BIN]

Targets (--targets, alternating run by run): `gateway` (fresh data directory per run), `peer`,
`seeded` (the gateway on a store tests/bench/seed_store.py made, in place: each run sends children
it does not hold yet; the median line gives seeded/gateway) and `before` (another binary, fresh
data directory: the median line gives gateway/before). Each gateway row has the gateway's RSS
sampled at 80 % of the run (VmRSS, and its peak VmHWM) and the load average at its start.

Both listeners are driven by the bench peers' `mllp_load` (C, written outside this project):
W=1 message in flight per connection, every ACK checked (AA/CA, MSA-2 = the MSH-10 it
answers), `-u` so every MSH-10 is unique. Both get the same file of ADT^A28 messages, each for
a different child (valid NHS numbers), so every message creates a patient:

* gateway — `cpis-gateway serve` on a fresh data directory per run, plain MLLP listener
  (loopback), the same profiles the tests use: parse, map to FHIR, one durable SQLite commit
  (raw message, Patient + everything an A28 writes today, outbox), ACK after the fsync.
* peer    — `node/peerB_server.js --impl medplum --store group` from ../shared/bench-peers
  (`@medplum/hl7` listener + better-sqlite3, WAL, synchronous=FULL, group commit per event-loop
  turn, ACK after the commit), on a fresh database per run.

Runs alternate gateway/peer so both meet the same machine state. One JSON line per run, then a
line per connection count with the medians and the ratio gateway/peer.
The peers folder must be prepared once: `bash ../shared/bench-peers/run.sh` (or `ONLY=B`), which
builds `build/mllp_load` and installs the Node packages in a writable copy (/tmp/bench-peers).
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))


def nhs_number(n):
    """The n-th valid NHS number in a block no real person holds (starts 9, Modulus 11)."""
    base = 900000000 + n
    if base > 999999999:
        raise SystemExit("out of NHS numbers")
    while True:
        d = [int(c) for c in f"{base:09d}"]
        s = sum(x * (10 - i) for i, x in enumerate(d))
        check = 11 - s % 11
        if check == 11:
            check = 0
        if check != 10 and len(set(d)) > 1:
            return f"{base:09d}{check}"
        base += 1000000  # skip this one; another block keeps numbers distinct


def a28(n):
    nhs = nhs_number(n)
    return ("MSH|^~\\&|SYSTMONE|RFR|ROUTE|CPISGW|20261103091500+0000||ADT^A28^ADT_A05|B%d|P|2.4|||||GBR|UNICODE UTF-8\r"
            "EVN|A28|20261103091500\r"
            "PID|1||%s^^^NHS^NH~7%d^^^RFR^PI||BENCH^Child^May^^Miss||20190506|F|||"
            "12 Mill Lane^Rawmarsh^Rotherham^South Yorkshire^S62 6AA^GBR^H||01709 555123^PRN|||||||||||||||||||NSTS01\r"
            "PD1|||Rawmarsh Health Centre^^C87001^^^NHS^ODS\rPV1|1|N\r"
            "ZCT|HV|RFRHV1^Rawmarsh Health Visiting Team|20190601|\rZSC|Y|Y|20190601\r") % (n, nhs, n)


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_gateway(build, data_dir, binary=None, store=None):
    pki = os.path.join(build, "test-pki")
    if not os.path.exists(os.path.join(pki, "ca.pem")):
        subprocess.run(["bash", os.path.join(SRC, "certs", "make-dev-pki.sh"), pki], check=True,
                       stdout=subprocess.DEVNULL)
    log = open(os.path.join(data_dir, "gateway.log"), "w")
    p = subprocess.Popen([binary or os.path.join(build, "bin", "cpis-gateway"), "serve", "--data-dir",
                          store or os.path.join(data_dir, "d"),
                          "--https-listen", "127.0.0.1:0", "--tls-cert", pki + "/server.pem", "--tls-key",
                          pki + "/server.key", "--client-ca", pki + "/ca.pem", "--profiles-dir",
                          os.path.join(SRC, "profiles"), "--mllp-listen", "127.0.0.1:0", "--log-level", "warn"],
                         stdout=log, stderr=subprocess.STDOUT)
    pat = re.compile(r"HL7 v2 MLLP listening on [^:]+:([0-9]+)")
    for _ in range(36000):  # opening a large store may first run a migration
        time.sleep(0.1)
        m = pat.search(open(log.name).read())
        if m:
            return p, int(m.group(1))
        if p.poll() is not None:
            break
    p.kill()
    raise SystemExit("gateway did not start:\n" + open(log.name).read()[-2000:])


def start_peer(peers, data_dir):
    port = free_port()
    p = subprocess.Popen(["node", os.path.join(peers, "node", "peerB_server.js"), "--impl", "medplum", "--port", str(port),
                          "--store", "group", "--db", os.path.join(data_dir, "peer.sqlite")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=os.path.join(peers, "node"))
    line = p.stdout.readline()
    if not line.startswith("READY"):
        p.kill()
        raise SystemExit("peer did not start: " + (p.stderr.read() or "")[-2000:])
    return p, port


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def rss_mib(pid):
    """Resident set and its peak (MiB) of a process, from /proc."""
    out = {}
    try:
        for line in open("/proc/%d/status" % pid):
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = round(int(v.split()[0]) / 1024)
    except OSError:
        pass
    return out


def load(peers, port, msgs, conns, secs, pid=None):
    cmd = [os.path.join(peers, "build", "mllp_load"), "127.0.0.1", str(port), msgs, "-c", str(conns), "-w", "1",
           "-t", str(secs), "-d", "10", "-u"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rss = {}
    if pid:
        time.sleep(secs * 0.8)  # under load, before the drain
        rss = rss_mib(pid)
    out, _ = proc.communicate(timeout=secs + 60)
    r = subprocess.CompletedProcess(cmd, proc.returncode, out, "")
    r.rss = rss
    lines = r.stdout.strip().splitlines()
    j = json.loads(lines[-1]) if lines else {}
    j["rc"] = r.returncode
    j["rss"] = r.rss
    return j


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--peers", default=os.environ.get("BENCH_PEERS_WORK", "/tmp/bench-peers"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--secs", type=float, default=3)
    ap.add_argument("--conns", default="1,32")
    ap.add_argument("--messages", type=int, default=60000)
    ap.add_argument("--out")
    ap.add_argument("--bin", help="the cpis-gateway binary (default BUILD/bin/cpis-gateway)")
    ap.add_argument("--store", help="also run the gateway on this seeded data directory (tests/bench/seed_store.py), "
                                    "in place: each run sends children the store does not hold yet")
    ap.add_argument("--before-bin", help="another cpis-gateway binary, target `before` (fresh data directory per run)")
    ap.add_argument("--targets", default="gateway,peer",
                    help="comma list of gateway (fresh data directory per run), seeded (--store), before "
                         "(--before-bin), peer; runs alternate in this order")
    a = ap.parse_args()
    targets = a.targets.split(",")
    if "seeded" in targets and not a.store:
        raise SystemExit("--targets seeded needs --store DIR")
    if "before" in targets and not a.before_bin:
        raise SystemExit("--targets before needs --before-bin BIN")
    needs = [os.path.join(a.peers, "build", "mllp_load")]
    if "peer" in targets:
        needs.append(os.path.join(a.peers, "node_modules", "better-sqlite3"))
    for need in needs:
        if not os.path.exists(need):
            raise SystemExit(f"missing {need}: prepare the peers once with `bash ../shared/bench-peers/run.sh`")
    work = tempfile.mkdtemp(prefix="write-path-", dir=os.environ.get("TMPDIR", "/tmp"))
    out = open(a.out, "a") if a.out else None

    def emit(j):
        s = json.dumps(j)
        print(s, flush=True)
        if out:
            out.write(s + "\n")
            out.flush()

    msgs = os.path.join(work, "a28.hl7")
    with open(msgs, "w") as f:
        for n in range(1, a.messages + 1):
            f.write(a28(n) + "\n")
    # The seeded store keeps what each run writes: every run gets children it does not hold yet, above
    # the seed's NHS numbers (seed_store.py: 9 + 8 digits below 16 M for 1 M children); the next free
    # number is kept beside the store.
    def seeded_msgs():
        mark = os.path.join(a.store, "write_path.next")
        first = int(open(mark).read()) if os.path.exists(mark) else 20000000
        if first + a.messages > 99000000:
            raise SystemExit("the seeded store has used up write_path's NHS numbers")
        with open(mark, "w") as f:
            f.write(str(first + a.messages))
        path = os.path.join(work, "seeded.hl7")
        with open(path, "w") as f:
            for n in range(first, first + a.messages):
                f.write(a28(n) + "\n")
        return path

    load_avg = os.getloadavg()[0]
    try:
        results = {}
        for c in [int(x) for x in a.conns.split(",")]:
            for k in range(a.runs):
                for who in targets:
                    d = tempfile.mkdtemp(dir=work)
                    la = round(os.getloadavg()[0], 2)
                    if who == "peer":
                        p, port = start_peer(a.peers, d)
                    else:
                        p, port = start_gateway(a.build, d, a.before_bin if who == "before" else a.bin,
                                                a.store if who == "seeded" else None)
                    try:
                        j = load(a.peers, port, seeded_msgs() if who == "seeded" else msgs, c, a.secs,
                                 p.pid if who != "peer" else None)
                    finally:
                        stop(p)
                    if who != "peer" and p.returncode not in (0, None):
                        j["server_exit"] = p.returncode
                    row = {"bench": "write_path_mllp", "who": who, "connections": c, "run": k + 1,
                           "msgs_per_s": j.get("msgs_s", 0), "ack_p50_ms": j.get("p50_us", -1) / 1000,
                           "ack_p99_ms": j.get("p99_us", -1) / 1000, "acked": j.get("acked", 0),
                           "nacks": j.get("nacks", 0), "bad_ids": j.get("bad_ids", 0), "rc": j["rc"],
                           "rss_mib": j["rss"].get("VmRSS"), "rss_peak_mib": j["rss"].get("VmHWM"), "load_avg": la}
                    emit(row)
                    results.setdefault((c, who), []).append(row)
                    shutil.rmtree(d, ignore_errors=True)
        for c in [int(x) for x in a.conns.split(",")]:
            med = {}
            for who in targets:
                rows = results[(c, who)]
                med[who] = {"msgs_per_s": statistics.median(r["msgs_per_s"] for r in rows),
                            "ack_p99_ms": statistics.median(r["ack_p99_ms"] for r in rows),
                            "failed_runs": sum(1 for r in rows if r["rc"] != 0)}
                if who != "peer":
                    med[who]["rss_mib"] = statistics.median(r["rss_mib"] or 0 for r in rows)
            line = {"bench": "write_path_mllp", "connections": c, "median_of": a.runs, "load_avg_at_start": round(load_avg, 2)}
            line.update(med)
            if "gateway" in med and "peer" in med:
                line["ratio"] = round(med["gateway"]["msgs_per_s"] / max(med["peer"]["msgs_per_s"], 1e-9), 2)
            if "gateway" in med and "before" in med:
                line["after_over_before"] = round(med["gateway"]["msgs_per_s"] / max(med["before"]["msgs_per_s"], 1e-9), 2)
            if "gateway" in med and "seeded" in med:
                line["seeded_over_empty"] = round(med["seeded"]["msgs_per_s"] / max(med["gateway"]["msgs_per_s"], 1e-9), 2)
            emit(line)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
