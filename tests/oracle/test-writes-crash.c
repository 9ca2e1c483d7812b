/*
 * test-writes-crash.c - crash safety of the write path: a scripted stream
 * of mutations through libnfs (copy-ups of big lower files, renames of
 * lower directories within and across directories, emptying and removing
 * lower directories, creates) while the test SIGKILLs the server. Which
 * operations are hit and when comes from rand() seeded with ONFS_CRASH_SEED
 * (default: the clock; always printed, so a run can be repeated): an armed
 * operation gets a timer thread that fires 0-15 ms into it, and if the
 * operation finished first the server is killed right after its reply
 * (then every acknowledged change must survive). So every armed operation
 * is a kill, and the first three operations are always armed: the floor of
 * three kills cannot miss on a fast machine. After each kill the server is
 * restarted and:
 *   - work/ must be empty once the server serves again (startup scrub), and
 *     every entry of index/ must be one the kernel accepts (a name that is
 *     an ovl_fb, a hard link carrying that origin, a directory with an upper
 *     handle, or a whiteout; no temporary name);
 *   - the merged tree must equal the state before or the state after the
 *     interrupted operation (a plain directory, the "model", gets every
 *     operation too, so both states are known): type, mode, size, data,
 *     link target, owner, and the mtime of every object no operation
 *     changed (copy-up keeps it to the nanosecond; a WRITE killed before
 *     its data went in may have moved its own file's mtime, as a killed
 *     local write does); if it equals the state before, the operation is
 *     run again and must then succeed.
 * At the end the server is stopped and the kernel overlay (index=on,
 * nfs_export=on,redirect_dir=on) must mount the result and show the final
 * model, user.* xattrs included (NFSv3 cannot show them; copy-up must keep
 * them). Bounded: stops issuing operations after ONFS_CRASH_SECONDS
 * (default 60) seconds.
 *
 * Runs as root in a forked test process. Starts and kills its own server
 * processes by PID (testlib's start/stop assume a clean stop); a cleanup
 * kills the current one if the case fails. Includes libnfs headers.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "nfsclient.h"
#include "testlib.h"

#define NBIG 6
#define BIG_MB 8

/* ---------- trees: type, mode, size, content hash, link target ---------- */

struct cent {
	char *path;
	uint32_t mode;
	uint64_t size;
	uint64_t hash;
	char *target;
	uint32_t uid, gid;
	struct timespec mtime;
	char *xattrs; /* "name=value;..." of user.* (local walks only), or NULL */
};

/* Objects whose mtime is older than this were changed by no operation. */
static struct timespec ops_start;

struct ctree {
	struct cent *e;
	size_t n, cap;
};

static void ct_free(struct ctree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->e[i].path);
		free(t->e[i].target);
		free(t->e[i].xattrs);
	}
	free(t->e);
	memset(t, 0, sizeof(*t));
}

static struct cent *ct_add(struct ctree *t, const char *path)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->e = realloc(t->e, t->cap * sizeof(*t->e));
		ASSERT(t->e != NULL);
	}
	memset(&t->e[t->n], 0, sizeof(t->e[0]));
	t->e[t->n].path = strdup(path);
	return &t->e[t->n++];
}

