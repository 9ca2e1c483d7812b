#!/bin/bash
# test-deb.sh SRCDIR - the Debian package: `dpkg-buildpackage -us -uc -b` in
# a copy of the tree builds ovlnfsd_VERSION_ARCH.deb holding the binary in
# /usr/bin, the unit (ExecStart= pointing there) in the systemd unit
# directory, /etc/ovlnfsd/ovlnfsd.conf as a conffile, and a postrm that
# purges /var/lib/ovlnfsd. When a docker engine answers and the image
# debian:bookworm is present locally, the .deb is installed in a container
# (no systemd there): the binary serves a layer, then `dpkg --purge`
# removes the binary, the unit, the config and the state directory and
# leaves the layer alone. Without docker it says why it did not run that.
set -u
SRC=$1
T=$(mktemp -d /tmp/onfs-deb-XXXXXX)
CID=
cleanup() {
	[ -n "$CID" ] && docker rm -f "$CID" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT
fails=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fails=$((fails + 1)); }

if [ -n "${ONFS_SANITIZE:-}" ] && [ "$ONFS_SANITIZE" != none ]; then
	# the package is built from the sources with Debian's flags, never from this build
	echo "note: sanitizer build ($ONFS_SANITIZE): the package does not depend on it; the plain build's run builds and checks it"
	exit 0
fi
for p in dpkg-buildpackage dh dpkg-deb; do
	command -v $p >/dev/null 2>&1 ||
		{ echo "SKIP: '$p' is not installed (apt-get install debhelper dpkg-dev)"; exit 77; }
done
ver=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
arch=$(dpkg --print-architecture)
mkdir -p "$T/src"
(cd "$SRC" && tar --exclude='./build*' --exclude=./.git --exclude='./obj-*' --exclude=./demo-overlay \
	--exclude=./debian/ovlnfsd --exclude=./debian/.debhelper -cf - .) | tar -xf - -C "$T/src"
t0=$(date +%s)
if ! (cd "$T/src" && timeout 1200 dpkg-buildpackage -us -uc -b -j2) >"$T/build.log" 2>&1; then
	tail -40 "$T/build.log"
	echo "FAIL: dpkg-buildpackage -us -uc -b"
	exit 1
fi
deb=$T/ovlnfsd_${ver}_$arch.deb
[ -f "$deb" ] && ok "dpkg-buildpackage built $(basename "$deb") in $(($(date +%s) - t0)) s" ||
	{ ls "$T"; echo "FAIL: no $(basename "$deb")"; exit 1; }

dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$T/files"
for f in /usr/bin/ovlnfsd /etc/ovlnfsd/ovlnfsd.conf /usr/share/doc/ovlnfsd/examples/ovlnfsd.conf; do
	grep -qx "$f" "$T/files" && ok "the package holds $f" || bad "the package lacks $f"
done
unit=$(grep -E '/systemd/system/ovlnfsd.service$' "$T/files")
[ -n "$unit" ] && ok "the package holds the unit $unit" || bad "the package lacks the unit"
mkdir -p "$T/x" && dpkg-deb -R "$deb" "$T/x"
grep -qx 'ExecStart=/usr/bin/ovlnfsd -f -c /etc/ovlnfsd/ovlnfsd.conf' "$T/x$unit" &&
	ok "the unit runs /usr/bin/ovlnfsd -c /etc/ovlnfsd/ovlnfsd.conf" || bad "unit ExecStart=: $(grep ^ExecStart= "$T/x$unit")"
grep -qx /etc/ovlnfsd/ovlnfsd.conf "$T/x/DEBIAN/conffiles" && ok "/etc/ovlnfsd/ovlnfsd.conf is a conffile" ||
	bad "/etc/ovlnfsd/ovlnfsd.conf is not a conffile"
grep -q 'rm -rf /var/lib/ovlnfsd' "$T/x/DEBIAN/postrm" && ok "postrm purges /var/lib/ovlnfsd" ||
	bad "postrm does not purge /var/lib/ovlnfsd"
"$T/x/usr/bin/ovlnfsd" --version >/dev/null 2>&1 && ok "the packaged binary runs here" ||
	bad "the packaged binary does not run"

# ---- install and purge in a container
why=
if ! command -v docker >/dev/null 2>&1; then
	why="docker is not installed"
elif ! timeout 20 docker info >/dev/null 2>&1; then
	why="no docker engine answers ('docker info' failed)"
elif ! docker image inspect debian:bookworm >/dev/null 2>&1; then
	why="the image debian:bookworm is not present locally"
fi
if [ -n "$why" ]; then
	echo "did not run the container install: $why"
else
	cp "$deb" "$T/pkg.deb"
	cat >"$T/in.sh" <<'EOS'
set -u
say() { echo "IN: $*"; }
apt-get update -q >/tmp/apt.log 2>&1
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends /deb/pkg.deb >>/tmp/apt.log 2>&1; then
	tail -20 /tmp/apt.log; say "install FAILED"; exit 1
fi
say "installed"
[ -x /usr/bin/ovlnfsd ] && say "binary"
ls /lib/systemd/system/ovlnfsd.service /usr/lib/systemd/system/ovlnfsd.service 2>/dev/null | grep -q . && say "unit"
[ -f /etc/ovlnfsd/ovlnfsd.conf ] && say "config"
mkdir -p /srv/layer && echo "layer data" >/srv/layer/f
/usr/bin/ovlnfsd -f -o lowerdir=/srv/layer --listen 127.0.0.1:0 --portmap off \
	--port-file /tmp/port --state-dir /var/lib/ovlnfsd >/tmp/srv.log 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -s /tmp/port ] && break; sleep 0.1; done
if [ -s /tmp/port ]; then say "served on port $(cat /tmp/port)"; else cat /tmp/srv.log; fi
kill $pid; wait $pid && say "stopped cleanly"
[ -d /var/lib/ovlnfsd/exports/default ] && say "state written"
dpkg --purge ovlnfsd >/tmp/purge.log 2>&1 || { cat /tmp/purge.log; say "purge FAILED"; }
[ ! -e /usr/bin/ovlnfsd ] && [ ! -e /lib/systemd/system/ovlnfsd.service ] && [ ! -e /usr/lib/systemd/system/ovlnfsd.service ] && say "binary and unit removed"
[ ! -e /etc/ovlnfsd ] && say "config removed"
[ ! -e /var/lib/ovlnfsd ] && say "state removed"
[ "$(cat /srv/layer/f 2>/dev/null)" = "layer data" ] && say "layer kept"
exit 0
EOS
	# /srv on a tmpfs: the container's own overlay root has no file handles
	CID=$(docker create --network host --tmpfs /srv --cap-add DAC_READ_SEARCH --cap-add SYS_ADMIN \
		-v "$T/pkg.deb:/deb/pkg.deb:ro" -v "$T/in.sh:/in.sh:ro" debian:bookworm bash /in.sh)
	timeout 300 docker start -a "$CID" >"$T/in.log" 2>&1
	sed 's/^/    /' "$T/in.log"
	for w in installed binary unit config "served on port" "stopped cleanly" "state written" \
		"binary and unit removed" "config removed" "state removed" "layer kept"; do
		grep -q "^IN: $w" "$T/in.log" && ok "container: $w" || bad "container: not '$w'"
	done
fi

[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "deb: all ok"
