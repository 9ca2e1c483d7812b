#!/bin/sh
# shellcheck disable=SC2016,SC2034 # check bodies (and the variables they use) are eval'd later
# tests/kclient/g-lock.sh - guest case (busybox sh, run by guest.sh) for file
# locking through ovlnfsd's NLM: a second mount with `lock` (guest.sh's own
# mount is nolock), then fcntl and flock exclusion between two processes of
# this guest, shared locks, a blocking lock that waits for its holder, and
# dpkg-style lock-then-write from two processes.
# The busybox guest has no rpcbind or rpc.statd, which the kernel's lockd
# needs (it registers with the first and asks the second to monitor the
# server before the first lock, else ENOLCK): bin/nlmguest from the export
# stands in for both. Runs in the guest only ($1 = guest.sh's mount point).
M=${1:-$PWD}
B=$M/bin/nlmguest
L=/mnt/lk
n=0 failed=0
t() {
	n=$((n + 1))
	t_0=$(date +%s)
	if (eval "$2") </dev/null >/tmp/t.out 2>&1; then
		echo "ok $n - $1 ($(($(date +%s) - t_0)) s)"
	else
		echo "not ok $n - $1 ($(($(date +%s) - t_0)) s)"
		failed=$((failed + 1))
	fi
	sed 's/^/#   /' /tmp/t.out
}
# wait_held FILE: until a holder printed "held" (bounded: 20 s)
wait_held() {
	i=0
	while ! grep -q held "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || { echo "holder never got its lock"; return 1; }
		sleep 0.2
	done
}

port=$(sed -n 's|.* /mnt/nfs nfs .*,port=\([0-9]*\),.*|\1|p' /proc/mounts | head -n 1)
t "rpcbind and statd stand-ins start" '$B rpcbind'
mkdir -p $L
t "mount with locking (lock) on port $port" \
	'mount -t nfs -o vers=3,proto=tcp,port=$port,mountport=$port,mountproto=tcp,mountvers=3,lock,nosharecache,addr=10.0.2.2 10.0.2.2:/ $L && grep " $L nfs " /proc/mounts'
t "fcntl lock granted (no ENOLCK)" '$B try $L/f1'

t "fcntl: another process is refused while one holds the lock" '
	$B hold $L/f1 30 >/tmp/h1 & hp=$!
	wait_held /tmp/h1 || exit 1
	$B try $L/f1; rc=$?
	kill $hp; wait $hp
	echo "try while held: $rc (want 1)"
	[ $rc = 1 ]'
t "fcntl: granted again once the holder is gone" '$B try $L/f1'

t "flock -n fails while another process holds the flock" '
	$B flockhold $L/f2 30 >/tmp/h2 & hp=$!
	wait_held /tmp/h2 || exit 1
	$B flock $L/f2; rc=$?
	kill $hp; wait $hp
	echo "flock -n while held: $rc (want 1)"
	[ $rc = 1 ] && $B flock $L/f2'

t "shared locks coexist; an exclusive one is refused" '
	$B hold $L/f3 30 sh >/tmp/h3 & hp=$!
	wait_held /tmp/h3 || exit 1
	$B try $L/f3 sh; rs=$?
	$B try $L/f3; rx=$?
	kill $hp; wait $hp
	echo "shared: $rs (want 0), exclusive: $rx (want 1)"
	[ $rs = 0 ] && [ $rx = 1 ]'

# The server cannot call this guest back (user-mode network NAT), so the
# waiter gets the lock on its client'"'"'s next poll (Linux: every 30 s).
t "a blocking lock waits for the holder, then gets it" '
	$B hold $L/f4 4 >/tmp/h4 & hp=$!
	wait_held /tmp/h4 || exit 1
	timeout 90 $B wait $L/f4 >/tmp/w4; rc=$?
	wait $hp
	cat /tmp/w4
	[ $rc = 0 ] && awk "{ exit !(\$2 >= 2) }" /tmp/w4'

# Each hand-over between the two writers waits for a poll (see above),
# hence only two rounds each.
t "dpkg-style lock-then-write from two processes" '
	: >$L/status
	( for i in 1 2; do $B lockwrite $L/status a$i || exit 1; done ) & p1=$!
	( for i in 1 2; do $B lockwrite $L/status b$i || exit 1; done ) & p2=$!
	wait $p1 && wait $p2 && [ $(wc -l <$L/status) = 4 ] && cat $L/status'

t "umount the locking mount" 'umount $L'
echo "1..$n"
[ $failed = 0 ]
