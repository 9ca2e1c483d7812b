#!/bin/sh
# tests/run-all.sh - install what is missing (Debian 12, as root), build with
# warnings as errors, run the whole test suite, then again under
# AddressSanitizer + UndefinedBehaviorSanitizer, then the integration and
# reliability suites (and the fuzz corpus replays) under ThreadSanitizer,
# then run each
# libFuzzer target for a bounded time (when tests/fuzz exists and clang is
# there).
#
# Usage: sh tests/run-all.sh            (from anywhere in the tree)
# Environment: FUZZ_SECONDS (total fuzzing time, default 60),
#              SKIP_SAN=1 / SKIP_TSAN=1 / SKIP_FUZZ=1 to leave a stage out,
#              REQUIRE_ALL=1 (set by .ci/run): a suite CI provides for
#              (oracle: root + overlayfs; kclient: qemu + the kernel
#              package; deploy: a docker engine; reliability: root +
#              overlayfs for its crash soak) that skips is a failure.
# The summary at the end says, per build directory, which suites ran, which
# skipped and why (tests/lib/suite-summary.py).
# Build directories: build-ci, build-ci-san, build-ci-tsan, build-ci-fuzz
# (at the top).
# The kernel-client suite (qemu, several minutes) runs in build-ci only.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# the last five are for the kernel-client tests (tests/kclient, qemu;
# debootstrap for the Debian root of kclient-nlm-debian)
PKGS="meson ninja-build pkg-config gcc libuv1-dev libtirpc-dev rpcsvc-proto libnfs-dev
libnfs-utils libinih-dev liblmdb-dev libsystemd-dev rpcbind iproute2 prometheus debhelper dpkg-dev attr clang libclang-rt-14-dev
qemu-system-x86 linux-image-amd64 busybox-static cpio debootstrap"

t0=$(date +%s)
stage_t0=$t0
stage() {
	now=$(date +%s)
	echo
	echo "=== [$((now - t0))s total, last stage $((now - stage_t0))s] $*"
	stage_t0=$now
}

install_missing() {
	missing=""
	for p in $PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" != 0 ]; then
		echo "run-all: missing packages:$missing (run as root, or: apt-get install$missing)" >&2
		exit 1
	fi
	echo "run-all: installing$missing"
	apt-get update -q
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
}

# setup DIR [meson options...]: configure (or reconfigure) a build directory
setup() {
	dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@"
	else
		meson setup "$dir" "$@"
	fi
}

# Every stage runs even when an earlier one failed; the exit status says
# whether all passed.
failed=""

summaries=$(mktemp)
trap 'rm -f "$summaries"' EXIT

# suite DIR "REQUIRED SUITES" [meson test options]: build and run the tests
# in DIR; print the failed tests' logs and which suites ran or skipped
suite() {
	dir=$1
	required=$2
	shift 2
	if ! ninja -C "$dir" -j2; then
		echo "run-all: build failed in $dir" >&2
		failed="$failed $dir(build)"
		echo "$dir: not built, no suite ran" >>"$summaries"
		return 0
	fi
	rm -f "$dir/meson-logs/testlog.json"
	if ! meson test -C "$dir" --print-errorlogs --num-processes 2 "$@"; then
		echo "run-all: tests failed in $dir; full log: $dir/meson-logs/testlog.txt" >&2
		failed="$failed $dir(tests)"
	fi
	# shellcheck disable=SC2086 # a list of suite names
	if ! python3 tests/lib/suite-summary.py "$dir" $required >>"$summaries"; then
		failed="$failed $dir(required-suite-skipped)"
	fi
	tail -n +1 "$summaries" | sed -n "/^suites in $dir:/,\$p"
}

# fuzz_loop: run every build-ci-fuzz/tests/fuzz/fuzz-* binary for a share of
# FUZZ_SECONDS (used when tests/fuzz defines no 'fuzz' test suite).
fuzz_loop() {
	fuzzers=$(find build-ci-fuzz/tests/fuzz -maxdepth 1 -type f -perm -u+x -name 'fuzz-*' | sort)
	n=$(echo "$fuzzers" | grep -c . || true)
	if [ "$n" -eq 0 ]; then
		echo "run-all: no fuzz-* executables in build-ci-fuzz/tests/fuzz"
		return 0
	fi
	each=$(( ${FUZZ_SECONDS:-60} / n ))
	[ "$each" -lt 5 ] && each=5
	work=$(mktemp -d)
	for f in $fuzzers; do
		name=$(basename "$f")
		mkdir -p "$work/$name"
		seeds=""
		[ -d "tests/fuzz/corpus/${name#fuzz-}" ] && seeds="tests/fuzz/corpus/${name#fuzz-}"
		echo "--- $name for ${each}s"
		# new inputs go to the scratch dir, never into the source corpus
		# shellcheck disable=SC2086
		if ! "$f" -max_total_time="$each" -print_final_stats=1 \
			-artifact_prefix="$work/$name/" "$work/$name" $seeds \
			>"$work/$name.log" 2>&1; then
			tail -n 60 "$work/$name.log"
			echo "run-all: $name failed; input kept under $work/$name/" >&2
			failed="$failed $name"
		fi
	done
}

