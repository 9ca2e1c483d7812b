/*
 * data.c - SETATTR, WRITE and COMMIT on merged objects: the first change
 * of a lower object copies it up (docs/overlay.md, "Copy-up"), then the change is made on
 * the upper copy. Pre-op attributes are taken under the object's stripe
 * lock, atomically with the change.
 *
 * Pool workers only, under the owner's credentials.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static void wcc_pre(struct onfs_wcc *w, const struct onfs_attr *a)
{
	if (!w)
		return;
	w->have_pre = true;
	w->pre_size = a->size;
	w->pre_mtime = a->mtime;
	w->pre_ctime = a->ctime;
}

static void wcc_post(struct onfs_export *ex, struct onfs_node *n, struct onfs_wcc *w)
{
	if (w && n)
		w->have_post = onfs_getattr(ex, n, &w->post) == 0;
}

void onfs_wcc_pre(struct onfs_export *ex, struct onfs_node *n, struct onfs_wcc *w);
void onfs_wcc_pre(struct onfs_export *ex, struct onfs_node *n, struct onfs_wcc *w)
{
	struct onfs_attr a;

	if (w && onfs_getattr(ex, n, &a) == 0)
		wcc_pre(w, &a);
}

void onfs_wcc_post(struct onfs_export *ex, struct onfs_node *n, struct onfs_wcc *w);
void onfs_wcc_post(struct onfs_export *ex, struct onfs_node *n, struct onfs_wcc *w)
{
	wcc_post(ex, n, w);
}

/*
 * The node's O_RDWR descriptor (an upper regular file), kept in the node
 * while the descriptor budget allows; *tmp tells the caller to close it.
 */
static int node_wfd(struct onfs_export *ex, struct onfs_node *n, bool *tmp)
{
	int fd = atomic_load(&n->wfd), expect = -1;

	*tmp = false;
	if (fd >= 0)
		return fd;
	fd = onfs_node_open(ex, n, O_RDWR);
	if (fd < 0)
		return fd;
	if (!onfs_fd_budget_take(ex)) {
		*tmp = true;
		return fd;
	}
	if (!atomic_compare_exchange_strong(&n->wfd, &expect, fd)) {
		close(fd);
		onfs_fd_budget_give(ex);
		fd = expect;
	}
	return fd;
}

static void wfd_done(int fd, bool tmp)
{
	if (tmp && fd >= 0)
		close(fd);
}

/* Apply sa to the upper object of n (already copied up). */
int onfs_apply_sattr(struct onfs_export *ex, struct onfs_node *n, const struct onfs_sattr *sa);
int onfs_apply_sattr(struct onfs_export *ex, struct onfs_node *n, const struct onfs_sattr *sa)
{
	int fd = -1, ret = 0;
	char proc[64];

	fd = onfs_node_open(ex, n, O_PATH);
	if (fd < 0)
		return fd;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (sa->set_size) {
		bool tmp;
		int wfd = node_wfd(ex, n, &tmp);
		if (wfd < 0) {
			ret = wfd;
			goto out;
		}
		if (ftruncate(wfd, (off_t)sa->size) < 0)
			ret = -errno;
		wfd_done(wfd, tmp);
		if (ret < 0)
			goto out;
	}
	if (ex->no_chown && (sa->set_uid || sa->set_gid || sa->set_mode) &&
	    (S_ISREG(n->type) || S_ISDIR(n->type))) {
		/* rootless: the client's view of owner and mode is the xattr */
		struct onfs_attr cur;
		uint32_t mode;

		ret = onfs_getattr(ex, n, &cur);
		if (ret < 0)
			goto out;
		mode = sa->set_mode ? sa->mode : cur.mode;
		ret = onfs_upper_set_owner(fd, "", sa->set_uid ? sa->uid : cur.uid,
					   sa->set_gid ? sa->gid : cur.gid, mode);
		if (ret == 0 && sa->set_mode &&
		    chmod(proc, (mode | (S_ISDIR(n->type) ? 0700 : 0600)) & 07777) < 0)
			ret = -errno;
		if (ret < 0)
			goto out;
	} else {
		if (sa->set_uid || sa->set_gid) {
			if (fchownat(fd, "", sa->set_uid ? sa->uid : (uid_t)-1,
				     sa->set_gid ? sa->gid : (gid_t)-1, AT_EMPTY_PATH) < 0) {
				ret = -errno;
				goto out;
			}
		}
	}
	if (!ex->no_chown && sa->set_mode && !S_ISLNK(n->type)) {
		/* chmod through the magic link: fchmod refuses O_PATH */
		if (chmod(proc, sa->mode & 07777) < 0) {
			ret = -errno;
			goto out;
		}
	}
	if (sa->atime_how != ONFS_TIME_KEEP || sa->mtime_how != ONFS_TIME_KEEP) {
		struct timespec ts[2];
		ts[0].tv_nsec = sa->atime_how == ONFS_TIME_KEEP ? UTIME_OMIT
				: sa->atime_how == ONFS_TIME_NOW ? UTIME_NOW : sa->atime.tv_nsec;
		ts[0].tv_sec = sa->atime.tv_sec;
		ts[1].tv_nsec = sa->mtime_how == ONFS_TIME_KEEP ? UTIME_OMIT
				: sa->mtime_how == ONFS_TIME_NOW ? UTIME_NOW : sa->mtime.tv_nsec;
		ts[1].tv_sec = sa->mtime.tv_sec;
		if (utimensat(fd, "", ts, AT_EMPTY_PATH) < 0) {
			ret = -errno;
			goto out;
		}
	}
out:
	close(fd);
	return ret;
}

