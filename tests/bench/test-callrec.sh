#!/bin/bash
# tests/bench/test-callrec.sh - the call recorder (OVLNFSD_RECORD_CALLS,
# server/callrec.c) with the real libnfs client of nfsbench: a replayed
# trace comes back as the server's record, line for line (procedure, merged
# path, status, READ's range, READDIRPLUS's cookie and count); repeated
# GETATTRs are all recorded (none answered from the loop's cache); names
# with a space or '%' are escaped; the file is made 0600; a symlink as the
# file is refused with the variable and the path named. Runs $ONFS_SERVER
# and $NFSBENCH on 127.0.0.1 and stops each server it starts by PID.
set -u
BIN=${ONFS_SERVER:?ONFS_SERVER not set}
NB=${NFSBENCH:?NFSBENCH not set}
MULT=${ONFS_TEST_TIMEOUT_MULT:-1}
T=$(mktemp -d /tmp/onfs-callrec-XXXXXX)
PID=""
cleanup() {
	if [ -n "$PID" ]; then kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; fi
	rm -rf "$T"
}
trap cleanup EXIT
fails=0
ok() { echo "ok $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }

mkdir -p "$T/l/d/sub" "$T/l/esc" "$T/u" "$T/w" "$T/s"
printf 'hello, recorder\n' >"$T/l/d/f"
ln -s d/f "$T/l/ln"
: >"$T/l/esc/a b"
: >"$T/l/esc/p%c"

start() { # start RECORDFILE: the server on a free port, recording to it
	rm -f "$T/port"
	OVLNFSD_RECORD_CALLS=$1 "$BIN" -o "lowerdir=$T/l,upperdir=$T/u,workdir=$T/w" \
		--listen 127.0.0.1:0 --port-file "$T/port" --state-dir "$T/s" 2>"$T/log" &
	PID=$!
	for _ in $(seq $((100 * MULT))); do
		[ -s "$T/port" ] && return 0
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	return 1
}
stop() { # stop: SIGTERM, the exit status in $src
	kill -TERM "$PID"
	wait "$PID"
	src=$?
	PID=""
}

# --- a symlink as the record file: refused, nothing served ---
ln -s "$T/elsewhere" "$T/link"
if start "$T/link"; then
	bad "a symlink as OVLNFSD_RECORD_CALLS was accepted"
	stop
else
	wait "$PID"; rc=$?; PID=""
	if [ "$rc" != 0 ] && grep -q "OVLNFSD_RECORD_CALLS=$T/link" "$T/log" && [ ! -e "$T/elsewhere" ]; then
		ok "a symlink is refused (exit $rc, the variable and the path named, nothing created)"
	else
		bad "symlink: exit $rc, log: $(cat "$T/log"), target exists: $([ -e "$T/elsewhere" ] && echo yes || echo no)"
	fi
fi

# --- a record of a replayed trace ---
R=$T/record
echo "an old record" >"$R"
chmod 0644 "$R"
start "$R" || { cat "$T/log"; bad "the server did not start"; exit 1; }
grep -q "warning: recording every NFS call to $R" "$T/log" &&
	ok "the server warns that it records" || bad "no warning in the log: $(cat "$T/log")"
cat >"$T/trace" <<EOF
LOOKUP /d
LOOKUP /d/f
GETATTR /d/f
GETATTR /d/f
GETATTR /d/f
ACCESS /d/f
READ /d/f 0 4096
READ /d/f 4096 8192
LOOKUP /nope
LOOKUP /ln
READLINK /ln
READDIRPLUS /d 0 8192
FSSTAT /d
FSINFO /
PATHCONF /d/f
EOF
out=$(timeout $((60 * MULT)) "$NB" --port "$(cat "$T/port")" replay "$T/trace" 2>&1) ||
	bad "nfsbench replay failed: $out"
out=$(timeout $((60 * MULT)) "$NB" --port "$(cat "$T/port")" --count 2 lookup esc 2>&1) ||
	bad "nfsbench lookup esc failed: $out"
stop
[ "$src" = 0 ] && ok "the server stops cleanly (exit 0)" || bad "server exit status $src"

mode=$(stat -c %a "$R")
[ "$mode" = 600 ] && ok "the record is mode 0600 (it was 0644)" || bad "the record is mode $mode"
grep -q "an old record" "$R" && bad "the old content was not truncated" || ok "an existing file is truncated"
head -n 1 "$R" | grep -q '^# ovlnfsd call record: SECONDS CLIENT EXPORT PROC PATH STATUS' &&
	ok "header line" || bad "header: $(head -n 1 "$R")"
# fields 4- : PROC PATH STATUS [OFFSET COUNT]; every line starts SECONDS 127.0.0.1 default
bad_lines=$(awk 'NR > 1 && ($1 !~ /^[0-9]+\.[0-9][0-9][0-9][0-9][0-9][0-9]$/ || $2 != "127.0.0.1" || $3 != "default")' "$R")
[ -z "$bad_lines" ] && ok "every line: SECONDS 127.0.0.1 default ..." || bad "malformed lines: $bad_lines"
cut -d' ' -f4- "$R" | sed 1d >"$T/calls"
expect() { # expect N LINE: LINE (fields 4-) occurs exactly N times
	local n
	n=$(grep -cxF -- "$2" "$T/calls")
	[ "$n" = "$1" ] && ok "$1 x '$2'" || bad "'$2' occurs $n times, want $1"
}
expect 1 "LOOKUP /d 0"
expect 1 "LOOKUP /d/f 0"
expect 3 "GETATTR /d/f 0"
expect 1 "ACCESS /d/f 0"
expect 1 "READ /d/f 0 0 4096"
expect 1 "READ /d/f 0 4096 8192"
expect 1 "LOOKUP /nope 2"
expect 1 "LOOKUP /ln 0"
expect 1 "READLINK /ln 0"
expect 1 "READDIRPLUS /d 0 0 8192"
expect 1 "FSSTAT /d 0"
expect 1 "PATHCONF /d/f 0"
grep -qxF "FSINFO / 0" "$T/calls" && ok "FSINFO / recorded" || bad "no 'FSINFO / 0' line"
expect 1 "LOOKUP /esc/a%20b 0"
expect 1 "LOOKUP /esc/p%25c 0"
# the replay's order is the record's
order=$(grep -nE '^(LOOKUP /nope|READLINK /ln|READDIRPLUS /d) ' "$T/calls" | cut -d: -f2 | cut -d' ' -f1 | tr '\n' ' ')
[ "$order" = "LOOKUP READLINK READDIRPLUS " ] && ok "calls in the order they were made" || bad "order: $order"

if grep -E 'AddressSanitizer|runtime error' "$T/log"; then bad "sanitizer report in the server log"; fi
[ "$fails" = 0 ] && echo "PASS" || echo "FAILED: $fails"
exit $((fails > 0))
