/*
 * layers.c - what the control socket asks of an export's layers: the
 * listing (kind, layers, read-only state, size of the upper), the diff
 * of an upper against its lowers, and the trash of resets
 * (workdir/ovlnfsd/trash/reset-RUN-N-KIND, docs/operating.md).
 *
 * Threads: pool workers (ctl.c queues them); onfs_trash_scrub on the
 * thread that sets up a work area. Walks open directories beneath the
 * layer roots by name and tolerate entries that vanish under them: a
 * client may be writing at the same time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "ovlnfsd/ctl.h"
#include "internal.h"

#define WALK_DEPTH_MAX 256

/* A random tag of this process run: trash of other runs is a crash's. */
static uint32_t run_id;
static atomic_uint trash_counter;
static pthread_once_t run_once = PTHREAD_ONCE_INIT;

static void run_init(void)
{
	if (getrandom(&run_id, sizeof(run_id), 0) != sizeof(run_id))
		run_id = (uint32_t)getpid() ^ (uint32_t)time(NULL);
}

void onfs_trash_name(struct onfs_export *ex, const char *dir, char *out, size_t cap,
		     const char *kind)
{
	(void)ex;
	pthread_once(&run_once, run_init);
	snprintf(out, cap, "%s/reset-%08x-%u-%s", dir, run_id,
		 atomic_fetch_add(&trash_counter, 1), kind);
}

/* --- buffers --- */

void onfs_buf_printf(struct onfs_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t ncap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
		char *np = realloc(b->p, ncap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
}

void onfs_buf_json_str(struct onfs_buf *b, const char *s)
{
	onfs_buf_printf(b, "\"");
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			onfs_buf_printf(b, "\\%c", *c);
		else if (*c < 0x20 || *c >= 0x7f)
			onfs_buf_printf(b, "\\u%04x", *c); /* bytes, not characters: names are bytes */
		else
			onfs_buf_printf(b, "%c", *c);
	}
	onfs_buf_printf(b, "\"");
}

/* --- listing --- */

void onfs_layers_info(struct onfs_export *ex, struct onfs_layers_info *out)
{
	size_t first = ex->has_upper ? 1 : 0;

	memset(out, 0, sizeof(*out));
	out->kind = ex->tmpl ? "template" : ex->line ? "instance" : "export";
	out->upper = onfs_instance_upper(ex);
	for (size_t i = first; i < ex->nlayers && out->nlowers < ONFS_ARRAY_SIZE(out->lowers); i++)
		out->lowers[out->nlowers++] = ex->layers[i].path;
	out->idle_s = -1;
	out->live = true;
	if (ex->line) {
		out->live = atomic_load(&ex->live);
		if (atomic_load(&ex->last_use) > 0) {
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			out->idle_s = (long long)ts.tv_sec - atomic_load(&ex->last_use);
		}
	}
	out->readonly = ex->readonly || !ex->has_upper;
	if (!ex->has_upper)
		out->ro_reason = "no upperdir";
	else if (ex->tmpl)
		out->ro_reason = NULL;
	else if (ex->readonly && ex->line && !out->live)
		out->ro_reason = NULL; /* dormant: decided at its next activation */
	else if (ex->readonly)
		out->ro_reason = "work area not usable (see the log)";
	if ((ex->line && !out->live) || ex->tmpl)
		out->readonly = false; /* instances decide for themselves */
}

static void usage_walk(int dfd, int depth, uint64_t *bytes, uint64_t *objects)
{
	DIR *d;
	struct dirent *e;

	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	while ((e = readdir(d))) {
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		(*objects)++;
		*bytes += (uint64_t)st.st_blocks * 512;
		if (S_ISDIR(st.st_mode) && depth < WALK_DEPTH_MAX) {
			int sfd = openat(dirfd(d), e->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sfd >= 0)
				usage_walk(sfd, depth + 1, bytes, objects);
		}
	}
	closedir(d);
}

