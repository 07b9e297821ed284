#!/usr/bin/env python3
"""Issue 18's benchmark: durable MLLP ingest on PostgreSQL with one and two gateway nodes, beside
the embedded SQLite store on one node, in one run; the change-feed lag under that load; and the
CP-IS unscheduled query on PostgreSQL beside SQLite.

usage: pg_nodes.py [--build BUILD] [--peers DIR] [--runs 3] [--secs 3] [--conns 8,32]
                   [--messages 30000] [--cpis-plans 20000] [--skip-cpis] [--skip-mllp] [--out FILE]

Everything runs on this machine: the PostgreSQL 15 server (a throw-away cluster made by
tests/support/pg_cluster.sh, fsync on, synchronous_commit on), the gateway node(s) and the load
generator share its cores, so the figures compare the engines here; they are not what a database
server of its own would give.

MLLP: the bench peers' `mllp_load` (1 message in flight per connection, every ACK checked,
unique MSH-10s) sends ADT^A28s, each for a different child, to
  * sqlite-1  — one `cpis-gateway serve` on the embedded store (fresh data directory);
  * pg-1      — one node on PostgreSQL (a fresh schema per run);
  * pg-2      — two nodes on the same fresh schema, half the connections each, each node
                given its own children (two A28 files), both loads at once; msgs/s is the sum.
A subscription to patient-change (rest-hook to a port nobody listens on — the dispatcher
still reads every change, decides, and writes the event) makes the change feed do work.
Change-feed lag: while the load runs, every 0.25 s, how many changes were committed that the
`subscriptions` cursor has not passed (max and median of the samples), and after the load
stops, the seconds until the cursor reaches the last change ("drain").

CP-IS: `cpis_query_load --mode unscheduled --processes ...` (every query an audited access that
notifies the local authority's receiver): the plans seeded into a fresh store of each engine, then
real `serve` processes on it — SQLite one node; PostgreSQL one and two nodes on one schema,
alternating within each run — with the 32 connections spread over the nodes.

Runs alternate engines so they meet the same machine state. One JSON line per run, then one per
configuration with the medians and the ratios to sqlite-1.
"""
import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from write_path import a28, stop  # noqa: E402  (same messages, same stop)


def psql(pgdir, sql, schema=None):
    env = dict(os.environ)
    if schema:
        env["PGOPTIONS"] = f"-c search_path={schema}"
    r = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-h", pgdir, "-p", "5432", "-U", "postgres", "-d", "postgres",
                        "-c", sql], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip())
    return r.stdout.strip()


def conninfo(pgdir, schema):
    return f"host={pgdir} port=5432 dbname=postgres user=postgres options='-c search_path={schema}'"


def start_node(build, data_dir, engine_args, name):
    pki = os.path.join(build, "test-pki")
    if not os.path.exists(os.path.join(pki, "ca.pem")):
        subprocess.run(["bash", os.path.join(SRC, "certs", "make-dev-pki.sh"), pki], check=True,
                       stdout=subprocess.DEVNULL)
    log = open(os.path.join(data_dir, name + ".log"), "w")
    p = subprocess.Popen([os.path.join(build, "bin", "cpis-gateway"), "serve", "--data-dir",
                          os.path.join(data_dir, name), "--https-listen", "127.0.0.1:0", "--tls-cert",
                          pki + "/server.pem", "--tls-key", pki + "/server.key", "--client-ca", pki + "/ca.pem",
                          "--profiles-dir", os.path.join(SRC, "profiles"), "--mllp-listen", "127.0.0.1:0",
                          "--log-level", "warn"] + engine_args, stdout=log, stderr=subprocess.STDOUT)
    mllp = re.compile(r"HL7 v2 MLLP listening on [^:]+:([0-9]+)")
    https = re.compile(r"listening on https://[^:]+:([0-9]+)/fhir")
    for _ in range(600):
        time.sleep(0.1)
        text = open(log.name).read()
        m, h = mllp.search(text), https.search(text)
        if m and h:
            return p, int(m.group(1)), int(h.group(1)), pki
        if p.poll() is not None:
            break
    p.kill()
    raise SystemExit(f"{name} did not start:\n" + open(log.name).read()[-2000:])


def subscribe(https_port, pki):
    """A patient-change rest-hook subscription, so that the dispatcher has work for each change."""
    body = json.dumps({
        "resourceType": "Subscription", "status": "requested", "reason": "bench",
        "criteria": "https://cpis-gateway.nhs.uk/SubscriptionTopic/patient-change",
        "channel": {"type": "rest-hook", "endpoint": "https://127.0.0.1:9/hook",
                    "payload": "application/fhir+json",
                    "_payload": {"extension": [{
                        "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
                               "backport-payload-content", "valueCode": "id-only"}]}}})
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cert",
                        pki + "/client-integration.pem", "--key", pki + "/client-integration.key", "--cacert",
                        pki + "/ca.pem", "-H", "Content-Type: application/fhir+json", "-d", body,
                        f"https://127.0.0.1:{https_port}/fhir/Subscription"], capture_output=True, text=True)
    return r.stdout.strip()