static int cent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cent *)a)->path, ((const struct cent *)b)->path);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++) {
		h ^= c[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static char *relj(const char *dir, const char *name)
{
	char *p;

	ASSERT(asprintf(&p, "%s%s%s", dir, *dir ? "/" : "", name) > 0);
	return p;
}

static struct {
	ino_t ino;
	off_t size;
	struct timespec ct;
	uint64_t hash;
} cache[256];
static size_t ncache;

/* user.* xattrs of path, sorted, as "name=value;" (values are short text) */
static char *user_xattrs(const char *path)
{
	char names[4096], *out = NULL, *names_v[64];
	size_t nn = 0, len = 0;
	ssize_t n = llistxattr(path, names, sizeof(names));

	ASSERTF(n >= 0, "llistxattr %s: %s", path, strerror(errno));
	for (ssize_t off = 0; off < n; off += (ssize_t)strlen(names + off) + 1)
		if (strncmp(names + off, "user.", 5) == 0 && nn < 64)
			names_v[nn++] = names + off;
	for (size_t i = 1; i < nn; i++)
		for (size_t j = i; j > 0 && strcmp(names_v[j - 1], names_v[j]) > 0; j--) {
			char *x = names_v[j];
			names_v[j] = names_v[j - 1];
			names_v[j - 1] = x;
		}
	out = calloc(1, 1);
	ASSERT(out != NULL);
	for (size_t i = 0; i < nn; i++) {
		char v[256];
		ssize_t vl = lgetxattr(path, names_v[i], v, sizeof(v) - 1);
		ASSERTF(vl >= 0, "lgetxattr %s %s: %s", path, names_v[i], strerror(errno));
		v[vl] = 0;
		out = realloc(out, len + strlen(names_v[i]) + (size_t)vl + 3);
		ASSERT(out != NULL);
		len += (size_t)sprintf(out + len, "%s=%s;", names_v[i], v);
	}
	return out;
}

static void walk_local(const char *root, const char *rel, struct ctree *t)
{
	char abs[PATH_MAX];
	struct stat st;
	struct cent *e;

	tl_join(abs, sizeof(abs), root, rel);
	ASSERTF(lstat(abs, &st) == 0, "lstat %s: %s", abs, strerror(errno));
	e = ct_add(t, rel);
	e->mode = st.st_mode & (S_IFMT | 07777);
	e->uid = st.st_uid;
	e->gid = st.st_gid;
	e->mtime = st.st_mtim;
	if (!S_ISLNK(st.st_mode))
		e->xattrs = user_xattrs(abs);
	if (S_ISREG(st.st_mode)) {
		static char buf[1 << 20];
		/* the model's hashes, cached by inode, size and ctime */
		int fd;
		ssize_t n;
		e->size = (uint64_t)st.st_size;
		for (size_t i = 0; i < ncache; i++) {
			if (cache[i].ino == st.st_ino && cache[i].size == st.st_size &&
			    cache[i].ct.tv_sec == st.st_ctim.tv_sec &&
			    cache[i].ct.tv_nsec == st.st_ctim.tv_nsec) {
				e->hash = cache[i].hash;
				return;
			}
		}
		e->hash = 0xcbf29ce484222325ULL;
		fd = open(abs, O_RDONLY);
		ASSERT(fd >= 0);
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			e->hash = fnv(e->hash, buf, (size_t)n);
		close(fd);
		if (ncache < 256) {
			cache[ncache].ino = st.st_ino;
			cache[ncache].size = st.st_size;
			cache[ncache].ct = st.st_ctim;
			cache[ncache].hash = e->hash;
			ncache++;
		}
	} else if (S_ISLNK(st.st_mode)) {
		char buf[PATH_MAX];
		ssize_t n = readlink(abs, buf, sizeof(buf) - 1);
		ASSERT(n >= 0);
		buf[n] = 0;
		e->target = strdup(buf);
	} else if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(abs);
		struct dirent *de;
		ASSERT(d != NULL);
		while ((de = readdir(d)) != NULL) {
			char *r;
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			r = relj(rel, de->d_name);
			walk_local(root, r, t);
			free(r);
		}
		closedir(d);
	}
}

/* 0, or -errno of the first NFS failure (the server may be gone). */
static int walk_nfs(struct nfs_context *nfs, const char *rel, struct ctree *t)
{
	char p[PATH_MAX];
	struct nfs_stat_64 st;
	struct cent *e;
	int r;

	snprintf(p, sizeof(p), "/%s", rel);
	r = nfs_lstat64(nfs, p, &st);
	if (r)
		return r;
	e = ct_add(t, rel);
	e->mode = (uint32_t)st.nfs_mode & (S_IFMT | 07777);
	e->uid = (uint32_t)st.nfs_uid;
	e->gid = (uint32_t)st.nfs_gid;
	e->mtime.tv_sec = (time_t)st.nfs_mtime;
	e->mtime.tv_nsec = (long)st.nfs_mtime_nsec;
	if (S_ISREG(e->mode)) {
		static char buf[1 << 20];
		struct nfsfh *fh;
		uint64_t off = 0;
		e->size = st.nfs_size;
		e->hash = 0xcbf29ce484222325ULL;
		r = nfs_open(nfs, p, O_RDONLY, &fh);
		if (r)
			return r;
		while (off < st.nfs_size) {
			uint64_t want = st.nfs_size - off;
			if (want > sizeof(buf))
				want = sizeof(buf);
			r = nfs_pread(nfs, fh, off, want, buf);
			if (r <= 0) {
				nfs_close(nfs, fh);
				return r < 0 ? r : -EIO;
			}
			e->hash = fnv(e->hash, buf, (size_t)r);
			off += (uint64_t)r;
		}
		nfs_close(nfs, fh);
		r = 0;
	} else if (S_ISLNK(e->mode)) {
		char buf[PATH_MAX];
		memset(buf, 0, sizeof(buf));
		r = nfs_readlink(nfs, p, buf, sizeof(buf) - 1);
		if (r)
			return r;
		e->target = strdup(buf);
	} else if (S_ISDIR(e->mode)) {
		struct nfsdir *d;
		struct nfsdirent *de;
		char **names = NULL;
		size_t nn = 0;
		r = nfs_opendir(nfs, p, &d);
		if (r)
			return r;
		while ((de = nfs_readdir(nfs, d)) != NULL) {
			if (!strcmp(de->name, ".") || !strcmp(de->name, ".."))
				continue;
			names = realloc(names, (nn + 1) * sizeof(*names));
			names[nn++] = strdup(de->name);
		}
		nfs_closedir(nfs, d);
		for (size_t i = 0; i < nn; i++) {
			char *r2 = relj(rel, names[i]);
			if (!r)
				r = walk_nfs(nfs, r2, t);
			free(r2);
			free(names[i]);
		}
		free(names);
	}
	return r;
}

static bool older(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/*
 * "" when equal, else the first difference. a is the expected (model) tree:
 * the mtime of a non-directory it did not change since ops_start must be
 * kept exactly, except at moved (NULL: none), whose mtime may have moved
 * without its data; xattrs are compared when both walks read them.
 */
static void ct_diff(struct ctree *a, struct ctree *b, const char *moved, char *msg, size_t len)
{
	size_t i = 0, j = 0;

	msg[0] = 0;
	qsort(a->e, a->n, sizeof(a->e[0]), cent_cmp);
	qsort(b->e, b->n, sizeof(b->e[0]), cent_cmp);
	while (i < a->n || j < b->n) {
		const struct cent *x = i < a->n ? &a->e[i] : NULL;
		const struct cent *y = j < b->n ? &b->e[j] : NULL;
		int c = !x ? 1 : !y ? -1 : strcmp(x->path, y->path);
		if (c) {
			snprintf(msg, len, "'%s' only in %s", c < 0 ? x->path : y->path,
				 c < 0 ? "expected" : "served");
			return;
		}
		if (x->mode != y->mode || x->size != y->size || x->hash != y->hash ||
		    (x->target && (!y->target || strcmp(x->target, y->target)))) {
			snprintf(msg, len, "'%s': mode 0%o/0%o size %llu/%llu hash %s", x->path,
				 x->mode, y->mode, (unsigned long long)x->size,
				 (unsigned long long)y->size, x->hash == y->hash ? "same" : "differs");
			return;
		}
		if (x->uid != y->uid || x->gid != y->gid) {
			snprintf(msg, len, "'%s': owner %u:%u/%u:%u", x->path, x->uid, x->gid, y->uid,
				 y->gid);
			return;
		}
		if (!S_ISDIR(x->mode) && older(&x->mtime, &ops_start) &&
		    !(moved && strcmp(x->path, moved) == 0) &&
		    (x->mtime.tv_sec != y->mtime.tv_sec || x->mtime.tv_nsec != y->mtime.tv_nsec)) {
			snprintf(msg, len, "'%s': mtime %lld.%09ld/%lld.%09ld (no operation changed it)",
				 x->path, (long long)x->mtime.tv_sec, x->mtime.tv_nsec,
				 (long long)y->mtime.tv_sec, y->mtime.tv_nsec);
			return;
		}
		if (x->xattrs && y->xattrs && strcmp(x->xattrs, y->xattrs) != 0) {
			snprintf(msg, len, "'%s': user xattrs '%s'/'%s'", x->path, x->xattrs, y->xattrs);
			return;
		}
		i++;
		j++;
	}
}

/* ---------- our own server process (killed with SIGKILL on purpose) ---------- */

static pid_t cur_pid;
static int cur_port;
static char logdir[PATH_MAX], statedir[PATH_MAX], ovl_opts[8192];

static void kill_current(void *arg)
{
	(void)arg;
	if (cur_pid > 0) {
		kill(cur_pid, SIGKILL);
		waitpid(cur_pid, NULL, 0);
		cur_pid = 0;
	}
}

static void server_spawn(int seq)
{
	char portfile[PATH_MAX], log[PATH_MAX];
	const char *bin = getenv("ONFS_SERVER");
	double deadline;
	pid_t pid;

	ASSERTF(bin && *bin, "ONFS_SERVER is not set");
	snprintf(portfile, sizeof(portfile), "%.3000s/port-%d", logdir, seq);
	snprintf(log, sizeof(log), "%.3000s/server-%d.log", logdir, seq);
	fflush(stdout);
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(bin, bin, "-o", ovl_opts, "--listen", "127.0.0.1:0", "--port-file",
		      portfile, "--state-dir", statedir, "-f", (char *)NULL);
		_exit(127);
	}
	cur_pid = pid;
	deadline = tl_now() + 60;
	for (;;) {
		char *txt = NULL;
		ssize_t n = tl_read_file(portfile, &txt);
		int status;
		if (n > 0 && txt[n - 1] == '\n') {
			cur_port = atoi(txt);
			free(txt);
			break;
		}
		free(txt);
		if (waitpid(pid, &status, WNOHANG) == pid) {
			char *l = NULL;
			cur_pid = 0;
			tl_read_file(log, &l);
			tl_fail(__FILE__, __LINE__, "server %d did not start (status 0x%x): %s", seq,
				status, l ? l : "");
		}
		ASSERTF(tl_now() < deadline, "server wrote no port file in 60 s");
		usleep(5000);
	}
}

static void server_term(void)
{
	int status = 0;
	double deadline = tl_now() + 30;

	ASSERT(cur_pid > 0);
	ASSERT(kill(cur_pid, SIGTERM) == 0);
	while (waitpid(cur_pid, &status, WNOHANG) != cur_pid) {
		ASSERTF(tl_now() < deadline, "server did not stop on SIGTERM");
		usleep(5000);
	}
	cur_pid = 0;
	ASSERTF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "server exit status 0x%x", status);
}

