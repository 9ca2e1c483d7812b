#!/usr/bin/env python3
# tests/lib/suite-summary.py - after `meson test`, say which suites ran and
# which skipped, and why, from BUILDDIR/meson-logs/testlog.json.
#
# Usage: suite-summary.py BUILDDIR [REQUIRED_SUITE...]
# Prints one line per suite: how many tests passed, failed and skipped, and
# for each skipped test the reason it printed (its last "SKIP" line), plus
# notes a test printed about checks it left out ("did not run docker: ...",
# "NOTE: ..."). Exit 1 when REQUIRE_ALL=1 and a REQUIRED_SUITE has no test
# in the log, or has a skipped test, or printed such a note: what CI
# provides for must run. Exit 0 otherwise (failures are meson's to report).
# Owns nothing; reads the log only.
import json
import os
import re
import sys

NOTE = re.compile(r"^(?:\S+: )?(did not run docker: .*|NOTE: .*|SKIP\b.*)$")


def reason(stdout):
    """The last line that says why something was not run."""
    why = ""
    for line in (stdout or "").splitlines():
        m = NOTE.search(line.strip())
        if m:
            why = m.group(1)
    return why


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: suite-summary.py BUILDDIR [REQUIRED_SUITE...]\n")
        return 2
    build, required = sys.argv[1], sys.argv[2:]
    path = os.path.join(build, "meson-logs", "testlog.json")
    suites = {}
    try:
        with open(path) as f:
            for line in f:
                t = json.loads(line)
                name = t.get("name", "?")
                # "project:suite / test"
                head, _, test = name.partition(" / ")
                suite = head.split(":", 1)[-1]
                s = suites.setdefault(suite, {"OK": 0, "FAIL": 0, "SKIP": 0, "why": []})
                res = t.get("result", "?")
                if res == "OK":
                    s["OK"] += 1
                elif res == "SKIP":
                    s["SKIP"] += 1
                    s["why"].append("%s skipped: %s" % (test, reason(t.get("stdout")) or "(no reason printed)"))
                else:
                    s["FAIL"] += 1
                if res == "OK":
                    # a test that ran may still have left a case or a
                    # check out: its SKIP or NOTE lines say so
                    for line in (t.get("stdout") or "").splitlines():
                        m = NOTE.search(line.strip())
                        if m:
                            s["why"].append("%s ran, but: %s" % (test, m.group(1)))
    except OSError as e:
        print("suites in %s: no test log (%s)" % (build, e.strerror))
        return 1 if os.environ.get("REQUIRE_ALL") == "1" and required else 0
    strict = os.environ.get("REQUIRE_ALL") == "1"
    bad = []
    print("suites in %s:" % build)
    for name in sorted(suites):
        s = suites[name]
        state = "ran" if s["OK"] + s["FAIL"] > 0 else "SKIPPED"
        print("  %-12s %-7s %d passed, %d failed, %d skipped" % (name, state, s["OK"], s["FAIL"], s["SKIP"]))
        for w in s["why"]:
            print("  %-12s         %s" % ("", w))
        if strict and name in required and s["why"]:
            bad.append(name)
    for name in required:
        if name not in suites:
            print("  %-12s NOT RUN (no test of this suite in the log)" % name)
            if strict:
                bad.append(name)
    if bad:
        print("REQUIRE_ALL=1: suite(s) %s did not run in full (reasons above)" % ", ".join(sorted(set(bad))))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
