/*
 * copyup.c - copying lower objects into the upper layer (docs/overlay.md, "Copy-up"):
 * parents first, each object built in work/ (a regular file unnamed, with
 * O_TMPFILE; the others as a temp "#N") with its data (holes kept), xattrs
 * (overlay ones excepted), origin, owner, mode and times, then linked or
 * renamed into place, so the name appears only when complete.
 * Every copy-up is indexed (nfs_export=on): index/<hex origin> is a hard
 * link of a copied-up non-directory, or an empty directory whose upper
 * xattr names the copied-up directory.
 *
 * Pool workers only, under the owner's credentials. A copy-up holds the
 * object's stripe lock for its whole length (one copy-up per object) and
 * the export's ns_lock only for the final renames, so a 1 GiB copy-up
 * does not stop other clients' requests.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "ovlnfsd/daemon.h" /* copy-up metrics */
#include "ovlnfsd/siphash.h"
#include "internal.h"

pthread_mutex_t *onfs_obj_lock(struct onfs_export *ex, const struct onfs_ident *id)
{
	uint64_t h = onfs_siphash24(ex->key, id, 3u + id->len);

	return &ex->obj_lock[h % ONFS_ARRAY_SIZE(ex->obj_lock)];
}

/* Copy every xattr except the overlay ones, as the kernel's copy-up. */
static int copy_xattrs(struct onfs_export *ex, int src, int dst)
{
	char list[65536], proc_s[64], proc_d[64];
	char *val = NULL;
	ssize_t ln, vl;
	size_t plen = strlen(ex->xattr_prefix);
	int ret = 0;

	snprintf(proc_s, sizeof(proc_s), "/proc/self/fd/%d", src);
	snprintf(proc_d, sizeof(proc_d), "/proc/self/fd/%d", dst);
	/* follow the magic links: they lead to the objects themselves */
	ln = listxattr(proc_s, list, sizeof(list));
	if (ln <= 0)
		return 0; /* none, or not supported by the lower fs */
	val = malloc(65536);
	if (!val)
		return -ENOMEM;
	for (char *k = list; k < list + ln; k += strlen(k) + 1) {
		/* trusted.overlay.* and user.overlay.* are never copied (§0.1) */
		if (strncmp(k, ex->xattr_prefix, plen) == 0 ||
		    strncmp(k, "trusted.overlay.", 16) == 0 || strncmp(k, "user.overlay.", 13) == 0)
			continue;
		vl = getxattr(proc_s, k, val, 65536);
		if (vl < 0)
			continue;
		if (setxattr(proc_d, k, val, (size_t)vl, 0) < 0) {
			/* security.* and ACL failures are fatal, others ignored */
			if (strncmp(k, "security.", 9) == 0 || strncmp(k, "system.posix_acl", 16) == 0) {
				ret = -errno;
				break;
			}
		}
	}
	free(val);
	return ret;
}

#define NS_PER_SEC 1000000000ull
#define PROGRESS_AFTER_NS NS_PER_SEC        /* only copies that run longer */
#define PROGRESS_EVERY_NS (5 * NS_PER_SEC)

/*
 * A long copy-up says how far it is (path: the merged path, for the log).
 * ONFS_PROGRESS_MS=N in the environment sets both thresholds to N ms
 * (tests use 0 to see the lines on a small file).
 */
struct copy_progress {
	const char *path;
	off_t size;
	uint64_t t0, last;
};

