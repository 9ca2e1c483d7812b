#!/bin/sh
# shellcheck disable=SC2016,SC2034 # check bodies (and the variables they use) are eval'd later
# tests/kclient/g-debian-lock.sh - guest case for nlm-debian.sh: runs in the
# Debian root that guest.sh -R booted from the export (dash, as PID 1's
# child, no init system), with the real rpcbind, rpc.statd and dpkg of that
# root. nlm-debian.sh puts "PHASE=1" or "PHASE=2" in front of this file.
#
# The root itself is mounted nolock: the kernel's lockd must register with
# the guest's rpcbind when a locking mount is made, and rpcbind lives in
# that very root. So each phase starts rpcbind and rpc.statd, then mounts
# the same export twice more with the default (locking) options, at /mnt
# and /mnt2, each its own superblock (nosharecache). dpkg runs in
# `chroot /mnt`, so its database is the root's own.
#
# Why two: the kernel checks a new lock against the locks of its own
# processes on the same inode before it asks the server, so between two
# processes on one mount the server is never asked about the conflict. A
# holder on /mnt2 and a contender on /mnt are two inodes to the guest's
# kernel and two lock owners (svid) of one client to the server: only the
# server's NLM can refuse the second (nlm-debian.sh checks that it
# answered NLM4_DENIED).
#
# Phase 1: fcntl and flock exclusion between two processes; dpkg and
# apt-get refused while another process holds dpkg's locks, then dpkg -i of
# /root/onfs-locktest_1.0_all.deb once they are free; at the end a process
# holds a lock on /root/kc-stale while the guest powers off (a crashed
# client whose lock the server still holds).
# Phase 2 (the next boot of the same root): phase 1's lock is still held at
# the server; sm-notify tells the server of the reboot, which must release
# it; the package dpkg installed in phase 1 is there.
M=/mnt H=/mnt2
DEB=/root/onfs-locktest_1.0_all.deb
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
# plock fcntl|flock SECS FILE...: take an exclusive lock on each FILE without
# waiting (fcntl F_SETLK on the whole file, as dpkg does, or flock LOCK_NB),
# print "held", hold them SECS seconds. Exit 1 when another process holds
# one (EAGAIN/EACCES), 2 on any other error. SECS 0: let go at once.
# A program of its own, not a shell function: in `plock ... & hp=$!`, $hp
# must be the process that holds the lock, not a subshell around it.
cat >/tmp/plock <<'EOF'
#!/usr/bin/perl
use strict; use Fcntl qw(:DEFAULT :flock);
my ($how, $secs, @files) = @ARGV; my @keep; $| = 1;
for my $p (@files) {
	sysopen(my $f, $p, O_RDWR | O_CREAT, 0644) or do { print STDERR "open $p: $!\n"; exit 2 };
	my $fl = pack("s s x4 q q i x4", F_WRLCK, 0, 0, 0, 0); # struct flock, whole file
	my $ok = $how eq "flock" ? flock($f, LOCK_EX | LOCK_NB) : fcntl($f, F_SETLK, $fl);
	unless ($ok) {
		if ($!{EAGAIN} || $!{EACCES}) { print "busy: $p\n"; exit 1 }
		print STDERR "lock $p: $!\n"; exit 2;
	}
	push @keep, $f;
}
print "held\n"; sleep $secs; exit 0;
EOF
chmod 755 /tmp/plock
PATH=/tmp:$PATH
# wait_held FILE: until a holder wrote "held" to FILE (bounded: 60 s; every
# program start is slow in a TCG guest whose binaries come over NFS)
wait_held() {
	w_end=$(($(date +%s) + 60))
	while ! grep -q held "$1" 2>/dev/null; do
		[ "$(date +%s)" -lt $w_end ] || { echo "the holder never got its lock:"; cat "$1"; return 1; }
		sleep 0.3
	done
}

port=$(sed -n 's|.* / nfs .*,port=\([0-9]*\),.*|\1|p' /proc/mounts | head -n 1)
echo "# phase $PHASE, root mounted from port $port"

# Phase 2 starts statd with --no-notify and runs sm-notify itself later (as
# Debian's rpc-statd and rpc-statd-notify units split them), so that it can
# see the dead boot's lock still held before the server hears of the reboot.
notify=
[ "$PHASE" = 1 ] || notify=--no-notify
t "rpcbind and rpc.statd $notify (Debian's) start and register" '
	rpcbind -w || exit 1
	rpc.statd $notify || exit 1
	end=$(($(date +%s) + 60))
	until rpcinfo -p 127.0.0.1 2>&1 | grep -q " status\$"; do
		[ "$(date +%s)" -lt $end ] || { rpcinfo -p 127.0.0.1; exit 1; }
		sleep 0.3
	done
	rpcinfo -p 127.0.0.1'

