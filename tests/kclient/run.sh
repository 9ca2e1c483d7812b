#!/bin/bash
# tests/kclient/run.sh - the Linux kernel NFSv3 client against ovlnfsd.
#
# Owns: one scratch directory (under $KC_TMPDIR, default /var/tmp) with a
# fresh overlay per case, the ovlnfsd processes it starts (stopped by PID),
# and private mount namespaces for the kernel-overlay reference runs.
# Runs on the host as root (trusted.* xattrs, mknod 0/0, mount -t overlay).
# Must never touch anything outside its scratch directory, and never leave
# a server or a mount behind.
#
# For each case: build the layers (the initial upper is written by the kernel
# overlay itself), start ovlnfsd on 127.0.0.1 port 0, boot a guest with
# tests/kclient/guest.sh and run the case's script on the real kernel NFS
# client, stop the server, then check the upper layer on disk: the same
# script runs on a kernel overlay mount (index=on,nfs_export=on,
# redirect_dir=on) of an identical copy of the layers, and the two upper
# layers, index/ and work/ must match (tests/kclient/upperdump.py says what is
# normalised; the reference is mounted once more first, so that the kernel
# settles its index as it does at every mount), the kernel overlay must mount
# what ovlnfsd left, plus per-case checks (no .nfsXXXX left, xattrs kept by
# copy-up, the 256 MiB file's md5 on the server).
#
# Usage: run.sh [-s OVLNFSD] [CASE...]
# Cases (guest scripts are busybox sh, TAP-like, one qemu boot each):
#   basic, posix  g-basic.sh, g-posix.sh: file and directory operations, and
#                 the POSIX semantics an NFS client relies on
#   readdir       g-readdir.sh: ls -la of a 20,000-entry merged directory
#                 (READDIRPLUS), plain READDIR on a nordirplus mount, exact
#                 names, no "readdir loop"; then changes and an exact relist
#   semantics     g-semantics.sh: silly rename of open-then-unlinked files,
#                 O_EXCL from two processes, mmap write (mmapw.c, built static
#                 here and run from the export) and read (exec), rename of a
#                 lower dir with a process inside it
#   copytree      g-copytree.sh: cp -a (hard links, symlinks; xattrs cannot
#                 cross NFSv3, so copy-up xattrs are checked on the host),
#                 lower hard links through the index, tar c | tar x + md5
#   big           g-big.sh: a 256 MiB file written, read back, md5 (also
#                 checked on the server's upper)
#   attrcache     g-attrcache.sh: a second mount (actimeo=0,nosharecache) vs
#                 the first (actimeo=2): changes seen across mounts
#   softrestart   g-softrestart.sh: soft mount; the host restarts ovlnfsd on
#                 the same port mid-test; fds opened before keep working
# Env: KC_TMPDIR (scratch parent), KC_KEEP=1 (keep the scratch dir), KC_CASES,
#      KC_NOREF=1 (no kernel-overlay reference: hand-made initial upper, no
#      upper comparison; refused under REQUIRE_ALL=1), ONFS_SERVER (default
#      for -s), ONFS_TEST_TIMEOUT_MULT (sanitizer builds: multiplies the
#      guest timeouts), REQUIRE_ALL=1 (CI: what would be a skip is a failure).
# Exit: 0 all cases passed, 1 a case failed, 77 skipped (reason printed;
# never once a case has run).
#
# Timings, qemu TCG, 2 cores, measured here: a boot is
# ~10 s; ls -la of the 20,000 entries 8 s; 256 MiB written ~50-95 s and read
# back ~35-60 s. Whole suite: 262 s on a quiet machine (ASan server), 545 s
# with load average 7 (other builds running). Nothing was shrunk for TCG.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
SERVER=${ONFS_SERVER:-$TOP/build/server/ovlnfsd}
GUEST=$HERE/guest.sh
while getopts ":s:" o; do
	case $o in
	s) SERVER=$OPTARG ;;
	*) echo "usage: run.sh [-s OVLNFSD] [CASE...]" >&2; exit 64 ;;
	esac
done
shift $((OPTIND - 1))
ALL_CASES="basic posix readdir semantics copytree big attrcache softrestart"
CASES=${*:-${KC_CASES:-$ALL_CASES}}