/* ---------- the client ---------- */

struct conn {
	struct nfs_context *nfs;
	struct nfs_url *url;
};

static void conn_open(struct conn *c)
{
	char url[256];

	c->nfs = nfs_init_context();
	ASSERT(c->nfs != NULL);
	nfs_set_autoreconnect(c->nfs, 0);
	nfs_set_timeout(c->nfs, 20000);
	snprintf(url, sizeof(url), "nfs://127.0.0.1/?nfsport=%d&mountport=%d&version=3",
		 cur_port, cur_port);
	c->url = nfs_parse_url_dir(c->nfs, url);
	ASSERT(c->url != NULL);
	ASSERTF(nfs_mount(c->nfs, c->url->server, c->url->path) == 0, "nfs_mount: %s",
		nfs_get_error(c->nfs));
}

static void conn_close(struct conn *c)
{
	nfs_destroy_url(c->url);
	nfs_destroy_context(c->nfs);
	c->nfs = NULL;
}

/* ---------- operations (on the model with syscalls, on the server with libnfs) ---------- */

enum ck { C_WRITE, C_CHMOD, C_RENAME, C_UNLINK, C_RMDIR, C_MKDIR, C_CREATE };

struct cop {
	enum ck k;
	char a[128], b[128];
	long long n;
};