static void progress_limits(uint64_t *after, uint64_t *every)
{
	static int64_t env_ns = -2; /* -2: not read yet, -1: unset */
	int64_t v = __atomic_load_n(&env_ns, __ATOMIC_RELAXED);

	if (v == -2) {
		const char *e = getenv("ONFS_PROGRESS_MS");

		v = e ? (int64_t)(atof(e) * 1e6) : -1;
		__atomic_store_n(&env_ns, v, __ATOMIC_RELAXED);
	}
	*after = v >= 0 ? (uint64_t)v : PROGRESS_AFTER_NS;
	*every = v >= 0 ? (uint64_t)v : PROGRESS_EVERY_NS;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static void copy_progress(struct copy_progress *pr, off_t done, bool end)
{
	uint64_t now = mono_ns(), el = now - pr->t0, after, every;
	double mib = (double)done / (1024.0 * 1024.0);
	double rate = el ? mib / ((double)el / NS_PER_SEC) : 0;

	progress_limits(&after, &every);
	if (el < after || (!end && now - pr->last < every))
		return;
	pr->last = now;
	if (end)
		onfs_info("copy-up of '/%s' done: %.1f MiB in %.1f s (%.1f MiB/s)", pr->path, mib,
			  (double)el / NS_PER_SEC, rate);
	else
		onfs_info("copy-up of '/%s': %.1f of %.1f MiB (%d%%), %.1f MiB/s", pr->path, mib,
			  (double)pr->size / (1024.0 * 1024.0),
			  pr->size ? (int)(100.0 * (double)done / (double)pr->size) : 100, rate);
}

/* Data with holes kept: copy only the data segments. */
static int copy_data(int src, int dst, const struct stat *st, struct copy_progress *pr)
{
	off_t size = st->st_size, pos = 0, data, hole;

	/*
	 * A file with as many blocks as bytes has no holes: one
	 * copy_file_range from 0 to its end (the usual small file), no
	 * SEEK_DATA/SEEK_HOLE and no ftruncate.
	 */
	if (size > 0 && size <= (1 << 20) && st->st_blocks * 512 >= size) {
		loff_t in = 0, outp = 0;
		ssize_t n = copy_file_range(src, &in, dst, &outp, (size_t)size, 0);

		if (n == size) {
			copy_progress(pr, size, true);
			return 0;
		}
		if (n < 0 && errno != EXDEV && errno != EINVAL && errno != EOPNOTSUPP)
			return -errno;
		/* short, or no in-kernel copy here: the general way below */
	}
	while (pos < size) {
		data = lseek(src, pos, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)
				break; /* only a hole is left */
			return -errno;
		}
		hole = lseek(src, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		for (off_t off = data; off < hole;) {
			loff_t in = off, outp = off;
			ssize_t n = copy_file_range(src, &in, dst, &outp,
						    (size_t)(hole - off > (1 << 20) ? (1 << 20) : hole - off), 0);
			if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP)) {
				/* no in-kernel copy between these filesystems: read and write */
				char buf[65536];
				n = pread(src, buf, sizeof(buf) < (size_t)(hole - off) ? sizeof(buf) : (size_t)(hole - off), off);
				for (ssize_t w = 0, done = 0; n > 0 && done < n; done += w) {
					w = pwrite(dst, buf + done, (size_t)(n - done), off + done);
					if (w < 0)
						return -errno; /* ENOSPC, EDQUOT reach the client as such */
					if (w == 0)
						return -EIO;
				}
			}
			if (n < 0)
				return -errno;
			if (n == 0)
				break;
			off += n;
			copy_progress(pr, off, false);
		}
		pos = hole;
	}
	if (ftruncate(dst, size) < 0)
		return -errno;
	copy_progress(pr, size, true);
	return 0;
}

/*
 * Owner, mode (not for symlinks) and times of st onto name in dirfd (work/),
 * or onto dirfd itself when name is "" (an unnamed regular file).
 */
static int copy_attrs(struct onfs_export *ex, int dirfd, const char *name, const struct stat *st)
{
	struct timespec ts[2] = { st->st_atim, st->st_mtim };
	uint32_t u, g, m;
	bool self = !*name;

	if (ex->no_chown) {
		/*
		 * rootless: keep the lower owner and mode as the client sees
		 * them (an owner xattr copied from the lower wins), and make the
		 * copy usable by the owner
		 */
		int fd = self ? dirfd : openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		bool have = fd >= 0 && onfs_owner_xattr_get(fd, &u, &g, &m) == 0;
		mode_t mode = (st->st_mode | (S_ISDIR(st->st_mode) ? 0700 : 0600)) & 07777;

		if (fd >= 0 && !self)
			close(fd);
		if (!S_ISLNK(st->st_mode) &&
		    (self ? fchmod(dirfd, mode) : fchmodat(dirfd, name, mode, 0)) < 0)
			return -errno;
		if (!have && (S_ISREG(st->st_mode) || S_ISDIR(st->st_mode))) {
			int ret = onfs_upper_set_owner(dirfd, name, st->st_uid, st->st_gid,
						       st->st_mode);
			if (ret < 0)
				return ret;
		}
	} else {
		if ((self ? fchown(dirfd, st->st_uid, st->st_gid)
			  : fchownat(dirfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW)) < 0)
			return -errno;
		if (!S_ISLNK(st->st_mode) &&
		    (self ? fchmod(dirfd, st->st_mode & 07777)
			  : fchmodat(dirfd, name, st->st_mode & 07777, 0)) < 0)
			return -errno;
	}
	if ((self ? futimens(dirfd, ts) : utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW)) < 0)
		return -errno;
	return 0;
}

