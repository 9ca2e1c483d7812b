/*
 * inode.c - attributes and data of merged objects: GETATTR, READLINK, READ
 * and FSSTAT's statvfs. Attributes come from the topmost part;
 * the fileid is the identity's (stable across copy-up) and a merged
 * directory reports nlink 1, as the kernel's (docs/overlay.md, "Lookup").
 *
 * Pool workers only. Read-only: nothing here changes a layer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "internal.h"

/*
 * A descriptor of the node's top part: O_RDONLY for regular files, O_PATH
 * otherwise, kept in the node for the next READ or GETATTR while the
 * export's descriptor budget allows. *tmp is set when the caller must
 * close it.
 */
static int node_fd(struct onfs_export *ex, struct onfs_node *n, bool *tmp)
{
	int fd = atomic_load(&n->fd), expect = -1;

	*tmp = false;
	if (fd >= 0)
		return fd;
	fd = onfs_node_open(ex, n, S_ISREG(n->type) ? O_RDONLY : O_PATH);
	if (fd < 0)
		return fd;
	if (!onfs_fd_budget_take(ex)) {
		*tmp = true;
		return fd;
	}
	if (!atomic_compare_exchange_strong(&n->fd, &expect, fd)) {
		close(fd);
		onfs_fd_budget_give(ex);
		fd = expect;
	}
	return fd;
}

static void fd_done(int fd, bool tmp)
{
	if (tmp && fd >= 0)
		close(fd);
}

static bool is_upper_part(const struct onfs_export *ex, const struct onfs_part *p)
{
	return p->layer == ONFS_LAYER_INDEX || ex->layers[p->layer].upper;
}

/* The attributes that come from a stat of the top part alone. */
static void fill_from_stat(struct onfs_export *ex, const struct onfs_node *n,
			   const struct stat *st, struct onfs_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->mode = st->st_mode;
	a->nlink = (S_ISDIR(st->st_mode) && n->nparts > 1) ? 1 : (uint32_t)st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->size = (uint64_t)st->st_size;
	a->used = (uint64_t)st->st_blocks * 512;
	a->rdev_major = major(st->st_rdev);
	a->rdev_minor = minor(st->st_rdev);
	a->fsid = ex->fsid;
	a->fileid = n->fileid;
	a->atime = st->st_atim;
	a->mtime = st->st_mtim;
	a->ctime = st->st_ctim;
}

/* Do n's attributes need an xattr of its top part besides its stat? */
static bool needs_xattr(const struct onfs_export *ex, const struct onfs_node *n, mode_t mode)
{
	return (n->ident_lower && !S_ISDIR(mode) && is_upper_part(ex, &n->parts[0])) ||
	       (ex->no_chown && (S_ISREG(mode) || S_ISDIR(mode)));
}

bool onfs_attr_from_stat(struct onfs_export *ex, struct onfs_node *n, const struct stat *st,
			 const struct onfs_gen *g, struct onfs_attr *a)
{
	if (needs_xattr(ex, n, st->st_mode) || (st->st_mode & S_IFMT) != n->type)
		return false;
	fill_from_stat(ex, n, st, a);
	onfs_attr_store(ex, n, g, a);
	return true;
}

int onfs_getattr(struct onfs_export *ex, struct onfs_node *n, struct onfs_attr *a)
{
	struct onfs_gen g;
	struct stat st;
	bool tmp;
	int fd;

	/* before the read: a change finishing meanwhile voids what we store */
	onfs_gen_load(ex, n, &g);
	fd = node_fd(ex, n, &tmp);
	if (fd < 0)
		return fd == -ENOENT ? -ESTALE : fd;
	if (fstat(fd, &st) < 0) {
		int err = -errno;
		fd_done(fd, tmp);
		return err;
	}
	fill_from_stat(ex, n, &st, a);
	if (n->ident_lower && !S_ISDIR(st.st_mode) && is_upper_part(ex, &n->parts[0])) {
		/* an indexed copy-up: overlay nlink = upper nlink + N (docs/overlay.md, "The index") */
		char attr[64], v[16];
		int l;

		onfs_ovl_xattr(ex, "nlink", attr, sizeof(attr));
		l = onfs_fs_getxattr(fd, attr, v, sizeof(v) - 1);
		if (l > 1 && v[0] == 'U') {
			v[l] = '\0';
			long d = strtol(v + 1, NULL, 10);
			if ((long)st.st_nlink + d >= 1)
				a->nlink = (uint32_t)((long)st.st_nlink + d);
		}
	}
	if (ex->no_chown && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
		/* rootless: the owner and mode the client sees (user.ovlnfsd.owner) */
		uint32_t u, g2, m;
		if (onfs_owner_xattr_get(fd, &u, &g2, &m) == 0) {
			a->uid = u;
			a->gid = g2;
			a->mode = (st.st_mode & S_IFMT) | m;
		}
	}
	fd_done(fd, tmp);
	onfs_attr_store(ex, n, &g, a);
	return 0;
}

ssize_t onfs_readlink(struct onfs_export *ex, struct onfs_node *n, char *buf, size_t cap)
{
	ssize_t len;
	bool tmp;
	int fd;

	if (!S_ISLNK(n->type))
		return -EINVAL;
	fd = node_fd(ex, n, &tmp);
	if (fd < 0)
		return fd;
	len = readlinkat(fd, "", buf, cap);
	fd_done(fd, tmp);
	if (len < 0)
		return -errno;
	if ((size_t)len >= cap)
		return -ENAMETOOLONG;
	return len;
}

ssize_t onfs_read(struct onfs_export *ex, struct onfs_node *n, uint64_t off, void *buf,
		  size_t count, bool *eof)
{
	struct stat st;
	size_t got = 0;
	ssize_t r, ret;
	bool tmp;
	int fd;

	if (S_ISDIR(n->type))
		return -EISDIR;
	if (!S_ISREG(n->type))
		return -EINVAL;
	if (off > (uint64_t)INT64_MAX)
		return -EINVAL;
	fd = node_fd(ex, n, &tmp);
	if (fd < 0)
		return fd;
	while (got < count) {
		r = pread(fd, (char *)buf + got, count - got, (off_t)(off + got));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	if (got < count) {
		*eof = true;
	} else {
		if (fstat(fd, &st) < 0) {
			ret = -errno;
			goto out;
		}
		*eof = off + got >= (uint64_t)st.st_size;
	}
	ret = (ssize_t)got;
out:
	fd_done(fd, tmp);
	return ret;
}

int onfs_statvfs(struct onfs_export *ex, struct onfs_node *n, struct statvfs *st)
{
	(void)n;
	/* an instance without its upper yet: the filesystem it will be on */
	int fd = ex->layers[0].fd >= 0 ? ex->layers[0].fd : ex->fs_fd[ex->layers[0].fsidx];

	if (fstatvfs(fd, st) < 0)
		return -errno;
	return 0;
}
