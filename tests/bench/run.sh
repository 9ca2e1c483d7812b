#!/bin/bash
# tests/bench/run.sh - the ovlnfsd benchmark: makes the data set, then in a
# private network and mount namespace (unshare -n -m: loopback only, tmpfs on
# /run, its own rpcbind) runs every workload of tests/bench/nfsbench against
# ovlnfsd, against nfs-ganesha (FSAL VFS, NFSv3) when it is installed, and as
# local system calls; prints medians and the ovlnfsd/ganesha ratio, writes
# the table (markdown), the raw results and a gnuplot PNG to the output dir.
#
# Run as root from the top of a built checkout:
#   sh tests/bench/run.sh [--reps N] [--time S] [--big-dir] [--quick]
#                         [--workloads REGEX] [--no-ganesha] [--no-local] [--server PATH]
#                         [--nfsbench PATH] [--scratch DIR] [--out DIR]
#                         [--instances N]
# --instances N: per-client instances (ovlnfsd only) with N names each
# read-only and written (1000; 0: skip). Environment: BENCH_BIG_MB (size of
# the big files, 1024), BENCH_SCRATCH,
# BENCH_OUT, ONFS_SERVER, NFSBENCH, ONFS_BENCH_TRACE (a boot trace to replay
# instead of tests/bench/boot-trace.txt, its files copied from this
# machine's /). The recorded boot trace's data set is the Debian root
# record-trace.sh caches; without it the boot storm replays the synthetic
# trace (boot-trace-synthetic.txt, from mktrace.sh) and says so.
#
# Every process it starts is recorded by PID and stopped on exit.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
server=${ONFS_SERVER:-$top/build/server/ovlnfsd}
nfsbench=${NFSBENCH:-$top/build/tests/bench/nfsbench}
scratch=${BENCH_SCRATCH:-/var/tmp/ovlnfsd-bench}
# the boot storm's trace: recorded from a real boot (record-trace.sh), its
# data set the Debian root it was recorded from; without that root's cached
# tarball, the synthetic trace (mktrace.sh) over this machine's files
trace=${ONFS_BENCH_TRACE:-$top/tests/bench/boot-trace.txt}
synth_trace=$top/tests/bench/boot-trace-synthetic.txt
out=${BENCH_OUT:-$top/bench-results/$(date -u +%Y%m%d-%H%M%S)}
reps=3
wtime=10          # time bound per workload (s)
big_mb=${BENCH_BIG_MB:-1024}
big_dir=0
quick=0
use_ganesha=1
use_local=1
summarize_only=0
only=.            # extended regex: the workloads to run (names as in the table)
ninst=1000        # per-client instances: new names per pass

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
	case $1 in
	--reps) reps=$2; shift ;;
	--time) wtime=$2; shift ;;
	--big-dir) big_dir=1 ;;
	--quick) quick=1 ;;
	--no-ganesha) use_ganesha=0 ;;
	--no-local) use_local=0 ;;
	--workloads) only=$2; shift ;;
	--server) server=$2; shift ;;
	--nfsbench) nfsbench=$2; shift ;;
	--scratch) scratch=$2; shift ;;
	--out) out=$2; shift ;;
	--instances) ninst=$2; shift ;;
	--inner) ;;
	--summarize) out=$2; summarize_only=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

if [ "$quick" = 1 ]; then
	big_mb=64; wtime=2; reps=1
fi
nstorm=64
n10k=10000; nsmall=1000; nmerged_half=25000; nwhiteouts=5000; ncreate=10000
if [ "$quick" = 1 ]; then
	nstorm=8
	n10k=2000; nsmall=200; nmerged_half=2500; nwhiteouts=500; ncreate=1000
fi