stage "dependencies"
install_missing

stage "build (gcc, -Werror) and test: build-ci"
setup build-ci -Dwerror=true
suite build-ci "oracle kclient deploy reliability"

if [ "${SKIP_SAN:-0}" != 1 ]; then
	stage "build and test under ASan+UBSan: build-ci-san"
	setup build-ci-san -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
	export ASAN_OPTIONS UBSAN_OPTIONS
	# the qemu kernel-client suite ran in build-ci; under the sanitizers it
	# would cost another 10 minutes for little more coverage
	# (deploy skips docker in sanitizer builds by design: docker builds its
	# own binary, which the plain build's run covers)
	suite build-ci-san "oracle reliability" --no-suite kclient
fi

if [ "${SKIP_TSAN:-0}" != 1 ]; then
	# ThreadSanitizer (clang): the worker pool and the loop share node
	# caches, the DRC and connection state. The whole integration suite
	# (about 5 minutes on 2 cores), the fuzz corpus replays, which drive
	# every procedure through the pool, and the reliability suite (many
	# connections, DRC storms, faults, a 100,000-handle walk, the soak). A
	# server that saw a race exits 66 after SIGTERM and its test fails;
	# every report also lands in build-ci-tsan/tsan-reports/ (also from the
	# servers the crash soak kills). tests/tsan.supp says what is left out
	# and why (only what TSan cannot see through the uninstrumented libuv).
	#
	# The reliability suite runs shortened here. In its default size it
	# took about 7 minutes under TSan on the shared 2-core machine (the
	# soak is 120 s by the clock; the crash soak's 50 kill -9 restarts,
	# each checked in full, 190 s), which put the stage at about 15
	# minutes, above its 12-minute share of CI. A 30 s soak still drives
	# about 37,000 calls of 16 concurrent clients through the pool with 3
	# config reloads, and 10 kills still restart the server 10 times into
	# its recovery scrub; the other reliability tests run at their default
	# size. Measured: the suite 2 minutes, the whole stage 11 minutes
	# (6 to build, 5 to test). The full-size runs are the plain and ASan
	# stages'.
	stage "integration and reliability suites under ThreadSanitizer: build-ci-tsan"
	if command -v clang >/dev/null; then
		if [ -f build-ci-tsan/build.ninja ]; then
			meson setup --reconfigure build-ci-tsan
		else
			CC=clang meson setup build-ci-tsan -Dwerror=true -Db_sanitize=thread \
				-Db_lundef=false
		fi
		rm -rf build-ci-tsan/tsan-reports
		mkdir -p build-ci-tsan/tsan-reports
		TSAN_OPTIONS="log_path=$top/build-ci-tsan/tsan-reports/report suppressions=$top/tests/tsan.supp second_deadlock_stack=1"
		ONFS_SOAK_SECONDS=30
		ONFS_CRASH_SOAK_KILLS=10
		export TSAN_OPTIONS ONFS_SOAK_SECONDS ONFS_CRASH_SOAK_KILLS
		suite build-ci-tsan "reliability" --suite integration --suite fuzz-replay \
			--suite reliability
		unset TSAN_OPTIONS ONFS_SOAK_SECONDS ONFS_CRASH_SOAK_KILLS
		if ls build-ci-tsan/tsan-reports/report.* >/dev/null 2>&1; then
			head -n 80 build-ci-tsan/tsan-reports/report.*
			echo "run-all: ThreadSanitizer reports in build-ci-tsan/tsan-reports/" >&2
			failed="$failed build-ci-tsan(tsan-reports)"
		fi
	else
		echo "run-all: no clang: the ThreadSanitizer stage did not run" >&2
		failed="$failed build-ci-tsan(no-clang)"
	fi
fi

if [ "${SKIP_FUZZ:-0}" != 1 ] && [ -f tests/fuzz/meson.build ] && command -v clang >/dev/null; then
	stage "fuzzers (clang, libFuzzer): build-ci-fuzz"
	if [ -f build-ci-fuzz/build.ninja ]; then
		meson setup --reconfigure build-ci-fuzz -Dfuzz=true
	else
		CC=clang meson setup build-ci-fuzz -Dfuzz=true
	fi
	if ! ninja -C build-ci-fuzz -j2; then
		echo "run-all: build failed in build-ci-fuzz" >&2
		failed="$failed build-ci-fuzz(build)"
	elif meson test -C build-ci-fuzz --list 2>/dev/null | grep -q ':fuzz / '; then
		# tests/fuzz defines a bounded run of each target (suite 'fuzz')
		if ! meson test -C build-ci-fuzz --suite fuzz --print-errorlogs; then
			echo "run-all: a fuzzer failed; log: build-ci-fuzz/meson-logs/testlog.txt" >&2
			failed="$failed build-ci-fuzz(fuzz)"
		fi
	else
		fuzz_loop
	fi
fi

echo
echo "=== which suites ran"
cat "$summaries"
[ "${REQUIRE_ALL:-0}" = 1 ] && echo "(REQUIRE_ALL=1: oracle, kclient and deploy must run in full)"
if [ -n "$failed" ]; then
	stage "FAILED:$failed"
	exit 1
fi
stage "all passed"
