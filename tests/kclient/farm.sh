#!/bin/bash
# tests/kclient/farm.sh - a diskless farm on the real Linux kernel client:
# two qemu guests boot their root filesystem from ONE templated export
# (path = /clients/{name}), each from its own /clients/NAME instance.
#
# Steps: build a small bootable lower (busybox-static root with
# /etc/hostname "base"); start ovlnfsd with the template; boot guest alpha
# and guest beta (tests/kclient/guest.sh -R -e /clients/NAME: the guest
# mounts the export and switch_roots into it), each writes its own
# /etc/hostname and checks it sees nothing of the other; check both uppers
# on the host; restart the server; boot both again: each sees its own
# change and only it; the lower is byte-for-byte unchanged (md5 and
# metadata manifest taken before the first boot).
#
# Owns one scratch directory (under $KC_TMPDIR, default /var/tmp) and the
# ovlnfsd it starts (stopped by PID). Needs root, and what guest.sh needs
# (qemu-system-x86_64, a kernel in /boot with its modules, busybox-static,
# cpio); without them it exits 77 and says why - or fails under
# REQUIRE_ALL=1 (CI provides all of them).
#
# Both guests reach the host through qemu's user network, so the server sees
# both at 127.0.0.1: the {name} in the mounted path is what tells them apart.
# (Both also send the same AUTH_SYS machine name, the guest kernel's default
# node name, so for the server's strict handle separation they are one client:
# docs/instances.md. This test checks what each guest sees, not forged handles;
# tests/integration/test-instances.c does that.)
#
# Usage: farm.sh [-s OVLNFSD]
# Env: KC_TMPDIR, KC_KEEP=1, ONFS_SERVER, ONFS_TEST_TIMEOUT_MULT, REQUIRE_ALL.
# Exit: 0 pass, 1 fail, 64 usage (or no server binary), 77 skipped.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
SERVER=${ONFS_SERVER:-$TOP/build/server/ovlnfsd}
GUEST=$HERE/guest.sh
while getopts ":s:" o; do
	case $o in
	s) SERVER=$OPTARG ;;
	*) echo "usage: farm.sh [-s OVLNFSD]" >&2; exit 64 ;;
	esac
done

# Under REQUIRE_ALL=1 (CI, which provides root, qemu, the kernel package and
# busybox-static) a reason to skip is a failure, as in run.sh.
skip() {
	if [ "${REQUIRE_ALL:-0}" = 1 ]; then echo "FAIL (REQUIRE_ALL=1, would skip): $*"; exit 1; fi
	echo "SKIP: $*"
	exit 77
}
say() { echo "kclient-farm: $*"; }
. "$HERE/common.sh"

[ -x "$SERVER" ] || { echo "farm.sh: no ovlnfsd binary at $SERVER (use -s)" >&2; exit 64; }
[ "$(id -u)" = 0 ] || skip "needs root (a root filesystem owned by root, trusted.overlay.* xattrs)"
# qemu, the kernel and its modules, busybox-static, cpio: guest.sh says which is missing.
gout=$(bash "$GUEST" -n 2>&1) || skip "$gout"

umask 022
kc_scratch ovlnfsd-farm
FAILED=0
bad() { say "FAIL: $*"; FAILED=1; }

# --- the base image: a busybox root the kernel client can switch_root into ---
BASE=$ROOT/base
mkdir -p "$BASE"/{bin,sbin,etc,dev,proc,sys,run,tmp,root,var/log}
chmod 1777 "$BASE/tmp"
cp /bin/busybox "$BASE/bin/busybox"
for a in $("$BASE/bin/busybox" --list); do
	[ "$a" = busybox ] || ln -s busybox "$BASE/bin/$a"
done
echo base >"$BASE/etc/hostname"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$BASE/etc/passwd"
printf 'root:x:0:\n' >"$BASE/etc/group"
echo "shared base image" >"$BASE/etc/motd"
manifest() {
	(cd "$BASE" && find . -printf '%p %y %m %U %G %s %l\n' | sort &&
		find . -type f -exec md5sum {} + | sort)
}
manifest >"$ROOT/base.before"

mkdir -p "$ROOT/clients" "$ROOT/state"
cat >"$ROOT/ovlnfsd.conf" <<EOF
[export farm]
path     = /clients/{name}
lowerdir = $BASE
upperdir = $ROOT/clients/{name}/upper
workdir  = $ROOT/clients/{name}/work
clients  = 127.0.0.0/8
squash   = none
EOF