# Under REQUIRE_ALL=1 (CI, which provides root, qemu, the kernel package and
# overlayfs) a reason to skip is a failure.
skip() {
	if [ "${REQUIRE_ALL:-0}" = 1 ]; then echo "FAIL (REQUIRE_ALL=1, would skip): $*"; exit 1; fi
	echo "SKIP: $*"
	exit 77
}
say() { echo "kclient-suite: $*"; }
. "$HERE/common.sh"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# --- prerequisites ------------------------------------------------------------
[ -x "$SERVER" ] || { echo "run.sh: no ovlnfsd binary at $SERVER (use -s)" >&2; exit 64; }
[ "$(id -u)" = 0 ] || skip "needs root (trusted.overlay.* xattrs, whiteouts, open_by_handle_at)"
# qemu, the kernel and its modules, busybox-static, cpio: guest.sh says which is missing.
gout=$(bash "$GUEST" -n 2>&1) || skip "$gout"
command -v python3 >/dev/null || skip "python3 missing (needed to compare upper layers)"
command -v setfattr >/dev/null && command -v getfattr >/dev/null || skip "setfattr/getfattr missing (apt-get install attr)"
command -v unshare >/dev/null && command -v setsid >/dev/null || skip "unshare/setsid missing (util-linux)"
for c in $CASES; do
	case " $ALL_CASES " in *" $c "*) ;; *) echo "unknown case $c (cases: $ALL_CASES)" >&2; exit 64 ;; esac
done

grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null
HAVE_OVL=0
grep -qw overlay /proc/filesystems && HAVE_OVL=1

