#!/bin/sh
# deploy/client.sh - the docker compose demo's client: waits until ovlnfsd
# answers, lists the export, reads every file of the base layer and compares
# it with the base layer itself (mounted read-only at $EXPECT), then writes a
# file with nfs-cp, reads it back with nfs-cat and compares. With CLIENT_ID,
# PEER_ID and MEET (a directory shared with the peer client, not NFS): both
# clients write the same path with their own data through the one templated
# export, meet, and check that neither sees the other's writes; then they
# wait for each other's verdict, so either exit status covers both.
#
# Exit status: 0 when every step passed, 1 when one failed.
# ONFS_WRITES: "required" - a failed write fails the demo;
#              "auto" (default) - a write refused with NFS3ERR_ROFS (the
#              server's write path not available) is reported and skipped,
#              any other write failure fails the demo.
set -u
SERVER=${NFS_SERVER:-ovlnfsd}
PORT=${NFS_PORT:-2049}
EXPECT=${EXPECT:-/expect}
WRITES=${ONFS_WRITES:-auto}
WAIT=${WAIT_SECONDS:-60}
Q="?nfsport=$PORT&mountport=$PORT&version=3"
# libnfs mounts the directory above a file URL; for a file at the top of the
# export that directory is "", so top-level files are named with "//".
url() { echo "nfs://$SERVER/$1$Q"; }
T=$(mktemp -d)
fail=0
say() { echo "client: $*"; }
bad() { echo "client: FAIL: $*"; fail=1; }

say "waiting for ovlnfsd at $SERVER:$PORT (at most ${WAIT}s)"
i=0
until nfs-ls "$(url '')" >"$T/ls" 2>"$T/ls.err"; do
	i=$((i + 1))
	if [ "$i" -ge $((WAIT * 2)) ]; then
		cat "$T/ls.err"
		bad "ovlnfsd did not answer within ${WAIT}s"
		exit 1
	fi
	sleep 0.5
done
say "server answered after about $((i / 2))s"

say "1. list the export root (nfs-ls)"
sed 's/^/    /' "$T/ls"
for name in README.txt etc docs incoming readme-link; do
	grep -q " $name\$" "$T/ls" || grep -q " $name -> " "$T/ls" || bad "'$name' missing from the listing"
done

say "2. read every file of the base layer (nfs-cat) and compare with the layer itself"
nread=0
for f in $(cd "$EXPECT" && find . -type f | sed 's|^\./||' | sort); do
	case "$f" in
	*/*) u=$(url "$f") ;;
	*) u=$(url "/$f") ;;
	esac
	if nfs-cat "$u" >"$T/got" 2>"$T/err" && cmp -s "$T/got" "$EXPECT/$f"; then
		nread=$((nread + 1))
	else
		cat "$T/err"
		bad "/$f read over NFS differs from the base layer"
	fi
done
say "   $nread file(s) identical"
[ "$nread" -gt 0 ] || bad "no file read"

say "3. write incoming/from-client.txt (nfs-cp), read it back (nfs-cat), compare"
{
	echo "written by the ovlnfsd demo client $(hostname) at $(date -u +%FT%TZ)"
	head -c 196608 /dev/urandom | od -An -tx1 | tr -d ' \n' | fold -w 64
	echo
} >"$T/payload"
name="incoming/from-client.txt"
if nfs-cp "$T/payload" "$(url "$name")" >"$T/cp.out" 2>&1; then
	if nfs-cat "$(url "$name")" >"$T/back" 2>"$T/err" && cmp -s "$T/payload" "$T/back"; then
		say "   wrote and read back $(wc -c <"$T/payload") bytes: identical"
		say "writes: verified"
	else
		cat "$T/err"
		bad "the file read back differs from the file written"
	fi
	nfs-ls "$(url incoming)" >"$T/ls2" 2>&1 || bad "listing incoming/ failed"
	sed 's/^/    /' "$T/ls2"
	grep -q ' from-client.txt$' "$T/ls2" || bad "from-client.txt missing from the listing of incoming/"
	grep -q ' README.txt$' "$T/ls2" || bad "the lower README.txt vanished from the merged incoming/"
elif grep -q 'NFS3ERR_ROFS' "$T/cp.out" && [ "$WRITES" = auto ]; then
	sed 's/^/    /' "$T/cp.out"
	say "writes: NOT AVAILABLE - the server answered NFS3ERR_ROFS (read-only);"
	say "        skipped the write and read-back (ONFS_WRITES=required makes this a failure)"
else
	sed 's/^/    /' "$T/cp.out"
	bad "writing $name failed"
fi

ME=${CLIENT_ID:-}
PEER=${PEER_ID:-}
MEET=${MEET:-}
# wait_for FILE WHAT: at most 120 s for the peer
wait_for() {
	i=0
	while [ ! -e "$1" ]; do
		i=$((i + 1))
		[ "$i" -ge 240 ] && { bad "the peer client ($PEER) never $2"; return 1; }
		sleep 0.5
	done
	return 0
}
if [ -n "$ME" ] && [ -n "$PEER" ] && [ -n "$MEET" ] && [ -d "$MEET" ]; then
	say "4. client $ME and client $PEER: the same path, their own data, nothing crosses"
	rm -f "$MEET/$ME.written" "$MEET/$ME.result"
	echo "this file belongs to client $ME ($(hostname))" >"$T/mine"
	echo "only client $ME wrote this" >"$T/only"
	if nfs-cp "$T/mine" "$(url incoming/same-name.txt)" >"$T/cp2.out" 2>&1 &&
		nfs-cp "$T/only" "$(url "incoming/only-$ME.txt")" >>"$T/cp2.out" 2>&1; then
		touch "$MEET/$ME.written"
		if wait_for "$MEET/$PEER.written" "wrote its files"; then
			if nfs-cat "$(url incoming/same-name.txt)" >"$T/same" 2>"$T/err" && cmp -s "$T/same" "$T/mine"; then
				say "   incoming/same-name.txt holds this client's data, not the peer's"
			else
				cat "$T/same" "$T/err"
				bad "incoming/same-name.txt does not hold this client's data"
			fi
			nfs-ls "$(url incoming)" >"$T/ls3" 2>&1 || bad "listing incoming/ failed"
			grep -q " only-$ME.txt\$" "$T/ls3" || bad "own file only-$ME.txt missing"
			if grep -q " only-$PEER.txt\$" "$T/ls3"; then
				bad "the peer's only-$PEER.txt is visible here"
			else
				say "   the peer's only-$PEER.txt is not visible here"
			fi
		fi
	elif grep -q 'NFS3ERR_ROFS' "$T/cp2.out" && [ "$WRITES" = auto ]; then
		say "   skipped: the server is read-only"
		touch "$MEET/$ME.written"
	else
		sed 's/^/    /' "$T/cp2.out"
		bad "writing this client's files failed"
		touch "$MEET/$ME.written"
	fi
	if [ "$fail" -eq 0 ]; then echo PASS >"$MEET/$ME.result"; else echo FAIL >"$MEET/$ME.result"; fi
	if wait_for "$MEET/$PEER.result" "finished"; then
		if [ "$(cat "$MEET/$PEER.result")" = PASS ]; then
			say "   the peer client ($PEER) passed too"
		else
			bad "the peer client ($PEER) failed"
		fi
	fi
fi

rm -rf "$T"
if [ "$fail" -eq 0 ]; then
	say "PASS"
else
	say "FAILED"
fi
exit "$fail"
