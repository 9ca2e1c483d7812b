#!/bin/bash
# tests/bench/record-trace.sh - records the boot trace of the boot-storm
# benchmark from a real diskless boot (issue 12): a debootstrapped Debian
# bookworm root with systemd is served by ovlnfsd with the call recorder on
# (OVLNFSD_RECORD_CALLS, docs/operating.md), the Linux kernel in a qemu
# guest mounts it as its root and boots it with systemd until the default
# target is reached, and the server's record is turned into the trace
# format of nfsbench replay (tests/bench/nfsbench.c).
#
# Steps:
#  1. The root: debootstrap --variant=minbase --include=$INCLUDE (systemd
#     as init, udev, dbus, cron, ifupdown, ...) from the first bookworm
#     `main` source of apt's configuration (or KC_DEBIAN_MIRROR), with
#     /etc/hosts and /etc/hostname written and /etc/resolv.conf removed.
#     Cached as $KC_DEBROOT_CACHE/ovlnfsd-bootroot-KEY.tar (default
#     /var/tmp); run.sh makes the boot benchmark's data set from the same
#     tarball (its name is printed by `record-trace.sh --tarball`).
#  2. In a private network namespace: the tarball unpacked as the lower of
#     an export with an upper (squash = none), ovlnfsd with
#     OVLNFSD_RECORD_CALLS.
#  3. tests/kclient/guest.sh with a boot stage (-b): the initramfs mounts
#     the export, puts a tmpfs /run holding a one-shot unit
#     kc-booted.service (wanted by multi-user.target, ordered after
#     default.target) and switch_roots to the export's /sbin/init
#     (systemd). The unit makes a LOOKUP of /.ovlnfsd-boot-done-NONCE -
#     the end mark in the record - prints systemd-analyze's figures and
#     powers the guest off by sysrq.
#  4. The server stopped by PID; the record up to the end mark converted:
#     LOOKUP (found, or NOENT: a probe), GETATTR, ACCESS, READLINK, READ
#     (offset, count) and READDIR/READDIRPLUS (one line per listing: the
#     calls that start at cookie 0) that succeeded on objects of the
#     lower. Calls on what the boot created (upper only), changes (WRITE,
#     CREATE, SETATTR, ...) and FSINFO/FSSTAT/PATHCONF are left out and
#     counted in the trace's header.
#
# Usage: record-trace.sh [-s OVLNFSD] [-o TRACE] [--tarball]
#   -o   where the trace goes (default tests/bench/boot-trace.txt)
#   --tarball  print the cached root's path and exit (0 if it exists, 1 if not)
# Env: KC_DEBROOT_CACHE, KC_DEBIAN_MIRROR, KC_KEEP=1 (keep the scratch
# directory: the raw record, the console log), BOOT_TIMEOUT (s, 1500).
# Needs root, what guest.sh needs, debootstrap (installed when missing) and
# the Debian mirror for the first run. Exit: 0 recorded, 1 failed, 64 usage.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
SERVER=${ONFS_SERVER:-$TOP/build/server/ovlnfsd}
GUEST=$TOP/tests/kclient/guest.sh
OUT=$HERE/boot-trace.txt
SUITE=bookworm
INCLUDE=systemd-sysv,udev,dbus,kmod,iproute2,ifupdown,netbase,procps,cron
REV=1 # bump when the steps that make the root change
KEY=$SUITE-minbase-${INCLUDE//,/+}-r$REV
CACHE=${KC_DEBROOT_CACHE:-/var/tmp}
TARBALL=$CACHE/ovlnfsd-bootroot-$KEY.tar
say() { echo "record-trace: $*"; }
die() { echo "record-trace: FAIL: $*" >&2; exit 1; }
. "$TOP/tests/kclient/common.sh"

while [ $# -gt 0 ]; do
	case $1 in
	-s) SERVER=$2; shift ;;
	-o) OUT=$2; shift ;;
	--tarball) echo "$TARBALL"; [ -s "$TARBALL" ]; exit ;;
	--inner) ;;
	*) sed -n '/^# Usage:/,/^# Env:/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64 ;;
	esac
	shift
done
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac

# --- on the host: the root (network for debootstrap) ------------------------------
if [ "${ONFS_RECTRACE_NETNS:-}" != 1 ]; then
	[ -x "$SERVER" ] || { echo "record-trace: no ovlnfsd binary at $SERVER (build first, or -s)" >&2; exit 64; }
	[ "$(id -u)" = 0 ] || die "needs root (debootstrap, a root owned by root, a network namespace)"
	gout=$(bash "$GUEST" -n 2>&1) || die "$gout"
	for c in unshare ip flock tar timeout awk; do
		command -v $c >/dev/null || die "$c missing"
	done
	kc_debroot "$TARBALL" $SUITE $INCLUDE kcboot 1800 die
	ONFS_RECTRACE_NETNS=1 exec unshare -n bash "$0" --inner -s "$SERVER" -o "$OUT"
fi

