#!/usr/bin/env python3
"""DESIGN.md's layering, checked: no file under gateway/ or adapters/ includes a
header from a folder that stands above its own. Exit 1 listing each upward
include. Run by ctest (test LayeringNoUpwardIncludes)."""
import os, re, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# From the bottom (DESIGN.md, "Layering"); folders on one floor may include each other.
FLOORS = [
    ["gateway/common", "gateway/hl7", "gateway/delivery"],
    ["gateway/store", "gateway/model", "gateway/config", "gateway/area"],
    ["gateway/identity", "gateway/audit", "gateway/security"],
    ["adapters", "gateway/net"],
    ["gateway/events"],
    ["gateway/write"],
    ["gateway/fhir", "gateway/cpis", "gateway/ingest", "gateway/admin", "gateway/ops", "gateway/safeguarding"],
    ["gateway/main.cc", "gateway/app"],
]


def floor_of(path):
    best, fl = "", None
    for i, names in enumerate(FLOORS):
        for n in names:
            if (path == n or path.startswith(n + "/")) and len(n) > len(best):
                best, fl = n, i
    return fl, best


def main():
    bad, unknown = [], set()
    for top in ("gateway", "adapters"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if not f.endswith((".h", ".cc")):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, f), ROOT)
                mine, mine_name = floor_of(rel)
                if mine is None:
                    unknown.add(os.path.dirname(rel))
                    continue
                for line in open(os.path.join(ROOT, rel), encoding="utf-8"):
                    m = re.match(r'\s*#include "((gateway|adapters)/[^"]+)"', line)
                    if not m:
                        continue
                    theirs, their_name = floor_of(m.group(1))
                    if theirs is None:
                        unknown.add(os.path.dirname(m.group(1)))
                    elif theirs > mine:
                        bad.append("%s (%s, floor %d) includes %s (%s, floor %d)" %
                                   (rel, mine_name, mine + 1, m.group(1), their_name, theirs + 1))
    for u in sorted(unknown):
        print("folder not placed on a floor in tests/layering_check.py: %s" % u)
    for b in bad:
        print(b)
    sys.exit(1 if bad or unknown else 0)


if __name__ == "__main__":
    main()