static int model_apply(const char *M, const struct cop *o)
{
	char a[PATH_MAX], b[PATH_MAX];
	int fd, r = 0;

	tl_join(a, sizeof(a), M, o->a);
	tl_join(b, sizeof(b), M, o->b[0] ? o->b : o->a);
	switch (o->k) {
	case C_WRITE:
		fd = open(a, O_WRONLY);
		if (fd < 0)
			return errno;
		r = pwrite(fd, "CRASH", 5, o->n) == 5 ? 0 : errno;
		close(fd);
		return r;
	case C_CHMOD:
		return chmod(a, (mode_t)o->n) ? errno : 0;
	case C_RENAME:
		return rename(a, b) ? errno : 0;
	case C_UNLINK:
		return unlink(a) ? errno : 0;
	case C_RMDIR:
		return rmdir(a) ? errno : 0;
	case C_MKDIR:
		return mkdir(a, 0755) ? errno : 0;
	case C_CREATE:
		/* empty: one NFS call, so before/after is all a kill can leave */
		fd = open(a, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0)
			return errno;
		close(fd);
		return 0;
	}
	return EINVAL;
}

static int nfs_apply(struct nfs_context *nfs, const struct cop *o)
{
	char a[PATH_MAX], b[PATH_MAX];
	struct nfsfh *fh;
	int r;

	snprintf(a, sizeof(a), "/%s", o->a);
	snprintf(b, sizeof(b), "/%s", o->b);
	switch (o->k) {
	case C_WRITE:
		r = nfs_open(nfs, a, O_WRONLY, &fh);
		if (r)
			return r;
		r = nfs_pwrite(nfs, fh, (uint64_t)o->n, 5, "CRASH");
		nfs_close(nfs, fh);
		return r < 0 ? r : 0;
	case C_CHMOD:
		return nfs_chmod(nfs, a, (int)o->n);
	case C_RENAME:
		return nfs_rename(nfs, a, b);
	case C_UNLINK:
		return nfs_unlink(nfs, a);
	case C_RMDIR:
		return nfs_rmdir(nfs, a);
	case C_MKDIR:
		return nfs_mkdir2(nfs, a, 0755);
	case C_CREATE:
		r = nfs_create(nfs, a, O_WRONLY | O_EXCL, 0644, &fh);
		if (r)
			return r;
		nfs_close(nfs, fh);
		return 0;
	}
	return -EINVAL;
}

