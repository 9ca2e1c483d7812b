/*
 * testlib.c - test runner, temp layer trees and server process control for
 * the ovlnfsd tests (see testlib.h).
 *
 * Runs in the test process; each case runs in a forked child. The runner
 * kills only the process group of a child it forked itself; a case stops
 * each server it started by that server's PID. Never includes libnfs or
 * rpcgen headers.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testlib.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

/* ---------- cleanups ---------- */

#define TL_MAX_CLEANUPS 64

struct tl_cleanup {
	void (*fn)(void *);
	void *arg;
	bool active;
};

static struct tl_cleanup cleanups[TL_MAX_CLEANUPS];
static int ncleanups;
static bool tl_failing;
static int live_servers; /* started by this case and not yet stopped */
static const char *current_case = "?";

int tl_cleanup_push(void (*fn)(void *), void *arg)
{
	if (ncleanups >= TL_MAX_CLEANUPS) {
		fprintf(stdout, "FAIL %s: too many cleanups\n", current_case);
		_exit(1);
	}
	cleanups[ncleanups].fn = fn;
	cleanups[ncleanups].arg = arg;
	cleanups[ncleanups].active = true;
	return ncleanups++;
}

void tl_cleanup_cancel(int token)
{
	if (token >= 0 && token < ncleanups)
		cleanups[token].active = false;
}

void tl_cleanup_all(void)
{
	while (ncleanups > 0) {
		struct tl_cleanup *c = &cleanups[--ncleanups];
		if (c->active) {
			c->active = false;
			c->fn(c->arg);
		}
	}
}

void tl_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stdout, "FAIL %s: %s:%d: ", current_case, file, line);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fprintf(stdout, "\n");
	fflush(stdout);
	tl_failing = true;
	tl_cleanup_all();
	fflush(stdout);
	_exit(1);
}

void tl_skip(const char *fmt, ...)
{
	va_list ap;

	fprintf(stdout, "SKIP %s: ", current_case);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fprintf(stdout, "\n");
	fflush(stdout);
	tl_cleanup_all();
	fflush(stdout);
	_exit(77);
}

void tl_skip_ci(const char *fmt, ...)
{
	va_list ap;
	const char *req = getenv("REQUIRE_ALL");
	bool fail = req && strcmp(req, "1") == 0;

	fprintf(stdout, fail ? "FAIL %s: REQUIRE_ALL=1 and it would skip: " : "SKIP %s: ",
		current_case);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fprintf(stdout, "\n");
	fflush(stdout);
	tl_failing = fail;
	tl_cleanup_all();
	fflush(stdout);
	_exit(fail ? 1 : 77);
}

double tl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------- runner ---------- */

static void on_term(int sig)
{
	(void)sig;
	/* The runner's timeout: undo what the case set up, then go. */
	fprintf(stdout, "FAIL %s: timed out\n", current_case);
	tl_failing = true;
	tl_cleanup_all();
	fflush(stdout);
	_exit(2);
}

static bool selected(int argc, char **argv, const char *name)
{
	if (argc <= 1)
		return true;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return true;
	return false;
}

