#!/bin/sh
# shellcheck disable=SC2016,SC2034 # check bodies (and the variables they use) are eval'd later
# tests/kclient/g-attrcache.sh - kclient guest test (busybox sh): attribute
# caching when a change is made through another mount of the same export.
# Mount A is guest.sh's (run.sh passes actimeo=2); mount B is made here with
# actimeo=0 and nosharecache (its own superblock and caches). A change through
# one must be seen through the other: at once on B (no attribute cache), on A
# at the next open (close-to-open GETATTR) or once its 2 s cache expires.
# With KC_REF=1 (host, kernel overlay) A and B are the same directory.
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
nfs() { [ -z "$KC_REF" ]; }
# within SECS CMDS: wait until CMDS (eval'd) succeeds, polling every 0.2 s,
# for at most SECS seconds; says how long it took. A client that never
# shows the change fails; one that shows it early passes early.
within() {
	w_end=$(($(date +%s) + $1)) w_0=$(date +%s)
	while ! (eval "$2") >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$w_end" ] || { echo "not seen within $1 s"; (eval "$2"); return 1; }
		sleep 0.2
	done
	echo "seen after $(($(date +%s) - w_0)) s"
}
cd "$M" || exit 1
A=$M
if nfs; then
	B=/mnt/b
	P=$(sed -n 's|.* /mnt/nfs nfs .*,port=\([0-9]*\),.*|\1|p' /proc/mounts)
	mkdir -p $B
	t "mount B (actimeo=0,nosharecache)" 'grep " /mnt/nfs " /proc/mounts &&
		mount -t nfs -o vers=3,proto=tcp,port='"$P"',mountport='"$P"',mountproto=tcp,mountvers=3,nolock,addr=10.0.2.2,actimeo=0,nosharecache 10.0.2.2:/ '$B' &&
		grep " $B " /proc/mounts'
else
	B=$M
	n=$((n + 1)) && echo "ok $n - mount B # SKIP reference run: A and B are one directory"
fi

t "a lower file: same data and fileid through A and B" '[ "$(cat $A/top.txt)" = top ] && [ "$(cat $B/top.txt)" = top ] &&
	[ "$(stat -c %i $A/top.txt)" = "$(stat -c %i $B/top.txt)" ]'
# Prime A's caches.
stat "$A/dir/a" "$A/dir/d1" "$A/README" >/dev/null 2>&1
cat "$A/dir/a" "$A/README" >/dev/null 2>&1
ls "$A/dir" >/dev/null 2>&1
t "append through A: B sees the new size at once" 'echo more >>$A/dir/a && [ "$(stat -c %s $B/dir/a)" = 8 ] &&
	[ "$(cat $B/dir/a)" = "$(printf "a1\nmore")" ]'
t "same-size rewrite through B: A sees new data at the next open (close-to-open)" 'cat $A/README >/dev/null &&
	printf "LOWER2 README\n" >$B/README && [ "$(cat $A/README)" = "LOWER2 README" ]'
t "chmod through B: A sees the mode once its 2 s attribute cache expires (within 10 s)" 'stat -c %a $A/dir/d1 && chmod 600 $B/dir/d1 &&
	within 10 "[ \"\$(stat -c %a $A/dir/d1)\" = 600 ]"'
t "chmod through A: B sees it at once" 'chmod 640 $A/dir/d1 && [ "$(stat -c %a $B/dir/d1)" = 640 ]'
t "file created through B appears in A's listing" 'ls $A/dir >/dev/null && echo fromb >$B/dir/newb &&
	within 10 "ls $A/dir | grep -qx newb" && [ "$(cat $A/dir/newb)" = fromb ]'
t "file removed through B disappears from A" 'cat $A/dir/b >/dev/null && rm $B/dir/b &&
	within 10 "[ ! -e $A/dir/b ] && ! ls $A/dir | grep -qx b"'
t "rename through A: B sees the new name" 'mv $A/dir/d1 $A/dir/d1-renamed && [ -e $B/dir/d1-renamed ] &&
	[ ! -e $B/dir/d1 ] && [ "$(stat -c %a $B/dir/d1-renamed)" = 640 ]'
t "truncate through B: A sees size 0 at the next open" 'cat $A/top.txt >/dev/null && : >$B/top.txt &&
	[ -z "$(cat $A/top.txt)" ] && [ "$(stat -c %s $A/top.txt)" = 0 ]'
t "mtime set through B (touch -t) is what A reports (within 10 s)" 'TZ=UTC touch -t 200001020304.05 $B/upper.txt &&
	within 10 "[ \"\$(stat -c %Y $A/upper.txt)\" = 946782245 ]"'
if nfs; then umount "$B"; fi
echo "1..$n"
[ "$failed" -eq 0 ] || { echo "# $failed of $n checks failed"; exit 1; }