static const char *cop_str(const struct cop *o, char *buf, size_t len)
{
	static const char *const n[] = { "write", "chmod", "rename", "unlink", "rmdir",
					 "mkdir", "create" };
	snprintf(buf, len, "%s(%s%s%s)", n[o->k], o->a, o->b[0] ? " -> " : "", o->b);
	return buf;
}

static struct cop *script;
static size_t nscript, capscript;

static void add(enum ck k, const char *a, const char *b, long long n)
{
	struct cop *o;

	if (nscript == capscript) {
		capscript = capscript ? capscript * 2 : 64;
		script = realloc(script, capscript * sizeof(*script));
		ASSERT(script != NULL);
	}
	o = &script[nscript++];
	memset(o, 0, sizeof(*o));
	o->k = k;
	snprintf(o->a, sizeof(o->a), "%s", a);
	snprintf(o->b, sizeof(o->b), "%s", b ? b : "");
	o->n = n;
}

static void set_user_xattr(const char *L, const char *rel, const char *name, const char *v)
{
	char p[PATH_MAX];

	tl_join(p, sizeof(p), L, rel);
	ASSERTF(lsetxattr(p, name, v, strlen(v), 0) == 0, "lsetxattr %s: %s", p, strerror(errno));
}

/* The lower layer and the script that goes with it. */
static void build(const char *L)
{
	char name[64], name2[64];
	size_t sz = (size_t)BIG_MB << 20;
	unsigned char *buf = malloc(sz);

	ASSERT(buf != NULL);
	tl_mkdir(L, "big", 0755);
	tl_mkdir(L, "moved", 0755);
	tl_mkdir(L, "sub", 0755);
	for (int i = 0; i < NBIG; i++) {
		for (size_t k = 0; k < sz; k++)
			buf[k] = (unsigned char)((k * 31 + (size_t)i * 7 + k / 4093) & 0xff);
		snprintf(name, sizeof(name), "big/b%d", i);
		tl_write_buf(L, name, buf, sz, 0644);
		set_user_xattr(L, name, "user.crash", name);
	}
	free(buf);
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "dir%d", i);
		tl_mkdir(L, name, 0755);
		snprintf(name, sizeof(name), "dir%d/f", i);
		tl_write(L, name, "in dir", 0644);
		snprintf(name, sizeof(name), "dir%d/inner", i);
		tl_mkdir(L, name, 0755);
		set_user_xattr(L, name, "user.crash", "a directory");
		snprintf(name, sizeof(name), "dir%d/inner/g", i);
		tl_write(L, name, "deeper", 0644);
		set_user_xattr(L, name, "user.crash", name);
		snprintf(name, sizeof(name), "rmd%d", i);
		tl_mkdir(L, name, 0755);
		for (int k = 0; k < 3; k++) {
			snprintf(name, sizeof(name), "rmd%d/f%d", i, k);
			tl_write(L, name, "to be removed", 0644);
		}
	}

	/* the script: copy-ups first (big), then a mix */
	for (int i = 0; i < NBIG; i++) {
		snprintf(name, sizeof(name), "big/b%d", i);
		if (i % 3 == 0)
			add(C_WRITE, name, NULL, (long long)((size_t)(BIG_MB / 2) << 20) + i);
		else if (i % 3 == 1)
			add(C_CHMOD, name, NULL, 0600);
		else {
			snprintf(name2, sizeof(name2), "moved/b%d", i);
			add(C_RENAME, name, name2, 0);
		}
		snprintf(name, sizeof(name), "dir%d", i);
		snprintf(name2, sizeof(name2), "dir%d_r", i);
		add(C_RENAME, name, name2, 0);
		snprintf(name, sizeof(name), "rmd%d/f0", i);
		add(C_UNLINK, name, NULL, 0);
		snprintf(name, sizeof(name), "rmd%d/f1", i);
		add(C_UNLINK, name, NULL, 0);
		snprintf(name, sizeof(name), "rmd%d/f2", i);
		add(C_UNLINK, name, NULL, 0);
		snprintf(name, sizeof(name), "rmd%d", i);
		add(C_RMDIR, name, NULL, 0);
		snprintf(name, sizeof(name), "dir%d_r", i);
		snprintf(name2, sizeof(name2), "sub/dir%d", i);
		add(C_RENAME, name, name2, 0);
		snprintf(name, sizeof(name), "new%d", i);
		add(C_MKDIR, name, NULL, 0);
		snprintf(name, sizeof(name), "new%d/file", i);
		add(C_CREATE, name, NULL, 0);
		add(C_WRITE, name, NULL, 0);
		snprintf(name, sizeof(name), "sub/dir%d/inner/g", i);
		add(C_WRITE, name, NULL, 2);
	}
	for (int i = 0; i < NBIG; i++) {
		snprintf(name, sizeof(name), i % 3 == 2 ? "moved/b%d" : "big/b%d", i);
		snprintf(name2, sizeof(name2), "sub/b%d", i);
		add(C_RENAME, name, name2, 0);
		add(C_WRITE, name2, NULL, 1000 + i);
	}
	add(C_RMDIR, "moved", NULL, 0);
	add(C_RMDIR, "big", NULL, 0);
}

