#!/bin/sh
# shellcheck disable=SC2016,SC2034 # check bodies (and the variables they use) are eval'd later
# tests/kclient/g-readdir.sh - kclient guest test (busybox sh): READDIRPLUS and
# READDIR cookies on a 20,000-entry merged directory.
# Runs in the guest (cwd = mount point, $1 = mount point), or on the host
# against a kernel overlay with KC_REF=1 (then the NFS-only checks are skipped
# and the same changes are made, for the upper-layer comparison).
# Layers (tests/kclient/run.sh): big/ = lower2 e00000-e11999, lower1
# e10000-e15999, upper e16000-e20999 + whiteouts e00000-e00999 + copied-up
# e05000-e05099: exactly e01000-e20999 are visible.
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
cd "$M" || exit 1

awk 'BEGIN { for (i = 1000; i < 21000; i++) printf "e%05d\n", i }' >$S/exp
t "ls -la big: 20000 entries + total, . and .. (READDIRPLUS)" 'ls -la big >$S/ls && c=$(wc -l <$S/ls) &&
	echo "ls -la lines: $c" && [ "$c" -eq 20003 ]'
t "ls -la names are exactly e01000-e20999, each once" 'awk "NR > 1 { print \$NF }" $S/ls | grep -v "^\.\.*$" >$S/got &&
	cmp $S/exp $S/got && [ -z "$(sort $S/got | uniq -d)" ]'
t "attributes from READDIRPLUS: upper, lower1, lower2 and copied-up sizes" 'grep " e00000$" $S/ls; grep -q " e00000$" $S/ls && exit 1;
	[ "$(stat -c %s big/e20999)" = 9 ] && [ "$(stat -c %s big/e12000)" = 9 ] &&
	[ "$(stat -c %s big/e01000)" = 0 ] && [ "$(cat big/e05000)" = "up 5000" ] && [ "$(cat big/e15999)" = "l1 15999" ]'
t "whited-out names are absent" '[ ! -e big/e00000 ] && [ ! -e big/e00999 ] && [ -e big/e01000 ]'
drop
t "listing again after drop_caches is identical" 'ls -la big | awk "NR > 1 { print \$NF }" | grep -v "^\.\.*$" >$S/got2 &&
	cmp $S/exp $S/got2'
t "find sees 20000 files" '[ "$(find big -type f | wc -l)" -eq 20000 ]'
if nfs; then
	P=$(sed -n 's|.* /mnt/nfs nfs .*,port=\([0-9]*\),.*|\1|p' /proc/mounts)
	mkdir -p /mnt/r
	t "second mount with nordirplus (plain READDIR)" 'mount -t nfs -o vers=3,proto=tcp,port='"$P"',mountport='"$P"',mountproto=tcp,mountvers=3,nolock,addr=10.0.2.2,nordirplus,nosharecache 10.0.2.2:/ /mnt/r'
	# Names only, from the shell's glob (readdir, no stat): ls would stat each
	# entry, which without READDIRPLUS is a LOOKUP per name (150 s under TCG).
	t "READDIR lists exactly e01000-e20999" 'cd /mnt/r/big && printf "%s\n" * >$S/got3 && cmp $S/exp $S/got3'
	t "READDIR again after drop_caches: same 20000 names" 'sync && echo 3 >/proc/sys/vm/drop_caches &&
		cd /mnt/r/big && printf "%s\n" * | wc -l >$S/c && [ "$(cat $S/c)" -eq 20000 ]'
	umount /mnt/r 2>/dev/null
else
	skip "second mount with nordirplus" "reference run"
	skip "READDIR lists exactly e01000-e20999" "reference run"
	skip "READDIR again after drop_caches" "reference run"
fi
# Changes while the directory is big: a lower name removed (whiteout), one
# created, one lower1 name overwritten (copy-up).
t "remove a lower name, create a new one, overwrite a lower1 one" 'rm big/e01000 && echo new >big/new1 &&
	echo over >big/e12345 && [ ! -e big/e01000 ] && [ "$(cat big/e12345)" = over ]'
drop
t "listing after the changes is exact" '{ grep -v "^e01000$" $S/exp; echo new1; } | sort >$S/exp2 &&
	ls big >$S/got4 && cmp $S/exp2 $S/got4 && [ "$(ls -la big | wc -l)" -eq 20003 ]'
if nfs; then
	t "no readdir loop in dmesg" '! dmesg | grep -i "readdir loop"'
else
	skip "no readdir loop in dmesg" "reference run"
fi
echo "1..$n"
[ "$failed" -eq 0 ] || { echo "# $failed of $n checks failed"; exit 1; }
