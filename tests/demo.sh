#!/bin/sh
# tests/demo.sh - install what is missing (Debian 12, as root), build, and
# run the demo server in the foreground: it creates ./demo-overlay (two
# lower layers and an upper one) at the top of the tree and serves it on
# 127.0.0.1:2049, printing the libnfs URL and the mount command.
#
# Usage: sh tests/demo.sh [ovlnfsd options, e.g. --listen 127.0.0.1:20490]
# Stop with Ctrl-C.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

PKGS="meson ninja-build pkg-config gcc libuv1-dev libtirpc-dev rpcsvc-proto libnfs-dev
libnfs-utils libinih-dev liblmdb-dev attr"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "demo: missing packages:$missing (run as root, or: apt-get install$missing)" >&2
		exit 1
	fi
	echo "demo: installing$missing"
	apt-get update -q
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
fi

if [ -f build/build.ninja ]; then
	meson setup --reconfigure build >/dev/null
else
	meson setup build >/dev/null
fi
ninja -C build -j2 server/ovlnfsd

exec build/server/ovlnfsd -f "$@"
