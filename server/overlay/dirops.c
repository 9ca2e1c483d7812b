/*
 * dirops.c - namespace changes of the merged view (docs/overlay.md,
 * "Namespace changes"): create,
 * mkdir, symlink, mknod, link, remove, rmdir and rename, with whiteouts
 * for removed lower names, opaque directories where a whiteout stood or in
 * merged parents, redirects for renamed lower directories
 * (redirect_dir=on), and index whiteouts for removed origins.
 *
 * Pool workers only, under the owner's credentials, holding the export's
 * ns_lock for the whole change (copy-ups of file data, and the new file
 * of a CREATE, are made before it is taken). New objects are built in work/ with their owner and mode and
 * renamed into place, so a name never appears half made.
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
#include <unistd.h>

#include "internal.h"

void onfs_wcc_pre(struct onfs_export *ex, struct onfs_node *n, struct onfs_wcc *w);
void onfs_wcc_post(struct onfs_export *ex, struct onfs_node *n, struct onfs_wcc *w);
int onfs_apply_sattr(struct onfs_export *ex, struct onfs_node *n, const struct onfs_sattr *sa);

static bool is_upper(const struct onfs_export *ex, const struct onfs_node *n)
{
	return n->parts[0].layer == ONFS_LAYER_INDEX || ex->layers[n->parts[0].layer].upper;
}

static bool has_lower_part(const struct onfs_export *ex, const struct onfs_node *n)
{
	for (size_t i = 0; i < n->nparts; i++)
		if (n->parts[i].layer != ONFS_LAYER_INDEX && !ex->layers[n->parts[i].layer].upper)
			return true;
	return false;
}

static int check_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || strchr(name, '/'))
		return -EACCES;
	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

static bool dot_or_dotdot(const char *name)
{
	return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

/* Is name in dirfd a whiteout? 1 yes, 0 exists and is not, -ENOENT absent. */
static int upper_state(int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

/* Empty an upper directory that holds only whiteouts (ovl_clear_empty). */
static int clear_whiteouts(int dirfd)
{
	struct dirent *e;
	DIR *d;
	int fd = dup(dirfd), ret = 0;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((e = readdir(d))) {
		if (dot_or_dotdot(e->d_name))
			continue;
		if (upper_state(dirfd, e->d_name) == 1)
			ret = onfs_upper_unlink(dirfd, e->d_name, 0);
		else
			ret = -ENOTEMPTY;
		if (ret < 0)
			break;
	}
	closedir(d);
	return ret;
}

/* Empty (of whiteouts) and remove work/name, a directory out of the namespace. */
static int drop_work_dir(struct onfs_export *ex, const char *name)
{
	int fd = openat(ex->work_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	ret = clear_whiteouts(fd);
	close(fd);
	if (ret == 0)
		ret = onfs_upper_unlink(ex->work_fd, name, AT_REMOVEDIR);
	return ret;
}

/* index/<hex origin> becomes a whiteout: a handle of the origin is STALE. */
static void index_whiteout(struct onfs_export *ex, const struct onfs_node *n)
{
	char idx[2 * (21 + ONFS_FID_MAX) + 1], wh[32];
	struct stat st;

	if (!n->ident_lower || ex->index_fd < 0)
		return;
	onfs_upper_index_name(ex, &n->ident, idx, sizeof(idx));
	if (!idx[0])
		return;
	if (fstatat(ex->index_fd, idx, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
		onfs_upper_unlink(ex->index_fd, idx, AT_REMOVEDIR);
	if (onfs_upper_whiteout_tmp(ex, wh, sizeof(wh)) == 0 &&
	    onfs_upper_rename(ex->work_fd, wh, ex->index_fd, idx, 0) < 0)
		onfs_upper_unlink(ex->work_fd, wh, 0);
}

/*
 * A name of n is gone. The last one: its index entry becomes a whiteout
 * (the origin's handle is STALE from now on). Other names remain (hard
 * links): the index entry stays and its nlink xattr follows (docs/overlay.md, "The index").
 */
static void index_unlinked(struct onfs_export *ex, struct onfs_node *n, uint32_t nlink_before)
{
	char idx[2 * (21 + ONFS_FID_MAX) + 1], v[16];
	struct stat st;
	int fd, len;

	if (S_ISDIR(n->type) || nlink_before <= 1) {
		index_whiteout(ex, n);
		return;
	}
	if (!n->ident_lower || ex->index_fd < 0)
		return;
	onfs_upper_index_name(ex, &n->ident, idx, sizeof(idx));
	if (!idx[0] || fstatat(ex->index_fd, idx, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    S_ISCHR(st.st_mode))
		return;
	fd = openat(ex->index_fd, idx, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	len = snprintf(v, sizeof(v), "U%+d", (int)(nlink_before - 1) - (int)st.st_nlink);
	onfs_upper_set_ovl(ex, fd, "nlink", v, (size_t)len);
	close(fd);
}

/* Fresh node of a directory (its parts may have changed since dir was made). */
static int refresh(struct onfs_export *ex, struct onfs_node *n, struct onfs_node **out)
{
	return onfs_walk(ex, n->path, out);
}

/*
 * The upper directory of dir, copying up what is missing, and the node of
 * dir with that upper part (ns_lock held). A directory that has its upper
 * part already is opened directly, and is its own fresh node: no walk from
 * the root (which is what a create or remove costs otherwise).
 */
static int upper_dir(struct onfs_export *ex, struct onfs_node *dir, int *pfd,
		     struct onfs_node **fresh)
{
	int ret;

	if (dir->parts[0].layer != ONFS_LAYER_INDEX && ex->layers[dir->parts[0].layer].upper) {
		ret = onfs_part_open(ex, &dir->parts[0], O_RDONLY | O_DIRECTORY);
		if (ret >= 0) {
			*pfd = ret;
			*fresh = onfs_node_get(dir);
			return 0;
		}
	}
	ret = onfs_copyup_dir_path(ex, dir->path, pfd);
	if (ret == 0)
		ret = refresh(ex, dir, fresh);
	return ret;
}

struct mk {
	uint32_t type;     /* S_IFREG ... */
	uint32_t mode;     /* permission bits */
	dev_t rdev;
	const char *target;
	const char *link_from_path; /* LINK: source's merged path (upper) */
	struct onfs_node *link_src;
};

/* Build the new object as work/tmp, owned by who. */
static int make_tmp(struct onfs_export *ex, const struct mk *m, const struct onfs_who *who,
		    const struct onfs_attr *pattr, bool opaque, const char *tmp)
{
	uint32_t gid = who->gid, mode = m->mode;
	int fd, ret;

	/* the parent's setgid bit gives its group, and dirs inherit the bit */
	if (pattr && (pattr->mode & S_ISGID)) {
		gid = pattr->gid;
		if (m->type == S_IFDIR)
			mode |= S_ISGID;
	}
	switch (m->type) {
	case S_IFREG:
		fd = openat(ex->work_fd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC,
			    ex->no_chown ? 0600 : 0);
		if (fd < 0)
			return -errno;
		close(fd);
		break;
	case S_IFDIR:
		ret = onfs_upper_mkdir(ex->work_fd, tmp, ex->no_chown ? 0700 : 0);
		if (ret < 0)
			return ret;
		if (opaque) {
			fd = openat(ex->work_fd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			ret = fd < 0 ? -errno : onfs_upper_set_ovl(ex, fd, "opaque", "y", 1);
			if (fd >= 0)
				close(fd);
			if (ret < 0)
				goto out_rm;
		}
		break;
	case S_IFLNK:
		if (symlinkat(m->target, ex->work_fd, tmp) < 0)
			return -errno;
		break;
	default:
		if (mknodat(ex->work_fd, tmp, m->type, m->rdev) < 0)
			return -errno;
		break;
	}
	if (ex->no_chown) {
		/* rootless: the owner keeps access, the client's view is an xattr */
		uint32_t real = mode | (m->type == S_IFDIR ? 0700 : 0600);
		if (m->type != S_IFLNK && fchmodat(ex->work_fd, tmp, real & 07777, 0) < 0) {
			ret = -errno;
			goto out_rm;
		}
		if (m->type == S_IFREG || m->type == S_IFDIR) {
			ret = onfs_upper_set_owner(ex->work_fd, tmp, who->uid, gid, mode);
			if (ret < 0)
				goto out_rm;
		}
		return 0;
	}
	if (fchownat(ex->work_fd, tmp, who->uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
		ret = -errno;
		goto out_rm;
	}
	if (m->type != S_IFLNK && fchmodat(ex->work_fd, tmp, mode & 07777, 0) < 0) {
		ret = -errno;
		goto out_rm;
	}
	return 0;
out_rm:
	onfs_upper_unlink(ex->work_fd, tmp, m->type == S_IFDIR ? AT_REMOVEDIR : 0);
	return ret;
}

/*
 * Put a new object named name into dir (ns_lock held, name known absent
 * in the merged view). pfd is the upper directory.
 */
static int place_new(struct onfs_export *ex, struct onfs_node *dir, int pfd, const char *name,
		     const struct mk *m, const struct onfs_who *who, const struct onfs_attr *pattr,
		     char *prebuilt)
{
	char tmp[32];
	int st, ret;
	bool over_wh, opaque;

	st = upper_state(pfd, name);
	if (st == 0)
		return -EEXIST; /* an upper entry the merged view does not show */
	if (st < 0 && st != -ENOENT)
		return st;
	over_wh = st == 1;
	/* over a whiteout, or (index/redirects on, as the kernel) in a merged parent */
	opaque = m->type == S_IFDIR && (over_wh || has_lower_part(ex, dir));
	if (prebuilt && prebuilt[0]) {
		/* built before ns_lock (create_common): it is ours from here */
		snprintf(tmp, sizeof(tmp), "%s", prebuilt);
		prebuilt[0] = '\0';
		ret = 0;
		goto built;
	}
	onfs_upper_tmpname(ex, tmp, sizeof(tmp));
	if (m->link_src) {
		/* LINK: a new name of the (copied-up) source inode */
		int sfd = onfs_node_open(ex, m->link_src, O_PATH);
		if (sfd < 0)
			return sfd;
		ret = linkat(sfd, "", ex->work_fd, tmp, AT_EMPTY_PATH) < 0 ? -errno : 0;
		close(sfd);
		if (ret == 0 && m->link_src->ident_lower)
			ret = onfs_upper_mark_impure(ex, pfd);
	} else {
		ret = make_tmp(ex, m, who, pattr, opaque, tmp);
	}
	if (ret < 0)
		return ret;
built:
	if (over_wh && m->type == S_IFDIR) {
		/* exchange with the whiteout, then drop it from work/ */
		ret = onfs_upper_rename(ex->work_fd, tmp, pfd, name, RENAME_EXCHANGE);
		if (ret == 0)
			onfs_upper_unlink(ex->work_fd, tmp, 0);
	} else {
		ret = onfs_upper_rename(ex->work_fd, tmp, pfd, name, over_wh ? 0 : RENAME_NOREPLACE);
	}
	if (ret < 0)
		onfs_upper_unlink(ex->work_fd, tmp, m->type == S_IFDIR ? AT_REMOVEDIR : 0);
	return ret;
}

static int create_common(struct onfs_export *ex, struct onfs_node *dir, const char *name,
			 const struct mk *m, const struct onfs_sattr *sa, const struct onfs_who *who,
			 struct onfs_node **out, struct onfs_wcc *dir_wcc)
{
	struct onfs_node *child = NULL, *fresh = NULL;
	struct onfs_attr pattr, early;
	char pre[32] = "";
	int pfd = -1, ret;

	ret = check_name(name);
	if (ret < 0)
		return ret;
	if (!S_ISDIR(dir->type))
		return -ENOTDIR;
	if (dot_or_dotdot(name))
		return -EEXIST;
	if (ex->readonly)
		return -EROFS;
	/*
	 * A new regular file is built in the work area before ns_lock: its
	 * creation waits for the journal (behind the fsyncs of other
	 * workers), and under the lock it held up every other namespace
	 * change of the export. Only the rename into place needs the lock.
	 * Its group came from the parent's attributes read here; should they
	 * differ under the lock, it is dropped and built again there.
	 */
	if (m->type == S_IFREG && !m->link_src && ex->work_ok &&
	    onfs_getattr(ex, dir, &early) == 0) {
		onfs_upper_tmpname(ex, pre, sizeof(pre));
		if (make_tmp(ex, m, who, &early, false, pre) < 0)
			pre[0] = '\0';
	}
	pthread_mutex_lock(&ex->ns_lock);
	/* the pre-op attributes, and the parent's setgid bit and group */
	ret = onfs_getattr(ex, dir, &pattr);
	if (ret < 0)
		goto out;
	if (pre[0] && (((pattr.mode ^ early.mode) & S_ISGID) ||
		       ((pattr.mode & S_ISGID) && pattr.gid != early.gid))) {
		onfs_upper_unlink(ex->work_fd, pre, 0);
		pre[0] = '\0';
	}
	if (dir_wcc) {
		dir_wcc->have_pre = true;
		dir_wcc->pre_size = pattr.size;
		dir_wcc->pre_mtime = pattr.mtime;
		dir_wcc->pre_ctime = pattr.ctime;
	}
	ret = onfs_lookup(ex, dir, name, &child);
	if (ret == 0) {
		ret = -EEXIST;
		if (out) {
			*out = child;
			child = NULL;
		}
		goto out;
	}
	if (ret != -ENOENT)
		goto out;
	ret = upper_dir(ex, dir, &pfd, &fresh);
	if (ret < 0)
		goto out;
	ret = place_new(ex, fresh, pfd, name, m, who, &pattr, pre);
	if (ret < 0)
		goto out;
	{
		/* the new name is in the upper part, open as pfd */
		int pfds[ONFS_MAX_LAYERS];

		for (size_t i = 0; i < ONFS_MAX_LAYERS; i++)
			pfds[i] = -1;
		pfds[0] = pfd;
		ret = onfs_lookup_at(ex, fresh, pfds, NULL, name, true, NULL, &child);
	}
	if (ret == 0 && sa && !m->link_src) {
		struct onfs_sattr rest = *sa;
		/* mode and owner are set already; size and times may remain */
		rest.set_mode = rest.set_uid = rest.set_gid = false;
		if (m->type != S_IFREG)
			rest.set_size = false;
		if (rest.set_size || rest.atime_how || rest.mtime_how)
			ret = onfs_apply_sattr(ex, child, &rest);
	}
	if (ret == 0 && out) {
		*out = child;
		child = NULL;
	}
out:
	onfs_changed_obj(ex, dir); /* its listing and attributes */
	onfs_changed_ns(ex); /* before the unlock: see struct onfs_gen */
	onfs_wcc_post(ex, fresh ? fresh : dir, dir_wcc);
	pthread_mutex_unlock(&ex->ns_lock);
	if (pre[0]) /* not used: the name existed, or an error came first */
		onfs_upper_unlink(ex->work_fd, pre, 0);
	if (pfd >= 0)
		close(pfd);
	onfs_node_put(child);
	onfs_node_put(fresh);
	return ret;
}

static uint32_t mode_of(const struct onfs_sattr *sa, uint32_t dflt)
{
	return sa && sa->set_mode ? sa->mode & 07777 : dflt;
}

/* The owner: the client, unless the sattr names one (root clients may). */
static struct onfs_who owner_of(const struct onfs_sattr *sa, const struct onfs_who *who)
{
	struct onfs_who w = *who;

	if (sa && sa->set_uid)
		w.uid = sa->uid;
	if (sa && sa->set_gid)
		w.gid = sa->gid;
	return w;
}

int onfs_create(struct onfs_export *ex, struct onfs_node *dir, const char *name,
		enum onfs_create_how how, const struct onfs_sattr *sa, const uint8_t verf[8],
		const struct onfs_who *who, struct onfs_node **out, struct onfs_wcc *dir_wcc)
{
	struct mk m = { .type = S_IFREG, .mode = mode_of(sa, 0644) };
	struct onfs_who w = owner_of(sa, who);
	struct onfs_node *n = NULL;
	struct onfs_sattr vs = { 0 };
	struct onfs_attr a;
	uint32_t v0 = 0, v1 = 0;
	int ret;

	if (how == ONFS_CREATE_EXCLUSIVE) {
		/* knfsd: the verifier lives in atime/mtime seconds until SETATTR */
		v0 = (uint32_t)verf[0] << 24 | verf[1] << 16 | verf[2] << 8 | verf[3];
		v1 = (uint32_t)verf[4] << 24 | verf[5] << 16 | verf[6] << 8 | verf[7];
		vs.atime_how = vs.mtime_how = ONFS_TIME_SET;
		vs.atime.tv_sec = v0;
		vs.mtime.tv_sec = v1;
		sa = &vs;
		m.mode = 0644;
	}
	ret = create_common(ex, dir, name, &m, sa, &w, &n, dir_wcc);
	if (ret == -EEXIST && n) {
		if (how == ONFS_CREATE_GUARDED || !S_ISREG(n->type) || onfs_getattr(ex, n, &a) < 0) {
			onfs_node_put(n);
			return -EEXIST;
		}
		if (how == ONFS_CREATE_EXCLUSIVE) {
			if ((uint32_t)a.atime.tv_sec != v0 || (uint32_t)a.mtime.tv_sec != v1) {
				onfs_node_put(n);
				return -EEXIST;
			}
			ret = 0; /* a retransmission of our own create */
		} else {
			/* UNCHECKED on an existing file: only a size applies (RFC 1813) */
			ret = 0;
			if (sa && sa->set_size) {
				struct onfs_sattr sz = { .set_size = true, .size = sa->size };
				ret = onfs_setattr(ex, n, &sz, NULL, NULL);
			}
		}
	}
	if (ret < 0) {
		onfs_node_put(n);
		return ret;
	}
	if (out)
		*out = n;
	else
		onfs_node_put(n);
	return 0;
}

int onfs_mkdir(struct onfs_export *ex, struct onfs_node *dir, const char *name,
	       const struct onfs_sattr *sa, const struct onfs_who *who, struct onfs_node **out,
	       struct onfs_wcc *dir_wcc)
{
	struct mk m = { .type = S_IFDIR, .mode = mode_of(sa, 0755) };
	struct onfs_who w = owner_of(sa, who);
	struct onfs_node *n = NULL;
	int ret = create_common(ex, dir, name, &m, sa, &w, &n, dir_wcc);

	if (ret < 0) {
		onfs_node_put(n);
		return ret;
	}
	*out = n;
	return 0;
}

int onfs_symlink(struct onfs_export *ex, struct onfs_node *dir, const char *name,
		 const char *target, const struct onfs_sattr *sa, const struct onfs_who *who,
		 struct onfs_node **out, struct onfs_wcc *dir_wcc)
{
	struct mk m = { .type = S_IFLNK, .mode = 0777, .target = target };
	struct onfs_who w = owner_of(sa, who);
	struct onfs_node *n = NULL;
	int ret;

	if (strlen(target) == 0)
		return -EINVAL;
	if (strlen(target) >= PATH_MAX)
		return -ENAMETOOLONG;
	ret = create_common(ex, dir, name, &m, sa, &w, &n, dir_wcc);
	if (ret < 0) {
		onfs_node_put(n);
		return ret;
	}
	*out = n;
	return 0;
}

int onfs_mknod(struct onfs_export *ex, struct onfs_node *dir, const char *name, uint32_t type,
	       uint32_t major, uint32_t minor, const struct onfs_sattr *sa,
	       const struct onfs_who *who, struct onfs_node **out, struct onfs_wcc *dir_wcc)
{
	struct mk m = { .type = type, .mode = mode_of(sa, 0644), .rdev = makedev(major, minor) };
	struct onfs_who w = owner_of(sa, who);
	struct onfs_node *n = NULL;
	int ret;

	if (type != S_IFCHR && type != S_IFBLK && type != S_IFIFO && type != S_IFSOCK)
		return -EINVAL;
	/* a 0/0 character device is a whiteout: the kernel overlay refuses it */
	if (type == S_IFCHR && major == 0 && minor == 0)
		return -EPERM;
	if (type != S_IFCHR && type != S_IFBLK)
		m.rdev = 0;
	ret = create_common(ex, dir, name, &m, sa, &w, &n, dir_wcc);
	if (ret < 0) {
		onfs_node_put(n);
		return ret;
	}
	*out = n;
	return 0;
}

int onfs_link(struct onfs_export *ex, struct onfs_node *n, struct onfs_node *dir,
	      const char *name, struct onfs_wcc *dir_wcc)
{
	struct onfs_node *up = NULL, *res = NULL;
	struct onfs_who who = { 0, 0 };
	struct mk m = { 0 };
	int ret;

	if (S_ISDIR(n->type))
		return -EISDIR;
	if (ex->readonly)
		return -EROFS;
	ret = check_name(name);
	if (ret < 0)
		return ret;
	if (dot_or_dotdot(name))
		return -EEXIST;
	/* link copies up the source with its data, as the kernel's */
	ret = onfs_copyup(ex, n, true, &up);
	if (ret < 0)
		return ret;
	m.type = up->type;
	m.link_src = up;
	ret = create_common(ex, dir, name, &m, NULL, &who, &res, dir_wcc);
	onfs_node_put(res);
	onfs_node_put(up);
	return ret;
}

/* Remove name (a non-dir, or an empty dir) from dir; ns_lock held. */
static int remove_locked(struct onfs_export *ex, struct onfs_node *dir, const char *name,
			 struct onfs_node *child, int pfd)
{
	char wh[32];
	bool need_wh = onfs_lower_has(ex, dir, name);
	bool isdir = S_ISDIR(child->type);
	int st = upper_state(pfd, name), ret = 0;
	struct onfs_attr a;
	uint32_t nlink = onfs_getattr(ex, child, &a) == 0 ? a.nlink : 1;

	if (isdir && st == 0 && !need_wh) {
		/*
		 * An upper directory may hold whiteouts: it leaves the namespace
		 * in one step (moved into work/, or exchanged with its whiteout
		 * below) and is emptied there, so no crash point shows the lower
		 * names its whiteouts hid (the startup scrub finishes the job).
		 */
		onfs_upper_tmpname(ex, wh, sizeof(wh));
		ret = onfs_upper_rename(pfd, name, ex->work_fd, wh, RENAME_NOREPLACE);
		if (ret == 0)
			ret = drop_work_dir(ex, wh);
	} else if (!need_wh) {
		if (st == 0)
			ret = onfs_upper_unlink(pfd, name, 0);
	} else {
		ret = onfs_upper_whiteout_tmp(ex, wh, sizeof(wh));
		if (ret < 0)
			return ret;
		if (isdir && st == 0) {
			ret = onfs_upper_rename(ex->work_fd, wh, pfd, name, RENAME_EXCHANGE);
			if (ret == 0)
				ret = drop_work_dir(ex, wh);
			else
				onfs_upper_unlink(ex->work_fd, wh, 0);
		} else {
			ret = onfs_upper_rename(ex->work_fd, wh, pfd, name,
						st == -ENOENT ? RENAME_NOREPLACE : 0);
			if (ret < 0)
				onfs_upper_unlink(ex->work_fd, wh, 0);
		}
	}
	if (ret == 0) {
		index_unlinked(ex, child, nlink);
		onfs_node_cache_drop(ex, &child->fh);
	}
	return ret;
}

static int remove_common(struct onfs_export *ex, struct onfs_node *dir, const char *name,
			 bool rmdir, struct onfs_wcc *dir_wcc)
{
	struct onfs_node *child = NULL, *fresh = NULL;
	int pfd = -1, ret;

	ret = check_name(name);
	if (ret < 0)
		return ret;
	if (!S_ISDIR(dir->type))
		return -ENOTDIR;
	if (strcmp(name, ".") == 0)
		return rmdir ? -EINVAL : -EISDIR;
	if (strcmp(name, "..") == 0)
		return rmdir ? -ENOTEMPTY : -EISDIR;
	if (ex->readonly)
		return -EROFS;
	pthread_mutex_lock(&ex->ns_lock);
	onfs_wcc_pre(ex, dir, dir_wcc);
	ret = onfs_lookup(ex, dir, name, &child);
	if (ret < 0)
		goto out;
	if (!rmdir && S_ISDIR(child->type)) {
		ret = -EISDIR;
		goto out;
	}
	if (rmdir && !S_ISDIR(child->type)) {
		ret = -ENOTDIR;
		goto out;
	}
	if (rmdir) {
		ret = onfs_dir_is_empty(ex, child);
		if (ret == 0)
			ret = -ENOTEMPTY;
		if (ret < 0)
			goto out;
	}
	ret = upper_dir(ex, dir, &pfd, &fresh);
	if (ret == 0)
		ret = remove_locked(ex, fresh, name, child, pfd);
	if (rmdir)
		onfs_changed_dirs(ex);
out:
	onfs_changed_obj(ex, dir); /* its listing and attributes */
	onfs_changed_ns(ex); /* before the unlock: see struct onfs_gen */
	onfs_wcc_post(ex, fresh ? fresh : dir, dir_wcc);
	pthread_mutex_unlock(&ex->ns_lock);
	if (pfd >= 0)
		close(pfd);
	onfs_node_put(child);
	onfs_node_put(fresh);
	return ret;
}

int onfs_remove(struct onfs_export *ex, struct onfs_node *dir, const char *name,
		struct onfs_wcc *dir_wcc)
{
	return remove_common(ex, dir, name, false, dir_wcc);
}

int onfs_rmdir(struct onfs_export *ex, struct onfs_node *dir, const char *name,
	       struct onfs_wcc *dir_wcc)
{
	return remove_common(ex, dir, name, true, dir_wcc);
}

/* Is path b the same as a or below it? */
static bool path_below(const char *b, const char *a)
{
	size_t la = strlen(a);

	if (la == 0)
		return true;
	return strncmp(b, a, la) == 0 && (b[la] == '\0' || b[la] == '/');
}

/*
 * The redirect a renamed lower/merged directory needs (as the kernel's): keep an
 * absolute one; in the same parent the relative original lower name;
 * elsewhere the absolute lower path.
 */
static int set_redirect(struct onfs_export *ex, struct onfs_node *src, int sfd, bool same_parent)
{
	char cur[PATH_MAX], attr[64], val[PATH_MAX + 1];
	const char *lower = NULL, *base;
	int n;

	onfs_ovl_xattr(ex, "redirect", attr, sizeof(attr));
	n = onfs_fs_getxattr(sfd, attr, cur, sizeof(cur) - 1);
	if (n > 0 && cur[0] == '/')
		return 0;
	for (size_t i = 0; i < src->nparts && !lower; i++)
		if (!ex->layers[src->parts[i].layer].upper)
			lower = src->parts[i].rel;
	if (!lower)
		return 0;
	base = strrchr(lower, '/');
	base = base ? base + 1 : lower;
	if (same_parent)
		n = snprintf(val, sizeof(val), "%s", base);
	else
		n = snprintf(val, sizeof(val), "/%s", lower);
	if (n > 256)
		return -EXDEV; /* the kernel's redirect_max */
	return onfs_upper_set_ovl(ex, sfd, "redirect", val, (size_t)n);
}

/*
 * rename(2)'s answers that need no change: 1 when source and target are
 * the same object (nothing to do), -errno for a type mismatch, a
 * non-empty target directory or a directory moved into its own subtree,
 * 0 to go on.
 */
static int rename_check(struct onfs_export *ex, struct onfs_node *src, struct onfs_node *dst,
			const char *tdir_path)
{
	bool isdir = S_ISDIR(src->type);
	int ret;

	if (dst) {
		if (onfs_ident_eq(&src->ident, &dst->ident) && src->type == dst->type)
			return 1;
		if (isdir && !S_ISDIR(dst->type))
			return -ENOTDIR;
		if (!isdir && S_ISDIR(dst->type))
			return -EISDIR;
		if (S_ISDIR(dst->type)) {
			ret = onfs_dir_is_empty(ex, dst);
			if (ret <= 0)
				return ret == 0 ? -ENOTEMPTY : ret;
		}
	}
	if (isdir && path_below(tdir_path, src->path))
		return -EINVAL; /* a directory into its own subtree */
	return 0;
}

int onfs_rename(struct onfs_export *ex, struct onfs_node *fdir, const char *fname,
		struct onfs_node *tdir, const char *tname, struct onfs_wcc *fwcc,
		struct onfs_wcc *twcc)
{
	struct onfs_node *src = NULL, *dst = NULL, *f2 = NULL, *t2 = NULL, *up = NULL;
	int fpfd = -1, tpfd = -1, ret, tst;
	uint32_t dst_nlink = 1;
	unsigned flags;
	bool src_lower, isdir;

	if ((ret = check_name(fname)) < 0 || (ret = check_name(tname)) < 0)
		return ret;
	if (!S_ISDIR(fdir->type) || !S_ISDIR(tdir->type))
		return -ENOTDIR;
	if (dot_or_dotdot(fname) || dot_or_dotdot(tname))
		return -EINVAL;
	if (ex->readonly)
		return -EROFS;
	/*
	 * Everything that fails or changes nothing is answered before a
	 * lower file is copied up (with its data, before the namespace lock).
	 */
	ret = onfs_lookup(ex, fdir, fname, &src);
	if (ret < 0)
		return ret;
	ret = onfs_lookup(ex, tdir, tname, &dst);
	if (ret < 0 && ret != -ENOENT)
		goto out_nolock;
	ret = rename_check(ex, src, dst, tdir->path);
	onfs_node_put(dst);
	dst = NULL;
	if (ret != 0) {
		ret = ret > 0 ? 0 : ret;
		goto out_nolock;
	}
	if (!S_ISDIR(src->type) && !is_upper(ex, src)) {
		ret = onfs_copyup(ex, src, true, &up);
		onfs_node_put(up);
		if (ret < 0)
			goto out_nolock;
	}
	onfs_node_put(src);
	src = NULL;

	pthread_mutex_lock(&ex->ns_lock);
	onfs_wcc_pre(ex, fdir, fwcc);
	onfs_wcc_pre(ex, tdir, twcc);
	ret = refresh(ex, fdir, &f2);
	if (ret == 0)
		ret = refresh(ex, tdir, &t2);
	if (ret == 0)
		ret = onfs_lookup(ex, f2, fname, &src);
	if (ret < 0)
		goto out;
	isdir = S_ISDIR(src->type);
	ret = onfs_lookup(ex, t2, tname, &dst);
	if (ret < 0 && ret != -ENOENT)
		goto out;
	ret = rename_check(ex, src, dst, t2->path);
	if (ret != 0) {
		ret = ret > 0 ? 0 : ret;
		goto out;
	}
	ret = onfs_copyup_dir_path(ex, f2->path, &fpfd);
	if (ret == 0)
		ret = onfs_copyup_dir_path(ex, t2->path, &tpfd);
	if (ret == 0 && isdir && !is_upper(ex, src)) {
		/* a directory's copy-up is shallow: its upper part only */
		int dfd;
		char *p = strdup(src->path);
		ret = p ? onfs_copyup_dir_path(ex, p, &dfd) : -ENOMEM;
		free(p);
		if (ret == 0)
			close(dfd);
	}
	if (ret < 0)
		goto out;
	onfs_node_put(src);
	src = NULL;
	ret = onfs_lookup(ex, f2, fname, &src);
	if (ret < 0)
		goto out;
	src_lower = onfs_lower_has(ex, f2, fname);
	if (!isdir && src->parts[0].layer == ONFS_LAYER_INDEX && upper_state(fpfd, fname) == -ENOENT) {
		/* the upper copy lives only in the index: link it up first */
		if (linkat(ex->index_fd, src->parts[0].rel, fpfd, fname, 0) < 0) {
			ret = -errno;
			goto out;
		}
		onfs_upper_mark_impure(ex, fpfd);
	}

	if (isdir) {
		int sfd = openat(fpfd, fname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sfd < 0) {
			ret = -errno;
			goto out;
		}
		if (has_lower_part(ex, src)) {
			ret = set_redirect(ex, src, sfd, strcmp(f2->path, t2->path) == 0);
			if (ret == 0)
				ret = onfs_upper_mark_impure(ex, tpfd);
		} else if (has_lower_part(ex, t2)) {
			char attr[64], v[4];
			onfs_ovl_xattr(ex, "opaque", attr, sizeof(attr));
			if (onfs_fs_getxattr(sfd, attr, v, sizeof(v)) < 1)
				ret = onfs_upper_set_ovl(ex, sfd, "opaque", "y", 1); /* pure upper dir into a merged parent */
		}
		close(sfd);
		if (ret < 0)
			goto out;
	} else if (src->ident_lower) {
		ret = onfs_upper_mark_impure(ex, tpfd);
		if (ret < 0)
			goto out;
	}

	if (dst) {
		struct onfs_attr da;
		dst_nlink = onfs_getattr(ex, dst, &da) == 0 ? da.nlink : 1;
	}
	tst = upper_state(tpfd, tname);
	if (tst == 1) {
		/* onto a whiteout: exchange, the whiteout moves to the old name */
		ret = onfs_upper_rename(fpfd, fname, tpfd, tname, RENAME_EXCHANGE);
		if (ret == 0 && !src_lower)
			ret = onfs_upper_unlink(fpfd, fname, 0);
	} else {
		if (tst == 0 && dst && S_ISDIR(dst->type)) {
			/*
			 * The target directory (empty in the merged view, maybe
			 * holding whiteouts) is first exchanged with an empty
			 * opaque one made in work/ (the kernel's ovl_clear_empty),
			 * so no crash point shows what its whiteouts hid.
			 */
			char od[32];
			int ofd;

			onfs_upper_tmpname(ex, od, sizeof(od));
			ret = onfs_upper_mkdir(ex->work_fd, od, 0755);
			ofd = ret == 0 ? openat(ex->work_fd, od, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
			if (ret == 0 && ofd < 0)
				ret = -errno;
			if (ret == 0)
				ret = onfs_upper_set_ovl(ex, ofd, "opaque", "y", 1);
			if (ofd >= 0)
				close(ofd);
			if (ret == 0)
				ret = onfs_upper_rename(ex->work_fd, od, tpfd, tname, RENAME_EXCHANGE);
			if (ret == 0)
				ret = drop_work_dir(ex, od);
			else
				onfs_upper_unlink(ex->work_fd, od, AT_REMOVEDIR);
			if (ret < 0)
				goto out;
		}
		flags = (tst == 0 ? 0 : RENAME_NOREPLACE) | (src_lower ? RENAME_WHITEOUT : 0);
		ret = onfs_upper_rename(fpfd, fname, tpfd, tname, flags);
	}
	if (ret < 0)
		goto out;
	if (dst) {
		index_unlinked(ex, dst, dst_nlink);
		onfs_node_cache_drop(ex, &dst->fh);
	}
	if (isdir)
		onfs_node_cache_flush(ex); /* paths below the moved directory changed */
	else
		onfs_node_cache_drop(ex, &src->fh);
out:
	onfs_wcc_post(ex, f2 ? f2 : fdir, fwcc);
	if (t2 && f2 && strcmp(t2->path, f2->path) == 0) {
		if (twcc)
			*twcc = *fwcc;
	} else {
		onfs_wcc_post(ex, t2 ? t2 : tdir, twcc);
	}
	if ((src && S_ISDIR(src->type)) || (dst && S_ISDIR(dst->type)))
		onfs_changed_dirs(ex); /* even a failed one may have changed a step */
	onfs_changed_obj(ex, fdir); /* their listings and attributes */
	onfs_changed_obj(ex, tdir);
	onfs_changed_ns(ex); /* before the unlock: see struct onfs_gen */
	pthread_mutex_unlock(&ex->ns_lock);
out_nolock:
	if (fpfd >= 0)
		close(fpfd);
	if (tpfd >= 0)
		close(tpfd);
	onfs_node_put(src);
	onfs_node_put(dst);
	onfs_node_put(f2);
	onfs_node_put(t2);
	return ret;
}
