/*
 * testlib.h - the small library every ovlnfsd test links: a TEST_IMPL-style
 * runner (one forked process per case, a timeout per case), assertions,
 * temp trees of overlay layers, and starting/stopping a real ovlnfsd
 * process by PID.
 *
 * Runs in the test process (single-threaded). Never includes libnfs or
 * rpcgen headers, so any test file may include it. Never kills a process it
 * did not start.
 */
#ifndef OVLNFSD_TESTLIB_H
#define OVLNFSD_TESTLIB_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define TL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---------- runner ---------- */

struct tl_case {
	const char *name;    /* <module>_<behaviour> */
	int (*fn)(void);     /* returns 0 (assertions _exit on failure) */
	int timeout_s;       /* 0: 60 s */
};

#define TEST_IMPL(name) static int test_##name(void)
#define TEST_ENTRY(name) { #name, test_##name, 0 }
#define TEST_ENTRY_TIMEOUT(name, secs) { #name, test_##name, (secs) }

/*
 * Run the cases (all, or those named on the command line), each in its own
 * forked process and process group. Prints "ok NAME", "FAIL NAME: why" or
 * "SKIP NAME: why". Returns the process exit status: 0 when nothing failed
 * (and something ran), 77 when every case skipped, 1 otherwise.
 */
int tl_run(int argc, char **argv, const struct tl_case *cases, size_t ncases);

/* Fail the current case: runs the registered cleanups, then _exit(1). */
void tl_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));
/* Skip the current case with a printed reason: cleanups, then _exit(77). */
void tl_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define ASSERT(c)                                                   \
	do {                                                        \
		if (!(c))                                           \
			tl_fail(__FILE__, __LINE__, "assert %s", #c); \
	} while (0)
#define ASSERTF(c, ...)                                             \
	do {                                                        \
		if (!(c))                                           \
			tl_fail(__FILE__, __LINE__, __VA_ARGS__);   \
	} while (0)
#define ASSERT_EQ(a, b)                                                        \
	do {                                                                   \
		long long _a = (long long)(a), _b = (long long)(b);            \
		if (_a != _b)                                                  \
			tl_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld",  \
				#a, #b, _a, _b);                               \
	} while (0)
#define ASSERT_NE(a, b)                                                        \
	do {                                                                   \
		long long _a = (long long)(a), _b = (long long)(b);            \
		if (_a == _b)                                                  \
			tl_fail(__FILE__, __LINE__, "%s != %s: both %lld",     \
				#a, #b, _a);                                   \
	} while (0)
#define ASSERT_STREQ(a, b)                                                     \
	do {                                                                   \
		const char *_a = (a), *_b = (b);                               \
		if (!_a || !_b || strcmp(_a, _b) != 0)                         \
			tl_fail(__FILE__, __LINE__, "%s == %s: '%s' != '%s'",  \
				#a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); \
	} while (0)
#define RETURN_SKIP(...) tl_skip(__VA_ARGS__)
/*
 * Skip for want of something CI provides (root, overlayfs): under
 * REQUIRE_ALL=1 (set by .ci/run) the case fails instead, so a suite that
 * should have run can never pass as skipped.
 */
void tl_skip_ci(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
#define RETURN_SKIP_CI(...) tl_skip_ci(__VA_ARGS__)

/*
 * Cleanups run (last registered first) when a case fails, skips, is
 * stopped by the runner's timeout (SIGTERM), or calls tl_cleanup_all().
 * Returns a token for tl_cleanup_cancel.
 */
int tl_cleanup_push(void (*fn)(void *), void *arg);
void tl_cleanup_cancel(int token);
void tl_cleanup_all(void);

/* Monotonic seconds. */
double tl_now(void);

/* ---------- temp trees and layers ---------- */

/* mkdtemp under /tmp; the tree is removed by tl_rmtree (also on failure). */
struct tl_tree {
	char root[PATH_MAX];
	char upper[PATH_MAX];
	char work[PATH_MAX];
	char state[PATH_MAX];
	char lower[8][PATH_MAX]; /* [0] is the TOP lower */
	int nlower;
	int cleanup_token;
};

/* Create root with nlower lower dirs l0..l{n-1}, upper/, work/, state/. */
void tl_tree_new(struct tl_tree *t, int nlower);
/* Remove the whole tree (unmounting nothing: callers unmount first). */
void tl_tree_free(struct tl_tree *t);
/* "lowerdir=l0:l1..,upperdir=..,workdir=.." (rw) or lowerdir only (ro). */
void tl_tree_opts(const struct tl_tree *t, bool rw, char *buf, size_t len);
/* Same, with the upper dir as the top LOWER (a read-only view of the same tree). */
void tl_tree_opts_ro_view(const struct tl_tree *t, char *buf, size_t len);

/* Path helpers: base + "/" + rel into a static-free buffer. */
void tl_join(char *out, size_t len, const char *base, const char *rel);
/* Entries of a directory, "." and ".." left out; -1 if it cannot be opened. */
int tl_count_entries(const char *path);

/* Layer content helpers; each asserts success. rel is relative to base. */
void tl_mkdir(const char *base, const char *rel, unsigned mode);
void tl_mkdir_p(const char *base, const char *rel);
void tl_write(const char *base, const char *rel, const char *data, unsigned mode);
void tl_write_buf(const char *base, const char *rel, const void *data, size_t len,
		  unsigned mode);
void tl_symlink(const char *base, const char *rel, const char *target);
void tl_whiteout(const char *base, const char *rel);           /* char 0/0 */
void tl_opaque(const char *base, const char *rel);             /* opaque=y */
void tl_xwhiteout_parent(const char *base, const char *rel);   /* opaque=x */
void tl_xwhiteout(const char *base, const char *rel);          /* 0-size + whiteout xattr */
void tl_redirect(const char *base, const char *rel, const char *target);
void tl_chown(const char *base, const char *rel, unsigned uid, unsigned gid);
void tl_set_mtime(const char *base, const char *rel, long sec, long nsec);

/* rm -rf without following symlinks; missing is fine. */
void tl_rmtree(const char *path);

/* Read a whole file into a malloc'd buffer (NUL-terminated); -errno. */
ssize_t tl_read_file(const char *path, char **out);

/* ---------- the server under test ---------- */

struct tl_server {
	pid_t pid;
	int port;
	char log[PATH_MAX];
	char portfile[PATH_MAX];
	int cleanup_token;
};

/*
 * Start $ONFS_SERVER with -o ovl_opts --listen 127.0.0.1:0 --port-file
 * --state-dir state_dir [--export export_path] -f, plus extra (NULL
 * terminated, may be NULL). Waits (bounded) for the port file. Server
 * output goes to a log file in log_dir, printed when the case fails.
 */
void tl_server_start(struct tl_server *s, const char *log_dir, const char *state_dir,
		     const char *ovl_opts, const char *export_path,
		     const char *const *extra);
/* SIGTERM, wait (bounded), assert exit status 0; SIGKILL fallback. */
void tl_server_stop(struct tl_server *s);
/* kill -9 (a crash) and reap it; the case may start it again. */
void tl_server_kill(struct tl_server *s);
/* Servers started from now on drop to uid:gid first (-1, -1: as the test). */
void tl_server_run_as(long uid, long gid);

/* Print the server log (used on failure). */
void tl_server_dump_log(const struct tl_server *s);

#endif
