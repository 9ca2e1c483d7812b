#!/bin/sh
# tests/bench/smoke.sh - one short repetition of a few benchmark workloads
# against ovlnfsd only (meson suite bench-smoke): asserts that nfsbench ran
# each one and reported a positive figure. No timing asserts: speed is
# measured by tests/bench/run.sh, not by tests.
#
# Needs ONFS_SERVER (ovlnfsd) and NFSBENCH (nfsbench). Starts one ovlnfsd on
# 127.0.0.1 (port 0, --port-file), then a second one with a templated export
# for the instances workload, and stops each by PID.
set -u
server=${ONFS_SERVER:?ONFS_SERVER: path of ovlnfsd}
nfsbench=${NFSBENCH:?NFSBENCH: path of nfsbench}
tmp=$(mktemp -d /tmp/ovlnfsd-bench-smoke.XXXXXX) || exit 1
spid=""
fails=0

cleanup() {
	if [ -n "$spid" ] && kill -0 "$spid" 2>/dev/null; then
		kill -TERM "$spid"
		wait "$spid"
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# a small data set of the same shape as run.sh's
L="$nfsbench --local $tmp/lower"
mkdir -p "$tmp/lower/w" "$tmp/upper/merged" "$tmp/work" "$tmp/state" || exit 1
echo attr > "$tmp/lower/stat.me"
$L mkfiles dir 300 f && $L --fill 4k mkfiles small 50 s && $L mkfiles merged 200 m &&
	$L mkfiles merged 20 x || exit 1
"$nfsbench" --local "$tmp/upper" mkfiles merged 200 u || exit 1
if [ "$(id -u)" = 0 ]; then
	"$nfsbench" --local "$tmp/upper" mkwhiteouts merged 20 x || exit 1
else
	echo "note: not root, the merged directory has no whiteouts (mknod 0/0 needs root)"
fi
dd if=/dev/urandom of="$tmp/lower/big" bs=1M count=8 status=none || exit 1
# a tiny boot tree and trace for replay (symlink, READ, a NOENT probe)
mkdir -p "$tmp/lower/boot/usr/bin" "$tmp/lower/boot/etc" || exit 1
cp "$tmp/lower/small/s0000000" "$tmp/lower/boot/usr/bin/init" &&
	ln -s usr/bin "$tmp/lower/boot/bin" && echo host > "$tmp/lower/boot/etc/hostname" || exit 1
cat > "$tmp/trace" <<EOT
# smoke trace
LOOKUP /bin
READLINK /bin
LOOKUP /usr
LOOKUP /usr/bin
LOOKUP /usr/bin/init
GETATTR /usr/bin/init
ACCESS /usr/bin/init
READ /usr/bin/init 0 4096
LOOKUP /etc/ld.so.preload
GETATTR /etc/hostname
READ /etc/hostname 0 4096
EOT

"$server" -o "lowerdir=$tmp/lower,upperdir=$tmp/upper,workdir=$tmp/work" \
	--listen 127.0.0.1:0 --port-file "$tmp/port" --state-dir "$tmp/state" 2> "$tmp/server.log" &
spid=$!
i=0
while [ ! -s "$tmp/port" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -s "$tmp/port" ]; then
	echo "FAIL: ovlnfsd did not write $tmp/port within 30 s:"; cat "$tmp/server.log"
	exit 1
fi
port=$(cat "$tmp/port")

# run NAME ARGS...: one workload; expects exactly one RESULT line with value > 0
run() {
	name=$1; shift
	out=$("$nfsbench" --port "$port" --name "$name" --time 1 "$@" 2>&1)
	rc=$?
	line=$(printf '%s\n' "$out" | grep '^RESULT ')
	value=$(printf '%s\n' "$line" | sed -n 's/.* value=\([0-9.]*\) .*/\1/p')
	if [ $rc -ne 0 ] || [ -z "$value" ] || ! awk -v v="$value" 'BEGIN { exit !(v > 0) }'; then
		echo "FAIL $name (exit $rc): $out"
		fails=$((fails + 1))
	else
		echo "ok $name: $line"
	fi
}

run getattr-d1 --depth 1 getattr stat.me
run getattr-d32 --depth 32 getattr stat.me
run lookup-getattr-d32 --depth 32 --count 2000 lookup dir
run readdirplus --count 3 readdirplus dir
run readdir --count 3 readdir dir
run readdirplus-merged --count 2 --maxcount 8192 readdirplus merged
run read --depth 8 --size 256k read big
run write --depth 8 --bytes 4M write w
run create --depth 32 --count 200 create w
run remove --depth 32 --count 200 remove w
run copyup-small --depth 32 copyup small
run copyup-big copyup-big big
run getattr-latency --count 2000 latency stat.me
run getattr-bind --bind 127.0.0.5 --count 500 getattr stat.me
run replay --bind 127.0.0.6 replay "$tmp/trace" boot

# the local TCP ceiling row: pread + send to a receiving child over loopback
out=$($L --name read-tcp --size 256k read-tcp big 2>&1)
if printf '%s\n' "$out" | grep -q '^RESULT .* value=[1-9][0-9.]* unit=MB/s ops=32 '; then
	echo "ok read-tcp (local): $out"
else
	echo "FAIL read-tcp (local): $out"
	fails=$((fails + 1))
fi

# the merged listing: 220 lower (20 hidden by whiteouts) + 200 upper, + . and ..
want=402
[ "$(id -u)" = 0 ] || want=422
got=$("$nfsbench" --port "$port" --count 1 readdirplus merged 2>&1 | sed -n 's/.* entries=\([0-9]*\).*/\1/p')
if [ "$got" != "$want" ]; then
	echo "FAIL merged listing: $got entries, expected $want"
	fails=$((fails + 1))
else
	echo "ok merged listing: $got entries"
fi

kill -TERM "$spid"
wait "$spid"
src=$?
spid=""
if [ $src -ne 0 ]; then
	echo "FAIL: ovlnfsd exited with status $src after SIGTERM:"; tail -20 "$tmp/server.log"
	fails=$((fails + 1))
fi

# per-client instances: 20 read-only + 20 written names of a {name}-templated
# export; the workload ran (four figures, a positive MNT latency) and only the
# written names have an upper on disk
instances_smoke() {
	ninst=20
	mkdir -p "$tmp/clients" "$tmp/istate" || exit 1
	cat > "$tmp/instances.conf" <<EOT
[export farm]
path = /clients/{name}
lowerdir = $tmp/lower
upperdir = $tmp/clients/{name}/upper
workdir = $tmp/clients/{name}/work
clients = 127.0.0.0/8
squash = none
max_instances = $((2 * ninst))
EOT
	"$server" -c "$tmp/instances.conf" --listen 127.0.0.1:0 --port-file "$tmp/iport" \
		--state-dir "$tmp/istate" 2> "$tmp/iserver.log" &
	spid=$!
	i=0
	while [ ! -s "$tmp/iport" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	if [ ! -s "$tmp/iport" ]; then
		echo "FAIL: ovlnfsd (templated export) did not write $tmp/iport within 30 s:"
		cat "$tmp/iserver.log"
		exit 1
	fi
	out=$("$nfsbench" --port "$(cat "$tmp/iport")" --server-pid "$spid" --count $ninst \
		instances /clients 2>&1)
	rc=$?
	nres=$(printf '%s\n' "$out" | grep -c '^RESULT workload=instances-\(rss-readonly\|rss-written\|mnt-p50\|mnt-p99\) ')
	p50=$(printf '%s\n' "$out" | sed -n 's/^RESULT workload=instances-mnt-p50 .* value=\([0-9.]*\) .*/\1/p')
	if [ $rc -ne 0 ] || [ "$nres" != 4 ] || [ -z "$p50" ] || ! awk -v v="$p50" 'BEGIN { exit !(v > 0) }'; then
		echo "FAIL instances (exit $rc, $nres of 4 figures): $out"
		fails=$((fails + 1))
	else
		printf '%s\n' "$out" | sed 's/^/ok instances: /'
	fi
	nrw=$(find "$tmp/clients" -mindepth 1 -maxdepth 1 -name 'rw-*' | wc -l)
	nro=$(find "$tmp/clients" -mindepth 1 -maxdepth 1 -name 'ro-*' | wc -l)
	if [ "$nrw" != $ninst ] || [ "$nro" != 0 ]; then
		echo "FAIL instances on disk: $nrw written uppers (expected $ninst), $nro read-only ones (expected 0)"
		fails=$((fails + 1))
	else
		echo "ok instances on disk: $nrw uppers, none for the read-only names"
	fi
	kill -TERM "$spid"
	wait "$spid"
	src=$?
	spid=""
	if [ $src -ne 0 ]; then
		echo "FAIL: ovlnfsd (templated export) exited with status $src after SIGTERM:"
		tail -20 "$tmp/iserver.log"
		fails=$((fails + 1))
	fi
}
if [ "$(id -u)" = 0 ]; then
	instances_smoke
else
	echo "note: not root, instances skipped (templated exports need kernel file handles: CAP_DAC_READ_SEARCH)"
fi

[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all ok"
