#!/bin/bash
# tests/deploy/test-deploy.sh SRCROOT OVLNFSD - checks deploy/ (suite 'deploy').
#
# Always: the files exist and the shell scripts parse; the compose file is
# validated (docker-compose config, else `docker compose config`, plus a
# structural check with python3's yaml, else with grep: the log says which
# ran); the Dockerfiles' bases and runtime packages; `systemd-analyze verify`
# of the unit (when installed) and its hardening rules; the runtime image's
# layout rebuilt with a script (the binary + the libraries ldd names, in a
# temporary root) runs --version and serves demo-base/ from a chroot.
# When a docker engine answers (or ONFS_DOCKER=1 and local-docker exists:
# then `local-docker setup` first): builds and runs the compose demo end to
# end, checks the client's exit code, the published port, a restart on the
# same volume and a clean SIGTERM exit, then `down -v`. Otherwise it prints
# "did not run docker: <reason>".
#
# Environment: ONFS_DOCKER=1 force the docker part (setup + pulls allowed,
#   with ONFS_LOCAL_DOCKER=PATH the local engine helper .ci/run uses),
#   ONFS_DOCKER=0 skip it; REQUIRE_ALL=1 (CI): docker not running in a
#   plain build is a failure; ONFS_WRITES=required (default)|auto passed to the demo client;
#   ONFS_SANITIZE (set by meson) skips docker in sanitizer builds unless
#   ONFS_DOCKER=1 (docker builds its own binary from the sources).
# Every server it starts it stops by PID; only loopback addresses.
set -u
SRC=$(readlink -f "${1:?usage: test-deploy.sh SRCROOT OVLNFSD}")
BIN=$(readlink -f "${2:?usage: test-deploy.sh SRCROOT OVLNFSD}")
D=$SRC/deploy
# a local docker engine helper (with 'setup' and 'stop'), when the caller has
# one: .ci/run sets ONFS_LOCAL_DOCKER
LOCAL_DOCKER=${ONFS_LOCAL_DOCKER:-}
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
say() { echo "-- $*"; }
. "$SRC/tests/kclient/common.sh" # kc_wait_port

