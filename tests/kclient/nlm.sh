#!/bin/bash
# tests/kclient/nlm.sh - the Linux kernel NFS client's locks through
# ovlnfsd (issue 15): one qemu guest (tests/kclient/guest.sh) mounts the
# export with `lock` and runs tests/kclient/g-lock.sh: fcntl and
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
# Usage: nlm.sh [-s OVLNFSD]. Env: KC_TMPDIR, KC_KEEP=1, ONFS_SERVER,
# ONFS_TEST_TIMEOUT_MULT, REQUIRE_ALL=1 (CI: what would be a skip is a
# failure, as in run.sh). Exit 0 pass, 1 fail, 64 usage (or no server
# binary), 77 skipped (reason printed).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
SERVER=${ONFS_SERVER:-$TOP/build/server/ovlnfsd}
GUEST=$HERE/guest.sh
while getopts ":s:" o; do
	case $o in
	s) SERVER=$OPTARG ;;
	*) echo "usage: nlm.sh [-s OVLNFSD]" >&2; exit 64 ;;
	esac
done
# Under REQUIRE_ALL=1 (CI, which provides root, qemu, the kernel package,
# busybox-static, a C compiler with a static libc) a reason to skip is a
# failure, as in run.sh.
skip() {
	if [ "${REQUIRE_ALL:-0}" = 1 ]; then echo "FAIL (REQUIRE_ALL=1, would skip): $*"; exit 1; fi
	echo "SKIP: $*"
	exit 77
}
say() { echo "kclient-nlm: $*"; }
die() { say "FAIL: $*"; exit 1; }
. "$HERE/common.sh"

[ -x "$SERVER" ] || { echo "nlm.sh: no ovlnfsd binary at $SERVER (use -s)" >&2; exit 64; }
[ "$(id -u)" = 0 ] || skip "needs root (a network namespace, port 111 inside it, overlay xattrs)"
# qemu, the kernel and its modules, busybox-static, cpio: guest.sh says which is missing.
gout=$(bash "$GUEST" -n 2>&1) || skip "$gout"
if ! command -v unshare >/dev/null || ! command -v ip >/dev/null; then
	skip "unshare or ip missing (util-linux, iproute2)"
fi
command -v cc >/dev/null || skip "no C compiler (cc) to build the guest's static helper"

# Everything below runs in a private network namespace: port 111 is ours.
# (bash by name: the script need not be executable in this checkout.)
if [ "${KC_NLM_NETNS:-}" != 1 ]; then
	KC_NLM_NETNS=1 exec unshare -n bash "$HERE/nlm.sh" -s "$SERVER"
fi
ip link set lo up || skip "cannot bring up lo in the network namespace"

MULT=${ONFS_TEST_TIMEOUT_MULT:-1}
kc_scratch ovlnfsd-kclient-nlm

mkdir -p "$ROOT"/{l/bin,u,w,state}
cc -static -O2 -o "$ROOT/l/bin/nlmguest" "$HERE/nlmguest.c" ||
	skip "cannot build the static guest helper (libc static archive missing?)"
echo "lower" >"$ROOT/l/README"

"$SERVER" -o "lowerdir=$ROOT/l,upperdir=$ROOT/u,workdir=$ROOT/w" --listen 127.0.0.1:0 \
	--portmap 127.0.0.1:111 --port-file "$ROOT/port" --state-dir "$ROOT/state" -f -v \
	>>"$ROOT/server.log" 2>&1 &
SRV_PID=$!
kc_wait_port "$ROOT/port" "$SRV_PID" "$ROOT/server.log" die || exit 1
say "server pid $SRV_PID on 127.0.0.1:$PORT, portmap on 127.0.0.1:111 (private namespace)"

rc=0
# A dependency that goes missing now (guest.sh exit 69) fails: a run that
# has started never turns into a skip.
bash "$GUEST" -p "$PORT" -t "$HERE/g-lock.sh" -T $((600 * MULT)) -l "$ROOT/console.log" >"$ROOT/guest.out" 2>&1 || rc=$?
grep -aE '^(ok|not ok|#|1\.\.)' "$ROOT/console.log" | grep -v '^#   $' | head -100
sed 's/^/  /' "$ROOT/guest.out"
kill -TERM "$SRV_PID"
wait "$SRV_PID"; src=$?
SRV_PID=""
[ $src = 0 ] || { say "FAIL: server exit status $src"; rc=1; }
if ! grep -q "nsm: monitoring" "$ROOT/server.log"; then
	say "FAIL: the server never recorded the guest as a lock holder (locks did not reach it)"
	rc=1
fi
if [ $rc != 0 ]; then
	say "FAIL (guest.sh exit $rc); server log:"
	tail -50 "$ROOT/server.log"
	exit 1
fi
say "PASS"