start_server() {
	rm -f "$ROOT/port"
	"$SERVER" -c "$ROOT/ovlnfsd.conf" --listen 127.0.0.1:0 --port-file "$ROOT/port" \
		--state-dir "$ROOT/state" -f >>"$ROOT/server.log" 2>&1 &
	SRV_PID=$!
	kc_wait_port "$ROOT/port" "$SRV_PID" && return 0
	SRV_PID=""
	return 1
}
stop_server() {
	local rc=0
	[ -n "$SRV_PID" ] || return 0
	kill -TERM "$SRV_PID"
	wait "$SRV_PID" || rc=$?
	SRV_PID=""
	[ "$rc" = 0 ] || bad "server exit status $rc"
}

# boot NAME CMD: diskless boot of /clients/NAME, CMD run by its /bin/sh.
# A dependency that goes missing after the check above (exit 69) fails the
# boot like any other error: a run that has started never turns into a skip.
BOOTS=0
boot() {
	local name=$1 cmd=$2 rc
	BOOTS=$((BOOTS + 1))
	printf '%s\n' "$cmd" >"$ROOT/case-$name-$BOOTS.sh"
	bash "$GUEST" -R -p "$PORT" -e "/clients/$name" -t "$ROOT/case-$name-$BOOTS.sh" \
		-T $((300 * ${ONFS_TEST_TIMEOUT_MULT:-1})) -l "$ROOT/console-$name-$BOOTS.log" \
		>"$ROOT/guest-$name-$BOOTS.out" 2>&1
	rc=$?
	grep -a '^guest: ' "$ROOT/console-$name-$BOOTS.log" | sed 's/^/  guest '"$name"': /'
	sed 's/^/  guest '"$name"': /' "$ROOT/guest-$name-$BOOTS.out" | tail -n 5
	return "$rc"
}

start_server || { cat "$ROOT/server.log"; bad "server did not start"; exit 1; }
grep -q "templated by {name}" "$ROOT/server.log" || bad "startup log does not say the export is templated"
say "server pid $SRV_PID port $PORT; first boot of alpha and beta"
for n in alpha beta; do
	other=alpha
	[ "$n" = alpha ] && other=beta
	boot "$n" "test \"\$(cat /etc/hostname)\" = base && echo $n >/etc/hostname && test \"\$(cat /etc/hostname)\" = $n &&
		echo 'written by $n' >/root/only-$n && ! test -e /root/only-$other && sync" ||
		bad "first boot of $n (guest.sh exit $?)"
done
for n in alpha beta; do
	[ "$(cat "$ROOT/clients/$n/upper/etc/hostname" 2>/dev/null)" = "$n" ] ||
		bad "upper of $n: etc/hostname is '$(cat "$ROOT/clients/$n/upper/etc/hostname" 2>/dev/null)'"
done
[ -e "$ROOT/clients/alpha/upper/root/only-beta" ] && bad "beta's file is in alpha's upper"
[ -e "$ROOT/clients/beta/upper/root/only-alpha" ] && bad "alpha's file is in beta's upper"

stop_server
start_server || { bad "server did not restart"; exit 1; }
grep -q "2 instance(s)" "$ROOT/server.log" || bad "restart log does not count 2 instances"
say "server restarted (pid $SRV_PID port $PORT); second boot of alpha and beta"
for n in alpha beta; do
	other=alpha
	[ "$n" = alpha ] && other=beta
	boot "$n" "test \"\$(cat /etc/hostname)\" = $n && test -e /root/only-$n && ! test -e /root/only-$other &&
		! grep -rq 'written by $other' /root /etc" ||
		bad "second boot of $n (guest.sh exit $?)"
done
stop_server
say "instance record (i ID NAME; m NAME ADDRESS MACHINE-NAME-HEX):"
sed 's/^/  /' "$ROOT/state/exports/farm/instances"

manifest >"$ROOT/base.after"
if cmp -s "$ROOT/base.before" "$ROOT/base.after"; then
	say "the lower is unchanged ($(wc -l <"$ROOT/base.before") manifest lines)"
else
	diff "$ROOT/base.before" "$ROOT/base.after" | head -n 20 | sed 's/^/  /'
	bad "the lower changed"
fi
if grep -E 'ovlnfsd: (error|fatal)|AddressSanitizer|runtime error' "$ROOT/server.log"; then
	bad "errors in the server log"
fi
[ "$FAILED" = 0 ] && say "PASS" || { say "server log:"; tail -n 30 "$ROOT/server.log" | sed 's/^/  /'; }
exit "$FAILED"