# --- in the namespace --------------------------------------------------------------
ip link set lo up || die "cannot bring up lo in the network namespace"
umask 022
kc_scratch ovlnfsd-rectrace

L=$ROOT/lower
mkdir -p "$L" "$ROOT/upper" "$ROOT/work" "$ROOT/state"
tar --numeric-owner -C "$L" -xpf "$TARBALL" || die "cannot unpack $TARBALL"
say "lower: $TARBALL unpacked ($(du -sh "$L" | cut -f1))"
cat >"$ROOT/ovlnfsd.conf" <<EOF
[export root]
path     = /
lowerdir = $L
upperdir = $ROOT/upper
workdir  = $ROOT/work
clients  = 127.0.0.0/8
squash   = none
EOF
OVLNFSD_RECORD_CALLS=$ROOT/record "$SERVER" -c "$ROOT/ovlnfsd.conf" --listen 127.0.0.1:0 \
	--port-file "$ROOT/port" --state-dir "$ROOT/state" >"$ROOT/server.log" 2>&1 &
SRV_PID=$!
kc_wait_port "$ROOT/port" "$SRV_PID" "$ROOT/server.log" die
say "server pid $SRV_PID on 127.0.0.1:$PORT, recording to $ROOT/record"

# The boot stage: sourced by the initramfs's /init (PID 1), see guest.sh -b.
cat >"$ROOT/boot.sh" <<'EOF'
N=/mnt/nfs
echo "guest: mount -t nfs -o $MOUNT_OPTS $SERVER:$EXPORT $N (root for systemd)"
mount -t nfs -o "$MOUNT_OPTS" "$SERVER:$EXPORT" $N || kc_result mountfail "mount failed"
# /run: a tmpfs holding the end-of-boot unit, kept by systemd (already mounted)
mount -t tmpfs -o mode=0755,nosuid,nodev run /run || kc_result noresult "no tmpfs on /run"
mkdir -p /run/kc /run/systemd/system/multi-user.target.wants
cp /bin/busybox /kc/case.sh /run/kc/ || kc_result noresult "cannot fill /run/kc"
cp /kc/files/kc-booted.service /run/systemd/system/ || kc_result noresult "cannot write the unit"
ln -s ../kc-booted.service /run/systemd/system/multi-user.target.wants/kc-booted.service
(umask 077 && echo "$NONCE" >/run/kc/nonce) || kc_result noresult "cannot write /run/kc/nonce"
umount /tmp
umount /sys
umount /proc
mount -o move /dev $N/dev || kc_result noresult "cannot move /dev into the exported root"
mount -o move /run $N/run || kc_result noresult "cannot move /run into the exported root"
echo "guest: switch_root to $SERVER:$EXPORT, /sbin/init"
exec switch_root $N /sbin/init
EOF
cat >"$ROOT/kc-booted.service" <<'EOF'
[Unit]
Description=record-trace: the boot reached its default target
# No default dependencies: multi-user.target, which wants this unit, would
# be ordered after it, and it after default.target - a cycle.
DefaultDependencies=no
After=default.target

[Service]
Type=oneshot
ExecStart=/run/kc/busybox sh /run/kc/case.sh
EOF
# The unit's script (guest.sh's case script slot: /kc/case.sh).
cat >"$ROOT/done.sh" <<'EOF'
exec >/dev/console 2>&1
K=/run/kc
B=$K/busybox
read -r NONCE <$K/nonce
$B rm -f $K/nonce
# The end mark in the server's record: a name no root has.
$B stat /.ovlnfsd-boot-done-$NONCE >/dev/null 2>&1
us=$(systemctl show --value -p ActiveEnterTimestampMonotonic default.target)
echo "guest: systemd reached default.target $((us / 1000)) ms after the kernel started; uptime now $($B cut -d' ' -f1 /proc/uptime) s"
systemctl list-jobs --no-legend 2>&1 | $B sed 's/^/guest: job still running: /'
systemctl --failed --no-legend --plain 2>&1 | $B sed 's/^/guest: failed unit: /'
echo
echo "KC-$NONCE RESULT test 0"
echo o >/proc/sysrq-trigger
$B sleep 30
EOF
say "booting the root with systemd (qemu; TCG is slow: minutes)"
T0=$(date +%s)
rc=0
bash "$GUEST" -b "$ROOT/boot.sh" -t "$ROOT/done.sh" -f "$ROOT/kc-booted.service" -p "$PORT" \
	-T "${BOOT_TIMEOUT:-1500}" -M 768 -a "hostname=kcboot" -l "$ROOT/console.log" \
	>"$ROOT/guest.out" 2>&1 || rc=$?
grep -a '^guest: ' "$ROOT/console.log" | tail -n 12
sed 's/^/  /' "$ROOT/guest.out"
kill -TERM "$SRV_PID"
wait "$SRV_PID"
src=$?
SRV_PID=""
[ "$rc" = 0 ] || { tail -n 30 "$ROOT/console.log" | sed 's/^/  console: /'; die "the boot did not finish (guest.sh exit $rc)"; }
[ "$src" = 0 ] || die "server exit status $src"
secs=$(($(date +%s) - T0))
say "booted in ${secs} s of wall time; record: $(wc -l <"$ROOT/record") lines"

