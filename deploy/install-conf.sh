#!/bin/sh
# install-conf.sh SRC DIR - meson install script: put the example config at
# $DESTDIR/DIR/ovlnfsd.conf unless a config is already there (an operator's
# edited file is never overwritten by a reinstall).
set -e
src=$1
dir=${DESTDIR:-}$2
if [ -e "$dir/ovlnfsd.conf" ]; then
	echo "ovlnfsd: keeping the existing $dir/ovlnfsd.conf"
	exit 0
fi
mkdir -p "$dir"
install -m 0644 "$src" "$dir/ovlnfsd.conf"
echo "ovlnfsd: installed the example configuration as $dir/ovlnfsd.conf (edit it)"