[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (namespaces, overlay mount, ganesha)" >&2; exit 1; }
[ -x "$server" ] || { echo "run.sh: no ovlnfsd at $server (build first, or --server PATH)" >&2; exit 1; }
[ -x "$nfsbench" ] || { echo "run.sh: no nfsbench at $nfsbench (build first, or --nfsbench PATH)" >&2; exit 1; }

# ---------- summary: medians, ratio, table, plot (from $out/results.txt) ----------
summarize() {
	local raw=$out/results.txt summary=$out/summary.tsv s v
	reps=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^rep=/) { sub(/rep=/, "", $i); if ($i + 0 > m) m = $i + 0 } } END { print m + 0 }' "$raw")
	awk '
	function kv(s,   n, i, a, b) {
		n = split(s, a, " ")
		delete f
		for (i = 1; i <= n; i++) { split(a[i], b, "="); f[b[1]] = b[2] }
	}
	{
		kv($0)
		k = f["workload"]; s = f["server"] == "local" ? "local" : f["server"]
		if (!(k in order)) { order[k] = ++nw; names[nw] = k }
		unit[k] = f["unit"]
		vals[k, s] = vals[k, s] " " f["value"]
	}
	function median(str,   n, a, i, j, t) {
		n = split(str, a, " ")
		if (n == 0) return ""
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
			if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return a[int((n + 1) / 2)]
	}
	END {
		for (i = 1; i <= nw; i++) {
			k = names[i]
			g = median(vals[k, "ganesha"]); o = median(vals[k, "ovlnfsd"]); l = median(vals[k, "local"])
			# per-client uppers: ovlnfsd only (ganesha has none)
			if (k ~ /^instances-/ && g == "") g = "n/a"
			r = ""
			if (g != "" && g != "n/a" && o != "" && g + 0 > 0 && o + 0 > 0)
				r = (unit[k] ~ /^(us|s$|x-)/) ? sprintf("%.3f", g / o) : sprintf("%.3f", o / g)
			printf "%s\t%s\t%s\t%s\t%s\t%s\n", k, unit[k], g == "" ? "-" : g, o == "" ? "-" : o, r == "" ? "-" : r, l == "" ? "-" : l
		}
	}' "$raw" | sed 's/^server=[^ ]* rep=[^ ]* //' > "$summary"

	# the table (markdown)
	{
		echo "| workload | unit | ganesha | ovlnfsd | ovlnfsd / ganesha | local syscalls |"
		echo "|---|---|---:|---:|---:|---:|"
		awk -F'\t' '
		function fmt(v,   i, s, r) {
			if (v == "-" || v == "n/a") return v
			if (v + 0 < 10) return sprintf("%.2f", v)
			if (v + 0 < 100) return sprintf("%.1f", v)
			s = sprintf("%d", v + 0.5); r = ""
			while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) }
			return s r
		}
		{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, fmt($3), fmt($4), $5 == "-" ? "-" : sprintf("%.2f", $5), fmt($6) }' "$summary"
		echo
		echo "Medians of $reps run(s). Where lower is better (us-p99 latency, s, x-slower) the ratio is ganesha / ovlnfsd, so above 1 is always ovlnfsd ahead."
		echo
		echo "Peak RSS (VmHWM, KiB, highest over the repetitions):"
		for s in ovlnfsd ganesha; do
			v=$(awk -v s=$s '$1 == s && /VmHWM_kib=/ { sub(/.*VmHWM_kib=/, ""); if ($1 + 0 > m) m = $1 + 0 } END { if (m) print m }' "$out/rss.txt" 2>/dev/null)
			[ -n "$v" ] && echo "- $s: $v KiB"
		done
	} > "$out/table.md"
	cat "$out/table.md"

	# the plot: ovlnfsd against ganesha per workload, ganesha = 1
	if command -v gnuplot >/dev/null && awk -F'\t' '$5 != "-"' "$summary" | grep -q .; then
		awk -F'\t' '$5 != "-" { print $1 "\t1\t" $5 }' "$summary" > "$out/plot.dat"
		yr=$(awk -F'\t' 'BEGIN { lo = 0.5; hi = 2 } { if ($3 < lo) lo = $3; if ($3 > hi) hi = $3 }
			END { printf "%g:%g", lo / 1.5, hi * 1.5 }' "$out/plot.dat")
		gnuplot <<-EOF
		set terminal pngcairo size 1200,600 noenhanced font ",10"
		set output "$out/bench.png"
		set title "ovlnfsd vs nfs-ganesha 4.3 (FSAL VFS), medians of $reps; ganesha = 1, higher is better"
		set style data histograms
		set style histogram clustered gap 1
		set style fill solid 0.8 border -1
		set logscale y 2
		set yrange [$yr]
		set bmargin 9
		set rmargin 10
		set ylabel "relative to ganesha (log scale)"
		set xtics rotate by -35 scale 0
		set grid ytics
		set key top left
		plot "$out/plot.dat" using 2:xtic(1) title "nfs-ganesha" lc rgb "#999999", \
		     "" using 3 title "ovlnfsd" lc rgb "#1f77b4"
		EOF
		[ -s "$out/bench.png" ] && echo "plot: $out/bench.png"
	else
		echo "plot: skipped (no gnuplot, or no ganesha figures to compare)"
	fi
	echo "results: $out (table.md, summary.tsv, results.txt, rss.txt, rss-steps.txt)"
}

