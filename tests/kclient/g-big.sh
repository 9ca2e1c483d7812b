#!/bin/sh
# shellcheck disable=SC2016,SC2034 # check bodies (and the variables they use) are eval'd later
# tests/kclient/g-big.sh - kclient guest test (busybox sh): a 256 MiB file
# written through the export and read back (md5), and a lower file read.
# The data is deterministic (blocks of the lower 1 MiB "seed", each with its
# block number in the first 8 bytes), so the kernel-overlay reference writes
# the same bytes and misplaced blocks change the md5. Under qemu TCG writing
# and reading 256 MiB over slirp takes about a minute each way (measured);
# SIZE_MB can shrink it. (In-place overwrites are posix.sh's; another full
# read here would cost a minute.)
M=${1:-$PWD}
# scratch files: the guest's own tmpfs; a private directory in reference runs
S=${KC_SCRATCH:-/tmp}
SIZE_MB=${SIZE_MB:-256}
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
nfs() { [ -z "$KC_REF" ]; }
drop() { if nfs; then sync && echo 3 >/proc/sys/vm/drop_caches; fi; }
cd "$M" || exit 1

tail -c +9 seed >$S/body
gen() {
	i=0
	while [ $i -lt "$SIZE_MB" ]; do printf '%08d' $i && cat $S/body || return 1; i=$((i + 1)); done
}
t "lower 1 MiB seed reads back whole" '[ "$(stat -c %s seed)" = 1048576 ] && [ "$(wc -c <$S/body)" = 1048568 ]'
t "write a $SIZE_MB MiB file (dd conv=fsync)" 'gen | dd of=big bs=1M iflag=fullblock conv=fsync 2>$S/dd.err ||
	{ cat $S/dd.err; exit 1; }; tail -n 1 $S/dd.err'
t "its size is exact" '[ "$(stat -c %s big)" = $((SIZE_MB * 1048576)) ]'
s1=$(gen | md5sum | cut -d" " -f1)
drop
t "read back after drop_caches: md5 matches" 's2=$(md5sum <big | cut -d" " -f1) && echo "$s1 / $s2" && [ "$s1" = "$s2" ] &&
	echo "$s1" >big.md5'
t "the middle block reads back with its number" 'i=$((SIZE_MB / 2)) &&
	[ "$(dd if=big bs=1M skip=$i count=1 2>/dev/null | head -c 8)" = "$(printf %08d $i)" ]'
echo "1..$n"
[ "$failed" -eq 0 ] || { echo "# $failed of $n checks failed"; exit 1; }
