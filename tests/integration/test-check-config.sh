#!/bin/sh
# test-check-config.sh - `ovlnfsd --check-config -c FILE`: exit 0 for a valid
# file whose directories exist, 1 with every error (file:line) otherwise, 2
# without -c; it creates nothing (no work area, key or state directory) and
# serves nothing. Runs $ONFS_SERVER.
set -u
BIN=${ONFS_SERVER:?ONFS_SERVER not set}
T=$(mktemp -d /tmp/onfs-checkcfg-XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }

mkdir -p "$T/l1" "$T/l2" "$T/up" "$T/wk"
cat >"$T/good.conf" <<EOC
[server]
listen = 127.0.0.1:2049
state_dir = $T/state
[export a]
path = /a
lowerdir = $T/l1:$T/l2
upperdir = $T/up
workdir = $T/wk
[export b]
path = /b
lowerdir = $T/l2
EOC
out=$("$BIN" --check-config -c "$T/good.conf" 2>"$T/err"); rc=$?
if [ $rc -eq 0 ] && echo "$out" | grep -q "OK: 2 export(s)" && [ ! -s "$T/err" ]; then
	ok "valid file: exit 0, 'OK: 2 export(s)'"
else
	bad "valid file: rc=$rc out=$out err=$(cat "$T/err")"
fi
if [ -e "$T/wk/ovlnfsd" ] || [ -e "$T/state" ] || [ -n "$(find "$T/up" "$T/wk" -mindepth 1)" ]; then
	bad "--check-config created something: $(find "$T/up" "$T/wk" "$T/state" 2>/dev/null)"
else
	ok "--check-config created nothing (no work area, key or state directory)"
fi
echo "$out" | grep -q "state_dir '$T/state' does not exist yet" &&
	ok "a missing state_dir is a note, not an error" || bad "no note about the missing state_dir: $out"

# every error, each with its own line
mkdir -p "$T/up/work-inside"
cat >"$T/bad.conf" <<EOC
[server]
listen = 127.0.0.1:99999
[export a]
path = /a
lowerdir = $T/l1:$T/missing
upperdir = $T/up
workdir = $T/up/work-inside
[export b]
path = /b
lowerdir = $T/l2
access = sometimes
broken line
[export c]
path = /c
lowerdir = $T/l1
upperdir = $T/l1/x
workdir = $T/wk
owner = no-such-user-onfs
EOC
mkdir -p "$T/l1/x"
"$BIN" --check-config -c "$T/bad.conf" >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && ok "bad file: exit 1" || bad "bad file: exit $rc (want 1)"
for want in \
	"bad.conf:2: \[server\] listen: invalid address" \
	"bad.conf:5: \[export a\] lowerdir: '$T/missing': No such file or directory" \
	"bad.conf:7: \[export a\] workdir: '$T/up/work-inside' is inside upperdir" \
	"bad.conf:11: \[export b\] access: 'sometimes'" \
	"bad.conf:12: syntax error" \
	"bad.conf:16: \[export c\] upperdir: '$T/l1/x' and lowerdir '$T/l1' overlap" \
	"bad.conf:18: \[export c\] owner: 'no-such-user-onfs': no such user" \
	"bad.conf: 8 error(s)"; do
	if grep -q "$want" "$T/err"; then
		ok "reported: $want"
	else
		bad "not reported: $want"
	fi
done
# 8: the bad access value also leaves [export b] asking for rw without an upper
[ "$(grep -c '^ovlnfsd: error: ' "$T/err")" -eq 8 ] && ok "exactly 8 errors" ||
	{ bad "want 8 errors:"; cat "$T/err"; }

"$BIN" --check-config -c "$T/absent.conf" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "absent.conf': No such file" "$T/err" &&
	ok "missing file: exit 1, named" || bad "missing file: rc=$rc $(cat "$T/err")"
"$BIN" --check-config >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--check-config' needs -c FILE" "$T/err" &&
	ok "without -c: exit 2" || bad "without -c: rc=$rc $(cat "$T/err")"

[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "check-config: all ok"
