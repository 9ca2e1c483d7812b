#!/bin/bash
# tests/bench/mktrace.sh - writes a SYNTHETIC boot trace (the format of
# nfsbench replay) to stdout by walking a Debian root (default /): what a
# systemd boot of a diskless client reads, approximated - the init chain
# and its shared libraries, service executables, configuration in /etc,
# every unit file and udev rule (READ whole, up to 1 MiB, 128 KiB calls),
# symlinks on the way (READLINK, then the target), and a few probes for
# files that are usually missing (LOOKUP answered NOENT). Each name is
# looked up once (the client's dentry cache); a file read again gets a
# GETATTR (close-to-open revalidation).
#
# It is not a recording of a real boot: that is tests/bench/boot-trace.txt,
# recorded by record-trace.sh. This one is checked in as
# tests/bench/boot-trace-synthetic.txt, the fallback run.sh replays (with
# the files copied from this machine's /) when the recorded trace's Debian
# root is not cached here.
#   bash tests/bench/mktrace.sh [ROOT] > tests/bench/boot-trace-synthetic.txt
set -u
R=${1:-/}
R=${R%/}

declare -A seen looked

# walk P: LOOKUP every component of absolute path P, following symlinks
# (READLINK, then the target); prints the canonical path on fd 3
walk() {
	local p=$1 cur="" comp rest t
	rest=${p#/}
	while [ -n "$rest" ]; do
		comp=${rest%%/*}
		if [ "$comp" = "$rest" ]; then rest=""; else rest=${rest#*/}; fi
		[ -z "$comp" ] || [ "$comp" = . ] && continue
		cur="$cur/$comp"
		# the client's dentry and symlink caches: each name once
		[ -n "${looked[$cur]:-}" ] || echo "LOOKUP $cur"
		if [ -L "$R$cur" ]; then
			[ -n "${looked[$cur]:-}" ] || echo "READLINK $cur"
			looked[$cur]=1
			t=$(readlink "$R$cur")
			case $t in
			/*) cur="" ; rest="${t#/}${rest:+/$rest}" ;;
			*) cur=${cur%/*}; rest="$t${rest:+/$rest}" ;;
			esac
		elif [ ! -e "$R$cur" ]; then
			looked[$cur]=1
			echo "missing" >&3
			return
		else
			looked[$cur]=1
		fi
	done
	echo "${cur:-/}" >&3
}

# file P: walk, GETATTR, ACCESS, READ (128 KiB calls, at most 1 MiB)
file() {
	local c size off
	c=$(walk "$1" 3>&1 >&4)
	[ "$c" = missing ] && return
	[ -f "$R$c" ] || return
	[ -n "${seen[$c]:-}" ] && { echo "GETATTR $c"; return; }
	seen[$c]=1
	echo "GETATTR $c"
	echo "ACCESS $c"
	size=$(stat -c %s "$R$c")
	[ "$size" -gt 1048576 ] && size=1048576
	for ((off = 0; off < size; off += 131072)); do
		echo "READ $c $off 131072"
	done
}

# exe P: the executable, then its shared libraries (from ldd)
exe() {
	local lib
	file "$1"
	[ -e "$R$1" ] || return
	for lib in $(ldd "$R$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
		file "$lib"
	done
}

probe() { walk "$1" 3>/dev/null; }

{
	echo "# SYNTHETIC boot trace, made by tests/bench/mktrace.sh from a Debian root"
	echo "# (not recorded from a real boot). Format: OP PATH [OFFSET COUNT]"
	exe /sbin/init
	file /etc/ld.so.cache
	probe /etc/ld.so.preload
	for f in /etc/os-release /etc/machine-id /etc/hostname /etc/fstab /etc/nsswitch.conf \
		/etc/passwd /etc/group /etc/locale.conf /etc/default/locale \
		/etc/systemd/system.conf /etc/systemd/journald.conf /etc/systemd/logind.conf \
		/etc/udev/udev.conf /etc/localtime /etc/hosts /etc/resolv.conf /etc/issue \
		/etc/environment /etc/login.defs /etc/pam.d/login /etc/pam.d/common-auth \
		/etc/security/limits.conf /etc/modules; do
		file "$f"
	done
	probe /etc/systemd/system.conf.d
	for d in /etc/systemd/system /lib/systemd/system /lib/udev/rules.d /etc/udev/rules.d \
		/lib/modules-load.d /etc/modules-load.d /lib/tmpfiles.d /lib/sysctl.d /etc/sysctl.d; do
		[ -d "$R$d" ] || { probe "$d"; continue; }
		while IFS= read -r f; do
			f=${f#"$R"}
			if [ -L "$R$f" ]; then walk "$f" 3>/dev/null; else file "$f"; fi
		done < <(find "$R$d" -maxdepth 2 \( -type f -o -type l \) | sort | head -400)
	done
	for e in /lib/systemd/systemd-journald /lib/systemd/systemd-udevd /bin/udevadm \
		/lib/systemd/systemd-modules-load /lib/systemd/systemd-sysctl \
		/lib/systemd/systemd-tmpfiles /bin/systemd-tmpfiles /lib/systemd/systemd-remount-fs \
		/lib/systemd/systemd-logind /lib/systemd/systemd-networkd /lib/systemd/systemd-timesyncd \
		/lib/systemd/systemd-random-seed /lib/systemd/systemd-update-utmp \
		/sbin/agetty /bin/login /bin/bash /bin/mount /sbin/fsck /bin/kmod /sbin/modprobe \
		/usr/sbin/cron /usr/sbin/sshd /bin/dbus-daemon /usr/bin/dbus-daemon /bin/ls; do
		exe "$e"
	done
	for f in /etc/profile /etc/bash.bashrc /root/.bashrc /etc/motd /etc/ssh/sshd_config \
		/usr/share/zoneinfo/UTC /etc/crontab; do
		file "$f"
	done
} 4>&1