if [ "$summarize_only" = 1 ]; then summarize; exit 0; fi

# ---------- outside the namespaces: the data set ----------
if [ -z "${ONFS_BENCH_INNER:-}" ]; then
	data=$scratch/data
	stamp="v1 big=$big_mb n10k=$n10k nsmall=$nsmall merged=$nmerged_half wh=$nwhiteouts"
	mkdir -p "$scratch" || exit 1
	if [ "$(cat "$data/.stamp" 2>/dev/null)" != "$stamp" ]; then
		echo "== making the data set in $data"
		rm -rf "$data"
		mkdir -p "$data/lower/w" "$data/upper-template/merged" || exit 1
		L="$nfsbench --local $data/lower"
		echo attr > "$data/lower/stat.me"
		$L mkfiles dir10k $n10k f || exit 1
		$L --fill 4k mkfiles small $nsmall s || exit 1
		# merged: half in the lower, half in the upper, whiteouts in the
		# upper hiding further lower names
		$L mkfiles merged $nmerged_half m || exit 1
		$L mkfiles merged $nwhiteouts x || exit 1
		U="$nfsbench --local $data/upper-template"
		$U mkfiles merged $nmerged_half u || exit 1
		$U mkwhiteouts merged $nwhiteouts x || exit 1
		dd if=/dev/urandom of="$data/lower/big" bs=1M count="$big_mb" status=none || exit 1
		dd if=/dev/urandom of="$data/lower/bigb" bs=1M count="$big_mb" status=none || exit 1
		echo "$stamp" > "$data/.stamp"
	fi
	if [ "$big_dir" = 1 ] && [ ! -e "$data/.dir1m" ]; then
		echo "== making the 1,000,000-entry directory (a few minutes)"
		"$nfsbench" --local "$data/lower" mkfiles dir1m 1000000 f || exit 1
		: > "$data/.dir1m"
	fi
	# the boot storm's tree (lower/bootroot): the recorded trace's Debian
	# root, whole (its listings are replayed too), from the tarball
	# record-trace.sh caches; without it, the synthetic trace and its files
	# copied from this machine's root (NOENT probes stay missing)
	bootsrc=""
	roottar=$(bash "$top/tests/bench/record-trace.sh" --tarball 2>/dev/null)
	if [ -n "${ONFS_BENCH_TRACE:-}" ]; then
		:
	elif [ ! -s "$trace" ]; then
		echo "== boot storm: no recorded trace $trace; the synthetic one instead"
		trace=$synth_trace
	elif [ ! -s "$roottar" ]; then
		echo "== boot storm: the recorded trace's root $roottar is not cached"
		echo "   (bash tests/bench/record-trace.sh builds it); the synthetic trace instead"
		trace=$synth_trace
	else
		bootsrc=$roottar
	fi
	export ONFS_BENCH_TRACE=$trace
	if [ -n "$bootsrc" ]; then
		bstamp="tar $bootsrc"
	else
		bstamp="host / $(cksum < "$trace")"
	fi
	if [ -s "$trace" ] && [ "$(cat "$data/.bootroot" 2>/dev/null)" != "$bstamp" ]; then
		rm -rf "$data/lower/bootroot" "$data/.bootroot"
		mkdir -p "$data/lower/bootroot" || exit 1
		if [ -n "$bootsrc" ]; then
			echo "== unpacking the boot trace's root $bootsrc to $data/lower/bootroot"
			tar --numeric-owner -C "$data/lower/bootroot" -xpf "$bootsrc" || exit 1
		else
			echo "== copying the boot trace's files from / to $data/lower/bootroot"
			awk '$1 !~ /^#/ { print substr($2, 2) }' "$trace" | sort -u > "$scratch/bootroot.list"
			tar -C / --no-recursion -cf - -T "$scratch/bootroot.list" 2> /dev/null |
				tar -C "$data/lower/bootroot" -xf - || exit 1
		fi
		echo "$bstamp" > "$data/.bootroot"
	fi
	echo "== boot storm trace: $trace"
	mkdir -p "$out" || exit 1
	out=$(cd "$out" && pwd)
	export ONFS_BENCH_INNER=1
	exec unshare -n -m -- bash "$0" --inner --server "$server" --nfsbench "$nfsbench" \
		--scratch "$scratch" --out "$out" --reps "$reps" --time "$wtime" \
		$([ "$big_dir" = 1 ] && echo --big-dir) $([ "$quick" = 1 ] && echo --quick) \
		$([ "$use_ganesha" = 0 ] && echo --no-ganesha) $([ "$use_local" = 0 ] && echo --no-local) \
		--workloads "$only" --instances "$ninst"
