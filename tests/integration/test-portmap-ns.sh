#!/bin/bash
# test-portmap-ns.sh - plain mounts find the server through port 111, in a
# private network (and mount) namespace this script creates, so the host's
# port 111 and its rpcbind are never touched:
#   (a) no rpcbind: the server (on port 2049) answers portmap on
#       127.0.0.1:111 itself; rpcinfo -p and libnfs without ports find it;
#   (b) a system rpcbind holds 111: the server registers NFS v3 and MOUNT v3
#       (tcp, udp) at its port; rpcinfo -p lists them, libnfs mounts without
#       ports, and after the server stops they are gone;
#   (c) --portmap off, and a port other than 2049: nothing on port 111.
# Every process started here is stopped by its PID.
set -u
BIN=${ONFS_SERVER:?ONFS_SERVER not set}
BIN=$(readlink -f "$BIN")
MULT=${ONFS_TEST_TIMEOUT_MULT:-1}

if [ "${1:-}" != inner ]; then
	[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespace, port 111)"; exit 77; }
	for p in unshare ip rpcinfo; do
		command -v $p >/dev/null 2>&1 || { echo "SKIP: '$p' is not installed"; exit 77; }
	done
	unshare -n -m true 2>/dev/null ||
		{ echo "SKIP: cannot create network and mount namespaces (unshare -n -m)"; exit 77; }
	exec unshare -n -m --propagation private bash "$0" inner
fi

