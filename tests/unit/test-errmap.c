/*
 * test-errmap.c - every row of the errno -> nfsstat3 / mountstat3 tables
 * (server/errmap.c), and the fallbacks for unknown values.
 *
 * Single-threaded test process; touches no files and no network.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "nfs3.h"
#include "mount3.h"
#include "ovlnfsd/common.h"
#include "ovlnfsd/errmap.h"
#include "unit.h"


struct row {
	int err;
	uint32_t stat;
};

static const struct row nfs3_rows[] = {
	{ 0, NFS3_OK },
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
	{ EAGAIN, NFS3ERR_JUKEBOX },
	{ EWOULDBLOCK, NFS3ERR_JUKEBOX },
	{ ETIMEDOUT, NFS3ERR_JUKEBOX },
	{ ENOMEM, NFS3ERR_JUKEBOX },
	{ EOPNOTSUPP, NFS3ERR_NOTSUPP },
	{ ENOTSUP, NFS3ERR_NOTSUPP },
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

static const struct row mount3_rows[] = {
	{ 0, MNT3_OK },
	{ EPERM, MNT3ERR_PERM },
	{ ENOENT, MNT3ERR_NOENT },
	{ ESTALE, MNT3ERR_NOENT },
	{ EIO, MNT3ERR_IO },
	{ EACCES, MNT3ERR_ACCES },
	{ ENOTDIR, MNT3ERR_NOTDIR },
	{ EINVAL, MNT3ERR_INVAL },
	{ ENAMETOOLONG, MNT3ERR_NAMETOOLONG },
	{ EOPNOTSUPP, MNT3ERR_NOTSUPP },
	{ ONFS_ENOTSUPP, MNT3ERR_NOTSUPP },
	{ ONFS_ESERVERFAULT, MNT3ERR_SERVERFAULT },
	{ ENOMEM, MNT3ERR_SERVERFAULT },
	{ ENFILE, MNT3ERR_SERVERFAULT },
	{ EMFILE, MNT3ERR_SERVERFAULT },
	/* known to NFS, no MOUNT counterpart */
	{ EEXIST, MNT3ERR_IO },
	{ EROFS, MNT3ERR_IO },
};

/* errmap_every_nfs3_row: both -errno (the convention) and +errno map. */
static void errmap_every_nfs3_row(void)
{
	for (size_t i = 0; i < ONFS_ARRAY_SIZE(nfs3_rows); i++) {
		CHECK_EQ(onfs_errmap_nfs3(-nfs3_rows[i].err), nfs3_rows[i].stat);
		CHECK_EQ(onfs_errmap_nfs3(nfs3_rows[i].err), nfs3_rows[i].stat);
	}
}

static void errmap_every_mount3_row(void)
{
	for (size_t i = 0; i < ONFS_ARRAY_SIZE(mount3_rows); i++)
		CHECK_EQ(onfs_errmap_mount3(-mount3_rows[i].err), mount3_rows[i].stat);
}

/* errmap_unknown_is_io: unknown values, asked twice (logged once), small and huge. */
static void errmap_unknown_is_io(void)
{
	static const int unknown[] = { ECHILD, ESPIPE, EDOM, ENOLINK, EPROTO, 999, 4000, 1 << 30 };

	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < ONFS_ARRAY_SIZE(unknown); i++) {
			CHECK_EQ(onfs_errmap_nfs3(-unknown[i]), NFS3ERR_IO);
			CHECK_EQ(onfs_errmap_mount3(-unknown[i]), MNT3ERR_IO);
		}
	}
	CHECK_EQ(onfs_errmap_nfs3(-2147483647 - 1), NFS3ERR_IO);
}

/* The wire values RFC 1813 fixes, so that a broken .x cannot hide a broken table. */
static void errmap_rfc_values(void)
{
	CHECK_EQ(onfs_errmap_nfs3(-ENOENT), 2);
	CHECK_EQ(onfs_errmap_nfs3(-ESTALE), 70);
	CHECK_EQ(onfs_errmap_nfs3(-ONFS_EBADHANDLE), 10001);
	CHECK_EQ(onfs_errmap_nfs3(-ONFS_EBADCOOKIE), 10003);
	CHECK_EQ(onfs_errmap_nfs3(-ONFS_ETOOSMALL), 10005);
	CHECK_EQ(onfs_errmap_nfs3(-ETXTBSY), 10008);
	CHECK_EQ(onfs_errmap_mount3(-ENOTDIR), 20);
}

int main(void)
{
	errmap_every_nfs3_row();
	errmap_every_mount3_row();
	errmap_unknown_is_io();
	errmap_rfc_values();
	return unit_finish("errmap");
}
