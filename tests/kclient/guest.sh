#!/bin/bash
# tests/kclient/guest.sh - boot a throw-away Linux guest under qemu whose
# kernel NFS client mounts a server on this host's loopback, run one case
# script in the mounted tree, and report the script's exit status.
#
# Owns: one scratch directory (removed at exit), the initramfs it builds
# there, and the qemu process (bounded by -T, killed with its timeout).
# Runs on the host; needs no root (reading /boot/vmlinuz-* may: Debian
# makes it 0600).
#
# The guest: the newest /boot/vmlinuz-VERSION that has /lib/modules/VERSION
# (Debian's linux-image-amd64), an initramfs holding busybox-static, the
# modules NFSv3 and virtio networking need (found with their dependencies
# in modules.dep), and an /init written below. qemu-system-x86_64 uses KVM
# when /dev/kvm can be opened, TCG otherwise. Networking is qemu's user mode:
# the guest is 10.0.2.15 and reaches the host's 127.0.0.1 as 10.0.2.2, so
# the server sees the client as 127.0.0.1 with an unprivileged source port.
#
# Honest results: /init reads a random nonce from the per-run part of the
# initramfs and deletes the file before the case script runs; only a line
# "KC-<nonce> RESULT ..." printed by /init counts, so a script cannot print
# a pass it did not earn.
#
# Diskless boot (-R): /init mounts the export, moves /dev and a fresh tmpfs
# /run into it and switch_roots there; PID 1 is then a wrapper run by this
# initramfs's busybox from /run/kc (the export is never asked for a binary
# before the case), which mounts /proc, /sys and a tmpfs /tmp in the new root
# and runs the case with that root's own /bin/sh in a clean environment, cwd
# / and $1 = /. The nonce crosses in a 0600 file in /run that the wrapper
# reads and deletes before the case starts. The wrapper powers off by sysrq,
# so that nothing (a wtmp record) is written to the exported root after the
# case.
#
# Usage: guest.sh -p PORT [-m MOUNTPORT] [-e EXPORT] [-o OPTS] -t SCRIPT
#                 [-T SECS] [-l LOG] [-a KERNEL_ARGS] [-f FILE]... [-b BOOT]
#                 [-M MiB] [-R]
#   -p/-m    NFS and MOUNT ports on 127.0.0.1 (MOUNT defaults to PORT)
#   -e       export path to mount (default /)
#   -o       extra mount options, appended to the fixed ones
#   -t       the case script (busybox sh); it runs with cwd and $1 = the
#            mount point, /tmp is the guest's own tmpfs
#   -T       overall timeout, seconds (default 300)
#   -l       keep the serial console log in this file
#   -a       extra kernel command line arguments
#   -f       copy FILE into the guest as /kc/files/NAME (repeatable)
#   -b       a boot stage that replaces the default "mount the export, run
#            the script": /init sources it with MOUNT_OPTS, SERVER, EXPORT
#            and the function kc_result (kc_result test RC | mountfail WHY |
#            noresult WHY) - for a case that boots another root
#   -M       guest memory (default 512)
#   -R       diskless: boot the export as the root filesystem (see above)
#            and run the script there
#   -n       only check the dependencies (exit 0 or 69), boot nothing
# Exit: 0 the script passed, 1 it failed, 2 the mount failed, 3 no result
# (guest crashed, no network), 4 (-R) the export is not a bootable root,
# 124 timeout, 64 usage, 69 a dependency is missing (the reason is printed).
set -u

PROG=guest.sh
say() { echo "$PROG: $*" >&2; }
usage() { sed -n '/^# Usage:/,/^# Exit:/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }
missing() { echo "$PROG: MISSING: $*" >&2; exit 69; }

PORT="" MPORT="" EXPORT=/ OPTS="" SCRIPT="" TMO=300 LOG="" APPEND="" BOOT="" MEM=512 CHECK=0 ROOTBOOT=0
FILES=()
while getopts ":p:m:e:o:t:T:l:a:f:b:M:Rn" o; do
	case $o in
	p) PORT=$OPTARG ;;
	m) MPORT=$OPTARG ;;
	e) EXPORT=$OPTARG ;;
	o) OPTS=$OPTARG ;;
	t) SCRIPT=$OPTARG ;;
	T) TMO=$OPTARG ;;
	l) LOG=$OPTARG ;;
	a) APPEND=$OPTARG ;;
	f) FILES+=("$OPTARG") ;;
	b) BOOT=$OPTARG ;;
	M) MEM=$OPTARG ;;
	R) ROOTBOOT=1 ;;
	n) CHECK=1 ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage
