/*
 * faultinj.c - an LD_PRELOAD fault injector for the reliability tests
 * (test-faults.c): makes chosen file system calls of the process it is
 * loaded into (ovlnfsd) fail with a chosen errno after a number of
 * successes, for files under chosen directories only (the upper and work
 * directories), so that EIO, ENOSPC and EDQUOT arrive in the middle of a
 * copy-up or a write exactly where a test wants them. No dm-error device
 * or special file system is needed.
 *
 * Steering: ONFAULT_CTL names a control file, re-read whenever it changes
 * (its size, mtime or inode), so a test arms and lifts faults while the
 * server runs. One rule per line (a missing or empty file: no faults):
 *
 *     OPS ERRNO AFTER COUNT PREFIX[:PREFIX...]
 *
 *   OPS     comma-separated: pwrite write copy_file_range fsync fdatasync
 *           ftruncate fsetxattr renameat mkdirat linkat symlinkat mknodat
 *           openw (an open for writing or creating), or "any"; pwrite,
 *           openat, renameat, mkdirat also name their libc variants
 *           (pwrite64, open, open64, openat64, rename, renameat2, mkdir)
 *   ERRNO   EIO, ENOSPC, EDQUOT, EROFS or a number; or STALLms (e.g.
 *           STALL3000): the call is held that long, then runs (a slow
 *           disk, not a failure; logged as "fault OP STALL PATH" before
 *           the wait)
 *   AFTER   matching calls let through before the first failure
 *   COUNT   failures to inject, then calls pass again (0: no end)
 *   PREFIX  directories whose files the rule covers (a descriptor's path
 *           is read from /proc/self/fd; a relative name is resolved
 *           against its directory descriptor)
 *
 * A rewrite of the file starts every rule's counts afresh. ONFAULT_LOG, if
 * set, names a file that gets one line per injected failure
 * ("fault OP ERRNO PATH"), so a test can tell its fault really fired.
 *
 * Runs in every thread of the host process; the rules are guarded by one
 * mutex. It calls the real functions through dlsym(RTLD_NEXT) and does
 * its own file access through raw system calls, so it never recurses.
 * Test-only: never installed, never linked into the server.
 */
/* the 32- and 64-bit offset names are both defined here, each as itself */
#undef _FILE_OFFSET_BITS
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

enum {
	OP_PWRITE = 1 << 0,
	OP_WRITE = 1 << 1,
	OP_CFR = 1 << 2,
	OP_FSYNC = 1 << 3,
	OP_FDATASYNC = 1 << 4,
	OP_FTRUNCATE = 1 << 5,
	OP_FSETXATTR = 1 << 6,
	OP_RENAME = 1 << 7,
	OP_MKDIR = 1 << 8,
	OP_LINK = 1 << 9,
	OP_SYMLINK = 1 << 10,
	OP_MKNOD = 1 << 11,
	OP_OPENW = 1 << 12,
};

#define MAX_RULES 8
#define MAX_PREFIXES 4

