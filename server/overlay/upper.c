/*
 * upper.c - the one choke point for writes to the upper layer and the work
 * area (like the kernel's ovl_do_* wrappers, every upper mutation goes
 * through here): temp names in work/, whiteouts, overlay xattrs, the origin file handle
 * in the kernel's ovl_fb format, and the index.
 *
 * Pool workers only, under the export owner's credentials. Every call
 * traces its arguments and result at debug level.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "ovlnfsd/daemon.h" /* whiteout count */
#include "internal.h"

#ifndef FS_IOC_GETFSUUID
struct onfs_fsuuid2 {
	uint8_t len;
	uint8_t uuid[16];
};
#define FS_IOC_GETFSUUID _IOR(0x15, 0, struct onfs_fsuuid2)
#endif

static int traced(int ret, const char *what, const char *a, const char *b)
{
	onfs_debug("upper: %s(%s%s%s) = %d", what, a ? a : "", b ? ", " : "", b ? b : "", ret);
	return ret;
}

#define RET(expr) ((expr) < 0 ? -errno : 0)

void onfs_upper_tmpname(struct onfs_export *ex, char *buf, size_t cap)
{
	/* the kernel's "#%x" of a counter */
	snprintf(buf, cap, "#%x", atomic_fetch_add(&ex->tmp_counter, 1));
}

/*
 * An unnamed regular file in work/ (O_TMPFILE), as the kernel's copy-up
 * makes one: no entry in work/ is written, so its fsync does not also
 * write out work/ itself (without a journal, ext4 syncs a new entry's
 * directory with the file), and a crash leaves nothing to scrub. -errno
 * on failure, -EOPNOTSUPP when the work area's probe (workdir.c) found
 * none: the caller uses a named temp.
 */
int onfs_upper_tmpfile(struct onfs_export *ex, mode_t mode)
{
	int fd;

	if (atomic_load_explicit(&ex->no_tmpfile, memory_order_relaxed))
		return -EOPNOTSUPP;
	fd = openat(ex->work_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
	return fd >= 0 ? fd : traced(-errno, "tmpfile", ".", NULL);
}

/*
 * Give the unnamed file fd its name in dirfd: linkat fails with EEXIST
 * when the name exists, so it appears complete and never replaces
 * anything (the rename's RENAME_NOREPLACE). Through /proc, which needs
 * no CAP_DAC_READ_SEARCH (AT_EMPTY_PATH would).
 */
int onfs_upper_link_tmpfile(int fd, int dirfd, const char *name)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return traced(RET(linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW)), "link-tmpfile",
		      name, NULL);
}

int onfs_upper_mkdir(int dirfd, const char *name, mode_t mode)
{
	return traced(RET(mkdirat(dirfd, name, mode)), "mkdir", name, NULL);
}

int onfs_upper_unlink(int dirfd, const char *name, int flags)
{
	return traced(RET(unlinkat(dirfd, name, flags)), "unlink", name, NULL);
}

int onfs_upper_rename(int fdir, const char *from, int tdir, const char *to, unsigned flags)
{
	return traced(RET(renameat2(fdir, from, tdir, to, flags)), "rename", from, to);
}

/* A whiteout (char device 0/0, mode 0) named tmp in work/. */
int onfs_upper_whiteout_tmp(struct onfs_export *ex, char *tmp, size_t cap)
{
	int ret;

	onfs_upper_tmpname(ex, tmp, cap);
	ret = traced(RET(mknodat(ex->work_fd, tmp, S_IFCHR | 0, makedev(0, 0))), "whiteout", tmp,
		     NULL);
	if (ret == 0)
		onfs_metrics_add(&onfs_metrics.whiteouts, 1);
	return ret;
}

/*
 * An empty directory named tmp in work/ (mode 0, 0700 rootless), open
 * (O_RDONLY) for its xattrs: the descriptor, or -errno with nothing left.
 */
int onfs_upper_tmpdir(struct onfs_export *ex, char *tmp, size_t cap)
{
	int fd, ret;

	onfs_upper_tmpname(ex, tmp, cap);
	ret = onfs_upper_mkdir(ex->work_fd, tmp, ex->no_chown ? 0700 : 0);
	if (ret < 0)
		return ret;
	fd = openat(ex->work_fd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		onfs_upper_unlink(ex->work_fd, tmp, AT_REMOVEDIR);
		return ret;
	}
	return fd;
}

int onfs_upper_setxattr(int fd, const char *name, const void *v, size_t len)
{
	char proc[64];
	int ret;

	ret = RET(fsetxattr(fd, name, v, len, 0));
	if (ret == -EBADF) { /* O_PATH descriptor */
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		ret = RET(setxattr(proc, name, v, len, 0));
	}
	return traced(ret, "setxattr", name, NULL);
}

