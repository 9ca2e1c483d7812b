#!/bin/sh
# shellcheck disable=SC2016 # check bodies are eval'd later, on purpose
# tests/kclient/g-basic.sh - guest case (busybox sh): basic file and directory operations (22 checks).
# Runs in the guest with cwd = $1 = the mount point (tests/kclient/run.sh,
# guest.sh), or on the host against a kernel overlay with KC_REF=1. It works
# in its own mktemp -d directory under the mount and removes it at the end.
# Output is TAP-like: ok/not ok N - name, # lines with a failed check's output.
M=${1:-$PWD}
# scratch files: the guest's own tmpfs; a private directory in reference runs
S=${KC_SCRATCH:-/tmp}
n=0 failed=0
# t NAME CMDS: run CMDS (one string, eval'd) and print a TAP line.
t() {
	n=$((n + 1))
	if (eval "$2") >$S/t.out 2>&1; then
		echo "ok $n - $1"
	else
		echo "not ok $n - $1"
		failed=$((failed + 1))
		sed 's/^/#   /' $S/t.out
	fi
}

D=$(mktemp -d "$M/kc-basic.XXXXXX") || { echo "Bail out! cannot mkdir in $M"; exit 1; }
cd "$D" || exit 1
echo "# working in $D"

t "create and read back" 'echo hello >f && [ "$(cat f)" = hello ]'
t "write 10000 lines and compare" 'seq 1 10000 >$S/s && cp $S/s s && cmp $S/s s'
t "append" 'echo world >>f && [ "$(wc -l <f)" -eq 2 ] && [ "$(tail -n 1 f)" = world ]'
t "truncate shorter" 'truncate -s 3 f && [ "$(stat -c %s f)" = 3 ] && [ "$(cat f)" = hel ]'
t "truncate longer reads zeros" 'truncate -s 10000 f && [ "$(stat -c %s f)" = 10000 ] &&
	[ "$(tail -c 9997 f | tr -d "\000" | wc -c)" -eq 0 ]'
t "truncate to zero with >" ': >f && [ "$(stat -c %s f)" = 0 ]'
t "mkdir and rmdir" 'mkdir d1 && [ -d d1 ] && rmdir d1 && [ ! -e d1 ]'
t "rename file" 'echo a >r1 && mv r1 r2 && [ ! -e r1 ] && [ "$(cat r2)" = a ]'
t "rename directory" 'mkdir rd1 && echo x >rd1/in && mv rd1 rd2 && [ ! -e rd1 ] && [ "$(cat rd2/in)" = x ]'
t "move file between directories" 'mv r2 rd2/r3 && [ ! -e r2 ] && [ "$(cat rd2/r3)" = a ] && mv rd2/r3 r2'
t "symlink and readlink" 'ln -s r2 sl && [ -L sl ] && [ "$(readlink sl)" = r2 ] && [ "$(cat sl)" = a ]'
t "dangling symlink" 'ln -s no/such/target dl && [ "$(readlink dl)" = no/such/target ] && [ ! -e dl ]'
t "hard link and nlink" 'ln r2 hl && [ "$(stat -c %h r2)" = 2 ] && [ "$(stat -c %i r2)" = "$(stat -c %i hl)" ] &&
	[ "$(cat hl)" = a ] && rm hl && [ "$(stat -c %h r2)" = 1 ]'
t "directory nlink counts subdirectories" 'mkdir nl nl/a nl/b && [ "$(stat -c %h nl)" = 4 ]'
t "chmod" 'chmod 640 r2 && [ "$(stat -c %a r2)" = 640 ] && chmod 755 r2 && [ "$(stat -c %a r2)" = 755 ]'
t "chmod directory" 'chmod 700 rd2 && [ "$(stat -c %a rd2)" = 700 ]'
t "create 2000 files" 'mkdir big && i=0 && while [ $i -lt 2000 ]; do : >big/f$i || exit 1; i=$((i + 1)); done'
t "ls -la lists all 2000 exactly once" 'ls -la big >$S/ls && [ "$(grep -c " f[0-9]*$" $S/ls)" -eq 2000 ] &&
	seq 0 1999 | sed "s/^/f/" | sort >$S/exp && ls big | sort >$S/got && cmp $S/exp $S/got'
t "ls -a shows . and .." '[ "$(ls -a big | wc -l)" -eq 2002 ]'
t "rm -rf 2000 files" 'rm -rf big && [ ! -e big ]'
t "df reports sizes" 'df -P -k "$M" | tail -n 1 >$S/df && cat $S/df && [ "$(awk "{print \$2}" $S/df)" -gt 0 ]'
cd / || exit 1
t "rm -rf work directory" 'rm -rf "$D" && [ ! -e "$D" ]'

echo "1..$n"
[ "$failed" -eq 0 ] || { echo "# $failed of $n checks failed"; exit 1; }