static void restore_times(int dirfd, const struct stat *st)
{
	struct timespec ts[2] = { st->st_atim, st->st_mtim };

	futimens(dirfd, ts);
}

/*
 * The index entry of a copied-up directory: an empty directory named after
 * the lower's origin that names the upper copy dst (docs/overlay.md, "The
 * index"). Built in work/ with its "upper" xattr and renamed into index/, so
 * a kill never leaves an entry without one. Best effort, as the kernel's:
 * an entry that exists already is kept.
 */
static void index_dir(struct onfs_export *ex, const struct onfs_ident *lower, int dst)
{
	char tmp[32], idx[2 * (21 + ONFS_FID_MAX) + 1];
	uint8_t fb[21 + ONFS_FID_MAX];
	struct onfs_ident uid = { 0 };
	int ifd;

	onfs_upper_index_name(ex, lower, idx, sizeof(idx));
	if (!idx[0] || onfs_fs_name_to_ident(dst, "", &uid) < 0)
		return;
	uid.fsidx = ex->layers[0].fsidx;
	ifd = onfs_upper_tmpdir(ex, tmp, sizeof(tmp));
	if (ifd < 0)
		return;
	if (onfs_upper_set_ovl(ex, ifd, "upper", fb, onfs_upper_encode_fb(ex, &uid, true, fb)) < 0 ||
	    onfs_upper_rename(ex->work_fd, tmp, ex->index_fd, idx, RENAME_NOREPLACE) < 0)
		onfs_upper_unlink(ex->work_fd, tmp, AT_REMOVEDIR);
	close(ifd);
}

/*
 * Copy the directory `dir` (a merged node without an upper part) up as
 * name inside the upper directory pfd. Holds ns_lock (the caller's).
 */
static int copyup_dir_locked(struct onfs_export *ex, int pfd, const char *name,
			     struct onfs_node *dir)
{
	char tmp[32];
	uint8_t fb[21 + ONFS_FID_MAX];
	struct stat st, pst;
	int src = -1, dst = -1, ret;
	size_t fbl;

	src = onfs_node_open(ex, dir, O_RDONLY | O_DIRECTORY);
	if (src < 0)
		return src;
	if (fstat(src, &st) < 0 || fstat(pfd, &pst) < 0) {
		ret = -errno;
		goto out;
	}
	dst = onfs_upper_tmpdir(ex, tmp, sizeof(tmp));
	if (dst < 0) {
		ret = dst;
		goto out;
	}
	ret = copy_xattrs(ex, src, dst);
	if (ret < 0)
		goto out_tmp;
	fbl = onfs_upper_encode_fb(ex, &dir->ident, false, fb);
	ret = onfs_upper_set_ovl(ex, dst, "origin", fb, fbl);
	if (ret == 0)
		ret = copy_attrs(ex, ex->work_fd, tmp, &st);
	if (ret == 0)
		ret = onfs_upper_mark_impure(ex, pfd);
	if (ret == 0)
		ret = onfs_upper_rename(ex->work_fd, tmp, pfd, name, RENAME_NOREPLACE);
	if (ret < 0)
		goto out_tmp;
	restore_times(pfd, &pst);
	index_dir(ex, &dir->ident, dst);
	ret = 0;
	goto out;
out_tmp:
	onfs_upper_unlink(ex->work_fd, tmp, AT_REMOVEDIR);
out:
	if (dst >= 0)
		close(dst);
	close(src);
	return ret;
}

