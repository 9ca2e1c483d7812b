#!/bin/bash
# tests/kclient/nlm.sh - the Linux kernel NFS client's locks through
# ovlnfsd (issue 15): one qemu guest (../shared/tools/kclient/kclient)
# mounts the export with `lock` and runs tests/kclient/g-lock.sh: fcntl and
# flock exclusion between two processes, shared locks, a blocking lock,
# lock-then-write. The guest's lockd finds the server's lock manager
# through port 111 of the host, so the server runs with --portmap
# 127.0.0.1:111 inside a network namespace of this script's own (the
# host's port 111 is never touched). After the run the server log must
# show the guest recorded as a lock holder: the locks went through the
# server, not only the guest's kernel.
#
# Owns: one scratch directory under $KC_TMPDIR (default /var/tmp), the
# ovlnfsd it starts (stopped by PID), the namespace (gone with the script).
# Usage: nlm.sh [-s OVLNFSD] [-k KCLIENT]. Exit 0 pass, 1 fail, 77 skipped
# (reason printed).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
SERVER=${ONFS_SERVER:-$TOP/build/server/ovlnfsd}
KCLIENT=${KCLIENT:-}
while getopts ":s:k:" o; do
	case $o in
	s) SERVER=$OPTARG ;;
	k) KCLIENT=$OPTARG ;;
	*) echo "usage: nlm.sh [-s OVLNFSD] [-k KCLIENT]" >&2; exit 64 ;;
	esac
done
skip() { echo "SKIP: $*"; exit 77; }
say() { echo "kclient-nlm: $*"; }

if [ -z "$KCLIENT" ]; then
	for k in "$TOP/../shared/tools/kclient/kclient" "$TOP/tools/kclient/kclient"; do
		[ -x "$k" ] && { KCLIENT=$k; break; }
	done
fi
if [ -z "$KCLIENT" ] || [ ! -x "$KCLIENT" ]; then
	skip "kclient tool not found (../shared/tools/kclient/kclient; set KCLIENT or -k)"
fi
[ -x "$SERVER" ] || skip "no ovlnfsd binary at $SERVER (use -s)"
[ "$(id -u)" = 0 ] || skip "needs root (a network namespace, port 111 inside it, overlay xattrs)"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"
ls /boot/vmlinuz-* >/dev/null 2>&1 || skip "no kernel in /boot (apt-get install linux-image-amd64)"
if ! command -v unshare >/dev/null || ! command -v ip >/dev/null; then
	skip "unshare or ip missing (util-linux, iproute2)"
fi
command -v cc >/dev/null || skip "no C compiler to build the guest's static helper"

# Everything below runs in a private network namespace: port 111 is ours.
if [ "${KC_NLM_NETNS:-}" != 1 ]; then
	KC_NLM_NETNS=1 exec unshare -n "$0" -s "$SERVER" -k "$KCLIENT"
fi
ip link set lo up || skip "cannot bring up lo in the network namespace"

MULT=${ONFS_TEST_TIMEOUT_MULT:-1}
ROOT=$(mktemp -d "${KC_TMPDIR:-/var/tmp}/ovlnfsd-kclient-nlm.XXXXXX") || exit 1
SRV_PID=""
cleanup() {
	if [ -n "$SRV_PID" ]; then kill "$SRV_PID" 2>/dev/null; wait "$SRV_PID" 2>/dev/null; fi
	if [ "${KC_KEEP:-0}" = 1 ]; then say "kept $ROOT"; else rm -rf "$ROOT"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

mkdir -p "$ROOT"/{l/bin,u,w,state}
cc -static -O2 -o "$ROOT/l/bin/nlmguest" "$HERE/nlmguest.c" ||
	skip "cannot build the static guest helper (libc static archive missing?)"
echo "lower" >"$ROOT/l/README"

"$SERVER" -o "lowerdir=$ROOT/l,upperdir=$ROOT/u,workdir=$ROOT/w" --listen 127.0.0.1:0 \
	--portmap 127.0.0.1:111 --port-file "$ROOT/port" --state-dir "$ROOT/state" -f -v \
	>>"$ROOT/server.log" 2>&1 &
SRV_PID=$!
for _ in $(seq 1 100); do
	[ -s "$ROOT/port" ] && break
	kill -0 "$SRV_PID" 2>/dev/null || break
	sleep 0.1
done
[ -s "$ROOT/port" ] || { cat "$ROOT/server.log"; say "FAIL: server did not start"; exit 1; }
PORT=$(cat "$ROOT/port")
say "server pid $SRV_PID on 127.0.0.1:$PORT, portmap on 127.0.0.1:111 (private namespace)"

rc=0
"$KCLIENT" -p "$PORT" -t "$HERE/g-lock.sh" -T $((600 * MULT)) -l "$ROOT/console.log" || rc=$?
grep -aE '^(ok|not ok|#|1\.\.)' "$ROOT/console.log" | grep -v '^#   $' | head -100
kill -TERM "$SRV_PID"
wait "$SRV_PID"; src=$?
SRV_PID=""
[ $src = 0 ] || { say "FAIL: server exit status $src"; rc=1; }
if ! grep -q "nsm: monitoring" "$ROOT/server.log"; then
	say "FAIL: the server never recorded the guest as a lock holder (locks did not reach it)"
	rc=1
fi
if [ $rc != 0 ]; then
	say "FAIL (kclient exit $rc); server log:"
	tail -50 "$ROOT/server.log"
	exit 1
fi
say "PASS"
