#!/bin/bash
# tests/kclient/nlm-debian.sh - NFS locking with the real Debian client
# stack (issue 15): a diskless Debian bookworm root served by ovlnfsd, whose
# own rpcbind, rpc.statd, sm-notify, dpkg and apt-get take locks through the
# Linux kernel client's lockd and the server's NLM/NSM. Where nlm.sh uses a
# static stand-in for rpcbind and statd in a busybox guest, this test uses
# the programs a real client runs.
#
# Steps:
#  1. The Debian root: debootstrap --variant=minbase
#     --include=rpcbind,nfs-common,netbase (netbase: /etc/protocols and
#     /etc/services, without which mount.nfs and rpcinfo fail), from the
#     first bookworm `main` source of this machine's apt configuration, with
#     /etc/hosts written and /etc/resolv.conf removed (the guest has no DNS:
#     name lookups must fail at once). Cached as a tarball
#     $KC_DEBROOT_CACHE/ovlnfsd-debroot-KEY.tar (default /var/tmp), KEY
#     naming the suite, the packages and the revision of these steps; a
#     cached tarball is reused, so only the first run needs the network.
#  2. The tarball unpacked as the lower layer of an export with an upper
#     (squash = none: the guest's root owns its root), plus a small package
#     built here with dpkg-deb (/root/onfs-locktest_1.0_all.deb).
#  3. ovlnfsd with --portmap 127.0.0.1:111 and --metrics, in a network
#     namespace of this script's own (port 111 is the guest lockd's and
#     statd's way to the server's NLM and NSM; the host's is never touched).
#  4. Boot 1 (guest.sh -R, case g-debian-lock.sh PHASE=1): rpcbind and
#     rpc.statd start, the export is mounted again at /mnt with locking, and
#     fcntl/flock exclusion, dpkg and apt-get refused while another process
#     holds dpkg's locks, dpkg -i once released; the guest powers off while a
#     process holds a lock. On the host: the package and the new
#     /var/lib/dpkg/status are in the upper, the guest's statd recorded the
#     server (upper /var/lib/nfs/sm), the server recorded the guest as a
#     lock holder (STATE/nsm/sm), the server counted NLM LOCK and UNLOCK
#     calls (/metrics).
#  5. Boot 2 of the same root: the dead boot's lock is still held (refused);
#     sm-notify (Debian's, reading the record phase 1's statd wrote) sends
#     SM_NOTIFY, the server releases the lock, the guest gets it. On the host:
#     the server logged the notice and counted NSM NOTIFY, its record of the
#     guest is gone.
#  6. The lower layer is unchanged (path, type, mode, owner, size, mtime of
#     every entry), the server stops cleanly.
#
# Owns: the cache tarball (built under a lock file beside it), one scratch
# directory under $KC_TMPDIR (default /var/tmp), the ovlnfsd it starts
# (stopped by PID), the namespace (gone with the script); guest.sh kills
# qemu on its timeout. Needs root, network for the first run (debootstrap),
# debootstrap (installed with apt-get when missing), dpkg-deb, and what
# guest.sh needs. Without them it exits 77 and says why, or fails under
# REQUIRE_ALL=1 (CI provides all of them, and the Debian mirror).
#
# Usage: nlm-debian.sh [-s OVLNFSD]
# Env: KC_TMPDIR, KC_KEEP=1, KC_DEBROOT_CACHE, KC_DEBIAN_MIRROR (instead of
# the apt configuration's), ONFS_SERVER, ONFS_TEST_TIMEOUT_MULT, REQUIRE_ALL.
# Exit: 0 pass, 1 fail, 64 usage (or no server binary), 77 skipped.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
SERVER=${ONFS_SERVER:-$TOP/build/server/ovlnfsd}
GUEST=$HERE/guest.sh
while getopts ":s:" o; do
	case $o in
	s) SERVER=$OPTARG ;;
	*) echo "usage: nlm-debian.sh [-s OVLNFSD]" >&2; exit 64 ;;
	esac
done
skip() {
	if [ "${REQUIRE_ALL:-0}" = 1 ]; then echo "FAIL (REQUIRE_ALL=1, would skip): $*"; exit 1; fi
	echo "SKIP: $*"
	exit 77
}
say() { echo "kclient-nlm-debian: $*"; }
. "$HERE/common.sh"
T0=${KC_NLMDEB_T0:-$(date +%s)}
el() { echo "$(($(date +%s) - T0)) s"; }

