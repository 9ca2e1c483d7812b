/*
 * commit.c - operations on a whole layer stack (docs/instances.md,
 * docs/operating.md): reset of a plain export, commit of an upper into a
 * new read-only layer, and the stack of committed layers an export or
 * instance carries from then on.
 *
 * Reset of a plain export: an empty directory is built in
 * workdir/ovlnfsd/trash and exchanged with the upper in one
 * renameat2(RENAME_EXCHANGE): the old upper is in the trash, the upper
 * path never missing. index/ follows it into the trash (a crash between
 * the two leaves an index whose "upper" mark names another directory: the
 * work-area setup moves it away, workdir.c).
 *
 * Commit: the upper is renamed to LAYERS/LAYER (one filesystem: a
 * rename, whatever the size) and a fresh upper takes its place. The steps
 * are written first to workdir/ovlnfsd/commit (a journal, fsync'ed and
 * renamed into place); each step is idempotent, and a server killed in
 * the middle rolls the journal forward before it opens the upper again.
 * The stack of committed layers lives in the state directory
 * (STATE/exports/NAME/stack, STATE/exports/LINE/stack-VALUE for an
 * instance), one "layer PATH" line per layer, top first.
 *
 * Before the journal, onfs_commit_prepare makes the upper show on its
 * own what its index showed (hard-linked lower files copied up through
 * one name get the copy linked at their other names) and lists the copies
 * that no longer show at their origin's path ("moved" lines, kept in the
 * stack file with their layer, read by onfs_commit_find when a handle of
 * such a file is decoded): the index itself goes to the trash, since the
 * kernel never reads an index in a lower layer.
 *
 * Objects keep their handles and fileids across a commit: a committed
 * layer counts for identities as it did when it was the upper (lookup.c,
 * ONFS_LAYER_WAS_UPPER), and the kernel file handle of an object created
 * in the upper does not change when its directory is renamed.
 *
 * Threads: pool workers (the control socket's requests) and, for the
 * recovery and the stack, the thread that opens an export or activates
 * an instance. The caller holds inst_lock with no call inside (quiesce).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "ovlnfsd/ctl.h"
#include "internal.h"

#define JOURNAL "ovlnfsd/commit"

/* Write text to path atomically: temp file, fsync, rename, fsync of the directory. */
static int write_atomic(const char *path, const char *text)
{
	char tmp[PATH_MAX + 32], dir[PATH_MAX];
	size_t len = strlen(text);
	char *slash;
	int fd, ret = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
		ret = errno ? -errno : -EIO;
	close(fd);
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0) {
		unlink(tmp);
		return ret;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
	}
	return 0;
}

/* The whole of a small text file, NUL-terminated; -errno. */
static int read_text(const char *path, struct onfs_buf *b)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	for (;;) {
		char chunk[1024];
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n <= 0)
			break;
		onfs_buf_printf(b, "%.*s", (int)n, chunk);
	}
	close(fd);
	if (!b->p)
		onfs_buf_printf(b, "%s", "");
	return b->oom ? -ENOMEM : 0;
}

/* --- what only the index knew --- */

/*
 * Test-only: OVLNFSD_TEST_COMMIT_DELAY_MS (read at the first commit)
 * sleeps that long before each step of a live commit, so that a test can
 * kill the server between any two of them (tests/integration/test-ctl.c).
 */
static void test_pause(void)
{
	static int ms = -1;

	if (ms < 0) {
		const char *v = getenv("OVLNFSD_TEST_COMMIT_DELAY_MS");

		ms = v ? atoi(v) : 0;
		if (ms < 0 || ms > 10000)
			ms = 0;
	}
	if (ms > 0) {
		struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000L };

		nanosleep(&t, NULL);
	}
}

/*
 * Breadth-first over the directories of layer li (bounded): fn(ctx, dirfd,
 * rel of the directory, entry) for every non-directory; fn returns 1 to stop.
 */
typedef int (*scan_fn)(void *ctx, int dirfd, const char *dir, const struct dirent *e);