def mllp_load(peers, port, msgs, conns, secs, out):
    cmd = [os.path.join(peers, "build", "mllp_load"), "127.0.0.1", str(port), msgs, "-c", str(conns), "-w", "1",
           "-t", str(secs), "-d", "10", "-u"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 120)
    lines = r.stdout.strip().splitlines()
    j = json.loads(lines[-1]) if lines else {}
    j["rc"] = r.returncode
    out.append(j)


class LagProbe:
    """Samples committed-but-not-dispatched changes every 0.25 s on a connection of its own."""

    def __init__(self, query):
        self.query, self.samples, self.stop_flag = query, [], threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop_flag.is_set():
            try:
                v = self.query()
                if v is not None:
                    self.samples.append(v)
            except Exception:
                pass
            self.stop_flag.wait(0.25)

    def drain(self, limit=60):
        t0 = time.time()
        while time.time() - t0 < limit:
            try:
                v = self.query()
                if v == 0:
                    return round(time.time() - t0, 2)
            except Exception:
                pass
            time.sleep(0.1)
        return None


LAG_SQL = ("SELECT (SELECT COALESCE(MAX(vid), 0) FROM ver) - "
           "COALESCE((SELECT seq FROM cursors WHERE name = 'subscriptions'), 0)")


def sqlite_lag(db):
    def q():
        if not os.path.exists(db):
            return None
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
        try:
            return int(c.execute(LAG_SQL).fetchone()[0])
        finally:
            c.close()
    return q


def pg_lag(pgdir, schema):
    return lambda: int(psql(pgdir, LAG_SQL, schema))