/* ---------- the killer thread ---------- */

struct killer {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool cancel, fired;
	long delay_us;
	pthread_t th;
};

static void *killer_main(void *arg)
{
	struct killer *k = arg;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (k->delay_us % 1000000) * 1000;
	ts.tv_sec += k->delay_us / 1000000 + ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	pthread_mutex_lock(&k->mu);
	while (!k->cancel) {
		if (pthread_cond_timedwait(&k->cv, &k->mu, &ts) == ETIMEDOUT)
			break;
	}
	if (!k->cancel) {
		kill(cur_pid, SIGKILL);
		k->fired = true;
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

static void work_must_be_empty(const char *work, const char *when)
{
	char p[PATH_MAX];
	DIR *d;
	struct dirent *de;

	tl_join(p, sizeof(p), work, "work");
	d = opendir(p);
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		closedir(d);
		tl_fail(__FILE__, __LINE__, "%s: work/%s left after the startup scrub", when,
			de->d_name);
	}
	closedir(d);
}

/*
 * Every entry of workdir/index must be one the kernel accepts at mount: a
 * name that is the hex of an ovl_fb; a regular file (a hard link of the
 * copy) whose origin xattr is that same handle; a directory whose upper
 * xattr is a handle of an upper object; or a whiteout. ovlnfsd builds in
 * work/, never in index/, so a temporary name there is a leftover.
 */
static void index_must_be_sane(const char *work, const char *when)
{
	char p[PATH_MAX], e[PATH_MAX];
	DIR *d;
	struct dirent *de;

	tl_join(p, sizeof(p), work, "index");
	d = opendir(p);
	ASSERTF(d != NULL, "%s: no index/: %s", when, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		unsigned char fb[128], x[128];
		size_t n = strlen(de->d_name) / 2;
		struct stat st;
		ssize_t xl;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		tl_join(e, sizeof(e), p, de->d_name);
		ASSERTF(de->d_name[0] != '#', "%s: temporary index/%s left", when, de->d_name);
		ASSERTF(strlen(de->d_name) % 2 == 0 && n >= 21 && n <= sizeof(fb),
			"%s: index/%s is not a handle name", when, de->d_name);
		for (size_t i = 0; i < n; i++) {
			unsigned v;
			ASSERTF(sscanf(de->d_name + 2 * i, "%2x", &v) == 1, "%s: index/%s: not hex",
				when, de->d_name);
			fb[i] = (unsigned char)v;
		}
		ASSERTF(fb[1] == 0xfb && fb[2] == n, "%s: index/%s: not an ovl_fb", when, de->d_name);
		ASSERT(lstat(e, &st) == 0);
		if (S_ISCHR(st.st_mode)) {
			ASSERTF(st.st_rdev == 0, "%s: index/%s: a device that is no whiteout", when,
				de->d_name);
		} else if (S_ISREG(st.st_mode)) {
			xl = lgetxattr(e, "trusted.overlay.origin", x, sizeof(x));
			ASSERTF(xl == (ssize_t)n && memcmp(x, fb, n) == 0,
				"%s: index/%s: its origin xattr is not its name", when, de->d_name);
		} else if (S_ISDIR(st.st_mode)) {
			/* built in work/ and renamed in: never without its upper xattr */
			xl = lgetxattr(e, "trusted.overlay.upper", x, sizeof(x));
			ASSERTF(xl >= 21 && x[1] == 0xfb && x[2] == xl && (x[3] & 4),
				"%s: index/%s: not a valid upper handle", when, de->d_name);
		} else {
			tl_fail(__FILE__, __LINE__, "%s: index/%s: type 0%o", when, de->d_name,
				st.st_mode & S_IFMT);
		}
	}
	closedir(d);
}

static void umount_cleanup(void *arg)
{
	umount2(arg, MNT_DETACH);
	free(arg);
}

/* One round: fresh layers, the whole script (or until the deadline). */
static int total_kills;

static int crash_round(int round, double deadline)
{
	struct tl_tree t;
	char M[PATH_MAX], mnt[PATH_MAX], msg[2048], ob[300];
	struct ctree before = { 0 }, after = { 0 }, got = { 0 };
	struct conn c;
	double start;
	int seq = round * 1000, kills = 0, before_hits = 0, after_hits = 0, acked_kills = 0;
	size_t done = 0;

	nscript = 0;
	ncache = 0;
	tl_tree_new(&t, 1);
	build(t.lower[0]);
	tl_join(M, sizeof(M), t.root, "model");
	{
		char cmd[3 * PATH_MAX];
		snprintf(cmd, sizeof(cmd), "cp -a %s %s", t.lower[0], M);
		ASSERT(system(cmd) == 0);
	}
	snprintf(logdir, sizeof(logdir), "%s", t.root);
	snprintf(statedir, sizeof(statedir), "%s", t.state);
	snprintf(ovl_opts, sizeof(ovl_opts),
		 "lowerdir=%.1000s,upperdir=%.1000s,workdir=%.1000s,index=on,nfs_export=on,redirect_dir=on",
		 t.lower[0], t.upper, t.work);
	server_spawn(++seq);
	conn_open(&c);
	start = tl_now();
	clock_gettime(CLOCK_REALTIME, &ops_start);
	while (done < nscript && tl_now() < deadline) {
		const struct cop *o = &script[done];
		struct killer k = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
		/* every armed operation is a kill; the first three always are */
		bool armed = rand() % 100 < 60 || total_kills < 3, acked = false;
		int r, mr;

		ct_free(&before);
		ct_free(&after);
		walk_local(M, "", &before);
		mr = model_apply(M, o);
		ASSERTF(mr == 0, "model: %s: %s", cop_str(o, ob, sizeof(ob)), strerror(mr));
		walk_local(M, "", &after);

		if (armed) {
			k.delay_us = rand() % 15000;
			ASSERT(pthread_create(&k.th, NULL, killer_main, &k) == 0);
		}
		r = nfs_apply(c.nfs, o);
		if (armed) {
			pthread_mutex_lock(&k.mu);
			k.cancel = true;
			pthread_cond_signal(&k.cv);
			pthread_mutex_unlock(&k.mu);
			pthread_join(k.th, NULL);
			if (!k.fired) {
				/* it finished first: kill right after the reply */
				ASSERTF(r == 0, "%s: %s", cop_str(o, ob, sizeof(ob)), nfs_get_error(c.nfs));
				ASSERT(kill(cur_pid, SIGKILL) == 0);
				k.fired = true;
				acked = true;
				acked_kills++;
			}
		}
		if (!k.fired) {
			ASSERTF(r == 0, "%s: %s", cop_str(o, ob, sizeof(ob)), nfs_get_error(c.nfs));
			done++;
			continue;
		}

		/* killed: restart, check the scrub and the state */
		kills++;
		total_kills++;
		waitpid(cur_pid, NULL, 0);
		cur_pid = 0;
		conn_close(&c);
		server_spawn(++seq);
		work_must_be_empty(t.work, cop_str(o, ob, sizeof(ob)));
		index_must_be_sane(t.work, cop_str(o, ob, sizeof(ob)));
		conn_open(&c);
		ct_free(&got);
		r = walk_nfs(c.nfs, "", &got);
		ASSERTF(r == 0, "after the kill during %s: walk: %s", cop_str(o, ob, sizeof(ob)),
			nfs_get_error(c.nfs));
		ct_diff(&after, &got, NULL, msg, sizeof(msg));
		if (!msg[0]) {
			after_hits++;
			done++;
			continue;
		}
		ASSERTF(!acked, "kill after the reply to %s (op %zu): an acknowledged change is "
			"lost: %s", cop_str(o, ob, sizeof(ob)), done, msg);
		{
			char msg2[2048];
			/*
			 * A WRITE killed in flight may leave its file's mtime
			 * moved and its data not written: the kernel updates
			 * the times before it copies the data and gives up on a
			 * fatal signal between the two (generic_perform_write).
			 * No reply went out, so the client sends it again.
			 */
			ct_diff(&before, &got, o->k == C_WRITE ? o->a : NULL, msg2, sizeof(msg2));
			ASSERTF(!msg2[0], "kill during %s (op %zu, after %ld us): tree is neither "
				"before (%s) nor after (%s)", cop_str(o, ob, sizeof(ob)), done,
				k.delay_us, msg2, msg);
		}
		before_hits++;
		/* not done: run it again, undisturbed */
		r = nfs_apply(c.nfs, o);
		ASSERTF(r == 0, "retry of %s after the restart: %s", cop_str(o, ob, sizeof(ob)),
			nfs_get_error(c.nfs));
		done++;
	}
	fprintf(stdout, "# crash round %d: %zu/%zu ops in %.1f s, %d kills (%d before, %d after, "
		"%d of them after the reply)\n",
		round, done, nscript, tl_now() - start, kills, before_hits, after_hits, acked_kills);

	/* the served tree equals the model */
	ct_free(&got);
	ASSERT(walk_nfs(c.nfs, "", &got) == 0);
	ct_free(&after);
	walk_local(M, "", &after);
	ct_diff(&after, &got, NULL, msg, sizeof(msg));
	ASSERTF(!msg[0], "final served tree: %s", msg);
	nfs_umount(c.nfs);
	conn_close(&c);
	server_term();
	work_must_be_empty(t.work, "after the final stop");
	index_must_be_sane(t.work, "after the final stop");

	/* the kernel mounts the result and shows the same tree */
	tl_join(mnt, sizeof(mnt), t.root, "mnt");
	tl_mkdir(t.root, "mnt", 0755);
	ASSERTF(mount("overlay", mnt, "overlay", 0, ovl_opts) == 0,
		"kernel overlay mount of the result: %s", strerror(errno));
	{
		int tok = tl_cleanup_push(umount_cleanup, strdup(mnt));
		ct_free(&got);
		walk_local(mnt, "", &got);
		ASSERTF(umount2(mnt, 0) == 0, "umount: %s", strerror(errno));
		tl_cleanup_cancel(tok);
	}
	ct_diff(&after, &got, NULL, msg, sizeof(msg));
	ASSERTF(!msg[0], "kernel view of the result: %s", msg);
	ct_free(&before);
	ct_free(&after);
	ct_free(&got);
	tl_tree_free(&t);
	return kills;
}

TEST_IMPL(crash_kill9_during_mutations)
{
	double budget = 60, start = tl_now();
	unsigned seed = (unsigned)time(NULL);
	const char *env = getenv("ONFS_CRASH_SECONDS");
	int kills = 0, rounds = 0;

	if (geteuid() != 0)
		RETURN_SKIP_CI("not root: trusted.* xattrs and overlay mounts need root");
	if (env && atof(env) > 0)
		budget = atof(env);
	if (getenv("ONFS_CRASH_SEED"))
		seed = (unsigned)atoi(getenv("ONFS_CRASH_SEED"));
	srand(seed);
	fprintf(stdout, "# crash: seed %u (ONFS_CRASH_SEED), budget %.0f s (ONFS_CRASH_SECONDS)\n",
		seed, budget);
	tl_cleanup_push(kill_current, NULL);
	/* rounds until the budget is spent (at least one, at most 8) */
	while (rounds < 8 && (rounds == 0 || tl_now() - start < budget * 0.75)) {
		kills += crash_round(rounds, start + budget);
		rounds++;
	}
	fprintf(stdout, "# crash: %d round(s), %d kills in %.1f s\n", rounds, kills,
		tl_now() - start);
	ASSERTF(kills >= 3, "only %d kills happened: the test proved little", kills);
	return 0;
}

static const struct tl_case cases[] = {
	TEST_ENTRY_TIMEOUT(crash_kill9_during_mutations, 600),
};

int main(int argc, char **argv)
{
	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