int onfs_copyup_dir_path(struct onfs_export *ex, const char *path, int *fd_out)
{
	struct onfs_node *cur, *next;
	char comp[NAME_MAX + 1];
	const char *p = path;
	int fd, nfd, ret;

	/*
	 * The usual case: the directory is in the upper layer already. An
	 * upper directory at a merged path is always that merged directory's
	 * upper part (the upper layer is on top and a directory there is
	 * never hidden), so one open beneath the upper root settles it.
	 */
	fd = onfs_fs_open_beneath(ex->layers[0].fd, path, O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		*fd_out = fd;
		return 0;
	}
	if (fd != -ENOENT && fd != -ENOTDIR && fd != -ELOOP)
		return fd;
	/*
	 * Otherwise down from the root one component at a time, copying up
	 * each directory that has no upper part yet and looking it up again
	 * in its (now upper) parent: a walk of the path's length, not of its
	 * square, and no path longer than a name given to a system call.
	 */
	fd = dup(ex->layers[0].fd);
	if (fd < 0)
		return -errno;
	ret = onfs_root(ex, &cur);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	while ((ret = onfs_path_next(&p, comp)) > 0) {
		ret = onfs_lookup(ex, cur, comp, &next);
		if (ret < 0)
			goto out;
		if (!S_ISDIR(next->type)) {
			onfs_node_put(next);
			ret = -ENOTDIR;
			goto out;
		}
		if (!ex->layers[next->parts[0].layer].upper) {
			ret = copyup_dir_locked(ex, fd, comp, next);
			onfs_node_put(next);
			if (ret < 0)
				goto out;
			/* the fresh node (with its upper part) replaces the cached one */
			ret = onfs_lookup(ex, cur, comp, &next);
			if (ret < 0)
				goto out;
		}
		onfs_node_put(cur);
		cur = next;
		nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0) {
			ret = -errno;
			goto out;
		}
		close(fd);
		fd = nfd;
	}
	if (ret < 0)
		goto out;
	*fd_out = fd;
	fd = -1;
	ret = 0;
out:
	onfs_node_put(cur);
	if (fd >= 0)
		close(fd);
	return ret;
}

static bool node_is_upper(const struct onfs_export *ex, const struct onfs_node *n)
{
	return n->parts[0].layer == ONFS_LAYER_INDEX || ex->layers[n->parts[0].layer].upper;
}

/*
 * Build a copy of the non-directory src (stat st) in work/: a regular file
 * unnamed (O_TMPFILE, tmp set to ""), where the filesystem allows it, as
 * the kernel does; otherwise, and for the other types, named tmp.
 */