umask 022
ROOT=$(mktemp -d "${KC_TMPDIR:-/var/tmp}/ovlnfsd-kclient.XXXXXX") || exit 1
SRV_PID="" KC_PGID=""
cleanup() {
	if [ -n "$KC_PGID" ]; then kill -TERM -- "-$KC_PGID" 2>/dev/null || kill -TERM "$KC_PGID" 2>/dev/null; fi
	if [ -n "$SRV_PID" ]; then kill "$SRV_PID" 2>/dev/null; wait "$SRV_PID" 2>/dev/null; fi
	if [ "${KC_KEEP:-0}" = 1 ]; then say "kept $ROOT"; else rm -rf "$ROOT"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Busybox applets for the reference runs (the guest's userland is busybox 1.35
# too, so the reference runs the very same commands).
BB=$ROOT/bb
mkdir -p "$BB" && /bin/busybox --install -s "$BB" || skip "busybox --install failed"
head -c 1048576 /dev/urandom >"$ROOT/seed"

OVL_OPTS=index=on,nfs_export=on,redirect_dir=on
# The kernel-overlay reference. On a host with overlayfs (we are root) it
# must work: a reference that cannot be mounted is a failure, not a reason
# to compare less. Only an explicit KC_NOREF=1, or a kernel without
# overlayfs, runs without it - and the summary says so.
REF_OK=1 REF_WHY=""
mkdir -p "$ROOT/probe"/{l,u,w,m}
if [ "${KC_NOREF:-0}" = 1 ]; then
	[ "${REQUIRE_ALL:-0}" != 1 ] || { echo "FAIL: KC_NOREF=1 under REQUIRE_ALL=1 (the upper comparison is required)"; exit 1; }
	REF_OK=0 REF_WHY="KC_NOREF=1"
elif [ "$HAVE_OVL" = 0 ]; then
	[ "${REQUIRE_ALL:-0}" != 1 ] || { echo "FAIL (REQUIRE_ALL=1): no overlayfs in this kernel (/proc/filesystems): no upper comparison"; exit 1; }
	REF_OK=0 REF_WHY="no overlayfs in this kernel (/proc/filesystems)"
elif ! out=$(unshare -m --propagation private sh -c \
	"mount -t overlay overlay -o lowerdir=$ROOT/probe/l,upperdir=$ROOT/probe/u,workdir=$ROOT/probe/w,$OVL_OPTS $ROOT/probe/m && umount $ROOT/probe/m" 2>&1); then
	echo "FAIL: overlayfs is there but the reference overlay ($OVL_OPTS) cannot be mounted under $ROOT: $out"
	echo "      (KC_TMPDIR picks another scratch filesystem; KC_NOREF=1 runs without the upper comparison)"
	exit 1
fi
rm -rf "$ROOT/probe"
[ "$REF_OK" = 1 ] || say "NOTE: no kernel-overlay reference ($REF_WHY): the initial upper is written by hand and the upper layers are only checked by the per-case checks"

# --- layers -------------------------------------------------------------------
# mk_layers DIR CASE: lower layers l2 (bottom) and l1, then an initial upper
# written through a kernel overlay mount (or by hand without one).
mk_layers() {
	local d=$1 c=$2 i
	mkdir -p "$d"/{l1,l2,u,w,mnt,state}
	(
		cd "$d/l2" || exit 1
		echo "lower2 readme" >README
		mkdir -p dir/sub bin cwdir/inner tree/sub
		echo a2 >dir/a; echo b2 >dir/b; echo c2 >dir/c; echo deep >dir/sub/deep
		printf 'line1\nline2\nline3\n' >dir/lines
		echo open-me >dir/victim
		echo shared >hl1 && ln hl1 hl2
		ln -s README sym
		echo xattr-file >xfile && setfattr -n user.color -v blue xfile
		echo inner >cwdir/inner/file; echo top >cwdir/top
		mkdir odir && echo old >odir/old
		for i in 1 2 3 4 5; do head -c $((i * 3000)) "$ROOT/seed" >tree/f$i; done
		echo linked >tree/h1 && ln tree/h1 tree/h2
		ln -s f1 tree/s && ln -s ../f2 tree/sub/up
		echo g >tree/sub/g && chmod 640 tree/sub/g
		echo x >tree/x && setfattr -n user.color -v blue tree/x && setfattr -n user.size -v big tree/x
		cp "$ROOT/seed" seed
		cp /bin/busybox bin/busybox
		# a static mmap writer the guest runs from the export (no compiler there)
		cc -static -O2 -o bin/mmapw "$HERE/mmapw.c" 2>/dev/null || rm -f bin/mmapw
		if [ "$c" = readdir ]; then
			mkdir big && cd big && for i in $(seq -w 0 11999); do : >e$i; done
		fi
	) || return 1
	(
		cd "$d/l1" || exit 1
		mkdir dir && echo a1 >dir/a && echo d1 >dir/d1
		echo top >top.txt
		if [ "$c" = readdir ]; then
			mkdir big && cd big && for i in $(seq 10000 15999); do echo "l1 $i" >e$i; done
		fi
	) || return 1
	# The initial upper: new files, a whiteout (dir/c), a copied-up file, an
	# opaque directory; for readdir 5000 new names, 1000 whiteouts, 100 copy-ups.
	local setup='echo upper >upper.txt && rm dir/c && echo b-up >dir/b && mkdir udir && echo u >udir/f &&
		rm cwdir/top && rm -r odir && mkdir odir && echo new >odir/new'
	if [ "$c" = readdir ]; then
		setup="$setup"' && cd big && for i in $(seq 16000 20999); do echo "up $i" >e$i; done &&
			rm e00???  && for i in $(seq 5000 5099); do echo "up $i" >e0$i; done'
	fi
	if [ "$REF_OK" = 1 ]; then
		unshare -m --propagation private bash -c "
			mount -t overlay overlay -o lowerdir=$d/l1:$d/l2,upperdir=$d/u,workdir=$d/w,$OVL_OPTS $d/mnt &&
			cd $d/mnt && ( $setup ) && cd / && umount $d/mnt" || return 1
	else
		(
			cd "$d/u" && echo upper >upper.txt && mkdir -p dir udir odir cwdir && mknod dir/c c 0 0 && echo b-up >dir/b &&
				echo u >udir/f && mknod cwdir/top c 0 0 && setfattr -n trusted.overlay.opaque -v y odir && echo new >odir/new
			if [ "$c" = readdir ]; then
				mkdir big && cd big && for i in $(seq 16000 20999); do echo "up $i" >e$i; done &&
					for i in $(seq -w 0 999); do mknod e00$i c 0 0; done &&
					for i in $(seq 5000 5099); do echo "up $i" >e0$i; done
			fi
		) || return 1
	fi
}

# --- server -------------------------------------------------------------------
# start_server DIR [PORT]: sets SRV_PID and PORT.
start_server() {
	local d=$1 p=${2:-0}
	rm -f "$d/port"
	"$SERVER" -o "lowerdir=$d/l1:$d/l2,upperdir=$d/u,workdir=$d/w" --listen "127.0.0.1:$p" \
		--port-file "$d/port" --state-dir "$d/state" -f >>"$d/server.log" 2>&1 &
	SRV_PID=$!
	kc_wait_port "$d/port" "$SRV_PID" && return 0
	wait "$SRV_PID" 2>/dev/null
	SRV_PID=""
	return 1
}
stop_server() {
	local rc=0
	[ -n "$SRV_PID" ] || return 0
	kill -TERM "$SRV_PID" 2>/dev/null
	wait "$SRV_PID" || rc=$?
	SRV_PID=""
	return $rc
}

# softrestart: the guest asks for a restart by creating restart-please in the
# export (or, while writes fail, by printing KC-SIGNAL on the console).
# The server is restarted on the same port; the host then drops a
# "restarted" file into the upper (the server is down, so nobody else
# writes there) for the guest to see.
restart_helper() {
	local d=$1 log=$2 kpid=$3 t0 i
	while kill -0 "$kpid" 2>/dev/null; do
		if [ -e "$d/u/restart-please" ] || grep -aq '^KC-SIGNAL restart-please' "$log" 2>/dev/null; then
			sleep 1
			say "softrestart: guest asked for a restart; stopping server $SRV_PID"
			t0=$(now)
			stop_server || say "softrestart: server exit status was not 0"
			echo restarted >"$d/u/restarted"
			sleep 3 # a real outage: the soft mount's requests time out meanwhile
			for i in $(seq 1 30); do
				start_server "$d" "$PORT" && break
				sleep 1
			done
			if [ -n "$SRV_PID" ]; then
				say "softrestart: server back on port $PORT (pid $SRV_PID) after $(secs "$t0" "$(now)") s"
				echo "$SRV_PID" >"$d/srv2.pid"
			else
				say "softrestart: could not restart the server on port $PORT (see $d/server.log)"
			fi
			return 0
		fi
		sleep 0.2
	done
}

# --- reference: the same script on a kernel overlay ---------------------------
# The script and its scratch files (KC_SCRATCH, the guest's /tmp) stay in the
# case's scratch directory: nothing is mounted over /tmp, so a checkout or a
# scratch directory under /tmp is seen as it is.
run_ref() {
	local d=$1 script=$2
	cp "$script" "$d/case.sh" && mkdir -p "$d/scratch" || return 98
	unshare -m --propagation private sh -c "
		mount -t overlay overlay -o lowerdir=$d/l1:$d/l2,upperdir=$d/u,workdir=$d/w,$OVL_OPTS $d/mnt || exit 99
		cd $d/mnt && env -i PATH=$BB HOME=/ KC_REF=1 KC_SCRATCH=$d/scratch busybox sh $d/case.sh $d/mnt </dev/null >$d/ref.out 2>&1
		rc=\$?
		cd / && umount $d/mnt || { echo 'umount of the reference overlay failed' >>$d/ref.out; exit 97; }
		# Mount once more: the kernel settles its index at mount (orphan
		# entries become whiteouts, its temporary names go), the state the
		# upper is in for every later user; that is what ovlnfsd's is
		# compared with.
		mount -t overlay overlay -o lowerdir=$d/l1:$d/l2,upperdir=$d/u,workdir=$d/w,$OVL_OPTS $d/mnt &&
			umount $d/mnt || { echo 'the second mount of the reference overlay failed' >>$d/ref.out; exit 96; }
		exit \$rc"
}

# kernel_accepts DIR: the kernel overlay mounts what ovlnfsd left in DIR
# (after it was dumped: the mount may settle the index).
kernel_accepts() {
	local d=$1
	unshare -m --propagation private sh -c "
		mount -t overlay overlay -o lowerdir=$d/l1:$d/l2,upperdir=$d/u,workdir=$d/w,$OVL_OPTS $d/mnt &&
		ls $d/mnt >/dev/null && umount $d/mnt" >"$d/kmount.out" 2>&1
}

# --- one case -----------------------------------------------------------------
declare -A RESULT TIME
FAILED=0
run_case() {
	local c=$1
	local script opts="" tmo=300 d="$ROOT/$c" t0 t1 krc ok=1 why=""
	# more guest.sh options for a case: -a KERNEL_ARGS, -b BOOT_STAGE (another
	# root), -f FILE, -M MiB (see guest.sh)
	local gargs=()
	case $c in
	posix) script=$HERE/g-posix.sh tmo=400 ;;
	big) script=$HERE/g-big.sh tmo=600 ;;
	attrcache) script=$HERE/g-attrcache.sh opts=actimeo=2 ;;
	softrestart) script=$HERE/g-softrestart.sh opts=soft,timeo=20,retrans=3,lookupcache=none ;;
	readdir) script=$HERE/g-readdir.sh tmo=600 ;;
	*) script=$HERE/g-$c.sh ;;
	esac
	tmo=$((tmo * ${ONFS_TEST_TIMEOUT_MULT:-1}))
	echo
	say "=== case $c ($(basename "$script")${opts:+, -o $opts})"
	t0=$(now)
	if ! mk_layers "$d/nfs" "$c"; then
		RESULT[$c]="FAIL (layer setup)" TIME[$c]=0; FAILED=1; return
	fi
	if ! start_server "$d/nfs"; then
		sed 's/^/  server: /' "$d/nfs/server.log"
		RESULT[$c]="FAIL (server did not start)" TIME[$c]=$(secs "$t0" "$(now)"); FAILED=1; return
	fi
	local log="$d/nfs/console.log"
	: >"$log"
	# Its own session (setsid does not fork here: a background job of a
	# non-interactive shell is no group leader), so that an interrupted run
	# can stop guest.sh, timeout and qemu together by this process group id.
	setsid bash "$GUEST" -p "$PORT" -t "$script" -T "$tmo" -l "$log" ${opts:+-o "$opts"} "${gargs[@]}" >"$d/nfs/guest.out" 2>&1 &
	local kpid=$!
	KC_PGID=$kpid
	[ "$c" = softrestart ] && restart_helper "$d/nfs" "$log" "$kpid"
	wait "$kpid"
	krc=$?
	KC_PGID=""
	[ -s "$d/nfs/srv2.pid" ] && SRV_PID=$(cat "$d/nfs/srv2.pid")
	t1=$(now)
	stop_server || { ok=0; why="$why server-exit"; say "server exit status not 0"; }
	# The guest's TAP output (and guest.sh's verdict). A dependency that went
	# missing after the check above (exit 69) fails this case like any other
	# error: it never turns the run into a skip.
	grep -a -E '^(ok|not ok|#|1\.\.|Bail out)' "$log" | sed 's/^/  /'
	sed 's/^/  /' "$d/nfs/guest.out"
	# The kernel's "NFS: directory X contains a readdir loop." (console, loglevel 4).
	grep -a -i 'contains a readdir loop' "$log" | sed 's/^/  dmesg: /'
	grep -a -q -i 'contains a readdir loop' "$log" && { ok=0; why="$why readdir-loop"; }
	[ "$krc" = 0 ] || { ok=0; why="$why guest-exit-$krc"; }
	if grep -a -E -q 'ovlnfsd: (error|fatal|BUG)|AddressSanitizer|runtime error' "$d/nfs/server.log"; then
		grep -a -E 'ovlnfsd: (error|fatal|BUG)|AddressSanitizer|runtime error' "$d/nfs/server.log" | head -n 20 | sed 's/^/  server.log: /'
		ok=0; why="$why server-log-errors"
	fi

	# Upper layer checks on disk.
	local left
	left=$(find "$d/nfs/u" -name '.nfs*' | head -n 5)
	[ -z "$left" ] || { ok=0; why="$why nfs-files-left"; echo "  upper: silly-rename files left: $left"; }
	case $c in
	copytree)
		if [ -f "$d/nfs/u/tree/x" ]; then
			local v
			v=$(getfattr --only-values -n user.color "$d/nfs/u/tree/x" 2>/dev/null)
			if [ "$v" = blue ]; then echo "  upper: tree/x copied up with its lower xattr user.color=$v"
			else ok=0; why="$why copyup-xattr"; echo "  upper: tree/x copied up without user.color (got '$v')"; fi
		else
			echo "  upper: tree/x was not copied up (chmod did not reach the server)"
		fi ;;
	big)
		if [ -f "$d/nfs/u/big" ] && [ -f "$d/nfs/u/big.md5" ]; then
			local m1 m2
			m1=$(md5sum <"$d/nfs/u/big" | cut -d' ' -f1) m2=$(cut -d' ' -f1 <"$d/nfs/u/big.md5")
			echo "  upper: big is $(stat -c %s "$d/nfs/u/big") bytes, md5 $m1 (guest: $m2)"
			[ "$m1" = "$m2" ] || { ok=0; why="$why big-md5"; }
		fi ;;
	esac

	if [ "$REF_OK" = 1 ]; then
		if mk_layers "$d/ref" "$c"; then
			run_ref "$d/ref" "$script"
			local rrc=$?
			echo "  reference (kernel overlay, $OVL_OPTS): script exit $rrc, $(grep -c '^ok' "$d/ref/ref.out") ok, $(grep -c '^not ok' "$d/ref/ref.out") not ok"
			# Informational: the reference is a local filesystem (posix.sh's
			# silly-rename check, for one, cannot pass there).
			grep -a '^not ok' "$d/ref/ref.out" | sed 's/^/    ref (informational): /'
			# The reference itself must have run: its mount, copy and unmount.
			case $rrc in 96 | 97 | 98 | 99) ok=0; why="$why ref-run-$rrc"; sed 's/^/    ref: /' "$d/ref/ref.out" ;; esac
			local dn=0 dr=0
			python3 "$HERE/upperdump.py" --lower "$d/nfs/l1:$d/nfs/l2" "$d/nfs/u" "$d/nfs/w" >"$d/nfs.dump" 2>"$d/nfs.dump.err" || dn=$?
			python3 "$HERE/upperdump.py" --lower "$d/ref/l1:$d/ref/l2" "$d/ref/u" "$d/ref/w" >"$d/ref.dump" 2>"$d/ref.dump.err" || dr=$?
			if [ "$dn" != 0 ] || [ "$dr" != 0 ]; then
				ok=0; why="$why upperdump-failed"
				echo "  upperdump.py failed (ovlnfsd's: exit $dn, kernel's: exit $dr):"
				cat "$d/nfs.dump.err" "$d/ref.dump.err" | head -n 20 | sed 's/^/    /'
			fi
			if kernel_accepts "$d/nfs"; then
				echo "  the kernel overlay mounts ovlnfsd's upper and work"
			else
				ok=0; why="$why kernel-refuses-upper"
				echo "  the kernel overlay does not mount ovlnfsd's upper and work:"
				sed 's/^/    /' "$d/nfs/kmount.out"
			fi
			diff -u "$d/ref.dump" "$d/nfs.dump" >"$d/dump.diff"
			if grep -E '^[-+][^-+]' "$d/dump.diff" | grep -q .; then
				ok=0; why="$why upper-differs"
				echo "  upper, index or work differ from the kernel overlay's (- kernel, + ovlnfsd):"
				grep -E '^[-+][^-+]' "$d/dump.diff" >"$d/dump.lines"
				head -n 30 "$d/dump.lines" | sed 's/^/    /'
				[ "$(wc -l <"$d/dump.lines")" -le 30 ] || echo "    ... $(($(wc -l <"$d/dump.lines") - 30)) more lines in $d/dump.diff (KC_KEEP=1 keeps it)"
			else
				echo "  upper, index and work match the kernel overlay's ($(wc -l <"$d/nfs.dump") entries: $(grep -c '^index:' "$d/nfs.dump") index, $(grep -c '^work:' "$d/nfs.dump") work)"
			fi
		else
			ok=0; why="$why ref-setup"
		fi
	else
		echo "  upper comparison skipped: $REF_WHY"
	fi
	TIME[$c]=$(secs "$t0" "$(now)")
	local nok nnot
	nok=$(grep -a -c '^ok' "$log") nnot=$(grep -a -c '^not ok' "$log")
	if [ "$ok" = 1 ]; then
		RESULT[$c]="PASS ($nok ok)"
		[ "${KC_KEEP:-0}" = 1 ] || rm -rf "$d" # the big cases hold ~600 MiB
	else
		RESULT[$c]="FAIL ($nok ok, $nnot not ok;$why)"
		FAILED=1
	fi
	say "case $c: ${RESULT[$c]} in ${TIME[$c]} s (guest $(secs "$t0" "$t1") s)"
}

T0=$(now)
say "server $SERVER, guest $GUEST, scratch $ROOT"
for c in $CASES; do run_case "$c"; done
echo
say "summary (seconds, qemu TCG):"
for c in $CASES; do printf '  %-12s %7s s  %s\n' "$c" "${TIME[$c]}" "${RESULT[$c]}"; done
say "total $(secs "$T0" "$(now)") s"
[ "$REF_OK" = 1 ] || say "NOTE: the upper layers were NOT compared with the kernel overlay's: $REF_WHY"
exit $FAILED