# The Debian root: what goes into it, and the name of its cache.
SUITE=bookworm
INCLUDE=rpcbind,nfs-common,netbase
REV=1 # bump when the steps that make the root change
KEY=$SUITE-minbase-${INCLUDE//,/+}-r$REV
CACHE=${KC_DEBROOT_CACHE:-/var/tmp}
TARBALL=$CACHE/ovlnfsd-debroot-$KEY.tar

# --- on the host (network for debootstrap) -----------------------------------------
if [ "${KC_NLMDEB_NETNS:-}" != 1 ]; then
	[ -x "$SERVER" ] || { echo "nlm-debian.sh: no ovlnfsd binary at $SERVER (use -s)" >&2; exit 64; }
	[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, a root filesystem owned by root, a network namespace)"
	# qemu, the kernel and its modules, busybox-static, cpio: guest.sh says which is missing.
	gout=$(bash "$GUEST" -n 2>&1) || skip "$gout"
	for c in unshare ip flock tar dpkg-deb timeout; do
		command -v $c >/dev/null || skip "$c missing (util-linux, iproute2, tar, dpkg, coreutils)"
	done

	kc_debroot "$TARBALL" $SUITE $INCLUDE kcdebian 1200 skip
	# Everything below runs in a private network namespace: port 111 is ours.
	KC_NLMDEB_NETNS=1 KC_NLMDEB_T0=$T0 exec unshare -n bash "$0" -s "$SERVER"
fi

# --- in the namespace ------------------------------------------------------------------
ip link set lo up || skip "cannot bring up lo in the network namespace"
MULT=${ONFS_TEST_TIMEOUT_MULT:-1}
umask 022
kc_scratch ovlnfsd-kclient-nlmdeb
FAILED=0
bad() { say "FAIL: $*"; FAILED=1; }

L=$ROOT/lower U=$ROOT/upper STATE=$ROOT/state
mkdir -p "$L" "$U" "$ROOT/work" "$STATE"
tar --numeric-owner -C "$L" -xpf "$TARBALL" || { bad "cannot unpack $TARBALL"; exit 1; }
P=$ROOT/pkg
mkdir -p "$P/DEBIAN" "$P/usr/share/onfs-locktest"
cat >"$P/DEBIAN/control" <<EOF
Package: onfs-locktest
Version: 1.0
Architecture: all
Maintainer: ovlnfsd tests <root@localhost>
Description: a file installed by ovlnfsd's kclient-nlm-debian test
EOF
echo "installed through a locking mount" >"$P/usr/share/onfs-locktest/hello"
dpkg-deb -Zgzip --root-owner-group --build "$P" "$L/root/onfs-locktest_1.0_all.deb" >/dev/null ||
	{ bad "dpkg-deb --build failed"; exit 1; }
manifest() { (cd "$L" && find . -printf '%p %y %m %U %G %s %T@ %l\n' | LC_ALL=C sort); }
manifest >"$ROOT/lower.before"
grep -q '^Package: onfs-locktest$' "$L/var/lib/dpkg/status" && { bad "the lower already lists onfs-locktest"; exit 1; }
say "lower: $TARBALL unpacked, $(wc -l <"$ROOT/lower.before") entries ($(el))"

cat >"$ROOT/ovlnfsd.conf" <<EOF
[export debian]
path     = /
lowerdir = $L
upperdir = $U
workdir  = $ROOT/work
clients  = 127.0.0.0/8
squash   = none
EOF
MPORT=9100 # the namespace is ours: any port is free
"$SERVER" -c "$ROOT/ovlnfsd.conf" --listen 127.0.0.1:0 --portmap 127.0.0.1:111 \
	--metrics 127.0.0.1:$MPORT --port-file "$ROOT/port" --state-dir "$STATE" -f -v \
	>>"$ROOT/server.log" 2>&1 &
SRV_PID=$!
kc_wait_port "$ROOT/port" "$SRV_PID" "$ROOT/server.log" bad || exit 1
say "server pid $SRV_PID on 127.0.0.1:$PORT, portmap on 127.0.0.1:111, metrics on :$MPORT (private namespace)"

# metric PREFIX: the sum of the /metrics samples whose name and labels start
# with PREFIX (0 when there are none); fetched with bash's /dev/tcp.
metric() {
	(exec 3<>/dev/tcp/127.0.0.1/$MPORT && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 &&
		timeout 10 cat <&3) | tr -d '\r' |
		awk -v k="$1" 'index($0, k) == 1 { n += $NF } END { print n + 0 }'
}
# nlm PROC [STATUS]: NLM calls of that procedure answered (with that status)
nlm() { metric "ovlnfsd_requests_total{program=\"nlm\",procedure=\"$1\",${2:+status=\"$2\"}"; }

# boot PHASE: the Debian root, case g-debian-lock.sh with PHASE set.
# A dependency that goes missing now (guest.sh exit 69) fails: a run that has
# started never turns into a skip.
boot() {
	local ph=$1 rc=0
	{ echo "PHASE=$ph"; cat "$HERE/g-debian-lock.sh"; } >"$ROOT/case-$ph.sh"
	bash "$GUEST" -R -p "$PORT" -t "$ROOT/case-$ph.sh" -T $((420 * MULT)) -M 512 -a hostname=kcdebian \
		-l "$ROOT/console-$ph.log" >"$ROOT/guest-$ph.out" 2>&1 || rc=$?
	grep -aE '^(ok|not ok|#|1\.\.)' "$ROOT/console-$ph.log" | grep -v '^#   $' | head -n 150
	sed 's/^/  /' "$ROOT/guest-$ph.out"
	return $rc
}

# --- boot 1 ---
say "boot 1: locks, dpkg and apt-get in the Debian root ($(el))"
boot 1 || bad "boot 1: guest.sh exit $?"
if [ -s "$U/usr/share/onfs-locktest/hello" ] && grep -q '^Package: onfs-locktest$' "$U/var/lib/dpkg/status"; then
	say "upper: dpkg's files and its new status are in the upper"
else
	bad "upper: usr/share/onfs-locktest/hello or the status entry missing"
fi
grep -q '^Package: onfs-locktest$' "$L/var/lib/dpkg/status" && bad "the lower's dpkg status changed"
# MON: the guest's statd recorded the server it monitors, in the guest's own root.
sm=$(ls "$U/var/lib/nfs/sm" 2>/dev/null)
[ -n "$sm" ] && say "the guest's statd monitors: $sm (upper var/lib/nfs/sm)" ||
	bad "no record in the guest's /var/lib/nfs/sm: its statd never monitored the server"
# The server's side: the guest is a lock holder (the lock of the powered-off guest).
holders=$(ls "$STATE/nsm/sm" 2>/dev/null | wc -l)
[ "$holders" = 1 ] && say "the server records the guest as a lock holder: $(cat "$STATE"/nsm/sm/* | tr '\n' ' ')" ||
	bad "STATE/nsm/sm holds $holders record(s), want 1 (the guest that went down holding a lock)"
grep -q "nsm: monitoring" "$ROOT/server.log" || bad "the server log never says it monitors the guest"
lock1=$(nlm LOCK) denied1=$(nlm LOCK NLM4_DENIED) unlock1=$(nlm UNLOCK)
say "server's NLM calls after boot 1: LOCK $lock1 (NLM4_DENIED $denied1), UNLOCK $unlock1, TEST $(nlm TEST)"
# Refused by the server (holder on /mnt2, contender on /mnt): fcntl, flock,
# dpkg, apt-get. Granted: kc-f1 three times, kc-f2 twice, dpkg's two locks
# twice (the holder, the last check), dpkg -i, kc-stale.
[ "$denied1" -ge 4 ] || bad "the server refused $denied1 NLM LOCK calls, want >= 4 (the conflicts went through it)"
[ "$((lock1 - denied1))" -ge 10 ] || bad "the server granted $((lock1 - denied1)) NLM LOCK calls, want >= 10"
[ "$unlock1" -ge 5 ] || bad "the server counted $unlock1 NLM UNLOCK calls, want >= 5"

# --- boot 2 ---
say "boot 2: the same root again; its statd tells the server of the reboot ($(el))"
boot 2 || bad "boot 2: guest.sh exit $?"
if grep -q "nsm: SM_NOTIFY: .* restarted" "$ROOT/server.log"; then
	say "server: $(grep -o "nsm: SM_NOTIFY: .*" "$ROOT/server.log" | tail -n 1)"
else
	bad "the server log shows no SM_NOTIFY from the rebooted guest"
fi
notify=$(metric 'ovlnfsd_requests_total{program="nsm",procedure="NOTIFY",')
[ "$notify" -ge 1 ] || bad "the server counted no NSM NOTIFY call"
left=$(ls "$STATE/nsm/sm" 2>/dev/null | wc -l)
[ "$left" = 0 ] || bad "the server still records $left lock holder(s) after boot 2 released everything"
denied2=$(nlm LOCK NLM4_DENIED)
say "server's NLM calls after boot 2: LOCK $(nlm LOCK) (NLM4_DENIED $denied2), NSM NOTIFY: $notify"
[ "$denied2" -gt "$denied1" ] || bad "the server refused nothing in boot 2 (the dead boot's lock was not held)"

kill -TERM "$SRV_PID"
wait "$SRV_PID"; src=$?
SRV_PID=""
[ $src = 0 ] || bad "server exit status $src"
manifest >"$ROOT/lower.after"
if cmp -s "$ROOT/lower.before" "$ROOT/lower.after"; then
	say "the lower is unchanged ($(wc -l <"$ROOT/lower.before") entries)"
else
	diff "$ROOT/lower.before" "$ROOT/lower.after" | head -n 20 | sed 's/^/  /'
	bad "the lower changed"
fi
if grep -E 'ovlnfsd: (error|fatal)|AddressSanitizer|runtime error' "$ROOT/server.log"; then
	bad "errors in the server log"
fi
if [ "$FAILED" = 0 ]; then
	say "PASS ($(el))"
else
	say "server log (tail):"
	tail -n 40 "$ROOT/server.log" | sed 's/^/  /'
fi
exit "$FAILED"
