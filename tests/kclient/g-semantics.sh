#!/bin/sh
# shellcheck disable=SC2016,SC2034 # check bodies (and the variables they use) are eval'd later
# tests/kclient/g-semantics.sh - kclient guest test (busybox sh): what the
# kernel client does that libnfs does not: silly rename of an open-then-
# unlinked file, O_EXCL create from two processes, mmap, and rename of a
# lower directory while a process has its cwd inside it.
# Runs in the guest (cwd = $1 = mount point), or with KC_REF=1 on the host
# against a kernel overlay: NFS-only checks are skipped there, and the silly
# rename is done by hand (mv to .nfs-ref, rm after close) so that the
# reference upper layer sees the same operations the server saw.
M=${1:-$PWD}
# scratch files: the guest's own tmpfs; a private directory in reference runs
S=${KC_SCRATCH:-/tmp}
n=0 failed=0
# t NAME CMDS: run CMDS (one string, eval'd, stdin /dev/null: the guest's
# stdin is the console, a tty, and busybox rm would prompt) and print a TAP
# line with the check's duration and its output as # lines.
t() {
	n=$((n + 1))
	t_0=$(date +%s)
	if (eval "$2") </dev/null >$S/t.out 2>&1; then
		echo "ok $n - $1 ($(($(date +%s) - t_0)) s)"
	else
		echo "not ok $n - $1 ($(($(date +%s) - t_0)) s)"
		failed=$((failed + 1))
	fi
	sed 's/^/#   /' $S/t.out
}
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
nfs() { [ -z "$KC_REF" ]; }
drop() { if nfs; then sync && echo 3 >/proc/sys/vm/drop_caches; fi; }
has_nfs_files() { for f in "$1"/.nfs*; do [ -e "$f" ] && return 0; done; return 1; }
no_nfs_files() {
	i=0
	while has_nfs_files "$1"; do
		[ $i -ge 10 ] && { ls -la "$1"; return 1; }
		sleep 1
		i=$((i + 1))
	done
}
cd "$M" || exit 1

# --- silly rename -------------------------------------------------------------
# fd 3 is opened at the top level (a check runs in a subshell).
exec 3<dir/victim
if nfs; then
	t "unlink an open lower file: gone from the directory" 'rm dir/victim && [ ! -e dir/victim ] && ! ls dir | grep -qx victim'
	t "the client silly-renamed it (.nfsXXXX in dir)" 'ls -la dir; has_nfs_files dir'
else
	mv dir/victim dir/.nfs-ref && rm -f $S/t.out
	skip "unlink an open lower file: gone from the directory" "reference: renamed by hand"
	skip "the client silly-renamed it" "reference run"
fi
drop
t "the open fd still reads the data" '[ "$(cat <&3)" = open-me ]'
exec 3<&-
nfs || rm -f dir/.nfs-ref
t "the .nfsXXXX file goes away after close" 'no_nfs_files dir && [ ! -e dir/victim ]'
# The same for a file created through the mount (pure upper).
echo "fresh data" >fresh 2>$S/fresh.err
# (a failed redirection on exec would end the shell: open only what exists)
[ -f fresh ] && exec 4<fresh
if nfs; then rm -f fresh; else mv fresh .nfs-ref2 2>/dev/null && rm -f $S/t.out; fi
t "open-then-unlinked new file reads back through its fd" 'cat $S/fresh.err; [ "$(cat <&4)" = "fresh data" ] && [ ! -e fresh ]'
exec 4<&-
nfs || rm -f .nfs-ref2
t "no .nfsXXXX left at the top after close" 'no_nfs_files .'

# --- O_EXCL -------------------------------------------------------------------
# set -C makes the shell open with O_CREAT|O_EXCL: NFS CREATE EXCLUSIVE.
t "O_EXCL from two processes: exactly one wins (20 rounds)" 'mkdir excl && i=0 && while [ $i -lt 20 ]; do
	: >$S/win
	for p in a b; do ( (set -C; echo won >excl/x$i) 2>/dev/null && echo $p >>$S/win ) & done
	wait
	w=$(wc -l <$S/win)
	[ "$w" -eq 1 ] || { echo "round $i: $w winners: $(cat $S/win)"; exit 1; }
	[ "$(cat excl/x$i)" = won ] || { echo "round $i: content $(cat excl/x$i)"; exit 1; }
	i=$((i + 1))
done && [ "$(ls excl | wc -l)" -eq 20 ]'
t "O_EXCL over a lower name fails" '! (set -C; : >README) && [ "$(cat README)" = "lower2 readme" ]'
t "O_EXCL over a whited-out name succeeds" '[ ! -e dir/c ] && (set -C; echo again >dir/c) && [ "$(cat dir/c)" = again ]'
t "exclusive-created files have mode 644" '[ "$(stat -c %a excl/x0)" = 644 ] && [ "$(stat -c %a dir/c)" = 644 ]'

# --- mmap ---------------------------------------------------------------------
# busybox has no applet that writes through a shared mapping and the guest
# has no compiler: run.sh puts a static writer (mmapw.c) in a lower layer.
if [ -x ./bin/mmapw ]; then
	t "mmap write then read back (new file)" 'cp README mm.txt && ./bin/mmapw mm.txt 2 MMAP &&
		drop && [ "$(head -c 6 mm.txt)" = "loMMAP" ]'
	t "mmap write of a lower file copies it up" './bin/mmapw top.txt 0 TOP && drop &&
		[ "$(cat top.txt)" = TOP ]'
else
	skip "mmap write then read back" "the host could not build tests/kclient/mmapw.c statically"
fi
# exec maps the binary's pages from the NFS page cache (mmap read).
t "mmap read: exec a lower binary from the export" '[ "$(./bin/busybox echo mapped)" = mapped ]'
t "mmap read: exec a binary just written through the mount" 'mkdir xbin && cp bin/busybox xbin/busybox &&
	chmod 755 xbin/busybox && drop && [ "$(./xbin/busybox echo mapped2)" = mapped2 ] && rm -r xbin'

# --- rename of a lower directory with a process inside --------------------------
rm -f $S/go $S/cwdout $S/inside
(
	cd cwdir/inner || exit 1
	: >$S/inside
	i=0
	while [ ! -e $S/go ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i + 1)); done
	{ cat file && echo created >here && cat here && pwd && ls; } >$S/cwdout 2>&1
) &
bg=$!
# the process is inside before the rename (bounded wait, no guess)
i=0
while [ ! -e $S/inside ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
t "rename lower dir cwdir -> cwdir2 while a process is inside" 'mv cwdir cwdir2 && [ ! -e cwdir ] && [ -d cwdir2/inner ]'
: >$S/go
wait $bg
bgrc=$?
t "the process inside reads and creates relative to its cwd" 'cat $S/cwdout; [ $bgrc -eq 0 ] &&
	[ "$(sed -n 1p $S/cwdout)" = inner ] && [ "$(sed -n 2p $S/cwdout)" = created ]'
t "its new file is in the renamed directory" '[ "$(cat cwdir2/inner/here)" = created ] && ls cwdir2 cwdir2/inner'
drop
t "after drop_caches: renamed tree complete, old name gone" '[ "$(cat cwdir2/inner/file)" = inner ] &&
	[ "$(ls cwdir2/inner | tr "\n" " ")" = "file here " ] && [ "$(ls cwdir2)" = inner ] && [ ! -e cwdir ]'

echo "1..$n"
[ "$failed" -eq 0 ] || { echo "# $failed of $n checks failed"; exit 1; }
