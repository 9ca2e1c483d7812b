#!/bin/sh
# shellcheck disable=SC2016,SC2034 # check bodies (and the variables they use) are eval'd later
# tests/kclient/g-softrestart.sh - kclient guest test (busybox sh): a soft
# mount (run.sh: soft,timeo=20,retrans=3,lookupcache=none) across a server
# restart. Files opened before the restart keep working after it: their
# handles must stay valid.
# Host cooperation (run.sh restart_helper): the guest creates restart-please
# in the export (and prints a KC-SIGNAL line on the console, which is all
# it can do while writes fail); the host stops ovlnfsd, puts a file
# "restarted" into the upper layer and starts ovlnfsd again on the same port.
# The guest waits (up to 120 s) until it sees "restarted", then goes on.
# With KC_REF=1 (host, kernel overlay) the script creates both files itself.
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
drop() { if nfs; then sync && echo 3 >/proc/sys/vm/drop_caches; fi; }
cd "$M" || exit 1

# Open before the restart (top level: a check runs in a subshell).
exec 3<dir/lines
read -r l1 <&3
t "read line 1 of a lower file before the restart" '[ "$l1" = line1 ]'
echo before >wfile && exec 4>>wfile
t "create a file and keep it open for writing" '[ "$(cat wfile)" = before ]'
exec 5<dir/sub/deep
sync

# Ask the host for a restart, then wait for it.
if nfs; then
	touch restart-please 2>/dev/null || echo "# cannot create restart-please; signalling on the console only"
	echo "KC-SIGNAL restart-please"
	i=0
	while [ ! -e restarted ] && [ $i -lt 120 ]; do sleep 1; i=$((i + 1)); done
	echo "# waited ${i} s for the restart"
else
	: >restart-please && echo restarted >restarted
fi
t "the host restarted the server (its marker file is visible)" '[ "$(cat restarted)" = restarted ]'
drop
read -r l2 <&3
t "read line 2 through the fd opened before the restart" '[ "$l2" = line2 ]'
t "read the same file again by name" '[ "$(sed -n 3p dir/lines)" = line3 ]'
t "read another lower file through its old fd" '[ "$(cat <&5)" = deep ]'
echo after >&4
exec 4>&-
drop
t "write through the fd opened before the restart" '[ "$(cat wfile)" = "$(printf "before\nafter")" ]'
t "create, write and list after the restart" 'echo post >post && [ "$(cat post)" = post ] && ls | grep -qx wfile'
t "unlink the file that was open before the restart" 'rm wfile && [ ! -e wfile ]'
exec 3<&- 5<&-
t "df works after the restart" 'df -k . | tail -n 1'
echo "1..$n"
[ "$failed" -eq 0 ] || { echo "# $failed of $n checks failed"; exit 1; }