struct rule {
	unsigned ops;
	int err;
	long after;  /* matching calls still to let through */
	long count;  /* failures still to inject; -1: no end */
	int nprefix;
	char prefix[MAX_PREFIXES][PATH_MAX];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct rule rules[MAX_RULES];
static int nrules;
static struct stat ctl_seen; /* identity of the control file last parsed */
static bool ctl_parsed;

static const struct {
	const char *name;
	unsigned op;
} op_names[] = {
	{ "pwrite", OP_PWRITE },       { "write", OP_WRITE },     { "copy_file_range", OP_CFR },
	{ "fsync", OP_FSYNC },         { "fdatasync", OP_FDATASYNC },
	{ "ftruncate", OP_FTRUNCATE }, { "fsetxattr", OP_FSETXATTR },
	{ "renameat", OP_RENAME },     { "mkdirat", OP_MKDIR },   { "linkat", OP_LINK },
	{ "symlinkat", OP_SYMLINK },   { "mknodat", OP_MKNOD },   { "openw", OP_OPENW },
	{ "any", ~0u },
};

static const char *op_name(unsigned op)
{
	for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (op_names[i].op == op)
			return op_names[i].name;
	return "?";
}

static int parse_errno(const char *s)
{
	if (!strcmp(s, "EIO"))
		return EIO;
	if (!strcmp(s, "ENOSPC"))
		return ENOSPC;
	if (!strcmp(s, "EDQUOT"))
		return EDQUOT;
	if (!strcmp(s, "EROFS"))
		return EROFS;
	if (!strncmp(s, "STALL", 5) && atoi(s + 5) > 0)
		return -atoi(s + 5); /* negative: milliseconds to hold the call */
	return atoi(s) > 0 ? atoi(s) : EIO;
}

static const char *errno_name(int e)
{
	switch (e) {
	case EIO:
		return "EIO";
	case ENOSPC:
		return "ENOSPC";
	case EDQUOT:
		return "EDQUOT";
	case EROFS:
		return "EROFS";
	default:
		if (e < 0)
			return "STALL";
		return "errno";
	}
}

static void parse_rule(char *line)
{
	char *ops, *err, *after, *count, *prefixes, *save = NULL, *tok;
	struct rule *r;

	ops = strtok_r(line, " \t", &save);
	err = strtok_r(NULL, " \t", &save);
	after = strtok_r(NULL, " \t", &save);
	count = strtok_r(NULL, " \t", &save);
	prefixes = strtok_r(NULL, " \t\n", &save);
	if (!ops || ops[0] == '#' || !prefixes || nrules >= MAX_RULES)
		return;
	r = &rules[nrules];
	memset(r, 0, sizeof(*r));
	for (tok = strtok_r(ops, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
			if (!strcmp(tok, op_names[i].name))
				r->ops |= op_names[i].op;
	r->err = parse_errno(err);
	r->after = atol(after);
	r->count = atol(count) > 0 ? atol(count) : -1;
	for (tok = strtok_r(prefixes, ":", &save); tok && r->nprefix < MAX_PREFIXES;
	     tok = strtok_r(NULL, ":", &save)) {
		size_t n = strlen(tok);

		while (n > 1 && tok[n - 1] == '/')
			tok[--n] = '\0';
		if (n > 0 && n < PATH_MAX)
			memcpy(r->prefix[r->nprefix++], tok, n + 1);
	}
	if (r->ops && r->nprefix)
		nrules++;
}

/* Under lock: re-read the control file if it changed. */
static void reload(void)
{
	const char *ctl = getenv("ONFAULT_CTL");
	char buf[8192], *line, *save = NULL;
	struct stat st;
	ssize_t n = 0;
	int fd;

	if (!ctl || stat(ctl, &st) < 0) {
		nrules = 0;
		ctl_parsed = false;
		return;
	}
	if (ctl_parsed && st.st_ino == ctl_seen.st_ino && st.st_size == ctl_seen.st_size &&
	    st.st_mtim.tv_sec == ctl_seen.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == ctl_seen.st_mtim.tv_nsec)
		return;
	ctl_seen = st;
	ctl_parsed = true;
	nrules = 0;
	fd = (int)syscall(SYS_openat, AT_FDCWD, ctl, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
	syscall(SYS_close, fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char copy[8192];

		snprintf(copy, sizeof(copy), "%s", line);
		parse_rule(copy);
	}
}

static bool fd_path(int fd, char *out, size_t len)
{
	char proc[64];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, out, len - 1);
	if (n <= 0)
		return false;
	out[n] = '\0';
	return true;
}

static bool at_path(int dirfd, const char *name, char *out, size_t len)
{
	char dir[PATH_MAX];

	if (!name)
		return false;
	if (name[0] == '/') {
		snprintf(out, len, "%s", name);
		return true;
	}
	if (dirfd == AT_FDCWD) {
		if (!getcwd(dir, sizeof(dir)))
			return false;
	} else if (!fd_path(dirfd, dir, sizeof(dir))) {
		return false;
	}
	if (strlen(dir) + 1 + strlen(name) >= len)
		return false;
	memcpy(out, dir, strlen(dir));
	out[strlen(dir)] = '/';
	memcpy(out + strlen(dir) + 1, name, strlen(name) + 1);
	return true;
}

static bool under(const struct rule *r, const char *path)
{
	for (int i = 0; i < r->nprefix; i++) {
		size_t n = strlen(r->prefix[i]);

		if (strncmp(path, r->prefix[i], n) == 0 && (path[n] == '/' || path[n] == '\0' ||
							    path[n] == ' '))
			return true;
	}
	return false;
}

static void log_fault(unsigned op, int err, const char *path)
{
	const char *log = getenv("ONFAULT_LOG");
	char line[PATH_MAX + 64];
	int fd, n;

	if (!log)
		return;
	n = snprintf(line, sizeof(line), "fault %s %s %s\n", op_name(op), errno_name(err), path);
	fd = (int)syscall(SYS_openat, AT_FDCWD, log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
			  0644);
	if (fd < 0)
		return;
	if (n > (int)sizeof(line))
		n = (int)sizeof(line);
	(void)syscall(SYS_write, fd, line, (size_t)n);
	syscall(SYS_close, fd);
}

/*
 * Should this call fail? The path is worked out only when a rule names
 * the operation. Returns the errno to fail with, or 0 (after holding the
 * call for a STALL rule).
 */
static int should_fail(unsigned op, int fd, int dirfd, const char *name)
{
	char path[PATH_MAX];
	bool have_path = false, path_ok = false;
	int ret = 0;

	pthread_mutex_lock(&lock);
	reload();
	for (int i = 0; i < nrules && !ret; i++) {
		struct rule *r = &rules[i];

		if (!(r->ops & op) || r->count == 0)
			continue;
		if (!have_path) {
			have_path = true;
			path_ok = name ? at_path(dirfd, name, path, sizeof(path))
				       : fd_path(fd, path, sizeof(path));
		}
		if (!path_ok || !under(r, path))
			continue;
		if (r->after > 0) {
			r->after--;
			continue;
		}
		if (r->count > 0)
			r->count--;
		ret = r->err;
	}
	pthread_mutex_unlock(&lock);
	if (ret)
		log_fault(op, ret, path);
	if (ret < 0) {
		struct timespec ts = { -ret / 1000, (long)(-ret % 1000) * 1000000L };

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		ret = 0;
	}
	return ret;
}

#define REAL(ret, name, ...)                                            \
	static ret (*real_##name)(__VA_ARGS__);                           \
	static void resolve_##name(void)                                  \
	{                                                                 \
		if (!real_##name)                                         \
			*(void **)&real_##name = dlsym(RTLD_NEXT, #name); \
	}

REAL(ssize_t, pwrite, int, const void *, size_t, off_t)
REAL(ssize_t, pwrite64, int, const void *, size_t, off64_t)
REAL(ssize_t, write, int, const void *, size_t)
REAL(ssize_t, copy_file_range, int, loff_t *, int, loff_t *, size_t, unsigned)
REAL(int, fsync, int)
REAL(int, fdatasync, int)
REAL(int, ftruncate, int, off_t)
REAL(int, ftruncate64, int, off64_t)
REAL(int, fsetxattr, int, const char *, const void *, size_t, int)
REAL(int, rename, const char *, const char *)
REAL(int, renameat, int, const char *, int, const char *)
REAL(int, renameat2, int, const char *, int, const char *, unsigned)
REAL(int, mkdir, const char *, mode_t)
REAL(int, mkdirat, int, const char *, mode_t)
REAL(int, linkat, int, const char *, int, const char *, int)
REAL(int, symlinkat, const char *, int, const char *)
REAL(int, mknodat, int, const char *, mode_t, dev_t)
REAL(int, open, const char *, int, ...)
REAL(int, open64, const char *, int, ...)
REAL(int, openat, int, const char *, int, ...)
REAL(int, openat64, int, const char *, int, ...)

#define FAIL_IF(e)            \
	do {                  \
		int _e = (e); \
		if (_e) {     \
			errno = _e; \
			return -1;  \
		}             \
	} while (0)

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	resolve_pwrite();
	FAIL_IF(should_fail(OP_PWRITE, fd, 0, NULL));
	return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	resolve_pwrite64();
	FAIL_IF(should_fail(OP_PWRITE, fd, 0, NULL));
	return real_pwrite64(fd, buf, n, off);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	resolve_write();
	FAIL_IF(should_fail(OP_WRITE, fd, 0, NULL));
	return real_write(fd, buf, n);
}

ssize_t copy_file_range(int in, loff_t *inoff, int out, loff_t *outoff, size_t n, unsigned fl)
{
	resolve_copy_file_range();
	FAIL_IF(should_fail(OP_CFR, out, 0, NULL));
	return real_copy_file_range(in, inoff, out, outoff, n, fl);
}

int fsync(int fd)
{
	resolve_fsync();
	FAIL_IF(should_fail(OP_FSYNC, fd, 0, NULL));
	return real_fsync(fd);
}

int fdatasync(int fd)
{
	resolve_fdatasync();
	FAIL_IF(should_fail(OP_FDATASYNC, fd, 0, NULL));
	return real_fdatasync(fd);
}

int ftruncate(int fd, off_t len)
{
	resolve_ftruncate();
	FAIL_IF(should_fail(OP_FTRUNCATE, fd, 0, NULL));
	return real_ftruncate(fd, len);
}

int ftruncate64(int fd, off64_t len)
{
	resolve_ftruncate64();
	FAIL_IF(should_fail(OP_FTRUNCATE, fd, 0, NULL));
	return real_ftruncate64(fd, len);
}

int fsetxattr(int fd, const char *name, const void *val, size_t n, int flags)
{
	resolve_fsetxattr();
	FAIL_IF(should_fail(OP_FSETXATTR, fd, 0, NULL));
	return real_fsetxattr(fd, name, val, n, flags);
}

int rename(const char *from, const char *to)
{
	resolve_rename();
	FAIL_IF(should_fail(OP_RENAME, -1, AT_FDCWD, from));
	return real_rename(from, to);
}

int renameat(int fdir, const char *from, int tdir, const char *to)
{
	resolve_renameat();
	FAIL_IF(should_fail(OP_RENAME, -1, fdir, from));
	return real_renameat(fdir, from, tdir, to);
}

int renameat2(int fdir, const char *from, int tdir, const char *to, unsigned flags)
{
	resolve_renameat2();
	FAIL_IF(should_fail(OP_RENAME, -1, fdir, from));
	return real_renameat2(fdir, from, tdir, to, flags);
}

int mkdir(const char *path, mode_t mode)
{
	resolve_mkdir();
	FAIL_IF(should_fail(OP_MKDIR, -1, AT_FDCWD, path));
	return real_mkdir(path, mode);
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
	resolve_mkdirat();
	FAIL_IF(should_fail(OP_MKDIR, -1, dirfd, path));
	return real_mkdirat(dirfd, path, mode);
}

int linkat(int odir, const char *from, int ndir, const char *to, int flags)
{
	resolve_linkat();
	FAIL_IF(should_fail(OP_LINK, -1, ndir, to));
	return real_linkat(odir, from, ndir, to, flags);
}

int symlinkat(const char *target, int dirfd, const char *name)
{
	resolve_symlinkat();
	FAIL_IF(should_fail(OP_SYMLINK, -1, dirfd, name));
	return real_symlinkat(target, dirfd, name);
}

int mknodat(int dirfd, const char *name, mode_t mode, dev_t dev)
{
	resolve_mknodat();
	FAIL_IF(should_fail(OP_MKNOD, -1, dirfd, name));
	return real_mknodat(dirfd, name, mode, dev);
}

static bool opens_for_writing(int flags)
{
	return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0 &&
	       (flags & O_PATH) != O_PATH;
}

/* mode is read only when the flags say it was passed (O_CREAT, O_TMPFILE) */
#define OPEN_MODE(flags, mode)                                              \
	do {                                                                \
		if ((flags) & (O_CREAT | __O_TMPFILE)) {                   \
			va_list ap;                                         \
			va_start(ap, flags);                                \
			mode = va_arg(ap, int);                             \
			va_end(ap);                                         \
		}                                                           \
	} while (0)

int open(const char *path, int flags, ...)
{
	int mode = 0;

	OPEN_MODE(flags, mode);
	resolve_open();
	if (opens_for_writing(flags))
		FAIL_IF(should_fail(OP_OPENW, -1, AT_FDCWD, path));
	return real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	int mode = 0;

	OPEN_MODE(flags, mode);
	resolve_open64();
	if (opens_for_writing(flags))
		FAIL_IF(should_fail(OP_OPENW, -1, AT_FDCWD, path));
	return real_open64(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
	int mode = 0;

	OPEN_MODE(flags, mode);
	resolve_openat();
	if (opens_for_writing(flags))
		FAIL_IF(should_fail(OP_OPENW, -1, dirfd, path));
	return real_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
	int mode = 0;

	OPEN_MODE(flags, mode);
	resolve_openat64();
	if (opens_for_writing(flags))
		FAIL_IF(should_fail(OP_OPENW, -1, dirfd, path));
	return real_openat64(dirfd, path, flags, mode);
}