TMP=$(mktemp -d /tmp/onfs-deploy.XXXXXX)
SRV_PID=
COMPOSE=
PROJECT=
PRUNE=
cleanup() {
	if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then
		kill "$SRV_PID"
		wait "$SRV_PID" 2>/dev/null
	fi
	if [ -n "$PROJECT" ]; then
		timeout 40 $COMPOSE -p "$PROJECT" -f "$D/docker-compose.yml" down -v -t 5 --remove-orphans \
			>"$TMP/down.log" 2>&1 || { echo "note: docker-compose down failed:"; tail -5 "$TMP/down.log"; }
	fi
	if [ -n "$PRUNE" ]; then
		docker image prune -f --filter label=org.ovlnfsd.component=deploy-demo 2>/dev/null |
			grep -i 'reclaimed' | sed 's/^/note: superseded demo images removed: /'
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# ---------------------------------------------------------------- files
say "files"
for f in Dockerfile client.Dockerfile client.sh entrypoint.sh docker-compose.yml \
	ovlnfsd.service ovlnfsd.conf demo.conf demo-base/README.txt demo-base/etc/motd demo-base/incoming; do
	[ -e "$D/$f" ] || bad "deploy/$f missing"
done
for s in client.sh entrypoint.sh; do
	sh -n "$D/$s" || bad "deploy/$s does not parse (sh -n)"
	[ -x "$D/$s" ] || bad "deploy/$s is not executable"
done
[ -f "$SRC/.dockerignore" ] && grep -q '^build\*/' "$SRC/.dockerignore" ||
	echo "note: no .dockerignore excluding build*/ at the top: the build context will be big"
ok "deploy/ files present"

# ---------------------------------------------------------------- compose file
say "compose file"
if command -v docker-compose >/dev/null 2>&1; then
	COMPOSE=docker-compose
elif docker compose version >/dev/null 2>&1; then
	COMPOSE="docker compose"
fi
if [ -n "$COMPOSE" ]; then
	# no engine needed for this
	if ONFS_PORT=2049 $COMPOSE -f "$D/docker-compose.yml" config -q >"$TMP/config.log" 2>&1; then
		ok "compose file valid: checked with '$COMPOSE config' ($($COMPOSE version --short 2>/dev/null || echo '?'))"
	else
		cat "$TMP/config.log"
		bad "'$COMPOSE config' rejects deploy/docker-compose.yml"
	fi
else
	echo "note: neither docker-compose nor 'docker compose' is installed: no compose validation by compose itself"
fi
if python3 -c 'import yaml' 2>/dev/null; then
	if python3 - "$D" <<'EOF'
import os, sys, yaml
d = sys.argv[1]
doc = yaml.safe_load(open(os.path.join(d, "docker-compose.yml")))
errs = []
def need(c, m):
    if not c:
        errs.append(m)
sv = doc.get("services") or {}
need(set(sv) >= {"ovlnfsd", "client"}, "services ovlnfsd and client")
o, c = sv.get("ovlnfsd") or {}, sv.get("client") or {}
ob = o.get("build") or {}
need(isinstance(ob, dict) and ob.get("dockerfile") == "deploy/Dockerfile"
     and os.path.realpath(os.path.join(d, ob.get("context", "."))) == os.path.realpath(os.path.join(d, "..")),
     "ovlnfsd builds deploy/Dockerfile with the repo root as context")
caps = set(o.get("cap_add") or [])
need("DAC_READ_SEARCH" in caps, "ovlnfsd cap_add DAC_READ_SEARCH (open_by_handle_at)")
need("SYS_ADMIN" in caps or "seccomp=unconfined" in (o.get("security_opt") or []),
     "ovlnfsd cap_add SYS_ADMIN or seccomp=unconfined (name_to_handle_at under docker's seccomp)")
need(not o.get("privileged"), "no privileged: true (not needed)")
vols = [v for v in (o.get("volumes") or []) if isinstance(v, str)]
base = [v for v in vols if v.split(":")[1:2] == ["/srv/base"]]
need(len(base) == 1 and base[0].endswith(":ro") and os.path.isdir(os.path.join(d, base[0].split(":")[0])),
     "base layer: an existing directory mounted read-only at /srv/base")
up = [v for v in vols if v.split(":")[1:2] == ["/srv/upper"]]
named = set((doc.get("volumes") or {}).keys())
need(len(up) == 1 and up[0].split(":")[0] in named,
     "upper+work: one named volume at /srv/upper (a real filesystem, one mount)")
need(any(str(p).split("/")[0].endswith(":2049") or str(p) == "2049" for p in (o.get("ports") or [])),
     "ovlnfsd publishes container port 2049")
cmd = o.get("command") or []
if isinstance(cmd, list) and "-c" in cmd:
    conf = cmd[cmd.index("-c") + 1] if cmd.index("-c") + 1 < len(cmd) else ""
    src = [v.split(":")[0] for v in vols if v.split(":")[1:2] == [conf]]
    need(len(src) == 1 and os.path.isfile(os.path.join(d, src[0])),
         "the config file given with -c (%s) is mounted from deploy/" % conf)
dep = c.get("depends_on") or []
need("ovlnfsd" in dep, "client depends_on ovlnfsd")
cb = c.get("build") or {}
need(isinstance(cb, dict) and os.path.isfile(os.path.join(d, cb.get("context", "."), cb.get("dockerfile", "Dockerfile"))),
     "client build file exists")
for e in errs:
    print("structure: missing: " + e)
sys.exit(1 if errs else 0)
EOF
	then
		ok "compose structure checked with python3 yaml.safe_load"
	else
		bad "compose structure (python3 yaml)"
	fi
else
	echo "note: python3 yaml not available: compose structure checked with grep only"
	for pat in '^services:' '^  ovlnfsd:' '^  client:' 'DAC_READ_SEARCH' ':/srv/base:ro' ':/srv/upper' ':2049/tcp' \
		'dockerfile: deploy/Dockerfile'; do
		grep -q -- "$pat" "$D/docker-compose.yml" || bad "compose file: no line matching '$pat'"
	done
	ok "compose structure checked with grep"
fi

# ---------------------------------------------------------------- Dockerfiles
say "Dockerfiles"
for f in Dockerfile client.Dockerfile; do
	froms=$(awk 'toupper($1) == "FROM" {print $2}' "$D/$f")
	[ -n "$froms" ] || bad "deploy/$f has no FROM"
	for b in $froms; do
		case "$b" in
		debian:bookworm | debian:bookworm-slim) ;;
		*) bad "deploy/$f: base $b is not debian:bookworm(-slim)" ;;
		esac
	done
	grep -q -- '--pull' "$D/$f" && bad "deploy/$f uses --pull"