static int run_one(const struct tl_case *c)
{
	int timeout = c->timeout_s > 0 ? c->timeout_s : 60;
	const char *mult = getenv("ONFS_TEST_TIMEOUT_MULT");
	int status = 0;
	pid_t pid;
	double deadline;

	if (mult && atoi(mult) > 1)
		timeout *= atoi(mult);
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		fprintf(stdout, "FAIL %s: fork: %s\n", c->name, strerror(errno));
		return 1;
	}
	if (pid == 0) {
		struct sigaction sa;

		setpgid(0, 0);
		/* If the runner dies (meson's timeout), the case cleans up and goes. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		current_case = c->name;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_term;
		sigaction(SIGTERM, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
		c->fn();
		if (live_servers > 0) {
			fprintf(stdout, "FAIL %s: %d server(s) left running by the case\n",
				c->name, live_servers);
			tl_failing = true;
			tl_cleanup_all();
			fflush(stdout);
			_exit(1);
		}
		tl_cleanup_all();
		fflush(stdout);
		_exit(0);
	}
	setpgid(pid, pid);
	deadline = tl_now() + timeout;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			fprintf(stdout, "FAIL %s: waitpid: %s\n", c->name, strerror(errno));
			return 1;
		}
		if (tl_now() > deadline) {
			double grace = tl_now() + 15;
			kill(pid, SIGTERM);
			while (waitpid(pid, &status, WNOHANG) != pid) {
				if (tl_now() > grace) {
					/* The case's own group: its servers go too. */
					kill(-pid, SIGKILL);
					waitpid(pid, &status, 0);
					break;
				}
				usleep(20000);
			}
			fprintf(stdout, "FAIL %s: timed out after %d s\n", c->name, timeout);
			return 1;
		}
		usleep(5000);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		fprintf(stdout, "ok %s\n", c->name);
		return 0;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		return 77;
	if (WIFSIGNALED(status))
		fprintf(stdout, "FAIL %s: killed by signal %d\n", c->name, WTERMSIG(status));
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 1 && WEXITSTATUS(status) != 2)
		fprintf(stdout, "FAIL %s: exit status %d\n", c->name, WEXITSTATUS(status));
	return 1;
}

int tl_run(int argc, char **argv, const struct tl_case *cases, size_t ncases)
{
	size_t ran = 0, failed = 0, skipped = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < ncases; i++) {
		int r;

		if (!selected(argc, argv, cases[i].name))
			continue;
		ran++;
		r = run_one(&cases[i]);
		if (r == 77)
			skipped++;
		else if (r != 0)
			failed++;
	}
	fprintf(stdout, "# %zu cases: %zu passed, %zu failed, %zu skipped\n", ran,
		ran - failed - skipped, failed, skipped);
	if (ran == 0)
		return 1;
	if (failed)
		return 1;
	if (skipped == ran)
		return 77;
	return 0;
}

/* ---------- paths and layers ---------- */

void tl_join(char *out, size_t len, const char *base, const char *rel)
{
	int n;

	if (!rel || !*rel)
		n = snprintf(out, len, "%s", base);
	else
		n = snprintf(out, len, "%s/%s", base, rel);
	if (n < 0 || (size_t)n >= len)
		tl_fail(__FILE__, __LINE__, "path too long: %s/%s", base, rel);
}

int tl_count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void tree_cleanup(void *arg)
{
	/* arg is a private copy of the root path: the tree may be on a stack
	 * frame that is gone by the time cleanups run. */
	tl_rmtree(arg);
	free(arg);
}

void tl_tree_new(struct tl_tree *t, int nlower)
{
	char tmpl[] = "/tmp/onfs-test-XXXXXX";

	ASSERT(nlower >= 0 && nlower <= 8);
	memset(t, 0, sizeof(*t));
	ASSERTF(mkdtemp(tmpl) != NULL, "mkdtemp: %s", strerror(errno));
	snprintf(t->root, sizeof(t->root), "%s", tmpl);
	t->cleanup_token = tl_cleanup_push(tree_cleanup, strdup(t->root));
	tl_join(t->upper, sizeof(t->upper), t->root, "upper");
	tl_join(t->work, sizeof(t->work), t->root, "work");
	tl_join(t->state, sizeof(t->state), t->root, "state");
	tl_mkdir(t->root, "upper", 0755);
	tl_mkdir(t->root, "work", 0755);
	tl_mkdir(t->root, "state", 0700);
	t->nlower = nlower;
	for (int i = 0; i < nlower; i++) {
		char name[16];
		snprintf(name, sizeof(name), "l%d", i);
		tl_join(t->lower[i], sizeof(t->lower[i]), t->root, name);
		tl_mkdir(t->root, name, 0755);
	}
}

void tl_tree_free(struct tl_tree *t)
{
	tl_cleanup_cancel(t->cleanup_token);
	tl_rmtree(t->root);
}

static void append(char *buf, size_t len, const char *s)
{
	size_t used = strlen(buf);

	if (used + strlen(s) + 1 > len)
		tl_fail(__FILE__, __LINE__, "option string too long");
	memcpy(buf + used, s, strlen(s) + 1);
}

