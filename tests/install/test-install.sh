#!/bin/sh
# tests/install/test-install.sh BUILDDIR - `meson install` into a temporary
# DESTDIR puts in place what a system daemon needs: the binary, the systemd
# unit (its ExecStart naming the installed binary), the example config and
# the manual pages ovlnfsd(8) and ovlnfsd.conf(5), which must render without
# troff warnings. Owns only its temporary directory.
set -u
B=$(readlink -f "${1:?usage: test-install.sh BUILDDIR}")
T=$(mktemp -d /tmp/onfs-install.XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

meson install -C "$B" --no-rebuild --destdir "$T" >"$T/install.log" 2>&1 ||
	{ cat "$T/install.log"; echo "FAIL: meson install"; exit 1; }
prefix=$(meson introspect "$B" --buildoptions | python3 -c '
import json, sys
print({o["name"]: o["value"] for o in json.load(sys.stdin)}["prefix"])')
R=$T$prefix
for f in bin/ovlnfsd bin/ovlnfsctl share/man/man8/ovlnfsd.8 share/man/man8/ovlnfsctl.8 share/man/man5/ovlnfsd.conf.5 \
	share/doc/ovlnfsd/examples/ovlnfsd.conf; do
	[ -f "$R/$f" ] && echo "ok: $prefix/$f" || bad "$prefix/$f not installed"
done
unit=$(find "$T" -name ovlnfsd.service -type f | head -n 1)
if [ -z "$unit" ]; then
	bad "ovlnfsd.service not installed"
else
	echo "ok: ${unit#"$T"}"
	exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit" | head -n 1)
	[ "$exe" = "$prefix/bin/ovlnfsd" ] && echo "ok: ExecStart=$exe" ||
		bad "ExecStart names '$exe', not the installed $prefix/bin/ovlnfsd"
fi
"$R/bin/ovlnfsd" --version >/dev/null 2>&1 && echo "ok: the installed binary runs" ||
	bad "the installed ovlnfsd --version failed"
if command -v man >/dev/null 2>&1; then
	for p in man8/ovlnfsd.8 man8/ovlnfsctl.8 man5/ovlnfsd.conf.5; do
		out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$R/share/man/$p" 2>&1 >/dev/null)
		[ -z "$out" ] && echo "ok: $p renders without warnings" || bad "$p: $out"
		grep -q '@VERSION@' "$R/share/man/$p" && bad "$p: @VERSION@ not filled in"
	done
else
	echo "note: no man(1) here: the pages' rendering was not checked"
fi
[ "$fails" = 0 ] || { echo "install: $fails check(s) failed"; exit 1; }
echo "install: all checks passed"