static int layer_scan(struct onfs_export *ex, size_t li, scan_fn fn, void *ctx)
{
	enum { MAX_DIRS = 200000 };
	char **q = malloc(sizeof(*q) * 64);
	size_t head = 0, tail = 0, cap = 64;
	int ret = 0;

	if (!q)
		return -ENOMEM;
	q[tail++] = strdup("");
	while (head < tail && ret == 0 && tail < MAX_DIRS) {
		char *cur = q[head++];
		int dfd = cur ? onfs_fs_open_beneath(ex->layers[li].fd, cur, O_RDONLY | O_DIRECTORY)
			      : -ENOMEM;
		DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
		struct dirent *e;

		if (!d && dfd >= 0)
			close(dfd);
		while (d && ret == 0 && (e = readdir(d))) {
			char *sub = NULL;

			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if (e->d_type != DT_DIR) {
				ret = fn(ctx, dirfd(d), cur, e);
				continue;
			}
			if (asprintf(&sub, "%s%s%s", cur, cur[0] ? "/" : "", e->d_name) < 0)
				continue;
			if (tail == cap) {
				char **nq = realloc(q, sizeof(*q) * cap * 2);

				if (!nq) {
					free(sub);
					break;
				}
				q = nq;
				cap *= 2;
			}
			q[tail++] = sub;
		}
		if (d)
			closedir(d);
		free(cur);
	}
	for (size_t i = head; i < tail; i++)
		free(q[i]);
	free(q);
	return ret < 0 ? ret : 0;
}

/* A copied-up lower file as its index entry tells it. */
struct ixent {
	struct onfs_ident id; /* the origin */
	dev_t dev;            /* the origin's device, inode and links */
	ino_t ino;
	nlink_t nlink;
	ino_t up_ino;         /* its copy in the upper */
	char *name;           /* the index entry's name */
};

struct ixset {
	struct onfs_export *ex;
	struct ixent *v;
	size_t n;
	size_t layer;         /* layer_scan: which layer */
	char xattr[64];       /* the origin xattr's name */
	ino_t want;           /* find_scan: the inode looked for */
	char *found;          /* find_scan: its path */
};

/* The origin of an upper non-directory (its origin xattr), opened on its filesystem. */
static int origin_of(struct onfs_export *ex, int dirfd, const char *name, const char *xattr,
		     struct onfs_ident *id, struct stat *st)
{
	uint8_t fb[21 + ONFS_FID_MAX];
	int n = onfs_fs_getxattr_at(dirfd, name, xattr, (char *)fb, sizeof(fb));

	if (n < 22 || fb[0] != 0 || fb[1] != 0xfb || fb[2] != n)
		return -ENOENT;
	memset(id, 0, sizeof(*id));
	id->type = fb[4];
	id->len = (uint8_t)(n - 21);
	memcpy(id->fid, fb + 21, id->len);
	for (size_t f = 0; f < ex->numfs; f++) {
		int fd = onfs_fs_open_ident(ex->fs_fd[f], id, O_PATH);
		bool ok;

		if (fd < 0)
			continue;
		ok = fstat(fd, st) == 0 && !S_ISDIR(st->st_mode);
		close(fd);
		if (ok) {
			id->fsidx = (uint8_t)f;
			return 0;
		}
	}
	return -ENOENT;
}

/*
 * A name in a lower layer of a hard-linked origin that the upper shows
 * only through the index: link the copy there too (link-up, copyup.c),
 * so that the committed layer alone shows it.
 */
static int link_scan(void *ctx, int dirfd, const char *dir, const struct dirent *e)
{
	struct ixset *s = ctx;
	struct onfs_export *ex = s->ex;
	const struct onfs_layer *l = &ex->layers[s->layer];
	struct onfs_node *n = NULL, *up = NULL;
	struct onfs_ident oid;
	struct stat st;
	char *path = NULL;
	bool hit = false;

	for (size_t i = 0; i < s->n && !hit; i++) {
		if (s->v[i].nlink < 2)
			continue;
		if (!l->committed)
			hit = e->d_ino == s->v[i].ino && ex->fs_dev[l->fsidx] == s->v[i].dev;
		else if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			 st.st_nlink > 1 &&
			 origin_of(ex, dirfd, e->d_name, s->xattr, &oid, &st) == 0)
			hit = onfs_ident_eq(&oid, &s->v[i].id);
	}
	if (!hit || asprintf(&path, "%s%s%s", dir, dir[0] ? "/" : "", e->d_name) < 0)
		return 0;
	if (onfs_walk(ex, path, &n) == 0 && n->parts[0].layer == ONFS_LAYER_INDEX && !n->unnamed) {
		int r = onfs_copyup(ex, n, false, &up);

		if (r < 0)
			onfs_warn("export '%s': commit: cannot link '%s' to its copied-up inode: %s",
				  ex->name, path, strerror(-r));
		else
			onfs_debug("export '%s': commit: linked up '%s'", ex->name, path);
	}
	onfs_node_put(up);
	onfs_node_put(n);
	free(path);
	return 0;
}