int onfs_setattr(struct onfs_export *ex, struct onfs_node *n, const struct onfs_sattr *sa,
		 const struct timespec *guard_ctime, struct onfs_wcc *wcc)
{
	struct onfs_node *up = NULL;
	struct onfs_attr a;
	pthread_mutex_t *lock;
	int ret;

	if (ex->readonly)
		return -EROFS;
	if (sa->set_size && S_ISDIR(n->type))
		return -EISDIR;
	if (sa->set_size && !S_ISREG(n->type))
		return -EINVAL;
	lock = onfs_obj_lock(ex, &n->ident);
	pthread_mutex_lock(lock);
	ret = onfs_getattr(ex, n, &a);
	if (ret < 0)
		goto out;
	wcc_pre(wcc, &a);
	if (guard_ctime && (guard_ctime->tv_sec != a.ctime.tv_sec ||
			    guard_ctime->tv_nsec != a.ctime.tv_nsec)) {
		ret = -ONFS_ENOTSYNC;
		goto out;
	}
	pthread_mutex_unlock(lock);
	/* copy-up takes the same stripe lock; O_TRUNC to 0 copies no data, as the kernel's */
	ret = onfs_copyup(ex, n, !(sa->set_size && sa->size == 0), &up);
	pthread_mutex_lock(lock);
	if (ret < 0)
		goto out;
	ret = onfs_apply_sattr(ex, up, sa);
out:
	onfs_changed_obj(ex, n); /* cached attributes of n are void */
	wcc_post(ex, up ? up : n, wcc);
	pthread_mutex_unlock(lock);
	onfs_node_put(up);
	return ret;
}

static void new_verf(struct onfs_export *ex);

/*
 * UNSTABLE writes leave the data to the page cache until COMMIT, whose
 * fsync then has all of it to write at once while the client waits (about
 * 1 s per GiB on the benchmark's disk). When a write crosses a
 * WRITEBACK_WINDOW boundary, writeback of the window before the one it
 * ends in is started (sync_file_range without waiting): the disk works while the
 * client is still sending, and COMMIT waits only for the tail (measured:
 * the fsync of a 1 GiB COMMIT went from 186 ms to 19 ms). One window
 * behind, so that writes still in flight out of order (8 x 512 KiB from
 * the Linux client) do not dirty pages already under writeback. Nothing
 * here is a durability promise: COMMIT still fsyncs.
 */
#define WRITEBACK_WINDOW (8u << 20)