static int build_tmp(struct onfs_export *ex, int src, const struct stat *st, bool with_data,
		     char *tmp, const char *path, int *dst_out)
{
	char target[PATH_MAX];
	ssize_t tl;
	int dst, ret = 0;

	if (S_ISREG(st->st_mode)) {
		mode_t mode = ex->no_chown ? 0600 : 0; /* user.* xattrs need write access */

		dst = onfs_upper_tmpfile(ex, mode);
		if (dst >= 0)
			tmp[0] = '\0';
		else
			dst = openat(ex->work_fd, tmp,
				     O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW | O_CLOEXEC, mode);
		if (dst < 0)
			return -errno;
		if (with_data) {
			struct copy_progress pr = { .path = path, .size = st->st_size,
						    .t0 = mono_ns() };

			ret = copy_data(src, dst, st, &pr);
			onfs_metrics_add(&onfs_metrics.copyups, 1);
			onfs_metrics_add(&onfs_metrics.copyup_bytes, ret == 0 ? (uint64_t)st->st_size : 0);
			onfs_metrics_add(&onfs_metrics.copyup_ns, mono_ns() - pr.t0);
		}
		/* the data must be on disk before the name can appear */
		if (ret == 0 && fsync(dst) < 0)
			ret = -errno;
	} else {
		if (S_ISLNK(st->st_mode)) {
			tl = readlinkat(src, "", target, sizeof(target) - 1);
			if (tl < 0)
				return -errno;
			target[tl] = '\0';
			ret = symlinkat(target, ex->work_fd, tmp) < 0 ? -errno : 0;
		} else {
			ret = mknodat(ex->work_fd, tmp, st->st_mode & S_IFMT, st->st_rdev) < 0 ? -errno : 0;
		}
		if (ret < 0)
			return ret;
		dst = openat(ex->work_fd, tmp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (dst < 0)
			return -errno;
	}
	*dst_out = dst;
	return ret;
}

/* parent path and base name of a merged path (parent owned by the caller) */
static int split_path(const char *path, char **parent, const char **base)
{
	const char *slash = strrchr(path, '/');

	*parent = strndup(path, slash ? (size_t)(slash - path) : 0);
	*base = slash ? slash + 1 : path;
	return *parent ? 0 : -ENOMEM;
}

/*
 * A lower hard link whose inode was already copied up by another of its
 * names lives in the index only: its first change links the index entry
 * into place under its own name ("link-up", as the kernel does), keeping
 * the overlay nlink through the nlink xattr.
 */
static int link_up(struct onfs_export *ex, struct onfs_node *n, struct onfs_node **out)
{
	pthread_mutex_t *lock = onfs_obj_lock(ex, &n->ident);
	struct onfs_node *cur = NULL;
	struct onfs_attr a;
	struct stat st;
	const char *base = NULL;
	char *parent = NULL, nl[16];
	int pfd = -1, ret, len;

	pthread_mutex_lock(lock);
	ret = onfs_walk(ex, n->path, &cur);
	if (ret < 0 || !onfs_ident_eq(&cur->ident, &n->ident)) {
		ret = -ESTALE;
		goto out;
	}
	if (cur->parts[0].layer != ONFS_LAYER_INDEX) { /* linked up meanwhile */
		*out = cur;
		cur = NULL;
		goto out;
	}
	ret = onfs_getattr(ex, cur, &a);
	if (ret == 0)
		ret = split_path(cur->path, &parent, &base);
	if (ret < 0)
		goto out;
	pthread_mutex_lock(&ex->ns_lock);
	ret = onfs_copyup_dir_path(ex, parent, &pfd);
	if (ret == 0)
		ret = onfs_upper_mark_impure(ex, pfd);
	if (ret == 0 && linkat(ex->index_fd, cur->parts[0].rel, pfd, base, 0) < 0)
		ret = -errno;
	if (ret == 0 && fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		int fd = openat(pfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		len = snprintf(nl, sizeof(nl), "U%+d", (int)a.nlink - (int)st.st_nlink);
		if (fd >= 0) {
			onfs_upper_set_ovl(ex, fd, "nlink", nl, (size_t)len);
			close(fd);
		}
	}
	onfs_changed_ns(ex); /* before the unlock: see struct onfs_gen */
	pthread_mutex_unlock(&ex->ns_lock);
	if (ret == 0)
		ret = onfs_walk(ex, n->path, out);
out:
	if (pfd >= 0)
		close(pfd);
	free(parent);
	onfs_node_put(cur);
	pthread_mutex_unlock(lock);
	return ret;
}

/*
 * The node of n once copied up, without a walk: the same object (path,
 * identity, handle, fileid) with its one part now in the upper layer, as
 * the merged lookup of a copied-up non-directory finds it (ns_lock held,
 * right after the rename).
 */
static int upper_clone(struct onfs_export *ex, const struct onfs_node *n, uint64_t top_ino,
		       int *wfd, struct onfs_node **out)
{
	struct onfs_node *c = calloc(1, sizeof(*c) + sizeof(struct onfs_part));

	if (!c)
		return -ENOMEM;
	atomic_init(&c->ref, 1);
	atomic_init(&c->fd, -1);
	atomic_init(&c->wfd, -1);
	c->path = strdup(n->path);
	c->parts[0].rel = strdup(n->path);
	if (!c->path || !c->parts[0].rel) {
		onfs_node_free(c);
		return -ENOMEM;
	}
	c->parts[0].layer = 0; /* the upper layer */
	c->nparts = 1;
	c->fh = n->fh;
	c->ident = n->ident;
	c->ident_lower = true;
	c->type = n->type;
	c->fileid = n->fileid;
	c->top_ino = top_ino;
	c->born = onfs_now_ns();
	c->born_dgen = atomic_load_explicit(&ex->gen_dirs, memory_order_acquire);
	/*
	 * The copy's read-write descriptor serves the WRITE that follows, and
	 * its attributes and reads as well (one descriptor in both slots:
	 * onfs_node_free closes it once; the budget counts both).
	 */
	if (*wfd >= 0 && S_ISREG(c->type) && onfs_fd_budget_take(ex)) {
		atomic_store(&c->wfd, *wfd);
		if (onfs_fd_budget_take(ex))
			atomic_store(&c->fd, *wfd);
		*wfd = -1;
	}
	onfs_node_cache_put(ex, c);
	*out = c;
	return 0;
}

/*
 * May the copy-up of n skip the walk from the root? When no directory was
 * removed or moved through the export since n was looked up (and
 * that lookup is recent), n's path still names n's directory; when that
 * directory is in the upper layer (*pfd, opened here) and holds nothing
 * under n's name, n was neither copied up nor removed meanwhile (either
 * leaves an entry there). Otherwise the careful way: a walk. Called again
 * with *pfd open (under ns_lock) it checks the generation only.
 */
static bool fast_ok(struct onfs_export *ex, const struct onfs_node *n, const char *parent,
		    const char *base, int *pfd)
{
	struct stat st;

	if (*pfd < 0) {
		if (n->unnamed || n->nparts != 1 || n->parts[0].layer == ONFS_LAYER_INDEX ||
		    ex->layers[n->parts[0].layer].upper ||
		    onfs_now_ns() - n->born >= ONFS_ATTR_TTL_NS)
			return false;
		*pfd = onfs_fs_open_beneath(ex->layers[0].fd, parent, O_RDONLY | O_DIRECTORY);
		if (*pfd < 0)
			return false;
		if (fstatat(*pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
			return false;
	}
	/* again under ns_lock: the final rename's RENAME_NOREPLACE sees the name */
	return n->born_dgen == atomic_load_explicit(&ex->gen_dirs, memory_order_acquire);
}

int onfs_copyup(struct onfs_export *ex, struct onfs_node *n, bool with_data,
		struct onfs_node **out)
{
	char tmp[32], idx[2 * (21 + ONFS_FID_MAX) + 1], nl[16];
	uint8_t fb[21 + ONFS_FID_MAX];
	struct onfs_node *cur = NULL, *c2 = NULL;
	struct stat st, pst, ust;
	pthread_mutex_t *lock;
	const char *base;
	char *parent = NULL;
	size_t fbl;
	int src = -1, dst = -1, pfd = -1, ret;
	bool have_tmp = false, src_own = false;

	if (n->parts[0].layer == ONFS_LAYER_INDEX && !n->unnamed && ex->work_ok)
		return link_up(ex, n, out);
	if (node_is_upper(ex, n)) {
		*out = onfs_node_get(n);
		return 0;
	}
	if (!ex->work_ok)
		return -EROFS;
	if (S_ISDIR(n->type)) {
		pthread_mutex_lock(&ex->ns_lock);
		ret = onfs_copyup_dir_path(ex, n->path, &pfd);
		onfs_changed_ns(ex); /* before the unlock: see struct onfs_gen */
		pthread_mutex_unlock(&ex->ns_lock);
		if (ret < 0)
			return ret;
		close(pfd);
		return onfs_walk(ex, n->path, out);
	}

	lock = onfs_obj_lock(ex, &n->ident);
	pthread_mutex_lock(lock);
	if (n->unnamed) {
		/*
		 * Reached through its handle only, and its directory could not
		 * be found (handle.c relocate): no name to copy up to. The
		 * kernel's index-only copy-up would be whited out as an orphan
		 * at its next mount, so refuse instead of losing the data.
		 */
		ret = -ESTALE;
		goto out;
	}
	ret = split_path(n->path, &parent, &base);
	if (ret < 0)
		goto out;
	if (fast_ok(ex, n, parent, base, &pfd)) {
		cur = onfs_node_get(n);
	} else {
		if (pfd >= 0)
			close(pfd);
		pfd = -1;
		/* someone may have copied it up (or removed it) while we waited */
		ret = onfs_walk(ex, n->path, &cur);
		if (ret < 0 || !onfs_ident_eq(&cur->ident, &n->ident)) {
			ret = -ESTALE;
			goto out;
		}
		if (node_is_upper(ex, cur)) {
			*out = cur;
			cur = NULL;
			ret = 0;
			goto out;
		}
	}
	/*
	 * A small file: the node's own read descriptor when it has one
	 * (reads use pread, and its open costs a path walk). A big copy
	 * opens its own, as any reader would.
	 */
	src = S_ISREG(cur->type) ? atomic_load(&cur->fd) : -1;
	src_own = false;
	if (src >= 0 && (fstat(src, &st) < 0 || st.st_size > (1 << 20)))
		src = -1;
	if (src < 0) {
		src_own = true;
		src = onfs_node_open(ex, cur, S_ISREG(cur->type) ? O_RDONLY : O_PATH);
		if (src < 0) {
			ret = src;
			goto out;
		}
		if (fstat(src, &st) < 0) {
			ret = -errno;
			goto out;
		}
	}
	onfs_upper_tmpname(ex, tmp, sizeof(tmp));
	ret = build_tmp(ex, src, &st, with_data, tmp, cur->path, &dst);
	have_tmp = ret == 0 || dst >= 0;
	if (ret < 0)
		goto out;
	ret = copy_xattrs(ex, src, dst);
	if (ret < 0)
		goto out;
	fbl = onfs_upper_encode_fb(ex, &cur->ident, false, fb);
	ret = onfs_upper_set_ovl(ex, dst, "origin", fb, fbl);
	if (ret == 0)
		ret = tmp[0] ? copy_attrs(ex, ex->work_fd, tmp, &st) : copy_attrs(ex, dst, "", &st);
	if (ret < 0)
		goto out;

	pthread_mutex_lock(&ex->ns_lock);
	if (!fast_ok(ex, cur, parent, base, &pfd)) {
		/* a directory changed while the data was copied, or the parent
		 * is not upper yet: look again, under the lock this time */
		if (pfd >= 0)
			close(pfd);
		pfd = -1;
		ret = onfs_walk(ex, n->path, &c2);
		if (ret < 0 || !onfs_ident_eq(&c2->ident, &n->ident)) {
			ret = -ESTALE;
		} else if (node_is_upper(ex, c2)) {
			*out = c2; /* copied up by someone else meanwhile */
			c2 = NULL;
			pthread_mutex_unlock(&ex->ns_lock);
			goto out;
		}
	}
	if (ret == 0 && pfd < 0)
		ret = onfs_copyup_dir_path(ex, parent, &pfd);
	if (ret == 0 && fstat(pfd, &pst) < 0)
		ret = -errno;
	if (ret == 0)
		ret = onfs_upper_mark_impure(ex, pfd);
	if (ret == 0) {
		ret = tmp[0] ? onfs_upper_rename(ex->work_fd, tmp, pfd, base, RENAME_NOREPLACE)
			     : onfs_upper_link_tmpfile(dst, pfd, base);
		if (ret == -EEXIST)
			ret = -ESTALE; /* removed (a whiteout) or replaced meanwhile */
	}
	if (ret == 0) {
		have_tmp = false;
		if (fstatat(pfd, base, &ust, AT_SYMLINK_NOFOLLOW) < 0)
			ust.st_ino = 0;
		/* index: a hard link named by the origin (nfs_export=on) */
		onfs_upper_index_name(ex, &cur->ident, idx, sizeof(idx));
		if (idx[0]) {
			/* before the link exists: lookups probe index/ from now on */
			atomic_store(&ex->index_used, true);
			if (linkat(pfd, base, ex->index_fd, idx, 0) < 0) {
				onfs_warn("copy-up of '%s': cannot create index entry: %s", cur->path,
					  strerror(errno));
			} else {
				/* overlay nlink = upper nlink + N (docs/overlay.md, "The index");
				 * the upper copy has its name and the index link: 2 */
				int len = snprintf(nl, sizeof(nl), "U%+d", (int)st.st_nlink - 2);
				onfs_upper_set_ovl(ex, dst, "nlink", nl, (size_t)len);
			}
		}
		restore_times(pfd, &pst);
		if (!tmp[0]) {
			/*
			 * The unnamed file's descriptor still has work/ as its
			 * parent: a later fsync through it would make work/
			 * durable, not the new name (ext4 without a journal
			 * syncs the parent of a new entry). The WRITE that
			 * follows gets a descriptor opened by the name.
			 */
			close(dst);
			dst = openat(pfd, base, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		}
		/* the fresh node: the same object, now upper (no walk) */
		ret = upper_clone(ex, cur, ust.st_ino, &dst, out);
	}
	onfs_changed_ns(ex); /* before the unlock: see struct onfs_gen */
	pthread_mutex_unlock(&ex->ns_lock);
out:
	if (have_tmp && tmp[0])
		onfs_upper_unlink(ex->work_fd, tmp, 0);
	if (pfd >= 0)
		close(pfd);
	if (dst >= 0)
		close(dst);
	if (src >= 0 && src_own)
		close(src);
	free(parent);
	onfs_node_put(cur);
	onfs_node_put(c2);
	pthread_mutex_unlock(lock);
	return ret;
}
