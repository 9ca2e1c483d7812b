#!/bin/sh
# tests/fuzz/long-run.sh - the long fuzzing run behind docs/reliability.md
# ("Fuzzing"): each target for RUNS executions (default 10 million) or
# SECONDS seconds, whichever comes first, at the lowest CPU priority, one
# libFuzzer process at a time per target (-fork=1: a crash is recorded and
# the run goes on). New inputs and crash artifacts go under OUT, never into
# the source corpus; merge them in afterwards with -merge=1.
#
# Usage: sh tests/fuzz/long-run.sh BUILD_DIR OUT TARGET...
# Environment: RUNS (10000000), SECONDS_MAX (3600).
set -eu
build=$1
out=$2
shift 2
src=$(cd "$(dirname "$0")" && pwd)
for t in "$@"; do
	mkdir -p "$out/$t/new" "$out/$t/crashes"
	start=$(date +%s)
	nice -n 19 "$build/tests/fuzz/fuzz-$t" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 \
		-ignore_ooms=1 -runs="${RUNS:-10000000}" -max_total_time="${SECONDS_MAX:-3600}" \
		-timeout=10 -malloc_limit_mb=4200 -print_final_stats=1 \
		-artifact_prefix="$out/$t/crashes/" "$out/$t/new" "$src/corpus/$t" \
		>"$out/$t/log" 2>&1 || true
	echo "$t: $(( $(date +%s) - start )) s; $(grep -E '^#[0-9]+' "$out/$t/log" | tail -n 1)"
done
