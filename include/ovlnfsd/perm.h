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

/* --- the write path (Linux may_create/may_delete/setattr_prepare rules) --- */

/*
 * May cred make a new entry in directory dir (Linux may_create: write and
 * search permission)? 0 or -EACCES.
 */
int onfs_perm_may_create(const struct onfs_attr *dir, const struct onfs_cred *cred);

/*
 * May cred remove (or rename away, or rename over) the entry whose
 * attributes are victim from directory dir (Linux may_delete)? -EACCES
 * without write and search permission on dir; -EPERM when dir is sticky
 * and cred owns neither the entry nor dir and is not root.
 */
int onfs_perm_may_delete(const struct onfs_attr *dir, const struct onfs_attr *victim,
			 const struct onfs_cred *cred);

/*
 * May cred make a hard link to src (Linux may_linkat with
 * fs.protected_hardlinks=1)? The owner and root may; others only to a
 * regular file that is not setuid, not executable-setgid, and that they
 * may read and write. 0 or -EPERM.
 */
int onfs_perm_may_link(const struct onfs_attr *src, const struct onfs_cred *cred);

/*
 * SETATTR as knfsd (nfsd_setattr) and Linux (setattr_prepare,
 * notify_change) decide it, checked against the object's attributes a:
 * a size change or times set to the server's time need write permission
 * (the owner passes) else -EACCES; chown only by root, chgrp only by the
 * owner to a group they are in (or root), chmod and times set to a client
 * time only by the owner or root, else -EPERM. On success sa may be
 * changed the way Linux changes the request: the mode of a symlink is
 * dropped, setgid is cleared from a chmod by a non-root caller outside the
 * file's (new) group, and a chown/chgrp of a non-directory clears setuid
 * and (executable) setgid.
 */
int onfs_perm_setattr(const struct onfs_attr *a, const struct onfs_cred *cred,
		      struct onfs_sattr *sa);

/*
 * The permission bits a new object of type (S_IFMT bits) created by cred
 * in directory dir gets from the requested mode: Linux's mode_strip_sgid
 * (a non-directory in a setgid directory whose group the non-root caller
 * is not in loses an executable setgid bit).
 */
uint32_t onfs_perm_create_mode(const struct onfs_attr *dir, const struct onfs_cred *cred,
			       uint32_t type, uint32_t mode);

/*
 * After a WRITE or a size change by cred: true with *mode set to the new
 * permission bits when setuid or executable-setgid must go (Linux
 * file_remove_privs: a caller without CAP_FSETID, i.e. not root).
 */
bool onfs_perm_kill_priv(const struct onfs_attr *a, const struct onfs_cred *cred,
			 uint32_t *mode);

#endif
