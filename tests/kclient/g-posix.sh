#!/bin/sh
# shellcheck disable=SC2016 # check bodies are eval'd later, on purpose
# tests/kclient/g-posix.sh - guest case (busybox sh): POSIX semantics an NFS client relies on (19 checks).
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
# .nfsXXXX files are the client's silly-renamed open-but-unlinked files;
# they are removed asynchronously after the last close (wait up to 10 s).
has_nfs_files() { for f in .nfs*; do [ -e "$f" ] && return 0; done; return 1; }
no_nfs_files() {
	i=0
	while has_nfs_files; do
		[ $i -ge 10 ] && return 1
		sleep 1
		i=$((i + 1))
	done
}

D=$(mktemp -d "$M/kc-posix.XXXXXX") || { echo "Bail out! cannot mkdir in $M"; exit 1; }
cd "$D" || exit 1
echo "# working in $D"

# set -C makes the shell open with O_CREAT|O_EXCL (NFS CREATE EXCLUSIVE).
t "O_EXCL create succeeds" '(set -C; : >ex) && [ -f ex ]'
t "O_EXCL create of existing file fails" '! (set -C; : >ex)'
t "exclusive-created file has a sane mode" '[ "$(stat -c %a ex)" = 644 ]'
t "mkdir of existing directory fails" 'mkdir dx && ! mkdir dx'
t "rename over existing file" 'echo old >a && echo new >b && mv -f b a && [ ! -e b ] && [ "$(cat a)" = new ]'
t "rename over open file keeps old data on the fd" 'echo one >o1 && echo two >o2 && exec 3<o1 &&
	mv -f o2 o1 && [ "$(cat o1)" = two ] && [ "$(cat <&3)" = one ] && exec 3<&- && no_nfs_files'
t "rmdir non-empty fails with ENOTEMPTY" 'mkdir ne && : >ne/f && ! rmdir ne 2>$S/err && cat $S/err &&
	grep -qi "not empty" $S/err'
t "unlink of an open file, read via fd (silly rename)" 'echo secret >sr && exec 3<sr && rm sr && [ ! -e sr ] &&
	has_nfs_files && [ "$(cat <&3)" = secret ] && exec 3<&- && no_nfs_files'
t "mtime advances after write" ': >mt && m1=$(stat -c %Y mt) && sleep 2 && echo x >>mt &&
	m2=$(stat -c %Y mt) && echo "$m1 -> $m2" && [ "$m2" -gt "$m1" ]'
t "ctime advances after chmod" 'c1=$(stat -c %Z mt) && sleep 2 && chmod 600 mt && c2=$(stat -c %Z mt) &&
	echo "$c1 -> $c2" && [ "$c2" -gt "$c1" ]'
t "set mtime explicitly (touch -t)" 'TZ=UTC touch -t 200001020304.05 mt && [ "$(stat -c %Y mt)" = 946782245 ]'
t "chown by root" 'chown 1234:5678 mt && [ "$(stat -c %u:%g mt)" = 1234:5678 ]'
t "overwrite in the middle (notrunc)" 'printf "0123456789" >mid && printf XY | dd of=mid bs=1 seek=4 conv=notrunc &&
	[ "$(cat mid)" = 0123XY6789 ]'
t "sparse write past EOF" 'printf Z | dd of=sp bs=1 seek=100000 && [ "$(stat -c %s sp)" = 100001 ] &&
	[ "$(head -c 100000 sp | tr -d "\000" | wc -c)" -eq 0 ] && [ "$(tail -c 1 sp)" = Z ]'
t "64 MiB file: dd write, drop caches, md5sum matches" 'dd if=/dev/urandom of=$S/big bs=1M count=64 &&
	s1=$(md5sum <$S/big) && dd if=$S/big of=big bs=1M conv=fsync && rm $S/big &&
	echo 3 >/proc/sys/vm/drop_caches && [ "$(stat -c %s big)" = 67108864 ] &&
	s2=$(md5sum <big) && echo "$s1 / $s2" && [ "$s1" = "$s2" ] && rm big'
t "create 1000 files" 'mkdir ls && i=0 && while [ $i -lt 1000 ]; do : >ls/f$i || exit 1; i=$((i + 1)); done'
t "listing after removing every other entry is exact" 'i=0 && while [ $i -lt 1000 ]; do rm ls/f$i || exit 1; i=$((i + 2)); done &&
	seq 1 2 999 | sed "s/^/f/" | sort >$S/exp && ls ls | sort >$S/got && cmp $S/exp $S/got'
# find -exec rm unlinks each entry while the directory is still being read:
# every entry must be returned exactly once even though the directory shrinks.
t "readdir while unlinking returns every entry once" 'find ls -type f -exec rm {} \; -print >$S/del &&
	[ "$(wc -l <$S/del)" -eq 500 ] && [ -z "$(sort $S/del | uniq -d)" ] && [ -z "$(ls -A ls)" ] && rmdir ls'
cd / || exit 1
t "rm -rf work directory" 'rm -rf "$D" && [ ! -e "$D" ]'

echo "1..$n"
[ "$failed" -eq 0 ] || { echo "# $failed of $n checks failed"; exit 1; }
