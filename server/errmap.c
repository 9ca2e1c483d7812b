/*
 * errmap.c - the one table that turns a negative errno (or -ONFS_E*) into
 * an NFSv3 status, and the one that turns it into a MOUNT v3 status.
 *
 * Runs on any thread (pool workers mostly). Pure lookups; the only state
 * is the "already logged" bitmap for unknown errno values, updated with
 * atomics so that each unknown value is logged once per process, as
 * knfsd's nfserrno() does with WARN_ONCE.
 *
 * Must never be bypassed: procedures return -errno from the overlay and
 * convert here, nowhere else. Per-procedure exceptions are named
 * functions in this file (none yet).
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>

#include "nfs3.h"
#include "mount3.h"
#include "ovlnfsd/common.h"
#include "ovlnfsd/errmap.h"

struct errmap_row {
	int err;       /* positive errno value */
	uint32_t stat; /* nfsstat3 */
};

/*
 * Ordered like knfsd's nfs_errtbl (fs/nfsd/vfs.c). Deviations and choices:
 * - ELOOP: raised when the server refuses to follow a symlink (no symlink
 *   is ever followed server side), i.e. the object is a symlink where
 *   something else was needed. knfsd (since 6.x) maps it to nfserr_symlink,
 *   which nfsd3_map_status() turns into NFS3ERR_INVAL for v3; nfs-ganesha
 *   also answers INVAL. ACCES (what some older knfsd paths gave) would make
 *   clients report "permission denied" for a type problem, so INVAL.
 * - ETXTBSY: knfsd gives IO; we say JUKEBOX ("try again later"), since a
 *   busy executable is a transient condition and IO would be permanent.
 * - EAGAIN/EWOULDBLOCK, ENOMEM, ETIMEDOUT: JUKEBOX, as knfsd.
 * - EBADF: STALE, as knfsd (a cached descriptor went away under us).
 * - E2BIG: FBIG, as knfsd.
 * - ENFILE/EMFILE: SERVERFAULT (knfsd: ENFILE only); the client cannot fix it.
 */
static const struct errmap_row nfs3_table[] = {
	{ EPERM, NFS3ERR_PERM },
	{ ENOENT, NFS3ERR_NOENT },
	{ EIO, NFS3ERR_IO },
	{ ENXIO, NFS3ERR_NXIO },
	{ E2BIG, NFS3ERR_FBIG },
	{ EBADF, NFS3ERR_STALE },
	{ EACCES, NFS3ERR_ACCES },
	{ EEXIST, NFS3ERR_EXIST },
	{ EXDEV, NFS3ERR_XDEV },
	{ ENODEV, NFS3ERR_NODEV },
	{ ENOTDIR, NFS3ERR_NOTDIR },
	{ EISDIR, NFS3ERR_ISDIR },
	{ EINVAL, NFS3ERR_INVAL },
	{ EFBIG, NFS3ERR_FBIG },
	{ ENOSPC, NFS3ERR_NOSPC },
	{ EROFS, NFS3ERR_ROFS },
	{ EMLINK, NFS3ERR_MLINK },
	{ ENAMETOOLONG, NFS3ERR_NAMETOOLONG },
	{ ENOTEMPTY, NFS3ERR_NOTEMPTY },
	{ EDQUOT, NFS3ERR_DQUOT },
	{ ESTALE, NFS3ERR_STALE },
	{ EREMOTE, NFS3ERR_REMOTE },
	{ ELOOP, NFS3ERR_INVAL },
	{ ETXTBSY, NFS3ERR_JUKEBOX },
	{ EAGAIN, NFS3ERR_JUKEBOX }, /* == EWOULDBLOCK on Linux */
	{ ETIMEDOUT, NFS3ERR_JUKEBOX },
	{ ENOMEM, NFS3ERR_JUKEBOX },
	{ EOPNOTSUPP, NFS3ERR_NOTSUPP }, /* == ENOTSUP on Linux */
	{ ENFILE, NFS3ERR_SERVERFAULT },
	{ EMFILE, NFS3ERR_SERVERFAULT },
	{ EOVERFLOW, NFS3ERR_INVAL },
	{ ONFS_EBADHANDLE, NFS3ERR_BADHANDLE },
	{ ONFS_ENOTSYNC, NFS3ERR_NOT_SYNC },
	{ ONFS_EBADCOOKIE, NFS3ERR_BAD_COOKIE },
	{ ONFS_ENOTSUPP, NFS3ERR_NOTSUPP },
	{ ONFS_ETOOSMALL, NFS3ERR_TOOSMALL },
	{ ONFS_ESERVERFAULT, NFS3ERR_SERVERFAULT },
	{ ONFS_EBADTYPE, NFS3ERR_BADTYPE },
	{ ONFS_EJUKEBOX, NFS3ERR_JUKEBOX },
};