# --- the record -> the trace -------------------------------------------------------
# up to the end mark; then which paths exist in the lower (the data set)
awk '$5 ~ /^\/\.ovlnfsd-boot-done-/ { exit } !/^#/' "$ROOT/record" >"$ROOT/record.boot"
[ "$(wc -l <"$ROOT/record")" -gt "$(($(wc -l <"$ROOT/record.boot") + 1))" ] ||
	die "no end mark (LOOKUP /.ovlnfsd-boot-done-*) in the record"
awk '{ print $5 }' "$ROOT/record.boot" | LC_ALL=C sort -u |
	while IFS= read -r p; do
		{ [ -e "$L$p" ] || [ -L "$L$p" ]; } && printf '%s\n' "$p"
	done >"$ROOT/inlower"
kver=$(sed -n 's/^guest.sh: kernel \([^ ,]*\),.*/\1/p' "$ROOT/guest.out")
accel=$(sed -n 's/^guest.sh: .* accel \([^ ,]*\),.*/\1/p' "$ROOT/guest.out")
{
	echo "# Boot trace RECORDED from a real diskless boot, by tests/bench/record-trace.sh"
	echo "# on $(date -u +%Y-%m-%d): Linux ${kver:-?} (qemu, ${accel:-?}, 2 vCPUs) booting a"
	echo "# debootstrapped Debian $SUITE root (--variant=minbase --include=$INCLUDE)"
	echo "# served by ovlnfsd over NFSv3/TCP, from the mount of the root until systemd"
	echo "# reached its default target; recorded by the server (OVLNFSD_RECORD_CALLS)."
	echo "# Format: OP PATH [OFFSET COUNT] (READDIR/READDIRPLUS: one whole listing, 0 COUNT)."
	awk -v inl="$ROOT/inlower" '
	BEGIN { while ((getline p < inl) > 0) ok[p] = 1 }
	{
		op = $4; path = $5; st = $6; all[op]++
		if (path ~ /%/ || path == "-") { drop[op " (unprintable path)"]++; next }
		if (op == "LOOKUP") {
			if (st == 0 || st == 2) { print "LOOKUP " path; kept[op]++ }
			else drop[op " (status " st ")"]++
			next
		}
		if (op != "GETATTR" && op != "ACCESS" && op != "READLINK" && op != "READ" &&
		    op != "READDIR" && op != "READDIRPLUS" && op != "FSSTAT" && op != "FSINFO" &&
		    op != "PATHCONF") { drop[op " (a change: not replayed)"]++; next }
		if (st != 0) { drop[op " (status " st ")"]++; next }
		if (!(path in ok)) { drop[op " (made by the boot)"]++; next }
		if (op == "READ") { print op " " path " " $7 " " $8; kept[op]++; next }
		if (op ~ /^READDIR/) {
			if ($7 == 0) { print op " " path " 0 " $8; kept[op]++ } else cont[op]++
			next
		}
		print op " " path; kept[op]++
	}
	# "k=v" of an array, sorted by key, joined by sep
	function list(a, sep,   k, ks, n, i, j, t, s) {
		n = 0
		for (k in a) ks[++n] = k
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && ks[j - 1] > ks[j]; j--) { t = ks[j]; ks[j] = ks[j - 1]; ks[j - 1] = t }
		s = ""
		for (i = 1; i <= n; i++) s = s (i > 1 ? sep : "") ks[i] "=" a[ks[i]]
		return s
	}
	END {
		n = 0; for (k in all) n += all[k]
		m = 0; for (k in kept) m += kept[k]
		print "# The record: " n " NFS calls: " list(all, " ") > "/dev/stderr"
		print "# Replayed: " m " lines: " list(kept, " ") > "/dev/stderr"
		if (length(cont)) print "# Continuations of a listing (the replay follows the cookies itself): " list(cont, " ") > "/dev/stderr"
		if (length(drop)) print "# Left out: " list(drop, "; ") > "/dev/stderr"
	}' "$ROOT/record.boot" 2>"$ROOT/counts" >"$ROOT/body"
	fold -s -w 98 "$ROOT/counts" | sed 's/ *$//; s/^\([^#]\)/#   \1/'
	cat "$ROOT/body"
} >"$OUT.tmp" || die "cannot write $OUT.tmp"
mv "$OUT.tmp" "$OUT" || die "cannot write $OUT"
grep -a '^guest: ' "$ROOT/console.log" | grep -E 'default.target|failed unit' | sed 's/^guest: /# Guest: /' >"$ROOT/startup"
[ -s "$ROOT/startup" ] && { head -n 6 "$OUT"; cat "$ROOT/startup"; sed -n '7,$p' "$OUT"; } >"$OUT.tmp" && mv "$OUT.tmp" "$OUT"
say "wrote $OUT: $(grep -vc '^#' "$OUT") calls"
grep '^#' "$OUT" | sed 's/^/  /'
