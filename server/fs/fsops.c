/*
 * fsops.c - thin wrappers around the *at, xattr and file-handle syscalls
 * the overlay engine uses. Each returns a value >= 0 or -errno and never
 * follows a symlink: paths are resolved beneath a layer root with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so a symlink in a layer
 * can never lead the server outside an export.
 *
 * Runs on pool workers only.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../overlay/internal.h"

static int open_beneath1(int dirfd, const char *rel, int flags)
{
	struct open_how how;
	long fd;

	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW);
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	fd = syscall(SYS_openat2, dirfd, (rel && *rel) ? rel : ".", &how, sizeof(how));
	if (fd < 0)
		return -errno;
	return (int)fd;
}

/*
 * A path of PATH_MAX bytes or more (a deep merged path: the client's own
 * paths may be that long, docs/overlay.md "Deep trees") is opened in
 * pieces shorter than PATH_MAX, each cut at a '/' and resolved beneath the
 * directory the previous piece reached: the layer root's own path never
 * enters a system call, and no piece can leave the tree (no symlinks, no
 * "..": each piece is beneath its start, which is beneath dirfd).
 */
int onfs_fs_open_beneath(int dirfd, const char *rel, int flags)
{
	char piece[PATH_MAX];
	const char *p = rel;
	size_t len = rel ? strlen(rel) : 0;
	int cur = dirfd, fd;

	if (len < PATH_MAX)
		return open_beneath1(dirfd, rel, flags);
	while (strlen(p) >= PATH_MAX) {
		const char *cut = p + PATH_MAX - 1;

		while (cut > p && *cut != '/')
			cut--;
		if (cut == p) {
			fd = -ENAMETOOLONG; /* no '/' in PATH_MAX bytes: not a path */
			goto out;
		}
		memcpy(piece, p, (size_t)(cut - p));
		piece[cut - p] = '\0';
		fd = open_beneath1(cur, piece, O_PATH | O_DIRECTORY);
		if (fd < 0)
			goto out;
		if (cur != dirfd)
			close(cur);
		cur = fd;
		p = cut;
		while (*p == '/')
			p++;
	}
	fd = open_beneath1(cur, p, flags);
out:
	if (cur != dirfd)
		close(cur);
	return fd;
}

int onfs_fs_getxattr(int fd, const char *name, char *buf, size_t cap)
{
	char proc[64];
	ssize_t n;

	/* fgetxattr refuses O_PATH descriptors; the /proc path does not. */
	n = fgetxattr(fd, name, buf, cap);
	if (n < 0 && errno == EBADF) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		n = getxattr(proc, name, buf, cap);
	}
	if (n < 0)
		return -errno;
	return (int)n;
}

int onfs_fs_getxattr_at(int dirfd, const char *name, const char *xattr, char *buf, size_t cap)
{
	char proc[64 + NAME_MAX];
	ssize_t n;
	int fd, ret;

	/*
	 * One name in dirfd (no '/', not "." or ".."): one lgetxattr of
	 * /proc/self/fd/N/name, which cannot leave dirfd and does not follow
	 * the name if it is a symlink - instead of openat2 + a failing
	 * fgetxattr (O_PATH) + getxattr + close. Any answer other than the
	 * xattr's value or its absence takes the long way, which says what
	 * is really wrong (ENOENT without /proc, say).
	 */
	if (name && *name && !strchr(name, '/') && strcmp(name, ".") != 0 &&
	    strcmp(name, "..") != 0 && strlen(name) <= NAME_MAX) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", dirfd, name);
		n = lgetxattr(proc, xattr, buf, cap);
		if (n >= 0)
			return (int)n;
		if (errno == ENODATA || errno == ERANGE || errno == EOPNOTSUPP)
			return -errno;
	}
	fd = onfs_fs_open_beneath(dirfd, name, O_PATH);
	if (fd < 0)
		return fd;
	ret = onfs_fs_getxattr(fd, xattr, buf, cap);
	close(fd);
	return ret;
}

int onfs_fs_name_to_ident(int dirfd, const char *name, struct onfs_ident *id)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} u;
	int mnt;

	u.fh.handle_bytes = ONFS_FID_MAX;
	if (name_to_handle_at(dirfd, (name && *name) ? name : "", &u.fh, &mnt,
			      (name && *name) ? 0 : AT_EMPTY_PATH) < 0)
		return errno == EOVERFLOW ? -EOVERFLOW : -errno;
	if (u.fh.handle_type < 0 || u.fh.handle_type > 255)
		return -EOVERFLOW;
	id->type = (uint8_t)u.fh.handle_type;
	id->len = (uint8_t)u.fh.handle_bytes;
	memcpy(id->fid, u.fh.f_handle, u.fh.handle_bytes);
	return 0;
}

int onfs_fs_open_ident(int mountfd, const struct onfs_ident *id, int flags)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} u;
	int fd;

	u.fh.handle_bytes = id->len;
	u.fh.handle_type = id->type;
	memcpy(u.fh.f_handle, id->fid, id->len);
	fd = open_by_handle_at(mountfd, &u.fh, flags | O_CLOEXEC);
	if (fd < 0 && errno == EPERM && geteuid() == 0) {
		/*
		 * An export owner other than root drops the filesystem
		 * capabilities with its fsuid, CAP_DAC_READ_SEARCH included:
		 * decoding a handle (not touching data) is done as root.
		 */
		uid_t prev = (uid_t)setfsuid(0);
		fd = open_by_handle_at(mountfd, &u.fh, flags | O_CLOEXEC);
		int saved = errno;
		setfsuid(prev);
		errno = saved;
	}
	if (fd < 0)
		return -errno;
	return fd;
}
