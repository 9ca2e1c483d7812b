#!/bin/sh
# shellcheck disable=SC2016,SC2034 # check bodies (and the variables they use) are eval'd later
# tests/kclient/g-copytree.sh - kclient guest test (busybox sh): cp -a of a
# lower tree with hard links, symlinks and xattrs; lower hard links through
# the index; tar c | tar x round trips with md5sums.
# Runs in the guest (cwd = $1 = mount point), or with KC_REF=1 on the host
# against a kernel overlay (same changes, for the upper-layer comparison).
# xattrs: NFSv3 has no xattr protocol and busybox has neither getfattr nor a
# cp that copies xattrs, so the guest cannot see them; run.sh checks on the
# host that the server's copy-up of tree/x kept its user.* xattrs.
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
# sums DIR: "md5 path" of every regular file, sorted by path.
sums() { (cd "$1" && find . -type f | sort | while read -r f; do md5sum "$f"; done); }
# meta DIR: type, mode, size, link count, link target (no directory sizes or
# link counts: a merged directory reports nlink 1).
meta() { (cd "$1" && find . | sort | while read -r f; do
	if [ -L "$f" ]; then echo "$f l $(readlink "$f")"
	elif [ -d "$f" ]; then stat -c "%n %F %a" "$f"
	else stat -c "%n %F %a %s %h" "$f"; fi
done); }
cd "$M" || exit 1

t "lower hard links: one inode, nlink 2, through the mount" '[ "$(stat -c %i tree/h1)" = "$(stat -c %i tree/h2)" ] &&
	[ "$(stat -c %h tree/h1)" = 2 ]'
t "cp -a tree tree2" 'cp -a tree tree2'
t "tree2: same names, types, modes, sizes, link counts, link targets" 'meta tree >$S/m1 && meta tree2 >$S/m2 &&
	cat $S/m2 && cmp $S/m1 $S/m2'
t "tree2: same data (md5)" 'sums tree >$S/s1 && sums tree2 >$S/s2 && cmp $S/s1 $S/s2 && [ "$(wc -l <$S/s2)" -eq 9 ]'
t "tree2: hard links kept (one inode), symlinks kept" '[ "$(stat -c %i tree2/h1)" = "$(stat -c %i tree2/h2)" ] &&
	[ "$(readlink tree2/s)" = f1 ] && [ "$(cat tree2/s | wc -c)" = 3000 ] && [ "$(readlink tree2/sub/up)" = ../f2 ]'
t "tree2: mtimes kept" '[ "$(stat -c %Y tree/f3)" = "$(stat -c %Y tree2/f3)" ] && [ "$(stat -c %Y tree/sub/g)" = "$(stat -c %Y tree2/sub/g)" ]'
drop
t "tree2 after drop_caches: data and links" 'sums tree2 >$S/s3 && cmp $S/s1 $S/s3 && [ "$(stat -c %h tree2/h1)" = 2 ]'
skip "cp -a copies xattrs" "NFSv3 carries no xattrs and busybox cp -a does not copy them (run.sh checks copy-up xattrs on the host)"
t "copy-up of a lower file with user.* xattrs (chmod)" 'chmod 600 tree/x && [ "$(stat -c %a tree/x)" = 600 ] && [ "$(cat tree/x)" = x ]'
t "write to one lower hard link: the other name sees it (index)" 'echo more >>tree/h1 && drop &&
	[ "$(cat tree/h2)" = "$(printf "linked\nmore")" ] && [ "$(stat -c %i tree/h1)" = "$(stat -c %i tree/h2)" ] &&
	[ "$(stat -c %h tree/h2)" = 2 ]'

# tar c | tar x, from the export to the export.
t "tar c tree | tar x into tx" 'mkdir tx && tar cf - tree | tar xf - -C tx'
t "tx/tree: same data, names and links as tree" 'sums tree >$S/s4 && sums tx/tree >$S/s5 && cmp $S/s4 $S/s5 &&
	meta tree >$S/m4 && meta tx/tree >$S/m5 && cmp $S/m4 $S/m5 && [ "$(stat -c %i tx/tree/h1)" = "$(stat -c %i tx/tree/h2)" ]'
# A tree built in the guest's tmpfs (data from the lower seed: the same bytes
# on every run), through the export and back.
rm -rf $S/src $S/back && mkdir -p $S/src/d/e $S/back
i=0
while [ $i -lt 40 ]; do
	dd if=seed of=$S/src/d/f$i bs=1k skip=$((i * 7)) count=$((i * 3 + 1)) 2>/dev/null
	i=$((i + 1))
done
dd if=seed of=$S/src/d/e/whole bs=64k 2>/dev/null
ln $S/src/d/f1 $S/src/d/e/f1-link && ln -s ../f2 $S/src/d/e/f2-sym && : >$S/src/empty
t "tar from the guest tmpfs into the export" 'mkdir rt && tar cf - -C $S/src . | tar xf - -C rt'
drop
t "round trip data: md5sums equal (43 files)" 'sums $S/src >$S/s6 && sums rt >$S/s7 && cmp $S/s6 $S/s7 && [ "$(wc -l <$S/s7)" -eq 43 ]'
t "tar from the export back to the guest tmpfs: equal" 'tar cf - -C rt . | tar xf - -C $S/back && sums $S/back >$S/s8 &&
	cmp $S/s6 $S/s8 && meta $S/src >$S/m6 && meta $S/back >$S/m8 && cmp $S/m6 $S/m8'
rm -rf $S/src $S/back

echo "1..$n"
[ "$failed" -eq 0 ] || { echo "# $failed of $n checks failed"; exit 1; }