/*
 * MOUNT v3 has few statuses (RFC 1813 Appendix I); whatever has no
 * counterpart is IO, but only unknown values are logged.
 */
static const struct errmap_row mount3_table[] = {
	{ EPERM, MNT3ERR_PERM },
	{ ENOENT, MNT3ERR_NOENT },
	{ ESTALE, MNT3ERR_NOENT },
	{ EIO, MNT3ERR_IO },
	{ EACCES, MNT3ERR_ACCES },
	{ ENOTDIR, MNT3ERR_NOTDIR },
	{ EINVAL, MNT3ERR_INVAL },
	{ ELOOP, MNT3ERR_INVAL }, /* too many symlinks on a MNT path (mount.c) */
	{ ENAMETOOLONG, MNT3ERR_NAMETOOLONG },
	{ EOPNOTSUPP, MNT3ERR_NOTSUPP },
	{ ONFS_ENOTSUPP, MNT3ERR_NOTSUPP },
	{ ONFS_ESERVERFAULT, MNT3ERR_SERVERFAULT },
	{ ENOMEM, MNT3ERR_SERVERFAULT },
	{ ENFILE, MNT3ERR_SERVERFAULT },
	{ EMFILE, MNT3ERR_SERVERFAULT },
};

/* errno values up to this are remembered one bit each; larger share one bit. */
#define ERRMAP_SEEN_MAX 1024
static atomic_uint errmap_seen[ERRMAP_SEEN_MAX / 32 + 1];

/* True the first time this (positive) value is seen. */
static bool errmap_first_time(int err)
{
	unsigned int slot = (err >= 0 && err < ERRMAP_SEEN_MAX) ? (unsigned int)err
								: ERRMAP_SEEN_MAX;
	unsigned int bit = 1u << (slot % 32);

	return !(atomic_fetch_or(&errmap_seen[slot / 32], bit) & bit);
}

/* Positive errno value; INT_MIN (no positive counterpart) becomes INT_MAX. */
static int errmap_abs(int err)
{
	if (err >= 0)
		return err;
	return err == INT_MIN ? INT_MAX : -err;
}

static bool errmap_find(const struct errmap_row *t, size_t n, int err, uint32_t *stat)
{
	for (size_t i = 0; i < n; i++) {
		if (t[i].err == err) {
			*stat = t[i].stat;
			return true;
		}
	}
	return false;
}

uint32_t onfs_errmap_nfs3(int err)
{
	uint32_t stat = NFS3ERR_IO;
	int e = errmap_abs(err);

	if (err == 0)
		return NFS3_OK;
	if (!errmap_find(nfs3_table, ONFS_ARRAY_SIZE(nfs3_table), e, &stat) &&
	    errmap_first_time(e))
		onfs_warn("errmap: no nfsstat3 for errno %d, answering NFS3ERR_IO", e);
	return stat;
}

uint32_t onfs_errmap_mount3(int err)
{
	uint32_t stat = MNT3_OK;
	uint32_t unused;
	int e = errmap_abs(err);

	if (err == 0 || errmap_find(mount3_table, ONFS_ARRAY_SIZE(mount3_table), e, &stat))
		goto out;
	/* Known to the NFS table but with no MOUNT counterpart: IO, silently. */
	if (!errmap_find(nfs3_table, ONFS_ARRAY_SIZE(nfs3_table), e, &unused) &&
	    errmap_first_time(e))
		onfs_warn("errmap: no mountstat3 for errno %d, answering MNT3ERR_IO", e);
	stat = MNT3ERR_IO;
out:
	return stat;
}