fi

# ---------- inside: private network + mount namespace ----------
data=$scratch/data
run=$scratch/run
raw=$out/results.txt
: > "$raw"
pids=""
spid=""           # the server being measured (for its RSS)

stop_pid() {   # stop_pid PID: TERM, wait up to 15 s, then KILL
	local p=$1 i
	kill -0 "$p" 2>/dev/null || return 0
	kill -TERM "$p" 2>/dev/null
	for i in $(seq 150); do
		kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null; return 0; }
		sleep 0.1
	done
	echo "run.sh: PID $p did not stop on SIGTERM; SIGKILL" >&2
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
}

cleanup() {
	local p
	for p in $pids; do stop_pid "$p"; done
	pids=""
	mountpoint -q "$run/gmnt" 2>/dev/null && umount "$run/gmnt"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mount --make-rprivate / 2>/dev/null
ip link set lo up || { echo "run.sh: ip link set lo up failed" >&2; exit 1; }
mount -t tmpfs tmpfs /run || exit 1
mkdir -p /run/rpcbind /run/ganesha

have_ganesha=0
if [ "$use_ganesha" = 1 ]; then
	if command -v ganesha.nfsd >/dev/null && command -v rpcbind >/dev/null; then
		have_ganesha=1
		# ganesha's recovery directory: a tmpfs of this namespace
		mkdir -p /var/lib/nfs/ganesha && mount -t tmpfs tmpfs /var/lib/nfs/ganesha
		rpcbind -w -f &
		pids="$pids $!"
		sleep 0.3
	else
		echo "== ganesha: ganesha.nfsd or rpcbind not installed; ovlnfsd and local only"
	fi
fi

# record NAME UNIT: read RESULT lines of nfsbench from stdin into the raw file
record() {   # record SERVER REP
	local line
	while read -r line; do
		case $line in
		RESULT*) echo "server=$1 rep=$2 ${line#RESULT }" >> "$raw"; echo "   $1 ${line#RESULT }" ;;
		*) echo "   $line" ;;
		esac
	done
}

fresh_upper() {   # fresh_upper DIR: the upper template (merged half + whiteouts)
	rm -rf "$1" && mkdir -p "$1" && cp -a "$data/upper-template/." "$1/"
}

rss_of() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# the workloads: NAME DEPTH WORKLOAD PATH [extra nfsbench options]
workloads() {
	echo "getattr-d1 1 getattr stat.me"
	echo "getattr-d32 32 getattr stat.me"
	echo "lookup-getattr-d32 32 lookup dir10k"
	echo "readdirplus-10k 1 readdirplus dir10k"
	echo "readdir-10k 1 readdir dir10k"
	echo "readdirplus-merged50k 1 readdirplus merged"
	echo "readdir-merged50k 1 readdir merged"
	if [ "$big_dir" = 1 ]; then
		echo "readdirplus-1m 1 readdirplus dir1m --count 1 --time 300"
		echo "readdir-1m 1 readdir dir1m --count 1 --time 300"
	fi
	echo "read-512k 8 read big"
	echo "write-unstable-commit 8 write w --bytes ${big_mb}M"
	echo "create-4k-sync-d32 32 create w --count $ncreate"
	echo "remove-d32 32 remove w --count $ncreate"
	echo "copyup-small 32 copyup small"
	echo "copyup-big 1 copyup-big big --time 300"
}