/* The merged path at which origin id shows, from its real path; NULL if in no lower. */
static char *origin_path(struct onfs_export *ex, const struct onfs_ident *id)
{
	char proc[64], real[PATH_MAX];
	int fd = onfs_fs_open_ident(ex->fs_fd[id->fsidx], id, O_PATH);
	ssize_t rl;

	if (fd < 0)
		return NULL;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	rl = readlink(proc, real, sizeof(real) - 1);
	close(fd);
	if (rl <= 0)
		return NULL;
	real[rl] = '\0';
	for (size_t i = 1; i < ex->nlayers; i++) {
		const struct onfs_layer *l = &ex->layers[i];
		size_t n = strcmp(l->real, "/") == 0 ? 0 : strlen(l->real);

		if (l->upper || l->fsidx != id->fsidx || strncmp(real, l->real, n) != 0 ||
		    real[n] != '/')
			continue;
		return strdup(real + n + 1);
	}
	return NULL;
}

int onfs_commit_prepare(struct onfs_export *ex, char **moved, char *err, size_t errlen)
{
	struct ixset s = { .ex = ex };
	struct onfs_buf out = { 0 };
	struct dirent *e;
	bool links = false;
	size_t cap = 0;
	DIR *d;
	int fd;

	*moved = NULL;
	if (ex->index_fd < 0 || !ex->work_ok || !ex->by_handle)
		return 0;
	onfs_ovl_xattr(ex, "origin", s.xattr, sizeof(s.xattr));
	fd = openat(ex->index_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		snprintf(err, errlen, "'%s': cannot read its index: %s", ex->name, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* the non-directories of the index: copies of lower files */
	while ((e = readdir(d))) {
		struct stat st, ost;
		struct ixent x = { 0 };

		if (e->d_name[0] == '.' || e->d_type == DT_DIR)
			continue;
		if (fstatat(ex->index_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    S_ISDIR(st.st_mode) || (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)))
			continue;
		if (origin_of(ex, ex->index_fd, e->d_name, s.xattr, &x.id, &ost) < 0)
			continue;
		x.dev = ost.st_dev;
		x.ino = ost.st_ino;
		x.nlink = ost.st_nlink;
		x.up_ino = st.st_ino;
		x.name = strdup(e->d_name);
		if (!x.name)
			continue;
		if (s.n == cap) {
			struct ixent *nv = realloc(s.v, sizeof(*nv) * (cap ? cap * 2 : 16));

			if (!nv) {
				free(x.name);
				break;
			}
			s.v = nv;
			cap = cap ? cap * 2 : 16;
		}
		s.v[s.n++] = x;
		links |= x.nlink > 1;
	}
	closedir(d);
	/* (1) hard links: every other name of a copied-up origin gets the copy */
	for (s.layer = 1; links && s.layer < ex->nlayers; s.layer++)
		if (!ex->layers[s.layer].upper && ex->layers[s.layer].fd >= 0)
			layer_scan(ex, s.layer, link_scan, &s);
	/* (2) copies that no longer show at their origin's path: remember them */
	for (size_t i = 0; i < s.n; i++) {
		char *path = origin_path(ex, &s.v[i].id);
		struct onfs_node *n = NULL;
		bool there = path && onfs_walk(ex, path, &n) == 0 &&
			     onfs_ident_eq(&n->ident, &s.v[i].id) &&
			     n->parts[0].layer != ONFS_LAYER_INDEX &&
			     ex->layers[n->parts[0].layer].upper;

		if (!there)
			onfs_buf_printf(&out, "moved %s %llu\n", s.v[i].name,
					(unsigned long long)s.v[i].up_ino);
		onfs_node_put(n);
		free(path);
		free(s.v[i].name);
	}
	free(s.v);
	onfs_changed_ns(ex);
	onfs_node_cache_flush(ex);
	if (out.oom) {
		free(out.p);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*moved = out.p;
	return 0;
}

static int find_scan(void *ctx, int dirfd, const char *dir, const struct dirent *e)
{
	struct ixset *s = ctx;

	(void)dirfd;
	if (e->d_ino != s->want)
		return 0;
	if (asprintf(&s->found, "%s%s%s", dir, dir[0] ? "/" : "", e->d_name) < 0)
		s->found = NULL;
	return 1;
}

int onfs_commit_find(struct onfs_export *ex, const struct onfs_ident *id, struct onfs_node **out)
{
	char idx[2 * (21 + ONFS_FID_MAX) + 1];
	size_t il;

	onfs_upper_index_name(ex, id, idx, sizeof(idx));
	il = strlen(idx);
	if (!il)
		return -ESTALE;
	for (size_t i = 1; i < ex->nlayers; i++) {
		struct ixset s = { .ex = ex };
		struct onfs_node *n;
		const char *p = ex->layers[i].moved;

		if (!ex->layers[i].committed || !p)
			continue;
		while ((p = strstr(p, idx)) &&
		       !(p - ex->layers[i].moved >= 6 && !strncmp(p - 6, "moved ", 6) &&
			 p[il] == ' '))
			p++;
		if (!p)
			continue;
		s.want = (ino_t)strtoull(p + il + 1, NULL, 10);
		if (layer_scan(ex, i, find_scan, &s) < 0 || !s.found)
			continue;
		if (onfs_walk(ex, s.found, &n) == 0) {
			if (onfs_ident_eq(&n->ident, id)) {
				free(s.found);
				*out = n;
				return 0;
			}
			onfs_node_put(n);
		}
		free(s.found);
	}
	return -ESTALE;
}

/* --- the stack of committed layers --- */

static int insert_layer(struct onfs_export *ex, size_t pos, const char *path, char *err,
			size_t errlen)
{
	struct onfs_layer l = { 0 };
	char real[PATH_MAX];
	struct stat st;

	if (ex->nlayers >= ONFS_MAX_LAYERS) {
		snprintf(err, errlen, "committed layer '%s': more than %d layers", path,
			 ONFS_MAX_LAYERS);
		return -1;
	}
	if (!realpath(path, real)) {
		snprintf(err, errlen, "committed layer '%s': %s", path, strerror(errno));
		return -1;
	}
	l.fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l.fd < 0 || fstat(l.fd, &st) < 0) {
		snprintf(err, errlen, "committed layer '%s': %s", path, strerror(errno));
		if (l.fd >= 0)
			close(l.fd);
		return -1;
	}
	/* handles carry a filesystem index: a committed layer is on the upper's */
	if (st.st_dev != ex->fs_dev[ex->layers[0].fsidx]) {
		snprintf(err, errlen, "committed layer '%s' is not on the filesystem of the "
			 "upper layer", path);
		close(l.fd);
		return -1;
	}
	l.path = strdup(path);
	l.real = strdup(real);
	if (!l.path || !l.real) {
		free(l.path);
		free(l.real);
		close(l.fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	l.fsidx = ex->layers[0].fsidx;
	l.committed = true;
	memmove(&ex->layers[pos + 1], &ex->layers[pos], (ex->nlayers - pos) * sizeof(l));
	ex->layers[pos] = l;
	ex->nlayers++;
	return 0;
}

int onfs_stack_open(struct onfs_export *ex, char *err, size_t errlen)
{
	struct onfs_buf b = { 0 };
	size_t pos = 1;
	char *save = NULL, *line;
	int r;

	if (!ex->stack_file)
		return 0;
	r = read_text(ex->stack_file, &b);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		snprintf(err, errlen, "layer stack '%s': %s", ex->stack_file, strerror(-r));
		free(b.p);
		return -1;
	}
	for (line = strtok_r(b.p, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		/* "moved NAME INO": of the layer named on the line before */
		if (strncmp(line, "moved ", 6) == 0 && pos > 1) {
			struct onfs_layer *l = &ex->layers[pos - 1];
			size_t have = l->moved ? strlen(l->moved) : 0, add = strlen(line);
			char *m = realloc(l->moved, have + add + 2);

			if (!m) {
				snprintf(err, errlen, "layer stack '%s': out of memory",
					 ex->stack_file);
				free(b.p);
				return -1;
			}
			memcpy(m + have, line, add);
			memcpy(m + have + add, "\n", 2);
			l->moved = m;
			continue;
		}
		if (strncmp(line, "layer /", 7) != 0) {
			onfs_warn("layer stack '%s': ignored line '%.80s'", ex->stack_file, line);
			continue;
		}
		if (insert_layer(ex, pos, line + 6, err, errlen) < 0) {
			free(b.p);
			return -1;
		}
		pos++;
	}
	free(b.p);
	return 0;
}

void onfs_stack_close(struct onfs_export *ex)
{
	for (size_t i = ex->nlayers; i-- > 0;) {
		if (!ex->layers[i].committed)
			continue;
		if (ex->layers[i].fd >= 0)
			close(ex->layers[i].fd);
		free(ex->layers[i].path);
		free(ex->layers[i].real);
		free(ex->layers[i].moved);
		memmove(&ex->layers[i], &ex->layers[i + 1],
			(ex->nlayers - i - 1) * sizeof(ex->layers[0]));
		ex->nlayers--;
		memset(&ex->layers[ex->nlayers], 0, sizeof(ex->layers[0]));
	}
}

/* --- commit: the journal and its steps --- */

/* Make the parents of the stack file (the state directory's exports/NAME). */
static void mkdir_parents(const char *file)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", file);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(buf, 0700);
		*p = '/';
	}
}

/*
 * Every step once, whatever was done before a crash: the upper becomes
 * dst, fresh (or a new directory) the upper, index/ goes to the trash,
 * dst goes on top of the stack file, the base record is dropped (recorded
 * again against the new stack), and last the journal goes.
 */
static int roll_forward(struct onfs_export *ex, const char *upper, const char *work,
			const char *dst, const char *fresh, const char *moved, bool live, char *err,
			size_t errlen)
{
	char path[PATH_MAX + 64], trash[PATH_MAX + 32], ix[PATH_MAX + 96], want[PATH_MAX + 16];
	struct onfs_buf stack = { 0 }, text = { 0 };
	struct stat st;
	int r;

	if (live)
		test_pause();
	if (lstat(dst, &st) < 0 && errno == ENOENT && rename(upper, dst) < 0) {
		snprintf(err, errlen, "cannot rename upper '%s' to '%s': %s", upper, dst,
			 strerror(errno));
		return -errno;
	}
	if (live)
		test_pause();
	if (lstat(upper, &st) < 0 && errno == ENOENT && rename(fresh, upper) < 0) {
		struct stat ds;

		if (errno != ENOENT || stat(dst, &ds) < 0 || mkdir(upper, ds.st_mode & 07777) < 0) {
			snprintf(err, errlen, "cannot put a new upper at '%s': %s", upper,
				 strerror(errno));
			return -errno;
		}
		if (chown(upper, ds.st_uid, ds.st_gid) < 0)
			onfs_debug("commit: chown of the new upper '%s': %s", upper, strerror(errno));
	}
	if (live)
		test_pause();
	snprintf(trash, sizeof(trash), "%s/ovlnfsd/trash", work);
	mkdir(trash, 0700);
	/*
	 * The recovery runs before the work area's scrub, which leaves this
	 * run's own trash entries to the background job: a name of no run
	 * makes the scrub that follows empty it.
	 */
	if (live)
		onfs_trash_name(ex, trash, ix, sizeof(ix), "index");
	else
		snprintf(ix, sizeof(ix), "%s/crash-%d-index", trash, (int)getpid());
	snprintf(path, sizeof(path), "%s/index", work);
	if (rename(path, ix) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot move '%s' to '%s': %s", path, ix, strerror(errno));
		return -errno;
	}
	snprintf(want, sizeof(want), "layer %s\n", dst);
	r = read_text(ex->stack_file, &stack);
	if (r < 0 && r != -ENOENT) {
		snprintf(err, errlen, "layer stack '%s': %s", ex->stack_file, strerror(-r));
		free(stack.p);
		return r;
	}
	if (!stack.p || strncmp(stack.p, want, strlen(want)) != 0) {
		if (live)
			test_pause();
		/* what only the old index knew goes with the layer (onfs_commit_find) */
		onfs_buf_printf(&text, "%s%s%s", want, moved ? moved : "", stack.p ? stack.p : "");
		mkdir_parents(ex->stack_file);
		r = text.oom ? -ENOMEM : write_atomic(ex->stack_file, text.p);
		free(text.p);
		if (r < 0) {
			snprintf(err, errlen, "cannot write layer stack '%s': %s", ex->stack_file,
				 strerror(-r));
			free(stack.p);
			return r;
		}
	}
	free(stack.p);
	if (live)
		test_pause();
	snprintf(path, sizeof(path), "%s/ovlnfsd/base", work);
	unlink(path);
	snprintf(path, sizeof(path), "%s/" JOURNAL, work);
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot remove the commit journal '%s': %s", path,
			 strerror(errno));
		return -errno;
	}
	return 0;
}