void tl_tree_opts(const struct tl_tree *t, bool rw, char *buf, size_t len)
{
	buf[0] = 0;
	append(buf, len, "lowerdir=");
	for (int i = 0; i < t->nlower; i++) {
		if (i)
			append(buf, len, ":");
		append(buf, len, t->lower[i]);
	}
	if (rw) {
		append(buf, len, ",upperdir=");
		append(buf, len, t->upper);
		append(buf, len, ",workdir=");
		append(buf, len, t->work);
	}
}

void tl_tree_opts_ro_view(const struct tl_tree *t, char *buf, size_t len)
{
	buf[0] = 0;
	append(buf, len, "lowerdir=");
	append(buf, len, t->upper);
	for (int i = 0; i < t->nlower; i++) {
		append(buf, len, ":");
		append(buf, len, t->lower[i]);
	}
}

void tl_mkdir(const char *base, const char *rel, unsigned mode)
{
	char p[PATH_MAX];

	tl_join(p, sizeof(p), base, rel);
	ASSERTF(mkdir(p, mode) == 0, "mkdir '%s': %s", p, strerror(errno));
	/* mkdir obeys the umask; layers must hold exactly the mode asked. */
	ASSERTF(chmod(p, mode) == 0, "chmod '%s': %s", p, strerror(errno));
}

void tl_mkdir_p(const char *base, const char *rel)
{
	char p[PATH_MAX];

	tl_join(p, sizeof(p), base, rel);
	for (char *s = p + strlen(base) + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			tl_fail(__FILE__, __LINE__, "mkdir '%s': %s", p, strerror(errno));
		*s = '/';
	}
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		tl_fail(__FILE__, __LINE__, "mkdir '%s': %s", p, strerror(errno));
}