# run_all SERVER REP ARGS...: every workload against one server
run_all() {
	local srv=$1 rep=$2 name depth wl path extra
	shift 2
	workloads | while read -r name depth wl path extra; do
		[[ $name =~ $only ]] || continue
		# nothing left dirty by the last workload competes for the disk
		sync
		# shellcheck disable=SC2086
		timeout 900 "$nfsbench" "$@" --name "$name" --depth "$depth" --time "$wtime" \
			$extra "$wl" "$path" 2>&1 | record "$srv" "$rep"
		# the server's peak RSS so far: which workload raised it
		echo "$srv rep=$rep after=$name VmHWM_kib=$(rss_of "$spid") VmRSS_kib=$(awk '/^VmRSS/ {print $2}' "/proc/$spid/status" 2>/dev/null)" >> "$out/rss-steps.txt"
	done
	# GETATTR latency of one client while one lists the biggest directory
	# and one copies up the second big file
	[[ getattr-p99-under-load =~ $only ]] || { storm "$srv" "$rep" "$@"; return; }
	local bigdir=merged
	[ "$big_dir" = 1 ] && bigdir=dir1m
	"$nfsbench" "$@" --name lister --time "$wtime" --count 1000000 readdirplus "$bigdir" \
		> /dev/null 2>&1 &
	local lp=$!
	"$nfsbench" "$@" --name copier copyup-big bigb > /dev/null 2>&1 &
	local cp=$!
	sleep 0.2
	"$nfsbench" "$@" --name getattr-p99-under-load --time "$wtime" latency stat.me 2>&1 |
		record "$srv" "$rep"
	wait $lp $cp
	echo "$srv rep=$rep after=getattr-p99-under-load VmHWM_kib=$(rss_of "$spid")" >> "$out/rss-steps.txt"
	storm "$srv" "$rep" "$@"
	echo "$srv rep=$rep after=boot-storm VmHWM_kib=$(rss_of "$spid")" >> "$out/rss-steps.txt"
}

# storm SERVER REP ARGS...: the boot trace replayed by one client alone, then
# by $nstorm clients at once from distinct loopback source addresses; the
# storm's figure is the wall time until the last client is done
storm() {
	local srv=$1 rep=$2 i t0 t1 alone spids="" bad=0
	shift 2
	[[ boot-storm =~ $only ]] || return
	if [ ! -e "$data/.bootroot" ]; then
		echo "   boot storm skipped: no $trace"
		return
	fi
	"$nfsbench" "$@" --bind 127.0.0.10 --name boot-1-client --time 300 \
		replay "$trace" bootroot 2>&1 | record "$srv" "$rep"
	alone=$(awk -v s="server=$srv" -v r="rep=$rep" '$1 == s && $2 == r && / workload=boot-1-client / {
		sub(/.* value=/, ""); print $1 }' "$raw" | tail -1)
	t0=$(date +%s.%N)
	for i in $(seq "$nstorm"); do
		"$nfsbench" "$@" --bind "127.0.1.$i" --name boot-storm-client --time 300 \
			replay "$trace" bootroot > "$run/storm.$i" 2>&1 &
		spids="$spids $!"
	done
	# shellcheck disable=SC2086
	wait $spids
	t1=$(date +%s.%N)
	for i in $(seq "$nstorm"); do
		grep -q '^RESULT' "$run/storm.$i" || { bad=$((bad + 1)); sed 's/^/   client '"$i"': /' "$run/storm.$i" | head -3; }
	done
	if [ "$bad" -gt 0 ]; then
		echo "   boot storm: $bad of $nstorm clients failed; no storm figure"
		return
	fi
	awk -v a="$t0" -v b="$t1" -v al="${alone:-0}" -v n="$nstorm" 'BEGIN {
		printf "RESULT workload=boot-storm-%d-last mode=nfs depth=1 value=%.3f unit=s\n", n, b - a
		if (al > 0) printf "RESULT workload=boot-storm-%d-vs-alone mode=nfs depth=1 value=%.2f unit=x-slower\n", n, (b - a) / al
	}' | record "$srv" "$rep"
}