t "mount the export at $M and $H with locking (no nolock)" '
	mkdir -p $H || exit 1
	for d in $M $H; do
		mount -t nfs -o vers=3,proto=tcp,port=$port,mountport=$port,mountproto=tcp,nosharecache 10.0.2.2:/ $d || exit 1
		grep " $d nfs " /proc/mounts
		grep " $d nfs " /proc/mounts | grep -q "local_lock=none" || exit 1
		! grep " $d nfs " /proc/mounts | grep -q nolock || exit 1
	done'

if [ "$PHASE" = 1 ]; then
	t "fcntl lock granted through the server (statd monitors it)" '
		plock fcntl 0 $M/root/kc-f1 || exit 1
		ls -l /var/lib/nfs/sm
		[ -n "$(ls /var/lib/nfs/sm)" ]'

	t "fcntl: a second process is refused while the first holds the lock" '
		plock fcntl 120 $H/root/kc-f1 >/tmp/h1 & hp=$!
		wait_held /tmp/h1 || { kill $hp; exit 1; }
		plock fcntl 0 $M/root/kc-f1; rc=$?
		kill $hp; wait $hp
		echo "second process while held: exit $rc (want 1)"
		[ $rc = 1 ] && plock fcntl 0 $M/root/kc-f1'

	t "flock -n fails while another process holds the flock" '
		plock flock 120 $H/root/kc-f2 >/tmp/h2 & hp=$!
		wait_held /tmp/h2 || { kill $hp; exit 1; }
		flock -n $M/root/kc-f2 true; rc=$?
		kill $hp; wait $hp
		echo "flock -n while held: exit $rc (want 1)"
		[ $rc = 1 ] && flock -n $M/root/kc-f2 true'

	t "dpkg -i refused: dpkg's lock is held by another process" '
		plock fcntl 300 $H/var/lib/dpkg/lock-frontend $H/var/lib/dpkg/lock >/tmp/h3 & hp=$!
		wait_held /tmp/h3 || { kill $hp; exit 1; }
		chroot $M dpkg -i $DEB >/tmp/dpkg.out 2>&1; rc=$?
		cat /tmp/dpkg.out
		chroot $M apt-get install -y $DEB >/tmp/apt.out 2>&1; arc=$?
		cat /tmp/apt.out
		kill $hp; wait $hp
		echo "dpkg -i while locked: exit $rc, apt-get install: exit $arc (want both non-zero)"
		[ $rc != 0 ] && grep -q "locked by another process" /tmp/dpkg.out &&
			[ $arc != 0 ] && grep -q "Could not get lock" /tmp/apt.out &&
			! chroot $M dpkg -s onfs-locktest 2>/dev/null | grep -q "^Status: install ok installed"'

	t "dpkg -i installs once the lock is released" '
		chroot $M dpkg -i $DEB || exit 1
		chroot $M dpkg -s onfs-locktest | grep "^Status: install ok installed" &&
			grep -q "installed through a locking mount" $M/usr/share/onfs-locktest/hello'

	t "dpkg released its locks when it finished" '
		plock fcntl 0 $M/var/lib/dpkg/lock-frontend $M/var/lib/dpkg/lock'

	t "a process holds a lock on /root/kc-stale while the guest goes down" '
		plock fcntl 600 $M/root/kc-stale >/tmp/h4 &
		wait_held /tmp/h4'
else
	# The svids of this boot's lock owners start again at 0; the one that
	# holds kc-stale since phase 1 had a later one, so the server tells
	# them apart.
	t "phase 1's lock on /root/kc-stale is still held: the server has not heard of the reboot" '
		plock fcntl 0 $M/root/kc-stale; rc=$?
		echo "exit $rc (want 1)"
		[ $rc = 1 ]'

	# sm-notify finds the server in /var/lib/nfs/sm (written by phase 1's
	# statd) and sends it SM_NOTIFY; the server releases the dead boot's lock.
	t "sm-notify tells the server of the reboot; then the lock is granted" '
		sm-notify || exit 1
		i=0 end=$(($(date +%s) + 90))
		until plock fcntl 0 $M/root/kc-stale; do
			i=$((i + 1)); [ "$(date +%s)" -lt $end ] || exit 1
			sleep 1
		done
		echo "granted after $i refusal(s)"
		ls -l /var/lib/nfs/sm /var/lib/nfs/sm.bak'

	t "the dpkg database of phase 1 is there, and dpkg is not locked" '
		chroot $M dpkg -s onfs-locktest | grep "^Status: install ok installed" &&
			plock fcntl 0 $M/var/lib/dpkg/lock-frontend $M/var/lib/dpkg/lock'
fi

sync
echo "1..$n"
[ $failed = 0 ]
