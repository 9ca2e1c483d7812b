/*
 * perm.h - the client-side permission check (server/perm.c): the client's
 * (squashed) AUTH_SYS identity against the merged attributes, as Linux's
 * generic_permission() and knfsd's nfsd_permission() decide it.
 *
 * Pure functions, any thread. They never touch the filesystem: callers
 * pass the attributes they already fetched. Read-only exports are the
 * caller's business except in onfs_perm_access, which reports them.
 */
#ifndef OVLNFSD_PERM_H
#define OVLNFSD_PERM_H

#include <stdbool.h>
#include <stdint.h>

#include "ovlnfsd/overlay.h"
#include "ovlnfsd/server.h"

/* What onfs_perm_check is asked for (the kernel's MAY_* values). */
#define ONFS_MAY_EXEC 0x01
#define ONFS_MAY_WRITE 0x02
#define ONFS_MAY_READ 0x04
/* The file's owner passes whatever the mode says (READ/WRITE, as knfsd). */
#define ONFS_MAY_OWNER_OVERRIDE 0x100
/* A READ of a regular file passes with execute permission alone (knfsd). */
#define ONFS_MAY_READ_IF_EXEC 0x200

/* ACCESS3 bits (RFC 1813 3.3.4); equal to nfs3.h's ACCESS3_*. */
#define ONFS_ACCESS_READ 0x0001
#define ONFS_ACCESS_LOOKUP 0x0002
#define ONFS_ACCESS_MODIFY 0x0004
#define ONFS_ACCESS_EXTEND 0x0008
#define ONFS_ACCESS_DELETE 0x0010
#define ONFS_ACCESS_EXECUTE 0x0020

/* True when cred is uid 0 (Linux root: DAC override). */
bool onfs_perm_is_root(const struct onfs_cred *cred);
/* True when gid is cred's primary group or one of its supplementary groups. */
bool onfs_perm_in_group(const struct onfs_cred *cred, uint32_t gid);

/*
 * May cred do `may` (ONFS_MAY_* bits) on an object with attributes a?
 * Returns 0 or -EACCES.
 */
int onfs_perm_check(const struct onfs_attr *a, const struct onfs_cred *cred, unsigned int may);

/*
 * The ACCESS3 bits of `requested` that cred is granted on a (RFC 1813
 * 3.3.4, mapped as knfsd's nfs3_regaccess/nfs3_diraccess tables do).
 * readonly removes MODIFY, EXTEND and DELETE.
 */
uint32_t onfs_perm_access(const struct onfs_attr *a, const struct onfs_cred *cred,
			  bool readonly, uint32_t requested);

#endif