int onfs_commit_recover(struct onfs_export *ex, const char *upper, const char *work, char *err,
			size_t errlen)
{
	char path[PATH_MAX + 32], *dst, *fresh, *nl, *moved;
	struct onfs_buf j = { 0 };
	int r;

	if (!work || !ex->stack_file)
		return 0;
	snprintf(path, sizeof(path), "%s/" JOURNAL, work);
	r = read_text(path, &j);
	/* no journal (or no work area at all: its setup says why, later) */
	if (r == -ENOENT || r == -ENOTDIR) {
		free(j.p);
		return 0;
	}
	dst = j.p ? strstr(j.p, "layer ") : NULL;
	fresh = j.p ? strstr(j.p, "\nfresh ") : NULL;
	if (r < 0 || !dst || dst != j.p || !fresh) {
		snprintf(err, errlen, "commit journal '%s' unreadable: %s", path,
			 r < 0 ? strerror(-r) : "bad format");
		free(j.p);
		return -1;
	}
	*fresh = '\0';
	dst += 6;
	fresh += 7;
	nl = strchr(fresh, '\n');
	if (nl)
		*nl = '\0';
	/* the rest: the "moved NAME INO" lines of onfs_commit_prepare */
	moved = nl ? nl + 1 : NULL;
	onfs_warn("export '%s': finishing a commit cut short (journal '%s'): layer '%s'",
		  ex->name, path, dst);
	r = roll_forward(ex, upper, work, dst, fresh, moved, false, err, errlen);
	free(j.p);
	return r < 0 ? -1 : 0;
}

