/*
 * perm.c - decides what the client's identity may do with a merged object:
 * mode bits against owner, group and supplementary groups, with uid 0 as
 * Linux root (DAC override), and the ACCESS3 answer built from the same
 * check (DESIGN §4: "the client decides").
 *
 * Pure functions, any thread. Never touches the filesystem, never sees
 * process credentials: the client's identity is data here, not a
 * credential the kernel checks.
 */
#include <errno.h>
#include <sys/stat.h>

#include "ovlnfsd/perm.h"

bool onfs_perm_is_root(const struct onfs_cred *cred)
{
	return cred->uid == 0;
}

bool onfs_perm_in_group(const struct onfs_cred *cred, uint32_t gid)
{
	uint32_t n = cred->ngroups < ONFS_MAX_GROUPS ? cred->ngroups : ONFS_MAX_GROUPS;

	if (cred->gid == gid)
		return true;
	for (uint32_t i = 0; i < n; i++)
		if (cred->groups[i] == gid)
			return true;
	return false;
}

/*
 * generic_permission() without ACLs: the owner class decides for the
 * owner even when the group or other bits would allow more, then the
 * group class, then other.
 */
static bool perm_mode_allows(const struct onfs_attr *a, const struct onfs_cred *cred,
			     unsigned int mask)
{
	unsigned int mode = a->mode;

	if (cred->uid == a->uid)
		mode >>= 6;
	else if (onfs_perm_in_group(cred, a->gid))
		mode >>= 3;
	return (mask & ~mode & 7) == 0;
}

/* CAP_DAC_OVERRIDE as Linux applies it: execute needs some x bit or a directory. */
static bool perm_root_allows(const struct onfs_attr *a, unsigned int mask)
{
	if (!(mask & ONFS_MAY_EXEC) || S_ISDIR(a->mode))
		return true;
	return (a->mode & (S_IXUSR | S_IXGRP | S_IXOTH)) != 0;
}

int onfs_perm_check(const struct onfs_attr *a, const struct onfs_cred *cred, unsigned int may)
{
	unsigned int mask = may & (ONFS_MAY_READ | ONFS_MAY_WRITE | ONFS_MAY_EXEC);
	int ret = 0;

	/* knfsd: the owner may read and write through a mode that denies it
	 * (the client checked at open time). */
	if ((may & ONFS_MAY_OWNER_OVERRIDE) && cred->uid == a->uid &&
	    !(mask & ONFS_MAY_EXEC))
		goto out;
	if (perm_mode_allows(a, cred, mask))
		goto out;
	if (onfs_perm_is_root(cred) && perm_root_allows(a, mask))
		goto out;
	/* knfsd: "Allow read access to binaries even when mode 111". */
	if ((may & ONFS_MAY_READ_IF_EXEC) && mask == ONFS_MAY_READ && S_ISREG(a->mode) &&
	    onfs_perm_check(a, cred, ONFS_MAY_EXEC) == 0)
		goto out;
	ret = -EACCES;
out:
	return ret;
}

struct perm_access_row {
	uint32_t access; /* ACCESS3 bit */
	unsigned int may;
};

/* knfsd's nfs3_regaccess, nfs3_diraccess and nfs3_anyaccess (fs/nfsd/vfs.c). */
static const struct perm_access_row perm_reg_rows[] = {
	{ ONFS_ACCESS_READ, ONFS_MAY_READ },
	{ ONFS_ACCESS_EXECUTE, ONFS_MAY_EXEC },
	{ ONFS_ACCESS_MODIFY, ONFS_MAY_WRITE },
	{ ONFS_ACCESS_EXTEND, ONFS_MAY_WRITE },
	{ 0, 0 },
};

static const struct perm_access_row perm_dir_rows[] = {
	{ ONFS_ACCESS_READ, ONFS_MAY_READ },
	{ ONFS_ACCESS_LOOKUP, ONFS_MAY_EXEC },
	{ ONFS_ACCESS_MODIFY, ONFS_MAY_EXEC | ONFS_MAY_WRITE },
	{ ONFS_ACCESS_EXTEND, ONFS_MAY_EXEC | ONFS_MAY_WRITE },
	{ ONFS_ACCESS_DELETE, ONFS_MAY_EXEC | ONFS_MAY_WRITE },
	{ 0, 0 },
};

static const struct perm_access_row perm_any_rows[] = {
	{ ONFS_ACCESS_READ, ONFS_MAY_READ },
	{ ONFS_ACCESS_EXECUTE, ONFS_MAY_EXEC },
	{ ONFS_ACCESS_MODIFY, ONFS_MAY_WRITE },
	{ ONFS_ACCESS_EXTEND, ONFS_MAY_WRITE },
	{ 0, 0 },
};

uint32_t onfs_perm_access(const struct onfs_attr *a, const struct onfs_cred *cred,
			  bool readonly, uint32_t requested)
{
	const struct perm_access_row *row = perm_any_rows;
	uint32_t granted = 0;

	if (S_ISREG(a->mode))
		row = perm_reg_rows;
	else if (S_ISDIR(a->mode))
		row = perm_dir_rows;
	for (; row->access; row++) {
		if (!(requested & row->access))
			continue;
		if (readonly && (row->may & ONFS_MAY_WRITE))
			continue;
		if (onfs_perm_check(a, cred, row->may) == 0)
			granted |= row->access;
	}
	return granted;
}
