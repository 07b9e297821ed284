#!/usr/bin/env python3
"""Seed a gateway data directory with N children and P CP-IS plans, through the gateway's own ingest.

usage: seed_store.py DATA_DIR [--patients 1000000] [--plans 100000] [--build BUILD] [--peers DIR]
                     [--connections 32] [--chunk 20000] [--upload-rows 5000]

Nothing is written to the store except by `cpis-gateway serve` itself, so what it holds is exactly
what the gateway writes for these children: every row, index entry, history version, raw inbound
message, idempotency key, audit row and change-feed entry.

* children — one SystmOne ADT^A28 per child over plain MLLP (loopback), driven by the bench peers'
  `mllp_load` (every ACK checked: AA, MSA-2 = the message's MSH-10), C connections, one message in
  flight each, so the writer group-commits as it does under load. Each child: an NHS number with a
  valid Modulus 11 check digit (child i gets `nhs_number_for(i)` of tests/support/fixtures.cc, the
  numbers `cpis_query_load` asks for), a name from a list, sex, a date of birth in the last 18
  years, an address and postcode, a GP practice (one of 400), a caseload team (health visitor
  under 5, school nurse from 5) and the EDSM sharing consent (10 % decline sharing out).
* plans — the first P children get a plan in local authority L0001's CP-IS upload files
  (`POST /ingest/cpis-upload`, the dev PKI's `client-local-authority` certificate), R rows per file:
  85 % CPP, 15 % LAC with a legal status, all active.

Refuses to write into a directory that already holds a store. Prints progress and one JSON line at
the end (seconds, rate, file sizes, bytes per patient). The gateway is stopped cleanly (SIGTERM) so
the WAL is checkpointed.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))

FAMILY = ["SMITH", "JONES", "TAYLOR", "BROWN", "WILLIAMS", "WILSON", "JOHNSON", "DAVIES", "ROBINSON", "WRIGHT",
          "THOMPSON", "EVANS", "WALKER", "WHITE", "ROBERTS", "GREEN", "HALL", "WOOD", "JACKSON", "CLARKE",
          "PATEL", "KHAN", "AHMED", "HUSSAIN", "ALI", "BEGUM", "NOWAK", "KOWALSKI", "MURPHY", "KELLY",
          "OKAFOR", "ADEYEMI", "MENSAH", "SINGH", "KAUR", "CHEN", "NGUYEN", "POPESCU", "SILVA", "HUGHES"]
GIVEN_F = ["Olivia", "Amelia", "Isla", "Ava", "Mia", "Ivy", "Lily", "Isabella", "Rosie", "Sophia", "Grace",
           "Freya", "Willow", "Florence", "Emily", "Ella", "Poppy", "Evie", "Elsie", "Charlotte", "Aisha",
           "Zara", "Maryam", "Amira", "Hanna"]
GIVEN_M = ["Noah", "Oliver", "George", "Arthur", "Muhammad", "Leo", "Harry", "Oscar", "Archie", "Henry",
           "Theodore", "Freddie", "Jack", "Charlie", "Theo", "Alfie", "Jacob", "Thomas", "Finley", "Lucas",
           "Yusuf", "Ibrahim", "Adam", "Kacper", "Reuben"]
STREETS = ["Mill Lane", "High Street", "Church Road", "Station Road", "Victoria Street", "Park Avenue",
           "Green Lane", "Manor Road", "School Lane", "Queens Road", "Kings Road", "The Crescent"]
TOWNS = [("Rawmarsh", "S62"), ("Rotherham", "S60"), ("Wath-upon-Dearne", "S63"), ("Maltby", "S66"),
         ("Dinnington", "S25"), ("Swinton", "S64"), ("Thurcroft", "S66"), ("Kiveton Park", "S26")]


def nhs_number_for(seed):
    """tests/support/fixtures.cc nhs_number_for: the first valid Modulus 11 number of 16 candidates."""
    k = 0
    while True:
        nine = "9%08d" % ((seed * 16 + k) % 100000000)
        s = sum(int(d) * w for d, w in zip(nine, range(10, 1, -1)))
        check = 11 - s % 11
        check = 0 if check == 11 else check
        if check <= 9:
            return nine + str(check)
        k += 1


def child(i):
    """Deterministic, varied demographics for child i."""
    h = (i * 2654435761) & 0xFFFFFFFF
    female = h & 1
    given = (GIVEN_F if female else GIVEN_M)[(h >> 1) % 25]
    middle = (GIVEN_F if female else GIVEN_M)[(h >> 7) % 25]
    family = FAMILY[(h >> 13) % len(FAMILY)]
    age_days = (h >> 3) % (18 * 365)  # 0 to 17 years old on 2026-12-01
    y, m, d = days_before_2026_12_01(age_days)
    town, district = TOWNS[(h >> 19) % len(TOWNS)]
    street = STREETS[(h >> 11) % len(STREETS)]
    practice = "C8%04d" % (7001 + (h >> 5) % 400)  # 400 practices
    return {"female": female, "given": given, "middle": middle, "family": family, "dob": (y, m, d),
            "under5": age_days < 5 * 365, "house": 1 + (h >> 9) % 180, "street": street, "town": town,
            "postcode": "%s %d%s%s" % (district, (h >> 15) % 10, "ABDEFGHJLNPQRSTUWXYZ"[(h >> 17) % 20],
                                       "ABDEFGHJLNPQRSTUWXYZ"[(h >> 21) % 20]),
            "practice": practice, "team": 1 + (h >> 23) % 12, "share_out": "N" if (h >> 27) % 10 == 0 else "Y"}


def days_before_2026_12_01(n):
    import datetime
    t = datetime.date(2026, 12, 1) - datetime.timedelta(days=n)
    return t.year, t.month, t.day


def a28(i):
    c = child(i)
    y, m, d = c["dob"]
    dob = "%04d%02d%02d" % (y, m, d)
    start = "%04d%02d%02d" % (y, m, min(d, 28)) if c["under5"] else "%04d0901" % (y + 5)
    role, team = ("HV", "RFRHV%d^Rotherham Health Visiting Team %d" % (c["team"], c["team"])) if c["under5"] else \
        ("SN", "RFRSN%d^Rotherham School Nursing Team %d" % (c["team"], c["team"]))
    return ("MSH|^~\\&|SYSTMONE|RFR|ROUTE|CPISGW|20261201091500+0000||ADT^A28^ADT_A05|SEED%d|P|2.4|||||GBR|UNICODE UTF-8\r"
            "EVN|A28|20261201091500\r"
            "PID|1||%s^^^NHS^NH~7%07d^^^RFR^PI||%s^%s^%s^^%s||%s|%s|||%d %s^%s^Rotherham^South Yorkshire^%s^GBR^H||"
            "01709 5%05d^PRN|||||||||||||||||||NSTS01\r"
            "PD1|||%s Medical Practice^^%s^^^NHS^ODS\rPV1|1|N\r"
            "ZCT|%s|%s|%s|\rZSC|%s|Y|%s\r") % (
        i, nhs_number_for(i), i, c["family"], c["given"], c["middle"], "Miss" if c["female"] else "Master", dob,
        "F" if c["female"] else "M", c["house"], c["street"], c["town"], c["postcode"], i % 100000,
        c["town"], c["practice"], role, team, start, c["share_out"], start)


def upload(https, pki, csv, work, rows):
    answer_path = os.path.join(work, "answer.json")
    r = subprocess.run(["curl", "-sS", "-o", answer_path, "-w", "%{http_code}", "--max-time", "3600", "--cert",
                        pki + "/client-local-authority.pem", "--key", pki + "/client-local-authority.key", "--cacert",
                        pki + "/ca.pem", "-H", "Content-Type: text/csv", "--data-binary", "@" + csv,
                        "https://127.0.0.1:%d/ingest/cpis-upload" % https], capture_output=True, text=True)
    answer = open(answer_path).read() if os.path.exists(answer_path) else ""
    summary = re.search(r"(\d+) accepted \(CPR06\), (\d+) rejected", answer)
    if r.stdout != "200" or not summary or int(summary.group(1)) != rows:
        raise SystemExit(f"plan upload answered {r.stdout} {r.stderr} {answer[:1000]}")


def plan_rows(children):
    out = ["LocalChildID,NHSNumber,FamilyName,GivenName,DateOfBirth,PlanType,StartDate,EndDate,DeleteDate,LAODS,"
           "LAName,OfficePhone,EmergencyPhone,LACLegalStatus"]
    for i in children:
        c = child(i)
        y, m, d = c["dob"]
        lac = (i * 7) % 20 < 3
        start = "2026-%02d-%02d" % (1 + i % 11, 1 + i % 28)
        out.append("L0001-%07d,%s,%s,%s,%04d-%02d-%02d,%s,%s,,,L0001,Authority L0001,01709 336080,01709 336081,%s" % (
            i, nhs_number_for(i), c["family"], c["given"], y, m, d, "LAC" if lac else "CPP", start,
            ["C1", "C2", "V2", "E1"][i % 4] if lac else ""))
    return "\r\n".join(out) + "\r\n"


def start_gateway(build, data_dir, log_path, binary=None):
    pki = os.path.join(build, "test-pki")
    if not os.path.exists(os.path.join(pki, "ca.pem")):
        subprocess.run(["bash", os.path.join(SRC, "certs", "make-dev-pki.sh"), pki], check=True,
                       stdout=subprocess.DEVNULL)
    log = open(log_path, "w")
    p = subprocess.Popen([binary or os.path.join(build, "bin", "cpis-gateway"), "serve", "--data-dir", data_dir,
                          "--https-listen", "127.0.0.1:0", "--tls-cert", pki + "/server.pem", "--tls-key",
                          pki + "/server.key", "--client-ca", pki + "/ca.pem", "--profiles-dir",
                          os.path.join(SRC, "profiles"), "--mllp-listen", "127.0.0.1:0", "--log-level", "warn"],
                         stdout=log, stderr=subprocess.STDOUT)
    mllp = https = None
    for _ in range(600):
        time.sleep(0.1)
        text = open(log_path).read()
        m1 = re.search(r"MLLP listening on [^:]+:([0-9]+)", text)
        m2 = re.search(r"listening on https://[^:]+:([0-9]+)/fhir", text)
        if m1 and m2:
            return p, int(m1.group(1)), int(m2.group(1)), pki
        if p.poll() is not None:
            break
    p.kill()
    raise SystemExit("gateway did not start:\n" + open(log_path).read()[-2000:])


def sizes(data_dir):
    out = {}
    for name in ("gateway.db", "gateway.db-wal"):
        path = os.path.join(data_dir, name)
        out[name] = os.path.getsize(path) if os.path.exists(path) else 0
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("--patients", type=int, default=1000000)
    ap.add_argument("--plans", type=int, default=100000)
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--bin", help="the cpis-gateway binary (default BUILD/bin/cpis-gateway)")
    ap.add_argument("--peers", default=os.environ.get("BENCH_PEERS_WORK", "/tmp/bench-peers"))
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--chunk", type=int, default=20000)
    ap.add_argument("--upload-rows", type=int, default=5000)
    ap.add_argument("--start", type=int, default=0,
                    help="continue a store seeded up to this child (the same --patients and --plans)")
    a = ap.parse_args()
    if a.plans > a.patients:
        raise SystemExit("--plans must not exceed --patients (plans are for seeded children)")
    load_bin = os.path.join(a.peers, "build", "mllp_load")
    if not os.path.exists(load_bin):
        raise SystemExit(f"missing {load_bin}: prepare the peers once with `bash ../shared/bench-peers/run.sh`")
    if os.path.exists(os.path.join(a.data_dir, "gateway.db")) != (a.start > 0):
        raise SystemExit(f"{a.data_dir}: seed a new directory, or give --start N to continue one seeded up to child N")
    os.makedirs(a.data_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="seed-store-")
    t0 = time.time()
    p, mllp, https, pki = start_gateway(a.build, a.data_dir, os.path.join(work, "gateway.log"), a.bin)
    try:
        msgs = os.path.join(work, "chunk.hl7")
        csv = os.path.join(work, "plans.csv")
        every = a.patients // a.plans if a.plans else 0
        t_plans = 0.0
        for lo in range(a.start, a.patients, a.chunk):
            hi = min(a.patients, lo + a.chunk)
            with open(msgs, "w") as f:
                for i in range(lo, hi):
                    f.write(a28(i) + "\n")
            r = subprocess.run([load_bin, "127.0.0.1", str(mllp), msgs, "-c", str(a.connections), "-w", "1",
                                "-n", str(hi - lo), "-t", "100000", "-d", "60"], capture_output=True, text=True)
            res = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
            if r.returncode != 0 or res.get("acked") != hi - lo or res.get("errors") or res.get("nacks"):
                raise SystemExit(f"children {lo}..{hi}: mllp_load rc={r.returncode} {r.stdout[-500:]} {r.stderr[-500:]}")
            # The plans of this chunk's children (every `every`-th child), in files of R rows.
            t1 = time.time()
            planned = [i for i in range(lo, hi) if every and i % every == 0 and i // every < a.plans]
            for k in range(0, len(planned), a.upload_rows):
                with open(csv, "w") as f:
                    f.write(plan_rows(planned[k:k + a.upload_rows]))
                upload(https, pki, csv, work, len(planned[k:k + a.upload_rows]))
            t_plans += time.time() - t1
            print(json.dumps({"seeded": hi, "plans": len([i for i in range(0, hi) if every and i % every == 0]),
                              "msgs_per_s": res.get("msgs_s"), "elapsed_s": round(time.time() - t0, 1),
                              "load_avg": round(os.getloadavg()[0], 2)}), flush=True)
        t_children = time.time() - t0 - t_plans
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(600)
        except subprocess.TimeoutExpired:
            p.kill()
    s = sizes(a.data_dir)
    total = s["gateway.db"] + s["gateway.db-wal"]
    print(json.dumps({"bench": "seed_store", "patients": a.patients, "plans": a.plans, "seconds": round(time.time() - t0, 1),
                      "children_per_s": round((a.patients - a.start) / max(t_children, 1e-9)), "db_bytes": s["gateway.db"],
                      "wal_bytes": s["gateway.db-wal"], "bytes_per_patient": round(total / max(a.patients, 1)),
                      "gateway_exit": p.returncode}), flush=True)
    if p.returncode not in (0, None):
        raise SystemExit("the gateway did not stop cleanly: " + open(os.path.join(work, "gateway.log")).read()[-2000:])


if __name__ == "__main__":
    main()
