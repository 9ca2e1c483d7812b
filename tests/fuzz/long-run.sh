#!/bin/sh
# tests/fuzz/long-run.sh - the long fuzzing run behind docs/reliability.md
# ("Fuzzing"): each target in turn for RUNS executions (default 10
# million) or SECONDS_MAX seconds, whichever comes first, at the lowest CPU
# priority, one libFuzzer process at a time. A crash ends that process:
# its input is kept under OUT/TARGET/crashes/ and the target starts again
# for the executions and time left. New inputs go under OUT, never into the
# source corpus; merge them in afterwards with -merge=1.
# Prints per target: seconds, executions, crashes, the last cov:/ft: line.
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
	left_runs=${RUNS:-10000000}
	execs=0
	crashes=0
	round=0
	while :; do
		left_time=$(( ${SECONDS_MAX:-3600} - ($(date +%s) - start) ))
		[ "$left_time" -gt 5 ] && [ "$left_runs" -gt 0 ] || break
		round=$((round + 1))
		log="$out/$t/log.$round"
		if nice -n 19 "$build/tests/fuzz/fuzz-$t" -runs="$left_runs" \
			-max_total_time="$left_time" -timeout=10 -malloc_limit_mb=4200 \
			-print_final_stats=1 -artifact_prefix="$out/$t/crashes/" \
			"$out/$t/new" "$src/corpus/$t" >"$log" 2>&1; then
			ok=1
		else
			ok=0
			crashes=$((crashes + 1))
		fi
		n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
		if [ -z "$n" ]; then
			# a crash prints no final stats: the last status line counts
			n=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
		fi
		n=${n:-0}
		execs=$((execs + n))
		left_runs=$((left_runs - n))
		[ "$ok" = 1 ] && break
	done
	last=$(grep -E '^#[0-9]+.*cov:' "$out/$t"/log.* | tail -n 1 | sed 's/.*\(cov: [0-9]* ft: [0-9]*\).*/\1/')
	echo "$t: $(( $(date +%s) - start )) s, $execs executions, $crashes crash(es), $last"
done