static bool layer_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* Is a (a real path) b or below it? */
static bool within(const char *a, const char *b)
{
	size_t lb = strlen(b);

	return strncmp(a, b, lb) == 0 && (a[lb] == '\0' || a[lb] == '/');
}

int onfs_commit_disk(struct onfs_export *ex, const char *upper, const char *work,
		     const char *layers_dir, const char *layer, const char *moved, char *err,
		     size_t errlen)
{
	char dst[PATH_MAX], fresh[PATH_MAX + 96], trash[PATH_MAX + 32], jp[PATH_MAX + 32];
	char rl[PATH_MAX], ru[PATH_MAX], rw[PATH_MAX], owner[64];
	struct onfs_buf j = { 0 }, stack = { 0 };
	struct stat ls, us, st;
	struct timespec times[2];
	size_t ncommitted = 0;
	ssize_t on;
	int r;

	if (!layers_dir) {
		snprintf(err, errlen, "no layers directory configured ('layers = DIR' in the "
			 "[server] section of the config file)");
		return -EINVAL;
	}
	if (!layer_name_ok(layer)) {
		snprintf(err, errlen, "'%s' is not a layer name (1-128 of A-Z a-z 0-9 . _ -)",
			 layer);
		return -EINVAL;
	}
	if (!ex->by_handle || !work || !ex->stack_file) {
		snprintf(err, errlen, "'%s': commit needs kernel file handles "
			 "(CAP_DAC_READ_SEARCH) and a work area", ex->name);
		return -EINVAL;
	}
	if (!realpath(layers_dir, rl) || stat(rl, &ls) < 0 || !S_ISDIR(ls.st_mode)) {
		snprintf(err, errlen, "layers directory '%s': %s", layers_dir,
			 errno ? strerror(errno) : "not a directory");
		return -ENOENT;
	}
	if (!realpath(upper, ru) || stat(ru, &us) < 0 || !realpath(work, rw)) {
		snprintf(err, errlen, "upper '%s': %s", upper, strerror(errno));
		return -ENOENT;
	}
	if (ls.st_dev != us.st_dev) {
		snprintf(err, errlen, "layers directory '%s' is on another filesystem than the "
			 "upper '%s': a commit renames the upper, it never copies it", layers_dir,
			 upper);
		return -EXDEV;
	}
	if (within(rl, ru) || within(rl, rw) || within(ru, rl)) {
		snprintf(err, errlen, "layers directory '%s' overlaps the upper '%s' or the "
			 "workdir '%s'", layers_dir, upper, work);
		return -EINVAL;
	}
	if ((size_t)snprintf(dst, sizeof(dst), "%s/%s", rl, layer) >= sizeof(dst)) {
		snprintf(err, errlen, "layer path too long");
		return -ENAMETOOLONG;
	}
	if (lstat(dst, &st) == 0 || errno != ENOENT) {
		snprintf(err, errlen, "layer '%s' already exists", dst);
		return -EEXIST;
	}
	if (read_text(ex->stack_file, &stack) == 0)
		for (const char *p = stack.p; (p = strstr(p, "layer ")); p++)
			ncommitted++;
	free(stack.p);
	/* an instance is dormant here: its layers are the line's, without its stack */
	if (ex->nlayers + (ex->line ? ncommitted : 0) + 1 > ONFS_MAX_LAYERS) {
		snprintf(err, errlen, "'%s' has %d layers already", ex->name, ONFS_MAX_LAYERS);
		return -ENOSPC;
	}
	/* the fresh upper root looks like the old one: mode, owner, times */
	snprintf(trash, sizeof(trash), "%s/ovlnfsd/trash", work);
	if (mkdir(trash, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create '%s': %s", trash, strerror(errno));
		return -errno;
	}
	onfs_trash_name(ex, trash, fresh, sizeof(fresh), "fresh");
	if (mkdir(fresh, us.st_mode & 07777) < 0) {
		snprintf(err, errlen, "cannot create '%s': %s", fresh, strerror(errno));
		return -errno;
	}
	if (chmod(fresh, us.st_mode & 07777) < 0 ||
	    ((us.st_uid != ex->owner.uid || us.st_gid != ex->owner.gid) &&
	     chown(fresh, us.st_uid, us.st_gid) < 0 && !ex->no_chown))
		onfs_debug("commit: attributes of '%s': %s", fresh, strerror(errno));
	on = getxattr(ru, ONFS_OWNER_XATTR, owner, sizeof(owner));
	if (on > 0)
		setxattr(fresh, ONFS_OWNER_XATTR, owner, (size_t)on, 0);
	times[0] = us.st_atim;
	times[1] = us.st_mtim;
	utimensat(AT_FDCWD, fresh, times, 0);

	test_pause();
	onfs_buf_printf(&j, "layer %s\nfresh %s\n%s", dst, fresh, moved ? moved : "");
	snprintf(jp, sizeof(jp), "%s/" JOURNAL, work);
	r = j.oom ? -ENOMEM : write_atomic(jp, j.p);
	free(j.p);
	if (r < 0) {
		rmdir(fresh);
		snprintf(err, errlen, "cannot write the commit journal '%s': %s", jp, strerror(-r));
		return r;
	}
	r = roll_forward(ex, upper, work, dst, fresh, moved, true, err, errlen);
	if (r == 0)
		onfs_info("export '%s': committed: upper '%s' is now layer '%s' (top lower), a "
			  "new empty upper in its place", ex->name, upper, dst);
	return r;
}

/* --- plain exports --- */

/* The upper root (layers[0].fd keeps its number: fs_fd[] may point at it). */
static int reopen_upper(struct onfs_export *ex, char *err, size_t errlen)
{
	int fd = open(ex->layers[0].real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || dup3(fd, ex->layers[0].fd, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "cannot open the new upper '%s': %s", ex->layers[0].real,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Quiesce a plain export (inst_lock taken); 0 or -errno with err. */
static int plain_begin(struct onfs_export *ex, const char *what, char *err, size_t errlen)
{
	int r;

	if (!ex->has_upper || ex->layers[0].fd < 0) {
		snprintf(err, errlen, "'%s' has no upper layer: nothing to %s", ex->name, what);
		return -EINVAL;
	}
	if (!ex->work_ok || !ex->inst_work) {
		snprintf(err, errlen, "'%s' is read-only (its work area is not usable)", ex->name);
		return -EROFS;
	}
	pthread_mutex_lock(&ex->inst_lock);
	if (!onfs_quiesce(ex, true)) {
		pthread_mutex_unlock(&ex->inst_lock);
		snprintf(err, errlen, "'%s': calls did not drain within 30 s", ex->name);
		return -EAGAIN;
	}
	r = onfs_owner_enter(ex);
	if (r < 0) {
		atomic_store(&ex->quiesce, false);
		pthread_mutex_unlock(&ex->inst_lock);
		snprintf(err, errlen, "'%s': cannot take the owner's credentials: %s", ex->name,
			 strerror(-r));
	}
	return r;
}

/* The new stack is in place: index, marks, base record, and every cache void. */
static void plain_end(struct onfs_export *ex)
{
	char why[PATH_MAX + 128] = "";

	if (onfs_workdir_renew(ex, why, sizeof(why)) < 0) {
		onfs_err("export '%s' is now READ-ONLY: %s", ex->name, why);
		ex->readonly = true;
	}
	onfs_export_caches_flush(ex);
	atomic_store(&ex->quiesce, false);
	pthread_mutex_unlock(&ex->inst_lock);
}

int onfs_reset_plain(struct onfs_export *ex, char *err, size_t errlen)
{
	char trash[PATH_MAX + 32], up[PATH_MAX + 96], ix[PATH_MAX + 96], p[PATH_MAX + 32];
	struct stat lst;
	int r, fd;

	r = plain_begin(ex, "reset", err, errlen);
	if (r < 0)
		return r;
	/* the pristine root: the top lower root's mode and owner, as a new upper's */
	if (fstat(ex->layers[1].fd, &lst) < 0)
		lst.st_mode = S_IFDIR | 0755;
	snprintf(trash, sizeof(trash), "%s/ovlnfsd/trash", ex->inst_work);
	if (mkdir(trash, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "cannot create '%s': %s", trash, strerror(errno));
		goto out_unlock;
	}
	onfs_trash_name(ex, trash, up, sizeof(up), "upper");
	if (mkdir(up, lst.st_mode & 07777) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot create '%s': %s", up, strerror(errno));
		goto out_unlock;
	}
	fd = open(up, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		if (lst.st_uid != ex->owner.uid || lst.st_gid != ex->owner.gid)
			if (fchown(fd, lst.st_uid, lst.st_gid) < 0 && ex->no_chown)
				onfs_upper_set_owner(fd, "", lst.st_uid, lst.st_gid, lst.st_mode);
		if (fchmod(fd, lst.st_mode & 07777) < 0)
			onfs_debug("reset: chmod of '%s': %s", up, strerror(errno));
		close(fd);
	}
	/* the one step the clients see: the upper path never goes missing */
	if (renameat2(AT_FDCWD, up, AT_FDCWD, ex->layers[0].real, RENAME_EXCHANGE) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot exchange '%s' with the upper '%s': %s", up,
			 ex->layers[0].real, strerror(errno));
		rmdir(up);
		goto out_unlock;
	}
	onfs_trash_name(ex, trash, ix, sizeof(ix), "index");
	snprintf(p, sizeof(p), "%s/index", ex->inst_work);
	if (rename(p, ix) < 0 && errno != ENOENT)
		onfs_warn("export '%s': reset: cannot move '%s' to the trash: %s", ex->name, p,
			  strerror(errno));
	/* the next base record is taken against the layers as they are now */
	snprintf(p, sizeof(p), "%s/ovlnfsd/base", ex->inst_work);
	unlink(p);
	if (reopen_upper(ex, err, errlen) < 0) {
		r = -EIO;
		ex->readonly = true;
	}
	onfs_info("export '%s': reset: upper moved to '%s', emptied in the background", ex->name,
		  up);
	plain_end(ex);
	return r;
out_unlock:
	atomic_store(&ex->quiesce, false);
	pthread_mutex_unlock(&ex->inst_lock);
	return r;
}

int onfs_layers_commit(struct onfs_export *ex, const char *layers_dir, const char *layer,
		       char *err, size_t errlen)
{
	char dst[PATH_MAX + 8], real[PATH_MAX], jp[PATH_MAX + 32], *moved = NULL;
	struct stat st;
	int r;

	if (ex->tmpl) {
		snprintf(err, errlen, "'%s' is a templated line: name one of its instances "
			 "(EXPORT/INSTANCE, see list)", ex->name);
		return -EINVAL;
	}
	if (ex->line)
		return onfs_instance_commit(ex, layers_dir, layer, err, errlen);
	r = plain_begin(ex, "commit", err, errlen);
	if (r < 0)
		return r;
	r = onfs_commit_prepare(ex, &moved, err, errlen);
	if (r == 0)
		r = onfs_commit_disk(ex, ex->layers[0].path, ex->inst_work, layers_dir, layer,
				     moved, err, errlen);
	if (r < 0) {
		free(moved);
		snprintf(jp, sizeof(jp), "%s/" JOURNAL, ex->inst_work);
		if (stat(jp, &st) == 0) {
			/* half done: nothing more is written until a restart finishes it */
			onfs_err("export '%s' is now READ-ONLY: commit cut short (%s); the next "
				 "start finishes it", ex->name, err);
			ex->readonly = true;
		}
		atomic_store(&ex->quiesce, false);
		pthread_mutex_unlock(&ex->inst_lock);
		return r;
	}
	snprintf(dst, sizeof(dst), "%s/%s", realpath(layers_dir, real) ? real : layers_dir,
		 layer);
	if (reopen_upper(ex, err, errlen) < 0 || insert_layer(ex, 1, dst, err, errlen) < 0) {
		onfs_err("export '%s' is now READ-ONLY: after its commit: %s", ex->name, err);
		ex->readonly = true;
		r = -EIO;
		free(moved);
	} else {
		ex->layers[1].moved = moved;
	}
	plain_end(ex);
	return r;
}