# instances REP: ovlnfsd with one export templated by {name} (path =
# /clients/{name}, upper and work per name) over the data set's lower; one
# client mounts $ninst new names read-only, then $ninst more that each write
# one small file; the server's VmRSS growth per instance and the MNT latency
# of a new name. ganesha has no per-client uppers: its column says n/a.
instances() {
	local rep=$1 ipid iport i
	[ "$ninst" -gt 0 ] || return
	[[ instances-rss-readonly =~ $only ]] || return
	rm -rf "$run/i" && mkdir -p "$run/i/state" "$run/i/clients" || return
	cat > "$run/i/ovlnfsd.conf" <<-EOF
	[export farm]
	path = /clients/{name}
	lowerdir = $data/lower
	upperdir = $run/i/clients/{name}/upper
	workdir = $run/i/clients/{name}/work
	clients = 127.0.0.0/8
	squash = none
	max_instances = $((2 * ninst))
	EOF
	"$server" -c "$run/i/ovlnfsd.conf" --listen 127.0.0.1:0 --port-file "$run/i/port" \
		--state-dir "$run/i/state" 2> "$out/ovlnfsd-instances-$rep.log" &
	ipid=$!
	pids="$pids $ipid"
	for i in $(seq 100); do [ -s "$run/i/port" ] && break; sleep 0.1; done
	if [ ! -s "$run/i/port" ]; then
		echo "run.sh: ovlnfsd (templated export) did not start; see $out/ovlnfsd-instances-$rep.log" >&2
		stop_pid "$ipid"
		return
	fi
	iport=$(cat "$run/i/port")
	echo "== ovlnfsd: $ninst read-only + $ninst written instances (pid $ipid port $iport)"
	timeout 900 "$nfsbench" --port "$iport" --server-pid "$ipid" --count "$ninst" \
		--name instances instances /clients 2>&1 | record ovlnfsd "$rep"
	echo "ovlnfsd-instances rep=$rep VmRSS_kib=$(awk '/^VmRSS/ {print $2}' "/proc/$ipid/status" 2>/dev/null) instances=$((2 * ninst)) upper_dirs=$(find "$run/i/clients" -mindepth 1 -maxdepth 1 | wc -l)" >> "$out/rss-steps.txt"
	stop_pid "$ipid"
	rm -rf "$run/i"
}