int onfs_upper_set_ovl(struct onfs_export *ex, int fd, const char *attr, const void *v, size_t len)
{
	char name[64];

	onfs_ovl_xattr(ex, attr, name, sizeof(name));
	return onfs_upper_setxattr(fd, name, v, len);
}

int onfs_upper_remove_ovl(struct onfs_export *ex, int fd, const char *attr)
{
	char name[64], proc[64];
	int ret;

	onfs_ovl_xattr(ex, attr, name, sizeof(name));
	ret = RET(fremovexattr(fd, name));
	if (ret == -EBADF) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		ret = RET(removexattr(proc, name));
	}
	return ret == -ENODATA ? 0 : traced(ret, "removexattr", name, NULL);
}

/* uuid of the filesystem a layer lives on; zero when it has none. */
void onfs_upper_fs_uuid(int fd, uint8_t uuid[16])
{
	struct onfs_fsuuid2 u = { .len = 16 };

	memset(uuid, 0, 16);
	if (ioctl(fd, FS_IOC_GETFSUUID, &u) == 0 && u.len == 16)
		memcpy(uuid, u.uuid, 16);
}

/*
 * The kernel's ovl_fb for an identity: version 0, magic 0xfb, length,
 * flags (4 when the handle names an upper object), fid type, the fs uuid,
 * then the fid (docs/overlay.md, the ovl_fb format). Returns its length.
 */
size_t onfs_upper_encode_fb(const struct onfs_export *ex, const struct onfs_ident *id,
			    bool upper, uint8_t *out)
{
	out[0] = 0;
	out[1] = 0xfb;
	out[2] = (uint8_t)(21 + id->len);
	out[3] = upper ? 4 : 0;
	out[4] = id->type;
	memcpy(out + 5, ex->fs_uuid[id->fsidx], 16);
	memcpy(out + 21, id->fid, id->len);
	return 21u + id->len;
}

/* index/<lowercase hex of the origin ovl_fb> */
void onfs_upper_index_name(const struct onfs_export *ex, const struct onfs_ident *id, char *out,
			   size_t cap)
{
	uint8_t fb[21 + ONFS_FID_MAX];
	size_t n = onfs_upper_encode_fb(ex, id, false, fb);
	static const char hex[] = "0123456789abcdef";

	if (cap < 2 * n + 1) {
		out[0] = '\0';
		return;
	}
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[fb[i] >> 4];
		out[2 * i + 1] = hex[fb[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Mark an upper directory impure before an entry with an origin enters it. */
int onfs_upper_mark_impure(struct onfs_export *ex, int dirfd)
{
	char name[64], v[4];

	onfs_ovl_xattr(ex, "impure", name, sizeof(name));
	if (onfs_fs_getxattr(dirfd, name, v, sizeof(v)) >= 1 && v[0] == 'y')
		return 0;
	return onfs_upper_setxattr(dirfd, name, "y", 1);
}

/*
 * Rootless owners: when the export owner cannot chown, the owner and mode
 * a client sees are kept in user.ovlnfsd.owner ("uid:gid:mode", mode in
 * octal) on regular files and directories (user.* xattrs exist only on
 * those), and served from there (inode.c).
 */
int onfs_upper_set_owner(int dirfd, const char *name, uint32_t uid, uint32_t gid, uint32_t mode)
{
	char v[48], proc[64];
	int len = snprintf(v, sizeof(v), "%u:%u:%o", uid, gid, mode & 07777), fd, ret;

	/* an empty name: dirfd is the object itself */
	fd = *name ? openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC) : dirfd;
	if (fd < 0)
		return -errno;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	ret = RET(setxattr(proc, ONFS_OWNER_XATTR, v, (size_t)len, 0));
	if (fd != dirfd)
		close(fd);
	return traced(ret, "set-owner", name, v);
}

/* Parse user.ovlnfsd.owner of fd; 0 when present. */
int onfs_owner_xattr_get(int fd, uint32_t *uid, uint32_t *gid, uint32_t *mode)
{
	char v[48];
	int n = onfs_fs_getxattr(fd, ONFS_OWNER_XATTR, v, sizeof(v) - 1);
	unsigned u, g, m;

	if (n <= 0)
		return -ENODATA;
	v[n] = '\0';
	if (sscanf(v, "%u:%u:%o", &u, &g, &m) != 3)
		return -EINVAL;
	*uid = u;
	*gid = g;
	*mode = m & 07777;
	return 0;
}
