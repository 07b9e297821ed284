#!/usr/bin/env python3
"""What one message costs the disk: WAL bytes and frames, database-file bytes
(checkpoints) and fsyncs per ADT^A28 over MLLP and per CASH/GUM CSV row.

Runs the real binary under strace (write-side syscalls only, with file
paths), sends a warm-up, then the measured load, and counts only the calls
made between the two marks, so start-up and shutdown are not included.
strace slows the gateway down; the counts per message are what it reports,
not the time.

  tests/bench/store_io.py [--bin build/bin/cpis-gateway] [--messages 2000]
                          [--connections 1] [--window 1] [--csv-rows 20000]
Prints one JSON line per load.
"""
import argparse, json, os, re, signal, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PEERS = os.path.join(os.path.dirname(ROOT), "shared", "bench-peers")


def nhs_number(seed):
    # as tests/support/fixtures.cc nhs_number_for: 16 candidates per seed
    k = 0
    while True:
        nine = "9%08d" % ((seed * 16 + k) % 100000000)
        s = sum(int(d) * w for d, w in zip(nine, range(10, 1, -1)))
        check = 11 - s % 11
        check = 0 if check == 11 else check
        if check <= 9:
            return nine + str(check)
        k += 1


def a28(n, tag):
    ctl = "%s%d" % (tag, n)
    return ("MSH|^~\\&|SYSTMONE|RFR|ROUTE|CPISGW|20261103091500+0000||ADT^A28^ADT_A05|" + ctl +
            "|P|2.4|||||GBR|UNICODE UTF-8\rEVN|A28|20261103091500\rPID|1||" + nhs_number(n) +
            "^^^NHS^NH~7" + str(n) +
            "^^^RFR^PI||BENCH^Child^May^^Miss||20190506|F|||12 Mill Lane^Rawmarsh^Rotherham^South Yorkshire^S62 6AA^GBR^H||"
            "01709 555123^PRN|||||||||||||||||||NSTS01\rPD1|||Rawmarsh Health Centre^^C87001^^^NHS^ODS\rPV1|1|N\r"
            "ZCT|HV|RFRHV1^Rawmarsh Health Visiting Team|20190601|\rZSC|Y|Y|20190601\r")


def gumcad(rows, offset):
    codes = ["T1", "T2", "T3", "T4", "C4", "B", "P1A", "86406008"]
    outcomes = ["NO_CONCERN", "CONCERN_ADVICE", "CONCERN_REFERRED", "CSE_RISK"]
    out = ["RecordType,ClinicID,PatientID,NHSNumber,DateOfBirth,Age,Gender,LA,AttendanceDate,ActivityCode,"
           "RiskOutcome,CSEIndicators,ReferredTo,ReferralDate,Practitioner"]
    for j in range(rows):
        i = j + offset
        risk = i % 10 >= 7
        out.append("%s,RFRSH,GUM-2026-%07d,%s,%s,%d,%d,E08000018,%02d/%02d/2026,%s,%s,%s,%s,,%s" % (
            "RISK" if risk else "ATTENDANCE", i, "9990475148" if i % 10 == 0 else "",
            "2010-02-03" if i % 3 == 0 else "", 13 + i % 30, 1 + i % 2, 1 + i % 28, 1 + i % 12,
            "" if risk else codes[i % 8], outcomes[i % 4] if risk else "", "OLDER_PARTNER;GIFTS" if risk else "",
            ("SOCIAL_CARE" if i % 2 else "NONE") if risk else "", '"Smith, Dr K"' if i % 20 == 0 else "Nurse A"))
    return "\r\n".join(out) + "\r\n"


CALL = re.compile(r'^\d+\s+(\w+)\((\d+)<([^>]*)>(.*)\)\s+=\s+(-?\d+)')


def count(lines):
    out = {}
    for line in lines:
        m = CALL.match(line)
        if not m:
            continue
        call, path, ret = m.group(1), m.group(3), int(m.group(5))
        name = os.path.basename(path)
        if not name.startswith("gateway.db"):
            continue
        d = out.setdefault(name, {"bytes": 0, "writes": 0, "syncs": 0})
        if call in ("fdatasync", "fsync"):
            d["syncs"] += 1
        elif ret > 0:
            d["bytes"] += ret
            d["writes"] += 1
    return out