# ---- inside the namespaces
fails=0
ok() { echo "ok $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
# log_has FILE TEXT: the server logs its portmap lines after the port file
# (the lock manager and the registration come after readiness): wait for
# the line, at most 10 s, instead of reading the log once
log_has() {
	for _ in $(seq 1 200); do
		grep -q "$2" "$1" && return 0
		sleep 0.05
	done
	return 1
}
ip link set lo up || { echo "FAIL: ip link set lo up"; exit 1; }
# rpcbind and libtirpc meet at /run/rpcbind.sock: keep that private too
mount -t tmpfs tmpfs /run || { echo "FAIL: cannot mount a private /run"; exit 1; }
T=$(mktemp -d /tmp/onfs-pmapns-XXXXXX)
SRV=
RPCB=
cleanup() {
	[ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
	[ -n "$RPCB" ] && kill "$RPCB" 2>/dev/null && wait "$RPCB" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/l" "$T/u" "$T/w" "$T/s" "$T/l/dir"
echo "hello from the lower layer" >"$T/l/dir/hello.txt"

start() { # NAME ARGS...: starts ovlnfsd, sets SRV, waits for its port file
	local name=$1
	shift
	rm -f "$T/port"
	"$BIN" -f -o "lowerdir=$T/l,upperdir=$T/u,workdir=$T/w" --state-dir "$T/s" \
		--port-file "$T/port" "$@" >"$T/$name.log" 2>&1 &
	SRV=$!
	for _ in $(seq 1 $((200 * MULT))); do
		[ -s "$T/port" ] && return 0
		kill -0 "$SRV" 2>/dev/null || break
		sleep 0.05
	done
	cat "$T/$name.log"
	bad "$name: the server did not start"
	SRV=
	return 1
}
stop() { # NAME
	local rc
	kill "$SRV"
	wait "$SRV"
	rc=$?
	SRV=
	[ "$rc" -eq 0 ] || { cat "$T/$1.log"; bad "$1: exit $rc on SIGTERM"; }
}
# lists prog and port: "100003 3 tcp 2049" lines from rpcinfo -p
mapped() { rpcinfo -p 127.0.0.1 2>/dev/null | awk '{print $1, $2, $3, $4}'; }
have_nfs_ls=yes
command -v nfs-ls >/dev/null 2>&1 || { have_nfs_ls=; echo "note: nfs-ls not installed: no libnfs check"; }

# (a) no rpcbind: the embedded portmapper on 127.0.0.1:111
if start a --listen 127.0.0.1:2049; then
	if log_has "$T/a.log" "portmap: port 111 was free: answering portmap on 127.0.0.1:111"; then
		ok "(a) the log says the server answers portmap on 127.0.0.1:111"
	else
		cat "$T/a.log"; bad "(a) no log line about answering on port 111"
	fi
	m=$(mapped)
	for want in "100003 3 tcp 2049" "100003 3 udp 2049" "100005 3 tcp 2049" "100005 3 udp 2049" \
			"100021 4 tcp 2049" "100021 4 udp 2049" "100021 1 udp 2049"; do
		echo "$m" | grep -qx "$want" && ok "(a) rpcinfo -p lists '$want'" ||
			bad "(a) rpcinfo -p does not list '$want': $m"
	done
	if [ -n "$have_nfs_ls" ]; then
		out=$(timeout $((30 * MULT)) nfs-ls "nfs://127.0.0.1/dir?version=3" 2>&1)
		echo "$out" | grep -q hello.txt && ok "(a) nfs-ls without ports finds the export" ||
			bad "(a) nfs-ls nfs://127.0.0.1/dir: $out"
	fi
	stop a
	rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && bad "(a) port 111 still answers after the stop" ||
		ok "(a) nothing answers on port 111 after the stop"
fi

# (c) --portmap off, and another port: port 111 stays free
if start c1 --listen 127.0.0.1:2049 --portmap off; then
	rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && bad "(c) --portmap off: something answers on 111" ||
		ok "(c) --portmap off: nothing on port 111"
	log_has "$T/c1.log" "portmap: off" && ok "(c) the log says portmap is off" ||
		bad "(c) no 'portmap: off' in the log"
	stop c1
fi
if start c2 --listen 127.0.0.1:0; then
	rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && bad "(c) port 0: something answers on 111" ||
		ok "(c) --listen 127.0.0.1:0: nothing on port 111"
	stop c2
fi

# (b) a system rpcbind holds port 111: register with it
if ! command -v rpcbind >/dev/null 2>&1; then
	echo "SKIP (b): rpcbind is not installed"
else
	rpcbind -f >"$T/rpcbind.log" 2>&1 &
	RPCB=$!
	for _ in $(seq 1 100); do
		rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && break
		sleep 0.05
	done
	if ! rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then
		cat "$T/rpcbind.log"; bad "(b) rpcbind did not start"
	elif start b --listen 127.0.0.1:2049; then
		log_has "$T/b.log" "portmap: port 111 is held by the system rpcbind: registered NFS v3, MOUNT v3 and NLM v1/3/4 at port 2049" &&
			ok "(b) the log says NFS, MOUNT and NLM were registered with rpcbind" ||
			{ cat "$T/b.log"; bad "(b) no log line about the rpcbind registration"; }
		m=$(mapped)
		for want in "100003 3 tcp 2049" "100003 3 udp 2049" "100005 3 tcp 2049" "100005 3 udp 2049" \
			"100021 4 tcp 2049" "100021 4 udp 2049" "100021 1 udp 2049"; do
			echo "$m" | grep -qx "$want" && ok "(b) rpcinfo -p lists '$want'" ||
				bad "(b) rpcinfo -p does not list '$want': $m"
		done
		if [ -n "$have_nfs_ls" ]; then
			out=$(timeout $((30 * MULT)) nfs-ls "nfs://127.0.0.1/dir?version=3" 2>&1)
			echo "$out" | grep -q hello.txt && ok "(b) nfs-ls without ports finds the export through rpcbind" ||
				bad "(b) nfs-ls nfs://127.0.0.1/dir: $out"
		fi
		stop b
		m=$(mapped)
		if echo "$m" | grep -q '^1000\(0[35]\|21\) '; then
			bad "(b) still registered after the stop: $m"
		elif echo "$m" | grep -q '^100000 '; then
			ok "(b) after the stop rpcbind lists neither nfs, mountd nor nlockmgr (rpcbind itself still there)"
		else
			bad "(b) rpcbind no longer answers: $m"
		fi
	fi
	kill "$RPCB"
	wait "$RPCB" 2>/dev/null
	RPCB=
fi

[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "portmap-ns: all ok"
