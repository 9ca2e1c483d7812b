/*
 * errmap.h - the one place where a negative errno becomes a protocol
 * status (server/errmap.c). Any thread.
 */
#ifndef OVLNFSD_ERRMAP_H
#define OVLNFSD_ERRMAP_H

#include <stdint.h>

/* -errno (or -ONFS_E*) to nfsstat3; 0 gives NFS3_OK; unknown: logged once, NFS3ERR_IO. */
uint32_t onfs_errmap_nfs3(int err);
/* -errno to mountstat3. */
uint32_t onfs_errmap_mount3(int err);

#endif