class Gateway:
    def __init__(self, args, work):
        self.work = work
        self.trace = os.path.join(work, "trace.txt")
        pki = os.path.join(work, "pki")
        subprocess.run([os.path.join(ROOT, "certs", "make-dev-pki.sh"), pki], check=True, stdout=subprocess.DEVNULL)
        self.pki = pki
        cmd = ["strace", "-f", "-qq", "-y", "-e", "trace=pwrite64,write,writev,pwritev,fdatasync,fsync",
               "-e", "signal=none", "-o", self.trace, args.bin, "serve", "--data-dir", os.path.join(work, "data"),
               "--profiles-dir", os.path.join(ROOT, "profiles"), "--https-listen", "127.0.0.1:0",
               "--mllp-listen", "127.0.0.1:0", "--tls-cert", pki + "/server.pem", "--tls-key", pki + "/server.key",
               "--client-ca", pki + "/ca.pem", "--log-level", "warn"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.https = self.mllp = None
        deadline = time.time() + 60
        while time.time() < deadline and not (self.https and self.mllp):
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(r"listening on https://[^:]+:(\d+)/fhir", line)
            if m:
                self.https = int(m.group(1))
            m = re.search(r"MLLP listening on [\d.]+:(\d+)", line)
            if m:
                self.mllp = int(m.group(1))
        if not (self.https and self.mllp):
            raise SystemExit("gateway did not start")

    def mark(self):
        time.sleep(1.0)  # let the writer finish and strace flush
        with open(self.trace) as f:
            return sum(1 for _ in f)

    def lines(self, a, b):
        with open(self.trace) as f:
            return [l for i, l in enumerate(f) if a <= i < b]

    def stop(self):
        # Signal the gateway itself: killing strace would only detach it.
        try:
            kids = open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)).read().split()
        except OSError:
            kids = []
        for k in kids:
            try:
                os.kill(int(k), signal.SIGTERM)
            except OSError:
                pass
        if not kids:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def mllp_load_bin(work):
    # The peers' build (bash ../shared/bench-peers/run.sh), as write_path.py uses it, when there is one.
    built = os.path.join(os.environ.get("BENCH_PEERS_WORK", "/tmp/bench-peers"), "build", "mllp_load")
    if os.path.exists(built):
        return built
    exe = os.path.join(work, "mllp_load")
    subprocess.run(["gcc", "-O2", "-o", exe, os.path.join(PEERS, "c", "mllp_load.c")], check=True)
    return exe


def send_mllp(exe, port, msgs, conns, window, path):
    with open(path, "w") as f:
        f.write("\n".join(msgs) + "\n")
    r = subprocess.run([exe, "127.0.0.1", str(port), path, "-c", str(conns), "-w", str(window), "-n", str(len(msgs)),
                        "-t", "600"], capture_output=True, text=True)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    if res.get("errors"):
        raise SystemExit("mllp_load errors: %s" % r.stdout)
    return res


def post_csv(gw, body):
    path = os.path.join(gw.work, "file.csv")
    with open(path, "w") as f:
        f.write(body)
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cert",
                        gw.pki + "/client-sexual-health.pem", "--key", gw.pki + "/client-sexual-health.key",
                        "--cacert", gw.pki + "/ca.pem", "-H", "Content-Type: text/csv", "--data-binary", "@" + path,
                        "https://127.0.0.1:%d/ingest/cashgum" % gw.https], capture_output=True, text=True)
    if r.stdout != "200":
        raise SystemExit("csv post answered %s %s" % (r.stdout, r.stderr))


def per_unit(counts, n, page=4096):
    wal = counts.get("gateway.db-wal", {"bytes": 0, "writes": 0, "syncs": 0})
    db = counts.get("gateway.db", {"bytes": 0, "writes": 0, "syncs": 0})
    return {"wal_bytes": round(wal["bytes"] / n, 1), "wal_frames": round(wal["bytes"] / (page + 24) / n, 2),
            "db_bytes": round(db["bytes"] / n, 1), "db_pages": round(db["bytes"] / page / n, 2),
            "fsyncs": round((wal["syncs"] + db["syncs"]) / n, 3), "wal_fsyncs": round(wal["syncs"] / n, 3)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin", "cpis-gateway"))
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--window", type=int, default=1)
    ap.add_argument("--csv-rows", type=int, default=20000)
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="store-io-") as work:
        exe = mllp_load_bin(work)
        gw = Gateway(args, work)
        try:
            send_mllp(exe, gw.mllp, [a28(n, "W") for n in range(1, 201)], 1, 1, os.path.join(work, "warm.hl7"))
            a = gw.mark()
            n = args.messages
            res = send_mllp(exe, gw.mllp, [a28(n0, "M") for n0 in range(1000, 1000 + n)], args.connections,
                            args.window, os.path.join(work, "load.hl7"))
            b = gw.mark()
            out = {"bench": "store_io", "label": args.label, "load": "ADT^A28 over MLLP", "messages": n,
                   "connections": args.connections, "window": args.window}
            out.update(per_unit(count(gw.lines(a, b)), n))
            print(json.dumps(out), flush=True)
            if args.csv_rows:
                post_csv(gw, gumcad(200, 0))
                a = gw.mark()
                post_csv(gw, gumcad(args.csv_rows, 1000))
                b = gw.mark()
                out = {"bench": "store_io", "label": args.label, "load": "CASH/GUM CSV row", "rows": args.csv_rows}
                out.update(per_unit(count(gw.lines(a, b)), args.csv_rows))
                print(json.dumps(out), flush=True)
        finally:
            gw.stop()


if __name__ == "__main__":
    main()
