#!/usr/bin/env python3
"""Keeps the clinical safety case honest: reads the hazard log and fails when
what it claims no longer holds in this build and this ctest run.

For every hazard (a "### HAZ-NN: title" section of docs/clinical-safety/hazard-log.md):
  - the DCB0129 fields are there: Cause, Effect, Initial risk, Mitigation,
    Residual risk, Status;
  - Status is "mitigated" or "open (issue N)": an open hazard names the issue
    that will mitigate it and is not claimed as mitigated;
  - every file named under Code exists in the source tree (a move is caught);
  - a mitigated hazard names at least one file and one test;
  - every test named under Tests exists in gw_tests and passed in this ctest
    run (tests/gw_tests_main.cc writes each outcome to --results); one that is
    missing, did not run, failed or was skipped is an error.

Run by ctest as the cleanup of the gw_results fixture, after every test.
Exits 1 listing every problem, 0 when the log holds."""
import argparse
import os
import re
import subprocess
import sys

FIELDS = ["Cause", "Effect", "Initial risk", "Mitigation", "Residual risk", "Status", "Code", "Tests"]


def listed_tests(gtest):
    out = subprocess.run([gtest, "--gtest_list_tests"], capture_output=True, text=True, check=True).stdout
    tests, suite = set(), None
    for line in out.splitlines():
        line = line.split("#")[0].rstrip()
        if not line:
            continue
        if not line.startswith(" "):
            suite = line.strip()
        elif suite:
            tests.add(suite + line.strip())
    return tests


def parse_log(text):
    hazards = []
    current = None
    for line in text.splitlines():
        m = re.match(r"^### (HAZ-\d+):\s*(.+)$", line)
        if m:
            current = {"id": m.group(1), "title": m.group(2), "fields": {}}
            hazards.append(current)
            continue
        if line.startswith("## ") or line.startswith("# "):
            current = None
            continue
        if current is None:
            continue
        f = re.match(r"^- \*\*([A-Za-z ]+):\*\*\s*(.*)$", line)
        if f:
            current["fields"][f.group(1)] = f.group(2).strip()
            current["last"] = f.group(1)
        elif line.startswith("  ") and "last" in current:
            current["fields"][current["last"]] += " " + line.strip()
    return hazards


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--gtest", required=True)
    args = ap.parse_args()

    with open(args.log, encoding="utf-8") as f:
        hazards = parse_log(f.read())
    existing = listed_tests(args.gtest)
    problems = []
    if not hazards:
        problems.append("no hazards found in %s (sections '### HAZ-NN: title')" % args.log)
    seen = set()
    mitigated = open_ = 0
    for h in hazards:
        where = "%s (%s)" % (h["id"], h["title"])
        if h["id"] in seen:
            problems.append("%s: the id is used twice" % where)
        seen.add(h["id"])
        fields = h["fields"]
        for name in FIELDS:
            if not fields.get(name):
                problems.append("%s: no '%s'" % (where, name))
        status = fields.get("Status", "")
        files = re.findall(r"`([^`]+)`", fields.get("Code", ""))
        tests = re.findall(r"`([^`]+)`", fields.get("Tests", ""))
        if status == "mitigated":
            mitigated += 1
            if not files:
                problems.append("%s: mitigated, but names no code file" % where)
            if not tests:
                problems.append("%s: mitigated, but names no test that demonstrates it" % where)
        elif re.fullmatch(r"open \(issue \d+\)", status):
            open_ += 1
        else:
            problems.append("%s: Status must be 'mitigated' or 'open (issue N)', not '%s'" % (where, status))
        for path in files:
            if not os.path.exists(os.path.join(args.source, path)):
                problems.append("%s: names %s, which does not exist" % (where, path))
        for t in tests:
            if t not in existing:
                problems.append("%s: names test %s, which does not exist in gw_tests" % (where, t))
                continue
            result = os.path.join(args.results, t.replace("/", "%2F"))
            if not os.path.exists(result):
                problems.append("%s: test %s did not run in this ctest run" % (where, t))
                continue
            with open(result) as r:
                outcome = r.read().strip()
            if outcome != "passed":
                problems.append("%s: test %s %s" % (where, t, outcome))
    for p in problems:
        print("hazard log: " + p)
    print("hazard log: %d hazards (%d mitigated, %d open), %d problem(s)" % (len(hazards), mitigated, open_, len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