static void writeback_behind(int fd, uint64_t off, size_t count)
{
	uint64_t end = off + count, w_end = end / WRITEBACK_WINDOW;

	if (count == 0 || off / WRITEBACK_WINDOW == w_end || w_end < 2)
		return;
	/* the window [w_end - 2, w_end - 1) is complete: start it, do not wait */
	(void)sync_file_range(fd, (off_t)((w_end - 2) * WRITEBACK_WINDOW), WRITEBACK_WINDOW,
			      SYNC_FILE_RANGE_WRITE);
}

ssize_t onfs_write(struct onfs_export *ex, struct onfs_node *n, uint64_t off, const void *buf,
		   size_t count, enum onfs_stable stable, struct onfs_wcc *wcc)
{
	struct onfs_node *up = NULL;
	pthread_mutex_t *lock;
	size_t done = 0;
	ssize_t ret;
	bool tmp = false;
	int fd;

	if (ex->readonly)
		return -EROFS;
	if (S_ISDIR(n->type))
		return -EISDIR;
	if (!S_ISREG(n->type))
		return -EINVAL;
	if (off > (uint64_t)INT64_MAX || count > (uint64_t)INT64_MAX - off)
		return -EFBIG;
	ret = onfs_copyup(ex, n, true, &up);
	if (ret < 0)
		return ret;
	lock = onfs_obj_lock(ex, &up->ident);
	pthread_mutex_lock(lock);
	onfs_wcc_pre(ex, up, wcc);
	fd = node_wfd(ex, up, &tmp);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	while (done < count) {
		ssize_t w = pwrite(fd, (const char *)buf + done, count - done, (off_t)(off + done));
		if (w < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		done += (size_t)w;
	}
	if ((stable == ONFS_DATA_SYNC && fdatasync(fd) < 0) ||
	    (stable == ONFS_FILE_SYNC && fsync(fd) < 0)) {
		ret = -errno;
		/*
		 * A failed sync may have dropped earlier UNSTABLE writes to this
		 * file too (the kernel reports a write-back error once and marks
		 * the pages clean): as for a failed COMMIT, the next COMMIT must
		 * not vouch for them under the old verifier.
		 */
		new_verf(ex);
		goto out;
	}
	ret = (ssize_t)done;
out:
	onfs_changed_obj(ex, up); /* size and times changed: cached attributes are void */
	wcc_post(ex, up, wcc);
	pthread_mutex_unlock(lock);
	if (ret > 0 && stable == ONFS_UNSTABLE)
		writeback_behind(fd, off, count);
	wfd_done(fd, tmp);
	onfs_node_put(up);
	return ret;
}

static void new_verf(struct onfs_export *ex)
{
	uint8_t v[8];

	if (getrandom(v, sizeof(v), 0) != sizeof(v))
		memset(v, 0x5a, sizeof(v));
	pthread_mutex_lock(&ex->verf_lock);
	for (size_t i = 0; i < 8; i++)
		ex->write_verf[i] ^= v[i] | 1;
	pthread_mutex_unlock(&ex->verf_lock);
}

void onfs_write_verf(struct onfs_export *ex, uint8_t verf[8])
{
	pthread_mutex_lock(&ex->verf_lock);
	memcpy(verf, ex->write_verf, 8);
	pthread_mutex_unlock(&ex->verf_lock);
}

int onfs_commit(struct onfs_export *ex, struct onfs_node *n, struct onfs_wcc *wcc)
{
	int fd, ret = 0;
	bool tmp;

	if (ex->readonly)
		return -EROFS;
	onfs_wcc_pre(ex, n, wcc);
	if (S_ISREG(n->type) && (n->parts[0].layer == ONFS_LAYER_INDEX ||
				 ex->layers[n->parts[0].layer].upper)) {
		fd = node_wfd(ex, n, &tmp);
		if (fd < 0)
			ret = fd;
		else if (fsync(fd) < 0)
			ret = -errno;
		wfd_done(fd, tmp);
		/* a lost write-back: clients must resend what they did not commit */
		if (ret < 0)
			new_verf(ex);
	}
	wcc_post(ex, n, wcc);
	return ret;
}