def run_mllp(a, cfg, conns, files, pgdir, work, k):
    d = tempfile.mkdtemp(dir=work)
    nodes = []
    schema = f"bench_{cfg.replace('-', '_')}_{conns}_{k}"
    try:
        if cfg == "sqlite-1":
            engine, lag = [], sqlite_lag(os.path.join(d, "n1", "gateway.db"))
            count = 1
        else:
            psql(pgdir, f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
            engine = ["--store-engine", "postgresql", "--store-conninfo", conninfo(pgdir, schema)]
            lag = pg_lag(pgdir, schema)
            count = 2 if cfg == "pg-2" else 1
        for n in range(count):
            nodes.append(start_node(a.build, d, engine, f"n{n + 1}"))
        sub = subscribe(nodes[0][2], nodes[0][3])
        probe = LagProbe(lag)
        probe.t.start()
        results, threads = [], []
        per = max(1, conns // count)
        for n, node in enumerate(nodes):
            t = threading.Thread(target=mllp_load, args=(a.peers, node[1], files[n], per, a.secs, results))
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        probe.stop_flag.set()
        probe.t.join()
        drain = probe.drain()
        row = {"bench": "pg_nodes_mllp", "config": cfg, "connections": conns, "run": k + 1,
               "msgs_per_s": round(sum(r.get("msgs_s", 0) for r in results), 1),
               "ack_p99_ms": max((r.get("p99_us", -1) for r in results), default=-1) / 1000,
               "acked": sum(r.get("acked", 0) for r in results),
               "nacks": sum(r.get("nacks", 0) for r in results),
               "bad_ids": sum(r.get("bad_ids", 0) for r in results),
               "rc": max(r["rc"] for r in results), "subscription_http": sub,
               "lag_changes_max": max(probe.samples) if probe.samples else None,
               "lag_changes_median": statistics.median(probe.samples) if probe.samples else None,
               "drain_s": drain}
        return row
    finally:
        for node in nodes:
            stop(node[0])
        shutil.rmtree(d, ignore_errors=True)
        if cfg != "sqlite-1":
            try:
                psql(pgdir, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            except RuntimeError:
                pass


def run_cpis(a, engine, pgdir, plans):
    """`cpis_query_load --processes`: real `serve` processes on one seeded store (SQLite: one node;
    PostgreSQL: one and two nodes, alternating within each run), the connections spread over them."""
    env = dict(os.environ)
    env["GW_TEST_STORE"] = engine
    if engine == "postgresql":
        env["GW_TEST_PG_CONNINFO"] = f"host={pgdir} port=5432 dbname=postgres user=postgres"
    r = subprocess.run([os.path.join(a.build, "bin", "cpis_query_load"), "--plans", str(plans), "--seconds",
                        str(a.secs), "--runs", str(a.runs), "--mode", "unscheduled", "--connections", "32",
                        "--processes", "1" if engine == "sqlite" else "1,2"],
                       capture_output=True, text=True, env=env, timeout=3600)
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    return lines, r.returncode, r.stderr[-1500:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--peers", default=os.environ.get("BENCH_PEERS_WORK", "/tmp/bench-peers"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--secs", type=float, default=3)
    ap.add_argument("--conns", default="8,32")
    ap.add_argument("--messages", type=int, default=30000)
    ap.add_argument("--cpis-plans", type=int, default=20000)
    ap.add_argument("--skip-cpis", action="store_true")
    ap.add_argument("--skip-mllp", action="store_true")
    ap.add_argument("--out")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.peers, "build", "mllp_load")):
        raise SystemExit(f"missing {a.peers}/build/mllp_load: prepare the peers once with "
                         "`bash ../shared/bench-peers/run.sh`")
    work = tempfile.mkdtemp(prefix="pg-nodes-", dir="/tmp")
    pgdir = f"/tmp/gw-bench-pg-{os.getpid()}"  # short: a Unix socket path must fit in 107 bytes
    out = open(a.out, "a") if a.out else None

    def emit(j):
        s = json.dumps(j)
        print(s, flush=True)
        if out:
            out.write(s + "\n")
            out.flush()

    files = []
    for n, first in enumerate((1, 500001)):
        path = os.path.join(work, f"a28-{n}.hl7")
        with open(path, "w") as f:
            for i in range(first, first + a.messages):
                f.write(a28(i) + "\n")
        files.append(path)
    subprocess.run(["bash", os.path.join(SRC, "tests", "support", "pg_cluster.sh"), "start", pgdir], check=True)
    load_avg = os.getloadavg()[0]
    try:
        configs = ("sqlite-1", "pg-1", "pg-2")
        results = {}
        for c in ([] if a.skip_mllp else [int(x) for x in a.conns.split(",")]):
            for k in range(a.runs):
                for cfg in configs:
                    row = run_mllp(a, cfg, c, files, pgdir, work, k)
                    emit(row)
                    results.setdefault((c, cfg), []).append(row)
        for c in ([] if a.skip_mllp else [int(x) for x in a.conns.split(",")]):
            med = {}
            for cfg in configs:
                rows = results[(c, cfg)]
                med[cfg] = {"msgs_per_s": statistics.median(r["msgs_per_s"] for r in rows),
                            "ack_p99_ms": statistics.median(r["ack_p99_ms"] for r in rows),
                            "lag_changes_max": statistics.median((r["lag_changes_max"] or 0) for r in rows),
                            "drain_s": statistics.median((r["drain_s"] if r["drain_s"] is not None else 60)
                                                         for r in rows),
                            "failed_runs": sum(1 for r in rows if r["rc"] != 0 or r["nacks"] or r["bad_ids"])}
            base = max(med["sqlite-1"]["msgs_per_s"], 1e-9)
            emit({"bench": "pg_nodes_mllp", "connections": c, "median_of": a.runs, **med,
                  "ratio_pg1_to_sqlite1": round(med["pg-1"]["msgs_per_s"] / base, 2),
                  "ratio_pg2_to_sqlite1": round(med["pg-2"]["msgs_per_s"] / base, 2),
                  "load_avg_at_start": round(load_avg, 2)})
        if not a.skip_cpis:
            medians = {}
            for engine in ("sqlite", "postgresql"):
                lines, rc, err = run_cpis(a, engine, pgdir, a.cpis_plans)
                for x in lines:
                    emit(x)
                if rc:
                    emit({"bench": "pg_nodes_cpis", "engine": engine, "rc": rc, "stderr_tail": err})
                for x in lines:
                    if "median_of" in x:
                        medians[("sqlite-" if engine == "sqlite" else "pg-") + str(x["nodes"])] = {
                            "req_per_s": x["req_per_s"], "p99_ms": x["p99_ms"]}
            base = max(medians.get("sqlite-1", {}).get("req_per_s", 0), 1e-9)
            ratios = {"ratio_" + k.replace("-", "") + "_to_sqlite1": round(v["req_per_s"] / base, 2)
                      for k, v in medians.items() if k != "sqlite-1"}
            emit({"bench": "pg_nodes_cpis", "connections": 32, "median_of": a.runs, **medians, **ratios,
                  "load_avg_now": round(os.getloadavg()[0], 2)})
    finally:
        subprocess.run(["bash", os.path.join(SRC, "tests", "support", "pg_cluster.sh"), "stop", pgdir])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
