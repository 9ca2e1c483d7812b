#!/bin/bash
# test-install.sh SRCDIR BUILDDIR - `meson install` into a DESTDIR: the
# binary, the systemd unit with its paths pointed at the installed binary
# and config, the example config in SYSCONFDIR/ovlnfsd/ (kept, not
# overwritten, by a second install), the example in the docs, and the man
# pages when man/ has them. The installed unit passes systemd-analyze
# verify (when systemd-analyze is installed).
set -u
SRC=$1
BUILD=$2
T=$(mktemp -d /tmp/onfs-install-XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fails=$((fails + 1)); }

if ! DESTDIR=$T/root meson install -C "$BUILD" --no-rebuild >"$T/install.log" 2>&1; then
	cat "$T/install.log"
	echo "FAIL: meson install"
	exit 1
fi
prefix=$(meson introspect "$BUILD" --buildoptions | python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(o["prefix"]); print(o["bindir"]); print(o["sysconfdir"]); print(o["datadir"]); print(o["mandir"])')
{ read -r p; read -r bindir; read -r sysconf; read -r datadir; read -r mandir; } <<<"$prefix"
case $sysconf in /*) ;; *) sysconf=$p/$sysconf ;; esac
bin=$p/$bindir/ovlnfsd
conf=$sysconf/ovlnfsd/ovlnfsd.conf
R=$T/root
[ -x "$R$bin" ] && ok "binary at $bin" || bad "no binary at $bin"
unit=$(find "$R" -path '*/systemd/system/ovlnfsd.service' | head -1)
if [ -n "$unit" ]; then
	ok "unit at ${unit#$R}"
	grep -qx "ExecStart=$bin -f -c $conf" "$unit" && ok "unit ExecStart= runs $bin -c $conf" ||
		bad "unit ExecStart= is not '$bin -f -c $conf': $(grep ^ExecStart= "$unit")"
	grep -qx "ExecStartPre=$bin --check-config -c $conf" "$unit" && ok "unit ExecStartPre= checks $conf" ||
		bad "unit ExecStartPre=: $(grep ^ExecStartPre= "$unit")"
	grep -qx "Type=notify" "$unit" && ok "unit is Type=notify" || bad "unit is not Type=notify"
else
	bad "no systemd unit installed"
fi
cmp -s "$R$conf" "$SRC/deploy/ovlnfsd.conf" && ok "example config at $conf" || bad "no example config at $conf"
[ -f "$R$p/$datadir/doc/ovlnfsd/examples/ovlnfsd.conf" ] && ok "example config in the docs" ||
	bad "no example config under $datadir/doc/ovlnfsd/examples"
for page in ovlnfsd.8 ovlnfsd.conf.5; do
	if [ -f "$SRC/man/$page" ]; then
		sec=${page##*.}
		ls "$R$p/$mandir/man$sec/$page"* >/dev/null 2>&1 && ok "man page $page installed" ||
			bad "man/$page exists but is not installed"
	else
		echo "note: man/$page is not in this tree: not installed"
	fi
done

# a reinstall keeps an edited config
echo "# edited by the operator" >>"$R$conf"
DESTDIR=$T/root meson install -C "$BUILD" --no-rebuild >"$T/install2.log" 2>&1 || bad "second meson install failed"
tail -1 "$R$conf" | grep -q "edited by the operator" && ok "a reinstall keeps the edited $conf" ||
	bad "a reinstall overwrote the edited $conf"

if [ -n "$unit" ] && command -v systemd-analyze >/dev/null 2>&1; then
	# verify looks for the binary at its installed path: point it into DESTDIR
	sed "s|$bin|$R$bin|g" "$unit" >"$T/ovlnfsd.service"
	systemd-analyze verify "$T/ovlnfsd.service" >"$T/verify.log" 2>&1
	rc=$?
	grep -v -e 'Failed to connect to bus' -e 'System has not been booted with systemd' "$T/verify.log" >"$T/verify.rel" || true
	[ $rc -eq 0 ] && [ ! -s "$T/verify.rel" ] && ok "systemd-analyze verify of the installed unit: clean" ||
		{ cat "$T/verify.log"; bad "systemd-analyze verify of the installed unit"; }
else
	echo "note: systemd-analyze not run (not installed, or no unit)"
fi

[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "install: all ok"