void onfs_layers_usage(struct onfs_export *ex, uint64_t *bytes, uint64_t *objects)
{
	const char *up = onfs_instance_upper(ex);
	int fd;

	*bytes = *objects = 0;
	if (!up || ex->tmpl || onfs_owner_enter(ex) < 0)
		return;
	fd = open(up, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		usage_walk(fd, 0, bytes, objects);
}

/* --- diff --- */

struct diff_ctx {
	struct onfs_export *ex;
	bool json;
	struct onfs_buf *out;
	size_t n;
	size_t first_lower;
};

static void diff_emit(struct diff_ctx *c, char code, const char *path, const char *extra)
{
	if (c->json) {
		onfs_buf_printf(c->out, "%s\n  {\"status\": \"%c\", \"path\": ", c->n ? "," : "",
				code);
		onfs_buf_json_str(c->out, path);
		if (extra) {
			onfs_buf_printf(c->out, ", \"from\": ");
			onfs_buf_json_str(c->out, extra);
		}
		onfs_buf_printf(c->out, "}");
	} else if (extra) {
		onfs_buf_printf(c->out, "%c  %s (from %s)\n", code, path, extra);
	} else {
		onfs_buf_printf(c->out, "%c  %s\n", code, path);
	}
	c->n++;
}

/* The visible lower object at rel, if any (a whiteout hides it). */
static bool lower_stat(struct diff_ctx *c, const char *rel, struct stat *st)
{
	struct onfs_export *ex = c->ex;

	for (size_t i = c->first_lower; i < ex->nlayers; i++) {
		if (ex->layers[i].fd < 0)
			continue;
		if (fstatat(ex->layers[i].fd, rel, st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0))
			return false;
		return true;
	}
	return false;
}

static char ovl_get(struct diff_ctx *c, int dfd, const char *name, const char *attr,
		    char *buf, size_t cap)
{
	char full[64];
	int n;

	onfs_ovl_xattr(c->ex, attr, full, sizeof(full));
	n = onfs_fs_getxattr_at(dfd, name, full, buf, cap - 1);
	if (n < 0)
		return 0;
	buf[n] = '\0';
	return n > 0 ? buf[0] : 'y';
}

static void diff_walk(struct diff_ctx *c, int dfd, const char *rel, int depth, bool below_new)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;

	if (!d) {
		close(dfd);
		return;
	}
	while ((e = readdir(d))) {
		char path[PATH_MAX], v[PATH_MAX];
		struct stat st, lst;
		bool in_lower;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		snprintf(path, sizeof(path), "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
		in_lower = !below_new && lower_stat(c, path, &lst);
		if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
			if (in_lower)
				diff_emit(c, 'D', path, NULL);
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			bool opaque = ovl_get(c, dirfd(d), e->d_name, "opaque", v, sizeof(v)) == 'y';
			bool redirect = ovl_get(c, dirfd(d), e->d_name, "redirect", v, sizeof(v)) != 0;
			bool fresh = below_new || !in_lower || opaque || redirect;

			if (redirect)
				diff_emit(c, 'R', path, v[0] == '/' ? v + 1 : v);
			else if (in_lower && opaque)
				diff_emit(c, 'R', path, NULL);
			else if (!in_lower)
				diff_emit(c, 'A', path, NULL);
			else if (!S_ISDIR(lst.st_mode) ||
				 (lst.st_mode & 07777) != (st.st_mode & 07777) ||
				 lst.st_uid != st.st_uid || lst.st_gid != st.st_gid)
				diff_emit(c, 'M', path, NULL);
			if (depth < WALK_DEPTH_MAX) {
				int sfd = openat(dirfd(d), e->d_name,
						 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

				if (sfd >= 0)
					diff_walk(c, sfd, path, depth + 1, fresh);
			}
			continue;
		}
		diff_emit(c, in_lower ? 'M' : 'A', path, NULL);
	}
	closedir(d);
}

int onfs_layers_diff(struct onfs_export *ex, bool json, struct onfs_buf *out)
{
	struct diff_ctx c = { .ex = ex, .json = json, .out = out, .first_lower = 1 };
	const char *up = onfs_instance_upper(ex);
	int fd, r;

	if (!up || ex->tmpl)
		return -EINVAL;
	r = onfs_owner_enter(ex);
	if (r < 0)
		return r;
	if (json)
		onfs_buf_printf(out, "[");
	fd = open(up, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		diff_walk(&c, fd, "", 0, false);
	else if (errno != ENOENT)
		return -errno;
	if (json)
		onfs_buf_printf(out, "%s]\n", c.n ? "\n" : "");
	return out->oom ? -ENOMEM : 0;
}

/* --- the trash --- */

/* Remove name below dirfd, a whole tree; ENOENT is done. */
static int rmtree_at(int pfd, const char *name, int depth)
{
	struct stat st;
	int fd, ret = 0;
	DIR *d;
	struct dirent *e;

	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(pfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	if (depth > 4096)
		return -ELOOP;
	fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		int r = rmtree_at(dirfd(d), e->d_name, depth + 1);
		if (r < 0)
			ret = r;
	}
	closedir(d);
	if (unlinkat(pfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		ret = -errno;
	return ret;
}

/* mine: only this run's entries; else only other runs' */
static int trash_sweep(int wfd, bool mine, char *why, size_t whylen)
{
	char tag[32];
	int tfd, ret = 0;
	DIR *d;
	struct dirent *e;

	pthread_once(&run_once, run_init);
	snprintf(tag, sizeof(tag), "reset-%08x-", run_id);
	tfd = openat(wfd, "ovlnfsd/trash", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (tfd < 0)
		return errno == ENOENT ? 0 : -errno;
	d = fdopendir(tfd);
	if (!d) {
		close(tfd);
		return -ENOMEM;
	}
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if ((strncmp(e->d_name, tag, strlen(tag)) == 0) != mine)
			continue;
		int r = rmtree_at(dirfd(d), e->d_name, 0);
		if (r < 0) {
			ret = r;
			if (why)
				snprintf(why, whylen, "cannot empty 'ovlnfsd/trash/%s': %s",
					 e->d_name, strerror(-r));
		}
	}
	closedir(d);
	return ret;
}

int onfs_trash_scrub(int wfd, char *why, size_t whylen)
{
	return trash_sweep(wfd, false, why, whylen);
}

void onfs_layers_trash_empty(struct onfs_export *ex)
{
	const char *work = onfs_instance_work(ex);
	int wfd, r;

	if (!work || onfs_owner_enter(ex) < 0)
		return;
	wfd = open(work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (wfd < 0)
		return;
	r = trash_sweep(wfd, true, NULL, 0);
	if (r < 0)
		onfs_warn("export '%s': emptying '%s/ovlnfsd/trash': %s (the next start "
			  "finishes it)", ex->name, work, strerror(-r));
	else
		onfs_info("export '%s': trash of the reset emptied", ex->name);
	close(wfd);
}

/* --- the base an upper was made against (workdir/ovlnfsd/base) --- */

/*
 * One line per lower layer, top first: "layer DEV INO CTIME.NSEC PATH".
 * The root's device, inode and ctime identify the layer: a directory
 * replaced in place, or entries added or removed at its top, change them.
 */
static void base_describe(struct onfs_export *ex, struct onfs_buf *b)
{
	for (size_t i = ex->has_upper ? 1 : 0; i < ex->nlayers; i++) {
		struct stat st;

		if (ex->layers[i].fd < 0 || fstat(ex->layers[i].fd, &st) < 0)
			memset(&st, 0, sizeof(st));
		onfs_buf_printf(b, "layer %llu %llu %lld.%09ld %s\n",
				(unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
				(long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec,
				ex->layers[i].path);
	}
}

/* The record below the work directory, NUL-terminated into *out; -errno. */
static int base_read(int wfd, const char *work, char **out)
{
	char path[PATH_MAX + 32];
	int fd;
	struct onfs_buf b = { 0 };

	if (wfd >= 0) {
		fd = openat(wfd, "ovlnfsd/base", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	} else {
		snprintf(path, sizeof(path), "%s/ovlnfsd/base", work);
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	for (;;) {
		char chunk[1024];
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n <= 0)
			break;
		onfs_buf_printf(&b, "%.*s", (int)n, chunk);
	}
	close(fd);
	if (b.oom || !b.p) {
		free(b.p);
		return b.oom ? -ENOMEM : -ENODATA;
	}
	*out = b.p;
	return 0;
}

void onfs_base_check(struct onfs_export *ex, int wfd)
{
	struct onfs_buf now = { 0 };
	char *rec = NULL, tmp[64];
	int r, fd;

	base_describe(ex, &now);
	if (now.oom)
		goto out;
	r = base_read(wfd, NULL, &rec);
	if (r == 0) {
		if (strcmp(rec, now.p) != 0)
			onfs_warn("export '%s': its lower layers changed since its upper was made "
				  "(workdir/ovlnfsd/base): served over the layers as they are now; "
				  "`ovlnfsctl diff` shows the upper, `ovlnfsctl reset` drops it",
				  ex->name);
		goto out;
	}
	if (r != -ENOENT)
		goto out;
	/* the first use of this upper (or one older than the record): record it */
	snprintf(tmp, sizeof(tmp), "ovlnfsd/base.%u", (unsigned)getpid());
	fd = openat(wfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	if (write(fd, now.p, now.len) != (ssize_t)now.len || fsync(fd) < 0 ||
	    renameat(wfd, tmp, wfd, "ovlnfsd/base") < 0) {
		onfs_warn("export '%s': cannot record its base in workdir/ovlnfsd/base: %s",
			  ex->name, strerror(errno));
		unlinkat(wfd, tmp, 0);
	}
	close(fd);
out:
	free(rec);
	free(now.p);
}

int onfs_layers_base(struct onfs_export *ex)
{
	struct onfs_buf now = { 0 };
	const char *work = onfs_instance_work(ex);
	char *rec = NULL;
	int r, wfd = -1;

	if (ex->tmpl || !ex->has_upper)
		return -ENOENT;
	if (!work && ex->work_fd >= 0)
		wfd = openat(ex->work_fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!work && wfd < 0)
		return -ENOENT;
	r = base_read(wfd, work, &rec);
	if (wfd >= 0)
		close(wfd);
	if (r < 0)
		return r;
	base_describe(ex, &now);
	r = now.oom ? -ENOMEM : strcmp(rec, now.p) != 0;
	free(rec);
	free(now.p);
	return r;
}