done
[ "$(awk 'toupper($1) == "FROM"' "$D/Dockerfile" | wc -l)" -ge 2 ] || bad "deploy/Dockerfile is not multi-stage"
grep -q '"0.0.0.0:2049"' "$D/Dockerfile" && grep -q '"-f"' "$D/Dockerfile" ||
	bad "deploy/Dockerfile: the default command does not run ovlnfsd -f on 0.0.0.0:2049"
# Every library ovlnfsd links directly must come from a package the runtime
# stage installs (libc6 is in every Debian image).
runtime_pkgs=$(sed -n '/^FROM debian:bookworm-slim/,$p' "$D/Dockerfile")
for lib in $(readelf -d "$BIN" 2>/dev/null | awk '/NEEDED/ {gsub(/[][]/, "", $5); print $5}'); do
	case "$lib" in libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | ld-linux*) continue ;; esac
	case "$lib" in libasan* | libubsan*) continue ;; esac # sanitizer builds
	pkg=$(dpkg -S "*/$lib" 2>/dev/null | head -1 | cut -d: -f1)
	if [ -z "$pkg" ]; then
		echo "note: no package owns $lib (dpkg -S): not checked against the Dockerfile"
	elif ! printf '%s\n' "$runtime_pkgs" | grep -qw -- "$pkg"; then
		bad "ovlnfsd links $lib (package $pkg) but deploy/Dockerfile's runtime stage does not install $pkg"
	fi
done
ok "Dockerfiles checked"

# ---------------------------------------------------------------- systemd unit
say "systemd unit"
U=$D/ovlnfsd.service
# The installed path does not exist here: verify the unit with ExecStart
# pointing at the binary just built (verify checks the command exists).
sed "s|/usr/local/bin/ovlnfsd|$BIN|g" "$U" >"$TMP/ovlnfsd.service"
if command -v systemd-analyze >/dev/null 2>&1; then
	# verify exits 0 on unknown keys: any output about the unit is a failure
	systemd-analyze verify "$TMP/ovlnfsd.service" >"$TMP/verify.log" 2>&1
	rc=$?
	grep -v -e 'Failed to connect to bus' -e 'System has not been booted with systemd' "$TMP/verify.log" \
		>"$TMP/verify.rel" || true
	if [ "$rc" -eq 0 ] && [ ! -s "$TMP/verify.rel" ]; then
		ok "systemd-analyze verify: clean ($(systemd-analyze --version | head -1))"
	else
		cat "$TMP/verify.log"
		bad "systemd-analyze verify deploy/ovlnfsd.service (rc $rc)"
	fi
else
	echo "note: did not run systemd-analyze verify: systemd-analyze is not installed"
fi
for kv in 'Type=notify' 'ProtectSystem=strict' 'NoNewPrivileges=yes' \
	'ExecStartPre=/usr/local/bin/ovlnfsd --check-config -c /etc/ovlnfsd/ovlnfsd.conf' \
	'ExecReload=/bin/kill -HUP $MAINPID'; do
	grep -qx "$kv" "$U" || bad "unit: no '$kv'"
done
cbs=$(sed -n 's/^CapabilityBoundingSet=//p' "$U")
for cap in CAP_DAC_READ_SEARCH CAP_DAC_OVERRIDE CAP_FOWNER CAP_CHOWN CAP_MKNOD CAP_SYS_ADMIN CAP_NET_BIND_SERVICE; do
	printf ' %s ' "$cbs" | grep -q " $cap " || bad "unit: $cap missing from CapabilityBoundingSet"
done
for cap in $cbs; do
	grep -q "^#   $cap " "$U" || bad "unit: $cap has no justification comment"
done
# Each upperdir and its workdir must sit under ONE ReadWritePaths entry
# (each entry is its own bind mount: renames from work/ into upper/ would be
# EXDEV). The pairs: from ExecStart's -o, or from the config file its -c
# names (/etc/ovlnfsd/ovlnfsd.conf is deploy/ovlnfsd.conf).
exec_line=$(awk '/^ExecStart=/ {on = 1} on {print} on && !/\\$/ {exit}' "$U" | tr -d '\\\n')
pairs=
if printf '%s' "$exec_line" | grep -q ' -o '; then
	pairs="$(printf '%s' "$exec_line" | grep -o 'upperdir=[^, ]*' | cut -d= -f2)|$(printf '%s' "$exec_line" | grep -o 'workdir=[^, ]*' | cut -d= -f2)"