void tl_write_buf(const char *base, const char *rel, const void *data, size_t len,
		  unsigned mode)
{
	char p[PATH_MAX];
	const char *d = data;
	int fd;

	tl_join(p, sizeof(p), base, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ASSERTF(fd >= 0, "open '%s': %s", p, strerror(errno));
	while (len > 0) {
		ssize_t n = write(fd, d, len);
		ASSERTF(n > 0, "write '%s': %s", p, strerror(errno));
		d += n;
		len -= (size_t)n;
	}
	ASSERTF(fchmod(fd, mode) == 0, "fchmod '%s': %s", p, strerror(errno));
	close(fd);
}

void tl_write(const char *base, const char *rel, const char *data, unsigned mode)
{
	tl_write_buf(base, rel, data, strlen(data), mode);
}

void tl_symlink(const char *base, const char *rel, const char *target)
{
	char p[PATH_MAX];

	tl_join(p, sizeof(p), base, rel);
	ASSERTF(symlink(target, p) == 0, "symlink '%s': %s", p, strerror(errno));
}

void tl_whiteout(const char *base, const char *rel)
{
	char p[PATH_MAX];

	tl_join(p, sizeof(p), base, rel);
	ASSERTF(mknod(p, S_IFCHR | 0, makedev(0, 0)) == 0, "mknod '%s': %s", p,
		strerror(errno));
}

static void set_xattr(const char *base, const char *rel, const char *name,
		      const char *value)
{
	char p[PATH_MAX];

	tl_join(p, sizeof(p), base, rel);
	if (lsetxattr(p, name, value, strlen(value), 0) != 0) {
		if (errno == EPERM && geteuid() != 0)
			tl_skip("not root: cannot set %s (trusted.* xattrs need CAP_SYS_ADMIN)",
				name);
		tl_fail(__FILE__, __LINE__, "setxattr %s on '%s': %s", name, p, strerror(errno));
	}
}

void tl_opaque(const char *base, const char *rel)
{
	set_xattr(base, rel, "trusted.overlay.opaque", "y");
}

void tl_xwhiteout_parent(const char *base, const char *rel)
{
	set_xattr(base, rel, "trusted.overlay.opaque", "x");
}

void tl_xwhiteout(const char *base, const char *rel)
{
	tl_write(base, rel, "", 0644);
	set_xattr(base, rel, "trusted.overlay.whiteout", "y");
}

void tl_redirect(const char *base, const char *rel, const char *target)
{
	set_xattr(base, rel, "trusted.overlay.redirect", target);
}

void tl_chown(const char *base, const char *rel, unsigned uid, unsigned gid)
{
	char p[PATH_MAX];

	tl_join(p, sizeof(p), base, rel);
	if (lchown(p, uid, gid) != 0 && errno == EPERM && geteuid() != 0)
		tl_skip("not root: cannot chown layer files");
	ASSERTF(lchown(p, uid, gid) == 0, "chown '%s': %s", p, strerror(errno));
}

void tl_set_mtime(const char *base, const char *rel, long sec, long nsec)
{
	char p[PATH_MAX];
	struct timespec ts[2] = { { sec, nsec }, { sec, nsec } };

	tl_join(p, sizeof(p), base, rel);
	ASSERTF(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW) == 0, "utimensat '%s': %s",
		p, strerror(errno));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void tl_rmtree(const char *path)
{
	if (!path || !*path || strcmp(path, "/") == 0)
		return;
	nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

ssize_t tl_read_file(const char *path, char **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 256, len = 0;
	char *buf;

	*out = NULL;
	if (fd < 0)
		return -errno;
	buf = malloc(cap);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t n;
		if (len + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			int e = errno;
			free(buf);
			close(fd);
			return -e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = 0;
	*out = buf;
	return (ssize_t)len;
}

/* ---------- server ---------- */

void tl_server_dump_log(const struct tl_server *s)
{
	char *log = NULL;
	ssize_t n = tl_read_file(s->log, &log);

	if (n < 0) {
		fprintf(stdout, "# (no server log at %s)\n", s->log);
		return;
	}
	/* The tail is what explains a failure. */
	const char *start = log;
	if (n > 6000)
		start = log + n - 6000;
	fprintf(stdout, "# ---- server log (pid %d) %s ----\n%s# ---- end of log ----\n",
		(int)s->pid, s->log, start);
	free(log);
}

/* A private copy of the server's identity, for the same reason as above. */
struct server_rec {
	struct tl_server s;
};

static void server_kill(void *arg)
{
	struct server_rec *r = arg;
	int status;

	if (r->s.pid > 0) {
		kill(r->s.pid, SIGKILL);
		waitpid(r->s.pid, &status, 0);
		live_servers--;
		if (tl_failing)
			tl_server_dump_log(&r->s);
	}
	free(r);
}

static const char *server_path(void)
{
	const char *p = getenv("ONFS_SERVER");

	if (!p || !*p)
		tl_fail(__FILE__, __LINE__, "ONFS_SERVER is not set (path of the ovlnfsd binary)");
	if (access(p, X_OK) != 0)
		tl_fail(__FILE__, __LINE__, "ONFS_SERVER '%s' is not executable: %s", p,
			strerror(errno));
	return p;
}

/* The identity servers started from now on run as (-1: the test's own). */
static long run_as_uid = -1, run_as_gid = -1;

void tl_server_run_as(long uid, long gid)
{
	run_as_uid = uid;
	run_as_gid = gid;
}

void tl_server_start(struct tl_server *s, const char *log_dir, const char *state_dir,
		     const char *ovl_opts, const char *export_path,
		     const char *const *extra)
{
	static int seq;
	const char *argv[64];
	int argc = 0;
	const char *bin = server_path();
	double deadline;
	pid_t pid;

	memset(s, 0, sizeof(*s));
	seq++;
	snprintf(s->log, sizeof(s->log), "%s/server-%d-%d.log", log_dir, (int)getpid(), seq);
	snprintf(s->portfile, sizeof(s->portfile), "%s/port-%d-%d", log_dir, (int)getpid(),
		 seq);
	unlink(s->portfile);

	argv[argc++] = bin;
	if (ovl_opts) {
		argv[argc++] = "-o";
		argv[argc++] = ovl_opts;
	}
	argv[argc++] = "--listen";
	argv[argc++] = "127.0.0.1:0";
	argv[argc++] = "--port-file";
	argv[argc++] = s->portfile;
	if (state_dir) {
		argv[argc++] = "--state-dir";
		argv[argc++] = state_dir;
	}
	if (export_path) {
		argv[argc++] = "--export";
		argv[argc++] = export_path;
	}
	argv[argc++] = "-f";
	for (int i = 0; extra && extra[i] && argc < 62; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;

	fflush(stdout);
	pid = fork();
	ASSERTF(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);

		/* If the test process dies, so does its server. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (nul >= 0)
			dup2(nul, 0);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		if (run_as_uid >= 0 &&
		    (setgroups(0, NULL) < 0 || setresgid((gid_t)run_as_gid, (gid_t)run_as_gid,
							 (gid_t)run_as_gid) < 0 ||
		     setresuid((uid_t)run_as_uid, (uid_t)run_as_uid, (uid_t)run_as_uid) < 0)) {
			dprintf(2, "cannot run as %ld:%ld: %s\n", run_as_uid, run_as_gid,
				strerror(errno));
			_exit(126);
		}
		execv(bin, (char *const *)argv);
		dprintf(2, "exec '%s': %s\n", bin, strerror(errno));
		_exit(127);
	}
	s->pid = pid;
	live_servers++;
	{
		struct server_rec *rec = malloc(sizeof(*rec));
		ASSERT(rec != NULL);
		rec->s = *s;
		s->cleanup_token = tl_cleanup_push(server_kill, rec);
	}

	/* ASan builds start slowly; this is a bound, not a speed check. */
	deadline = tl_now() + 60;
	for (;;) {
		char *txt = NULL;
		int status;
		ssize_t n = tl_read_file(s->portfile, &txt);

		if (n > 0 && txt[n - 1] == '\n') {
			char *end;
			long port = strtol(txt, &end, 10);
			free(txt);
			ASSERTF(port > 0 && port < 65536, "port file '%s' holds no port",
				s->portfile);
			s->port = (int)port;
			break;
		}
		free(txt);
		if (waitpid(pid, &status, WNOHANG) == pid) {
			s->pid = 0;
			live_servers--;
			tl_cleanup_cancel(s->cleanup_token);
			tl_server_dump_log(s);
			tl_fail(__FILE__, __LINE__,
				"server exited before writing its port file (status 0x%x)", status);
		}
		if (tl_now() > deadline)
			tl_fail(__FILE__, __LINE__, "server wrote no port file in 60 s");
		usleep(10000);
	}
}

void tl_server_kill(struct tl_server *s)
{
	int status;

	ASSERT(s->pid > 0);
	tl_cleanup_cancel(s->cleanup_token);
	live_servers--;
	ASSERTF(kill(s->pid, SIGKILL) == 0, "kill -9 %d: %s", (int)s->pid, strerror(errno));
	ASSERT(waitpid(s->pid, &status, 0) == s->pid);
	s->pid = 0;
}

void tl_server_stop(struct tl_server *s)
{
	double deadline;
	int status = 0;
	pid_t pid = s->pid;

	ASSERT(pid > 0);
	tl_cleanup_cancel(s->cleanup_token);
	live_servers--;
	ASSERTF(kill(pid, SIGTERM) == 0, "kill %d: %s", (int)pid, strerror(errno));
	deadline = tl_now() + 30;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (tl_now() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			s->pid = 0;
			tl_server_dump_log(s);
			tl_fail(__FILE__, __LINE__, "server %d did not exit within 30 s of SIGTERM",
				(int)pid);
		}
		usleep(5000);
	}
	s->pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		tl_server_dump_log(s);
		if (WIFSIGNALED(status))
			tl_fail(__FILE__, __LINE__, "server %d died of signal %d after SIGTERM",
				(int)pid, WTERMSIG(status));
		tl_fail(__FILE__, __LINE__, "server %d exited with status %d after SIGTERM",
			(int)pid, WEXITSTATUS(status));
	}
}