num() { case $1 in '' | *[!0-9]*) return 1 ;; esac; }
if [ "$CHECK" = 1 ]; then PORT=0 SCRIPT=$0; fi
num "$PORT" || { say "-p PORT is required"; usage; }
MPORT=${MPORT:-$PORT}
num "$MPORT" && num "$TMO" && num "$MEM" || usage
[ -n "$SCRIPT" ] && [ -r "$SCRIPT" ] || { say "cannot read the case script '$SCRIPT' (-t)"; exit 64; }
[ -z "$BOOT" ] || [ -r "$BOOT" ] || { say "cannot read the boot stage '$BOOT' (-b)"; exit 64; }
[ -z "$BOOT" ] || [ "$ROOTBOOT" = 0 ] || { say "-b and -R exclude each other"; exit 64; }
# EXPORT and OPTS reach /init through a sourced file: plain characters only.
case $EXPORT$OPTS in *[!A-Za-z0-9_./,=:+-]*) say "-e/-o: only A-Za-z0-9_./,=:+- allowed"; exit 64 ;; esac

# --- dependencies ---------------------------------------------------------------
command -v qemu-system-x86_64 >/dev/null || missing "qemu-system-x86_64 (apt-get install qemu-system-x86)"
command -v cpio >/dev/null || missing "cpio (apt-get install cpio)"
[ -x /bin/busybox ] || missing "/bin/busybox (apt-get install busybox-static)"
case $(LC_ALL=C ldd /bin/busybox 2>&1) in
*"not a dynamic"*) ;;
*) missing "/bin/busybox is dynamically linked (apt-get install busybox-static)" ;;
esac
KVER=""
for k in /boot/vmlinuz-*; do
	[ -e "$k" ] || continue
	v=${k#/boot/vmlinuz-}
	[ -f "/lib/modules/$v/modules.dep" ] || continue
	if [ -z "$KVER" ] || [ "$(printf '%s\n%s\n' "$KVER" "$v" | sort -V | tail -n 1)" = "$v" ]; then KVER=$v; fi
done
[ -n "$KVER" ] || missing "no /boot/vmlinuz-* with a /lib/modules/VERSION/modules.dep (apt-get install linux-image-amd64)"
[ -r "/boot/vmlinuz-$KVER" ] || missing "cannot read /boot/vmlinuz-$KVER (run as root)"
MODDIR=/lib/modules/$KVER
[ "$CHECK" = 0 ] || { echo "$PROG: kernel $KVER, qemu $(command -v qemu-system-x86_64), busybox-static: ready"; exit 0; }

W=$(mktemp -d "${TMPDIR:-/var/tmp}/kc-guest.XXXXXX") || exit 1
QPID=""
trap '[ -z "$QPID" ] || kill "$QPID" 2>/dev/null; rm -rf "$W"' EXIT
trap 'exit 130' INT TERM

# --- modules: what NFSv3 over virtio-net needs, dependencies first ---------------
declare -A DEPS SEEN
while IFS=: read -r path deps; do
	n=${path##*/}
	n=${n%%.ko*}
	DEPS[$n]="$path:$deps"
done <"$MODDIR/modules.dep"
ORDER=()
add_module() { # NAME: its dependencies first, then itself (built-in: nothing)
	local n=$1 rec path d
	[ -z "${SEEN[$n]:-}" ] || return 0
	SEEN[$n]=1
	rec=${DEPS[$n]:-}
	if [ -z "$rec" ]; then
		grep -q "/$n\.ko" "$MODDIR/modules.builtin" 2>/dev/null || say "note: module $n not found in $MODDIR (taken as built in)"
		return 0
	fi
	path=${rec%%:*}
	for d in ${rec#*:}; do
		d=${d##*/}
		add_module "${d%%.ko*}"
	done
	ORDER+=("$n:$path")
}
for m in nfsv3 virtio_net virtio_pci; do add_module "$m"; done

R=$W/root
mkdir -p "$R"/{bin,dev,proc,sys,tmp,run,mnt/nfs,modules,kc/files}
cp /bin/busybox "$R/bin/busybox"
ln -s busybox "$R/bin/sh"
for e in "${ORDER[@]}"; do
	n=${e%%:*} f=$MODDIR/${e#*:}
	case $f in
	*.xz) xz -dc "$f" ;;
	*.zst) zstd -qdc "$f" ;;
	*.gz) gzip -dc "$f" ;;
	*) cat "$f" ;;
	esac >"$R/modules/$n.ko" || missing "cannot read module $f"
	echo "$n" >>"$R/modules/order"
done

cat >"$R/init" <<'EOF'
#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs -o mode=1777 tmp /tmp
. /kc/run.env
rm -f /kc/run.env             # the nonce lives on in this shell only
kc_result() { echo; echo "KC-$NONCE RESULT $*"; sync; poweroff -f; sleep 30; }
while read -r m; do
	insmod "/modules/$m.ko" || echo "guest: insmod $m failed"
done </modules/order
ip link set lo up
ip link set eth0 up || kc_result noresult "no eth0"
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
SERVER=10.0.2.2
MOUNT_OPTS="vers=3,proto=tcp,port=$PORT,mountport=$MPORT,mountproto=tcp,mountvers=3,nolock,addr=$SERVER"
[ -z "$OPTS" ] || MOUNT_OPTS="$MOUNT_OPTS,$OPTS"
if [ -f /kc/boot.sh ]; then
	. /kc/boot.sh
	kc_result noresult "the boot stage returned"
fi
if [ "$ROOTBOOT" = 1 ]; then
	echo "guest: mount -t nfs -o $MOUNT_OPTS $SERVER:$EXPORT /mnt/nfs (root)"
	mount -t nfs -o "$MOUNT_OPTS" "$SERVER:$EXPORT" /mnt/nfs || kc_result mountfail "mount failed"
	N=/mnt/nfs
	for d in dev proc sys run; do
		[ -d "$N/$d" ] || kc_result rootfail "no /$d directory in the exported root"
	done
	# Everything PID 1 needs after switch_root comes from here, not the export.
	mount -t tmpfs -o mode=0755,nodev run /run || kc_result rootfail "no tmpfs on /run"
	mkdir -p /run/kc/bin
	cp /bin/busybox /kc/rootinit /kc/case.sh /run/kc/ || kc_result rootfail "cannot fill /run/kc"
	/run/kc/busybox --install -s /run/kc/bin
	(umask 077 && echo "$NONCE" >/run/kc/nonce) || kc_result rootfail "cannot write /run/kc/nonce"
	umount /tmp
	umount /sys
	umount /proc
	mount -o move /dev "$N/dev" || kc_result rootfail "cannot move /dev into the exported root"
	mount -o move /run "$N/run" || kc_result rootfail "cannot move /run into the exported root"
	echo "guest: switch_root to $SERVER:$EXPORT"
	exec switch_root "$N" /run/kc/busybox sh /run/kc/rootinit
fi
echo "guest: mount -t nfs -o $MOUNT_OPTS $SERVER:$EXPORT /mnt/nfs"
mount -t nfs -o "$MOUNT_OPTS" "$SERVER:$EXPORT" /mnt/nfs || kc_result mountfail "mount failed"
cd /mnt/nfs || kc_result mountfail "cannot enter /mnt/nfs"
sh /kc/case.sh /mnt/nfs
rc=$?
cd /
echo "guest: case script exited $rc"
# Report before unmounting: a dead server must not turn a finished run into
# a timeout.
echo "KC-$NONCE RESULT test $rc"
timeout 20 umount /mnt/nfs || echo "guest: umount failed"
sync
poweroff -f
EOF
chmod 755 "$R/init"

# -R: PID 1 after switch_root, run by the initramfs's busybox from /run/kc.
cat >"$R/kc/rootinit" <<'EOF'
K=/run/kc
export PATH=$K/bin
read -r NONCE <$K/nonce
rm -f $K/nonce                # the nonce lives on in this shell only
# sysrq power-off: busybox poweroff would add a wtmp record to the export.
off() { [ -w /proc/sysrq-trigger ] && echo o >/proc/sysrq-trigger && sleep 20; poweroff -f; sleep 30; }
kc_result() { echo; echo "KC-$NONCE RESULT $*"; timeout -s KILL 20 sync; off; }
mount -t proc proc /proc || kc_result rootfail "cannot mount /proc in the exported root"
mount -t sysfs sys /sys || kc_result rootfail "cannot mount /sys in the exported root"
# The case's scratch files in /tmp stay in the guest, as without -R.
[ ! -d /tmp ] || mount -t tmpfs -o mode=1777,nosuid,nodev tmp /tmp || echo "guest: no tmpfs on /tmp"
{ [ -e /bin/sh ] || [ -L /bin/sh ]; } || kc_result rootfail "no /bin/sh in the exported root"
/bin/sh -c : || kc_result rootfail "/bin/sh of the exported root does not run"
echo "guest: / is $(grep ' / ' /proc/mounts | cut -d' ' -f1-3), /bin/sh is $(readlink -f /bin/sh)"
grep -q '^[^ ]* / nfs ' /proc/mounts || kc_result rootfail "/ is not the NFS export"
cd /
env -i HOME=/root TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	/bin/sh $K/case.sh /
rc=$?
cd /
echo "guest: case script exited $rc"
# Report, then flush (the root cannot be unmounted): a dead server must not
# turn a finished run into a timeout.
kc_result test "$rc"
EOF

NONCE=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
cat >"$R/kc/run.env" <<EOF
NONCE=$NONCE
PORT=$PORT
MPORT=$MPORT
EXPORT=$EXPORT
OPTS=$OPTS
ROOTBOOT=$ROOTBOOT
EOF
cp "$SCRIPT" "$R/kc/case.sh"
[ -z "$BOOT" ] || cp "$BOOT" "$R/kc/boot.sh"
for f in "${FILES[@]}"; do cp -a "$f" "$R/kc/files/" || { say "cannot copy $f (-f)"; exit 64; }; done
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$W/initrd" || { say "cpio failed"; exit 1; }

# --- boot ----------------------------------------------------------------------------
ACCEL=tcg CPU=max
if [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ "${KC_NO_KVM:-0}" != 1 ]; then ACCEL=kvm CPU=host; fi
CONSOLE=${LOG:-$W/console.log}
# qemu writes the console straight to the file (no pipe that buffers), so a
# runner watching it sees each line as the guest prints it.
: >"$CONSOLE" || { say "cannot write $CONSOLE (-l)"; exit 64; }
say "kernel $KVER, ${#ORDER[@]} modules, accel $ACCEL, port $PORT, timeout ${TMO}s"
timeout -k 5 "$TMO" qemu-system-x86_64 \
	-machine "pc,accel=$ACCEL" -cpu "$CPU" -smp 2 -m "$MEM" \
	-kernel "/boot/vmlinuz-$KVER" -initrd "$W/initrd" \
	-append "console=ttyS0 panic=-1 loglevel=4 mitigations=off $APPEND" \
	-netdev user,id=n0 -device virtio-net-pci,netdev=n0 \
	-chardev "file,id=c0,path=$CONSOLE" -serial chardev:c0 \
	-display none -monitor none -no-reboot </dev/null >"$W/qemu.out" 2>&1 &
QPID=$!
wait "$QPID"
qrc=$?
QPID=""
# The console has CR LF line ends; the readers want LF.
tr -d '\r' <"$CONSOLE" >"$W/console.lf" && cat "$W/console.lf" >"$CONSOLE"

res=$(grep -a "^KC-$NONCE RESULT " "$CONSOLE" | tail -n 1 | cut -d' ' -f3-)
case $res in
"test 0") say "PASS"; exit 0 ;;
"test "*) say "FAIL: the case script exited ${res#test }"; exit 1 ;;
mountfail*)
	grep -a -E '^(guest: mount|mount:)' "$CONSOLE" >&2
	say "FAIL: ${res#mountfail }"
	exit 2 ;;
rootfail*)
	grep -a '^guest: ' "$CONSOLE" | tail -n 4 >&2
	say "FAIL: the export is not a bootable root: ${res#rootfail }"
	exit 4 ;;
esac
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then say "TIMEOUT after ${TMO}s"; exit 124; fi
sed 's/^/qemu: /' "$W/qemu.out" >&2
tail -n 20 "$CONSOLE" | sed 's/^/console: /' >&2
say "no result from the guest (qemu exit $qrc${res:+, $res})"
exit 3