fi
cfile=$(printf '%s' "$exec_line" | sed -n 's/.* -c \([^ ]*\).*/\1/p')
if [ -n "$cfile" ]; then
	[ "$cfile" = /etc/ovlnfsd/ovlnfsd.conf ] || bad "unit: -c $cfile (the example installs /etc/ovlnfsd/ovlnfsd.conf)"
	pairs="$pairs $(awk -F' *= *' '/^\[/ {if (u != "") print u "|" w; u = w = ""} $1 == "upperdir" {u = $2} $1 == "workdir" {w = $2}
		END {if (u != "") print u "|" w}' "$D/ovlnfsd.conf")"
	sd=$(sed -n 's/^state_dir *= *//p' "$D/ovlnfsd.conf")
	[ -z "$sd" ] || [ "$sd" = "/var/lib/$(sed -n 's/^StateDirectory=//p' "$U")" ] ||
		bad "unit: StateDirectory= is not the config file's state_dir ($sd)"
fi
[ -n "$(echo $pairs)" ] || bad "unit: no upperdir/workdir found to check against ReadWritePaths"
for pair in $pairs; do
	upper=${pair%%|*}
	work=${pair#*|}
	found=no
	for rw in $(sed -n 's/^ReadWritePaths=//p' "$U"); do
		rw=${rw#-}
		case "$upper/" in "$rw"/*) case "$work/" in "$rw"/*) found=yes ;; esac ;; esac
	done
	[ "$found" = yes ] || bad "unit: upperdir $upper and workdir $work are not under one ReadWritePaths entry"
done
ok "unit checked"

# ---------------------------------------------------------------- runtime layout
say "runtime layout (the runtime image's content, built with a script)"
R=$TMP/root
install -D -m 0755 "$BIN" "$R/usr/bin/ovlnfsd"
nlib=0
for l in $(ldd "$BIN" | grep -oE '/[^ ]+\.so[^ ]*'); do
	install -D -m 0755 "$(readlink -f "$l")" "$R$l"
	nlib=$((nlib + 1))
done
echo "layout: /usr/bin/ovlnfsd + $nlib libraries from ldd, nothing else"
mkdir -p "$R/srv/upper/upper" "$R/srv/upper/work" "$R/srv/upper/clients" "$R/srv/upper/state" "$R/tmp" # as the entry point does
cp -a "$D/demo-base" "$R/srv/base"
# RUN: the command prefix that runs a program of the layout (an array, so
# that a server started with & is that process itself, stopped by its PID).
# Sanitizer builds read /proc (LeakSanitizer), which the chroot lacks.
sanitized=
[ -n "${ONFS_SANITIZE:-}" ] && [ "$ONFS_SANITIZE" != none ] && sanitized=yes
if [ -z "${ONFS_LAYOUT_NO_CHROOT:-}" ] && [ -z "$sanitized" ] && [ "$(id -u)" = 0 ] &&
	command -v chroot >/dev/null 2>&1; then
	how=chroot
	RUN=(chroot "$R")
	in_root() { echo "$1"; }
	prog() { echo "$1"; }
else
	how="ld.so --library-path"
	ldso=$(ldd "$BIN" | grep -oE '/[^ ]*ld-linux[^ ]*' | head -1)
	libpath=$(find "$R" -name '*.so*' -printf '%h\n' | sort -u | tr '\n' ':')
	RUN=("$R$ldso" --library-path "$libpath")
	in_root() { echo "$R$1"; }
	prog() { echo "$R$1"; }
fi
v=$("${RUN[@]}" "$(prog /usr/bin/ovlnfsd)" --version 2>&1)
case "$v" in
"ovlnfsd "*) ok "ovlnfsd --version from the layout ($how): $v" ;;
*) bad "ovlnfsd --version from the layout ($how) printed: $v" ;;
esac
# A config file as the layout sees it: the chroot reads it as written;
# without chroot every absolute /srv/ and /var/ path moves under $R.
install_conf() { # SRCFILE NAME -> prints the path to give -c
	mkdir -p "$R/etc/ovlnfsd"
	if [ "$how" = chroot ]; then
		cp "$1" "$R/etc/ovlnfsd/$2"
	else
		sed -e "s|= */srv/|= $R/srv/|" -e "s|:/srv/|:$R/srv/|g" -e "s|= */var/|= $R/var/|" "$1" >"$R/etc/ovlnfsd/$2"
	fi
	in_root "/etc/ovlnfsd/$2"
}
# start_server NAME ARGS...: runs the layout's ovlnfsd in the background
# (loopback, a free port) and waits for its port file; sets SRV_PID and PORT.
start_server() {
	local name=$1
	shift
	rm -f "$R/srv/port"
	"${RUN[@]}" "$(prog /usr/bin/ovlnfsd)" -f --listen 127.0.0.1:0 --port-file "$(in_root /srv/port)" \
		"$@" >"$TMP/$name.log" 2>&1 &
	SRV_PID=$!
	kc_wait_port "$R/srv/port" "$SRV_PID" "$TMP/$name.log" "bad $name:" && return 0
	kill "$SRV_PID" 2>/dev/null
	wait "$SRV_PID" 2>/dev/null
	SRV_PID=
	return 1
}
stop_server() { # NAME
	local rc
	kill "$SRV_PID"
	wait "$SRV_PID"
	rc=$?
	SRV_PID=
	[ "$rc" -eq 0 ] || bad "$1: the layout's server exited $rc on SIGTERM (want 0)"
}
have_nfs=yes
command -v nfs-cat >/dev/null 2>&1 && command -v nfs-ls >/dev/null 2>&1 ||
	{ have_nfs=; echo "note: libnfs-utils not installed: the layout's servers start but are not read"; }

# 1. demo-base/ over an upper, as the container runs it: deploy/demo.conf.
mkdir -p "$R/var/lib/ovlnfsd"
conf=$(install_conf "$D/demo.conf" demo.conf)
if start_server demo.conf -c "$conf"; then
	if [ -n "$have_nfs" ]; then
		if nfs-cat "nfs://127.0.0.1/etc/motd?nfsport=$PORT&mountport=$PORT&version=3" >"$TMP/motd" 2>&1 &&
			cmp -s "$TMP/motd" "$D/demo-base/etc/motd"; then
			ok "the layout serves demo-base/ with -c deploy/demo.conf ($how; etc/motd read with nfs-cat, identical)"
		else
			cat "$TMP/motd"
			bad "reading etc/motd from the layout's server (deploy/demo.conf)"
		fi
	fi
	stop_server demo.conf
fi

# 2. The annotated example deploy/ovlnfsd.conf loads as written (its
#    directories created empty) and its rules hold: loopback is not a client.
for dir in $(sed -n 's/^\(lowerdir\|upperdir\|workdir\|state_dir\) *= *//p' "$D/ovlnfsd.conf" | tr ':' ' '); do
	mkdir -p "$R$dir"
done
conf=$(install_conf "$D/ovlnfsd.conf" ovlnfsd.conf)
# what the unit's ExecStartPre= runs
if "${RUN[@]}" "$(prog /usr/bin/ovlnfsd)" --check-config -c "$conf" >"$TMP/check.log" 2>&1; then
	ok "ovlnfsd --check-config accepts deploy/ovlnfsd.conf ($how)"
else
	cat "$TMP/check.log"
	bad "ovlnfsd --check-config refuses deploy/ovlnfsd.conf"
fi
if start_server ovlnfsd.conf -c "$conf" --portmap 127.0.0.1:0; then
	nexp=$(grep -c '^\[export ' "$D/ovlnfsd.conf")
	grep -q "ready on .* $nexp export(s)" "$TMP/ovlnfsd.conf.log" ||
		bad "deploy/ovlnfsd.conf: the server does not say it serves $nexp exports"
	if [ -n "$have_nfs" ]; then
		if nfs-ls "nfs://127.0.0.1/base?nfsport=$PORT&mountport=$PORT&version=3" >"$TMP/refused" 2>&1; then
			bad "deploy/ovlnfsd.conf: /base answered 127.0.0.1, which its clients list leaves out"
		elif grep -q 'MNT3ERR_ACCES' "$TMP/refused"; then
			ok "deploy/ovlnfsd.conf loads ($nexp exports) and /base refuses a client outside its list (MNT3ERR_ACCES)"
		else
			cat "$TMP/refused"
			bad "deploy/ovlnfsd.conf: /base failed for another reason than MNT3ERR_ACCES"
		fi
	fi
	stop_server ovlnfsd.conf
fi

# ---------------------------------------------------------------- docker
say "docker compose demo"
no_docker=
docker_ok() { docker info >/dev/null 2>&1; }
if [ "${ONFS_DOCKER:-}" = 0 ]; then
	no_docker="ONFS_DOCKER=0"
elif [ -n "${ONFS_SANITIZE:-}" ] && [ "$ONFS_SANITIZE" != none ] && [ "${ONFS_DOCKER:-}" != 1 ]; then
	no_docker="sanitizer build ($ONFS_SANITIZE): docker builds its own binary, the plain build's run covers it (ONFS_DOCKER=1 forces it)"
else
	if [ "${ONFS_DOCKER:-}" = 1 ] && [ -n "$LOCAL_DOCKER" ] && [ -x "$LOCAL_DOCKER" ]; then
		if ! docker_ok || ! docker image inspect debian:bookworm debian:bookworm-slim >/dev/null 2>&1; then
			echo "ONFS_DOCKER=1: $LOCAL_DOCKER setup"
			timeout 150 "$LOCAL_DOCKER" setup || echo "note: local-docker setup failed"
		fi
	fi
	if ! command -v docker >/dev/null 2>&1; then
		no_docker="docker is not installed"
	elif ! docker_ok; then
		no_docker="no docker engine answers ('docker info' failed)"
	elif [ -z "$COMPOSE" ] && ! command -v docker-compose >/dev/null 2>&1; then
		no_docker="neither docker-compose nor 'docker compose' is installed"
	elif [ "${ONFS_DOCKER:-}" != 1 ] && ! docker image inspect debian:bookworm debian:bookworm-slim >/dev/null 2>&1; then
		no_docker="the base images debian:bookworm and debian:bookworm-slim are not present locally (ONFS_DOCKER=1 sets them up with local-docker or pulls them)"
	fi
	[ -n "$COMPOSE" ] || COMPOSE=docker-compose
fi

if [ -n "$no_docker" ]; then
	echo "did not run docker: $no_docker"
	# CI (REQUIRE_ALL=1) provides a docker engine: not running the demo in
	# the plain build is a failure there, never a quiet pass
	if [ "${REQUIRE_ALL:-0}" = 1 ] && [ "${ONFS_DOCKER:-}" != 0 ] &&
		{ [ -z "${ONFS_SANITIZE:-}" ] || [ "$ONFS_SANITIZE" = none ]; }; then
		bad "REQUIRE_ALL=1: the docker compose demo did not run ($no_docker)"
	fi
else
	PROJECT=onfsdeploy$$
	# One deadline for the whole script (meson's timeout is 330 s; down -v takes <= 40 s after it):
	# every step gets at most its own cap and never more than what is left.
	DEADLINE=$(($(date +%s) + ${ONFS_DOCKER_BUDGET:-$((285 - SECONDS))}))
	cap() {
		local left=$((DEADLINE - $(date +%s)))
		[ "$left" -lt "$1" ] && echo $((left > 1 ? left : 1)) || echo "$1"
	}
	dc() {
		local t
		t=$(cap "$1")
		shift
		timeout "$t" $COMPOSE -p "$PROJECT" -f "$D/docker-compose.yml" "$@"
	}
	export ONFS_BIND=127.0.0.1 ONFS_PORT=0 ONFS_WRITES=${ONFS_WRITES:-required}
	t0=$(date +%s)
	# The build stage gets a tag of its own: once tagged, every dangling image
	# with the demo's label is a superseded one, removed after the run
	# (each source change leaves about 900 MB behind otherwise).
	if ! timeout "$(cap 200)" docker build -q --target build -t ovlnfsd-build:demo -f "$D/Dockerfile" "$SRC" \
		>"$TMP/build.log" 2>&1 || ! dc 90 build >>"$TMP/build.log" 2>&1; then
		tail -30 "$TMP/build.log"
		bad "docker build / docker-compose build failed or ran out of time ($(($(date +%s) - t0)) s)"
	else
		PRUNE=yes
		t1=$(date +%s)
		echo "images built in $((t1 - t0)) s"
		dc 90 up --abort-on-container-exit --exit-code-from client >"$TMP/up.log" 2>&1
		rc=$?
		t2=$(date +%s)
		sed 's/\x1b\[[0-9;]*m//g' "$TMP/up.log" | grep -E '(client|ovlnfsd)_1 +\|' | sed 's/^/    /'
		echo "demo ran in $((t2 - t1)) s; the client exited $rc"
		[ "$rc" -eq 0 ] || bad "the demo client exited $rc (want 0)"
		grep -q 'client: PASS' "$TMP/up.log" || bad "the demo client did not print PASS"
		writes=unknown
		grep -q 'writes: verified' "$TMP/up.log" && writes=verified
		grep -q 'writes: NOT AVAILABLE' "$TMP/up.log" && writes=unavailable
		if [ "$writes" = verified ]; then
			ok "docker demo: list, read, write and read back over NFS all passed"
		else
			ok "docker demo: list and read passed; writes NOT verified (the server answered read-only: NFS3ERR_ROFS)"
		fi

		# The same volume again: a restart, the published port from the host,
		# and what landed on disk.
		if dc 60 up -d ovlnfsd >"$TMP/up2.log" 2>&1; then
			hp=$(dc 20 port ovlnfsd 2049 2>/dev/null | tail -1)
			hport=${hp##*:}
			echo "published on $hp"
			case "$hp" in 127.0.0.1:[0-9]*) ;; *) bad "published port is '$hp' (want 127.0.0.1:N)" ;; esac
			if command -v nfs-ls >/dev/null 2>&1 && [ -n "$hport" ]; then
				q="?nfsport=$hport&mountport=$hport&version=3"
				for _ in $(seq 1 40); do
					nfs-ls "nfs://127.0.0.1/$q" >"$TMP/hls" 2>&1 && break
					sleep 0.5
				done
				if nfs-cat "nfs://127.0.0.1/etc/motd$q" >"$TMP/hmotd" 2>&1 && cmp -s "$TMP/hmotd" "$D/demo-base/etc/motd"; then
					ok "from the host through the published port after a restart: etc/motd identical"
				else
					cat "$TMP/hls" "$TMP/hmotd"
					bad "reading etc/motd from the host through $hp"
				fi
				if [ "$writes" = verified ]; then
					# the host is another client of the templated export: its own view
					if nfs-cat "nfs://127.0.0.1/incoming/from-client.txt$q" >"$TMP/hnew" 2>&1; then
						bad "the host (another client) reads the container client's file"
					else
						ok "the host, another client of the templated export, does not see the clients' files"
					fi
				fi
			else
				echo "note: nfs-ls not installed on the host: the published port was not read"
			fi
			if [ "$writes" = verified ]; then
				# one upper per client address (deploy/demo.conf's template), both kept
				nup=$(timeout "$(cap 30)" docker run --rm -v "${PROJECT}_upper:/v:ro" debian:bookworm-slim \
					sh -c 'ls /v/clients/*/upper/incoming/from-client.txt | wc -l')
				[ "$nup" = 2 ] && ok "two client uppers in the volume, each with its own incoming/from-client.txt" ||
					bad "want incoming/from-client.txt in two client uppers in the volume, found '$nup'"
				[ ! -e "$D/demo-base/incoming/from-client.txt" ] || bad "the client's write reached the read-only base layer"
			fi
			cid=$(dc 20 ps -q ovlnfsd)
			dc 30 stop -t 10 ovlnfsd >/dev/null 2>&1
			ec=$(docker inspect -f '{{.State.ExitCode}}' "$cid" 2>/dev/null)
			[ "$ec" = 0 ] && ok "ovlnfsd (PID 1 in its container) exited 0 on SIGTERM" ||
				bad "ovlnfsd's container exited '$ec' on docker stop (want 0)"
		else
			cat "$TMP/up2.log"
			bad "restarting ovlnfsd on the same volume"
		fi
	fi
	echo "docker part took $(($(date +%s) - t0)) s (teardown: down -v follows)"
fi

echo
if [ "$fails" -eq 0 ]; then
	echo "deploy: all checks passed${no_docker:+ (did not run docker: $no_docker)}"
	exit 0
fi
echo "deploy: $fails check(s) failed"
exit 1
