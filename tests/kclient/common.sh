# tests/kclient/common.sh - what the kernel-client scripts share (run.sh,
# farm.sh, nlm.sh, nlm-debian.sh, and tests/bench/record-trace.sh and
# tests/deploy/test-deploy.sh): sourced with `. "$HERE/common.sh"`, it
# defines functions and sets nothing else. The caller defines say() (its
# own prefix) before calling them.
#
#   kc_mirror SUITE
#       The first SUITE `main` source of this machine's apt configuration:
#       from apt's indexes, else from the sources themselves (one-line and
#       deb822). Prints nothing when there is none.
#   kc_debroot TARBALL SUITE INCLUDE HOSTNAME TIMEOUT FAIL
#       Unless TARBALL exists: debootstrap --variant=minbase
#       --include=INCLUDE SUITE from $KC_DEBIAN_MIRROR or kc_mirror (debootstrap
#       installed with apt-get when missing), /etc/hosts and /etc/hostname
#       written, /etc/resolv.conf and the downloaded .debs removed (the
#       guest has no DNS: name lookups must fail at once), packed as TARBALL.
#       One builder at a time (a lock file beside TARBALL, waited for up to
#       TIMEOUT s; debootstrap gets TIMEOUT s too); another run then finds
#       the tarball. FAIL (a function: skip or die) is called with the
#       reason when something is missing or fails.
#   kc_scratch NAME
#       ROOT: a new directory $KC_TMPDIR/NAME.XXXXXX (default /var/tmp);
#       SRV_PID empty. On exit the server whose PID is in SRV_PID is
#       stopped and ROOT removed (kept with KC_KEEP=1); SIGINT/SIGTERM exit 1.
#   kc_wait_port FILE PID [LOG [FAIL]]
#       Waits up to 10 s (100 times 0.1 s) for the server PID, started with
#       --port-file FILE, to write its port there, and sets PORT to it.
#       Returns 1 as soon as PID has exited, or after the 10 s: then LOG
#       (the server's output) is printed when given, and FAIL (a command,
#       split into words: "die", "bad NAME:", ...) is called when given,
#       with the reason, which names FILE. The server is left as it is.

kc_mirror() {
	local s=$1 m
	m=$(apt-get indextargets --format '$(SITE) $(RELEASE) $(COMPONENT) $(TARGET_OF)' 2>/dev/null |
		awk -v s="$s" '$2 == s && $3 == "main" && $4 == "deb" { print $1; exit }')
	[ -n "$m" ] && { echo "$m"; return; }
	# No index downloaded yet: read the sources themselves (one-line and deb822).
	m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk -v s="$s" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++;
			if ($2 ~ /^\[/) i++; if ($(i + 1) == s) for (j = i + 2; j <= NF; j++)
			if ($j == "main") { print $i; exit } }')
	[ -n "$m" ] && { echo "$m"; return; }
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk -v s="$s" 'BEGIN { RS = ""; FS = "\n" }
			{ u = ""; ok = 0; c = 0; d = 1
			  for (i = 1; i <= NF; i++) {
				if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); u = a[2] }
				if ($i ~ /^Suites:/) { n = split($i, a, /[ \t]+/); for (k = 2; k <= n; k++) if (a[k] == s) ok = 1 }
				if ($i ~ /^Components:/) { n = split($i, a, /[ \t]+/); for (k = 2; k <= n; k++) if (a[k] == "main") c = 1 }
				if ($i ~ /^Types:/ && $i !~ /[ \t]deb([ \t]|$)/) d = 0
				if ($i ~ /^Enabled:[ \t]*no/) d = 0 }
			  if (u != "" && ok && c && d) { print u; exit } }' "$f"
	done | head -n 1
}

kc_debroot() {
	local tarball=$1 suite=$2 include=$3 host=$4 limit=$5 fail=$6 mirror b
	[ -s "$tarball" ] && return 0
	if ! command -v debootstrap >/dev/null; then
		say "installing debootstrap (apt-get)"
		DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q --no-install-recommends \
			debootstrap >/dev/null 2>&1 ||
			$fail "debootstrap missing and apt-get install debootstrap failed"
	fi
	mirror=${KC_DEBIAN_MIRROR:-$(kc_mirror "$suite")}
	[ -n "$mirror" ] || $fail "no $suite main source in the apt configuration (set KC_DEBIAN_MIRROR)"
	mkdir -p "$(dirname "$tarball")" || $fail "cannot create the cache directory of $tarball"
	exec 9>"$tarball.lock" || $fail "cannot open $tarball.lock"
	flock -w "$limit" 9 || $fail "another run kept $tarball.lock for $limit s"
	if [ ! -s "$tarball" ]; then
		b=$(mktemp -d "$tarball.build.XXXXXX") || $fail "cannot make a build directory beside $tarball"
		trap 'rm -rf "$b"' EXIT
		say "building the root: debootstrap --variant=minbase --include=$include $suite from $mirror"
		if ! timeout -k 10 "$limit" debootstrap --variant=minbase --include="$include" "$suite" \
			"$b/root" "$mirror" >"$b/debootstrap.log" 2>&1; then
			tail -n 15 "$b/debootstrap.log" | sed 's/^/  debootstrap: /'
			$fail "debootstrap of $suite from $mirror failed (no network to the mirror?)"
		fi
		rm -f "$b/root/etc/resolv.conf" "$b/root"/var/cache/apt/archives/*.deb
		printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$b/root/etc/hosts"
		echo "$host" >"$b/root/etc/hostname"
		tar --numeric-owner -C "$b/root" -cf "$b/root.tar" . || $fail "cannot write $b/root.tar"
		mv "$b/root.tar" "$tarball" || $fail "cannot write $tarball"
		rm -rf "$b"
		trap - EXIT
		say "cached as $tarball ($(du -h "$tarball" | cut -f1))"
	fi
	exec 9>&-
}

kc_wait_port() {
	local file=$1 pid=$2 log=${3:-} fail=${4:-}
	for _ in $(seq 1 100); do
		[ -s "$file" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ -s "$file" ]; then
		PORT=$(cat "$file")
		return 0
	fi
	[ -n "$log" ] && cat "$log"
	if kill -0 "$pid" 2>/dev/null; then
		[ -n "$fail" ] && $fail "the server (pid $pid) wrote no port to $file in 10 s"
	else
		[ -n "$fail" ] && $fail "the server (pid $pid) exited before writing its port to $file"
	fi
	return 1
}

kc_cleanup() {
	if [ -n "$SRV_PID" ]; then kill "$SRV_PID" 2>/dev/null; wait "$SRV_PID" 2>/dev/null; fi
	if [ "${KC_KEEP:-0}" = 1 ]; then say "kept $ROOT"; else rm -rf "$ROOT"; fi
}

kc_scratch() {
	ROOT=$(mktemp -d "${KC_TMPDIR:-/var/tmp}/$1.XXXXXX") || exit 1
	SRV_PID=""
	trap kc_cleanup EXIT
	trap 'exit 1' INT TERM
}
