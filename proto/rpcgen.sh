#!/bin/sh
# rpcgen.sh RPCGEN MODE IN OUT - run rpcgen for meson's custom_target.
#
# Debian 12's rpcgen writes '#include "dir/p.h"' when given dir/p.x and
# exits 1 when OUT already exists, so: make OUT absolute, remove it, cd to
# IN's directory and run rpcgen on IN's basename. Runs at build time only.
set -eu
if [ $# -ne 4 ]; then
	echo "usage: rpcgen.sh RPCGEN MODE IN OUT" >&2
	exit 2
fi
rpcgen=$1
mode=$2
in=$3
out=$4
case "$out" in
/*) ;;
*) out="$(pwd)/$out" ;;
esac
case "$rpcgen" in
/*) ;;
*/*) rpcgen="$(pwd)/$rpcgen" ;;
esac
rm -f "$out"
cd "$(dirname "$in")"
exec "$rpcgen" "$mode" -o "$out" "$(basename "$in")"