mkdir -p "$run"
for rep in $(seq "$reps"); do
	echo "== repetition $rep of $reps"

	# ovlnfsd: the data set as its lower, a fresh upper
	rm -rf "$run/o" && mkdir -p "$run/o/state" "$run/o/work" && fresh_upper "$run/o/upper"
	"$server" -o "lowerdir=$data/lower,upperdir=$run/o/upper,workdir=$run/o/work" \
		--listen 127.0.0.1:0 --port-file "$run/o/port" --state-dir "$run/o/state" \
		2> "$out/ovlnfsd-$rep.log" &
	opid=$!
	pids="$pids $opid"
	for i in $(seq 100); do [ -s "$run/o/port" ] && break; sleep 0.1; done
	if [ ! -s "$run/o/port" ]; then
		echo "run.sh: ovlnfsd did not start; see $out/ovlnfsd-$rep.log" >&2
		exit 1
	fi
	oport=$(cat "$run/o/port")
	echo "ovlnfsd pid $opid port $oport rss_start_kib $(rss_of $opid)" >> "$out/rss.txt"
	spid=$opid
	run_all ovlnfsd "$rep" --port "$oport"
	echo "ovlnfsd rep=$rep VmHWM_kib=$(rss_of $opid)" | tee -a "$out/rss.txt"
	stop_pid "$opid"
	instances "$rep"

	# ganesha: the same layers as a kernel overlay (index and nfs_export on:
	# FSAL VFS needs file handles), exported by FSAL VFS
	mkdir -p "$run/gmnt"
	mountpoint -q "$run/gmnt" && umount "$run/gmnt"
	rm -rf "$run/g" && mkdir -p "$run/g/work" && fresh_upper "$run/g/upper"
	if ! mount -t overlay overlay \
		-o "lowerdir=$data/lower,upperdir=$run/g/upper,workdir=$run/g/work,index=on,nfs_export=on" \
		"$run/gmnt"; then
		echo "run.sh: kernel overlay mount failed: no ganesha and local rows" >&2
		have_ganesha=0; use_local=0
	fi
	if [ "$have_ganesha" = 1 ]; then
		cat > "$run/ganesha.conf" <<-EOF
		NFS_CORE_PARAM {
			Protocols = 3;
			NFS_Port = 2049;
			MNT_Port = 20048;
			Enable_NLM = false;
			Enable_RQUOTA = false;
		}
		NFSV4 { Graceless = true; }
		EXPORT {
			Export_Id = 1;
			Path = $run/gmnt;
			Pseudo = $run/gmnt;
			Access_Type = RW;
			Squash = No_Root_Squash;
			Protocols = 3;
			Transports = TCP;
			SecType = sys;
			FSAL { Name = VFS; }
		}
		EOF
		ganesha.nfsd -F -f "$run/ganesha.conf" -L "$out/ganesha-$rep.log" \
			-p /run/ganesha/ganesha.pid -N NIV_EVENT &
		gpid=$!
		pids="$pids $gpid"
		ok=0
		for i in $(seq 100); do
			if ! kill -0 "$gpid" 2>/dev/null; then break; fi
			if "$nfsbench" --port 2049 --mount-port 20048 --export "$run/gmnt" \
				--count 1 getattr stat.me > /dev/null 2>&1; then ok=1; break; fi
			sleep 0.2
		done
		if [ "$ok" = 1 ]; then
			echo "ganesha pid $gpid rss_start_kib $(rss_of $gpid)" >> "$out/rss.txt"
			spid=$gpid
			run_all ganesha "$rep" --port 2049 --mount-port 20048 --export "$run/gmnt"
			echo "ganesha rep=$rep VmHWM_kib=$(rss_of $gpid)" | tee -a "$out/rss.txt"
		else
			echo "run.sh: ganesha did not answer within 20 s; see $out/ganesha-$rep.log" >&2
			have_ganesha=0
		fi
		stop_pid "$gpid"
	fi

	# local: the same operations as system calls on the kernel overlay mount
	# (reads, listings), in its w/ (writes), copy-ups as cp (copy_file_range)
	if [ "$use_local" = 1 ]; then
		mkdir -p "$run/cpdest" && rm -rf "$run/cpdest"/* 
		L="$nfsbench --local $run/gmnt --time $wtime"
		{
			$L --name getattr-d1 getattr stat.me
			$L --name getattr-d32 getattr stat.me
			$L --name lookup-getattr-d32 lookup dir10k
			$L --name readdirplus-10k readdirplus dir10k
			$L --name readdir-10k readdir dir10k
			$L --name readdirplus-merged50k readdirplus merged
			$L --name readdir-merged50k readdir merged
			if [ "$big_dir" = 1 ]; then
				$L --name readdirplus-1m --count 1 readdirplus dir1m
				$L --name readdir-1m --count 1 readdir dir1m
			fi
			$L --name read-512k read big
			# what one loopback TCP connection carries: READ's ceiling here
			$L --name read-512k-tcp-limit read-tcp big
			$L --name write-unstable-commit --bytes "${big_mb}M" write w
			$L --name create-4k-sync-d32 --count "$ncreate" create w
			$L --name remove-d32 --count "$ncreate" remove w
			"$nfsbench" --local "$data/lower" --name copyup-small copyup small "$run/cpdest"
			"$nfsbench" --local "$data/lower" --name copyup-big copyup-big big "$run/cpdest"
		} 2>&1 | record local "$rep"
		rm -rf "$run/cpdest"
	fi
	mountpoint -q "$run/gmnt" && umount "$run/gmnt"
done

summarize
