/*
 * perm.c - decides what the client's identity may do with a merged object:
 * mode bits against owner, group and supplementary groups, with uid 0 as
 * Linux root (DAC override), and the ACCESS3 answer built from the same
 * check (docs/architecture.md: "the client decides"), and the write path's rules:
 * may_create/may_delete with sticky directories, protected hard links,
 * who may chmod/chown/set times, and when setuid/setgid bits go.
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

/* --- the write path --- */

int onfs_perm_may_create(const struct onfs_attr *dir, const struct onfs_cred *cred)
{
	return onfs_perm_check(dir, cred, ONFS_MAY_WRITE | ONFS_MAY_EXEC);
}

/* Linux __check_sticky: the entry's owner, the directory's owner and root pass. */
static bool perm_sticky_denies(const struct onfs_attr *dir, const struct onfs_attr *victim,
			       const struct onfs_cred *cred)
{
	if (!(dir->mode & S_ISVTX))
		return false;
	if (cred->uid == victim->uid || cred->uid == dir->uid)
		return false;
	return !onfs_perm_is_root(cred);
}

int onfs_perm_may_delete(const struct onfs_attr *dir, const struct onfs_attr *victim,
			 const struct onfs_cred *cred)
{
	int ret = onfs_perm_may_create(dir, cred);

	if (ret == 0 && perm_sticky_denies(dir, victim, cred))
		ret = -EPERM;
	return ret;
}

int onfs_perm_may_link(const struct onfs_attr *src, const struct onfs_cred *cred)
{
	int ret = 0;

	if (cred->uid == src->uid || onfs_perm_is_root(cred))
		goto out;
	/* safe_hardlink_source() */
	if (!S_ISREG(src->mode) || (src->mode & S_ISUID) ||
	    (src->mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) ||
	    onfs_perm_check(src, cred, ONFS_MAY_READ | ONFS_MAY_WRITE) < 0)
		ret = -EPERM;
out:
	return ret;
}

/* inode_owner_or_capable(): the owner, or root (CAP_FOWNER). */
static bool perm_owner_or_root(const struct onfs_attr *a, const struct onfs_cred *cred)
{
	return cred->uid == a->uid || onfs_perm_is_root(cred);
}

/* setattr_should_drop_sgid(): an executable setgid always, else outside the group. */
static bool perm_drop_sgid(uint32_t mode, uint32_t gid, const struct onfs_cred *cred)
{
	if (!(mode & S_ISGID))
		return false;
	if (mode & S_IXGRP)
		return true;
	return !onfs_perm_in_group(cred, gid) && !onfs_perm_is_root(cred);
}

int onfs_perm_setattr(const struct onfs_attr *a, const struct onfs_cred *cred,
		      struct onfs_sattr *sa)
{
	unsigned int may = 0;
	uint32_t new_gid = sa->set_gid ? sa->gid : a->gid;
	bool times_now = sa->atime_how == ONFS_TIME_NOW || sa->mtime_how == ONFS_TIME_NOW;
	bool times_set = sa->atime_how == ONFS_TIME_SET || sa->mtime_how == ONFS_TIME_SET;
	int ret;

	/* knfsd (nfsd_setattr): NFSD_MAY_WRITE|NFSD_MAY_OWNER_OVERRIDE for a
	 * size, and for times unless one of them is set to a client time */
	if (sa->set_size || (times_now && !times_set))
		may = ONFS_MAY_WRITE | ONFS_MAY_OWNER_OVERRIDE;
	ret = may ? onfs_perm_check(a, cred, may) : 0;
	if (ret < 0)
		goto out;
	ret = -EPERM;
	/* chown_ok(): the owner may "chown" to themselves, root anything */
	if (sa->set_uid && !onfs_perm_is_root(cred) &&
	    !(cred->uid == a->uid && sa->uid == a->uid))
		goto out;
	/* chgrp_ok(): the owner to the same group or one they are in */
	if (sa->set_gid && !onfs_perm_is_root(cred) &&
	    !(cred->uid == a->uid && (sa->gid == a->gid || onfs_perm_in_group(cred, sa->gid))))
		goto out;
	if (S_ISLNK(a->mode))
		sa->set_mode = false; /* nfsd_sanitize_attrs: ignored on symlinks */
	if (sa->set_mode && !perm_owner_or_root(a, cred))
		goto out;
	if (times_set && !perm_owner_or_root(a, cred))
		goto out;
	ret = 0;
	if (sa->set_mode) {
		sa->mode &= 07777;
		if (!onfs_perm_in_group(cred, new_gid) && !onfs_perm_is_root(cred))
			sa->mode &= ~(uint32_t)S_ISGID;
	}
	/* nfsd_sanitize_attrs + notify_change: revoke setuid/setgid on chown */
	if ((sa->set_uid || sa->set_gid) && !S_ISDIR(a->mode) && !S_ISLNK(a->mode)) {
		if (sa->set_mode) {
			sa->mode &= ~(uint32_t)S_ISUID;
			if (sa->mode & S_IXGRP)
				sa->mode &= ~(uint32_t)S_ISGID;
		} else if ((a->mode & S_ISUID) || perm_drop_sgid(a->mode, a->gid, cred)) {
			sa->set_mode = true;
			sa->mode = a->mode & 07777 & ~(uint32_t)S_ISUID;
			if (perm_drop_sgid(a->mode, a->gid, cred))
				sa->mode &= ~(uint32_t)S_ISGID;
		}
	}
out:
	return ret;
}

uint32_t onfs_perm_create_mode(const struct onfs_attr *dir, const struct onfs_cred *cred,
			       uint32_t type, uint32_t mode)
{
	mode &= 07777;
	if ((type & S_IFMT) != S_IFDIR && (dir->mode & S_ISGID) &&
	    (mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) &&
	    !onfs_perm_in_group(cred, dir->gid) && !onfs_perm_is_root(cred))
		mode &= ~(uint32_t)S_ISGID;
	return mode;
}

bool onfs_perm_kill_priv(const struct onfs_attr *a, const struct onfs_cred *cred,
			 uint32_t *mode)
{
	uint32_t m = a->mode & 07777;

	if (onfs_perm_is_root(cred) || !S_ISREG(a->mode))
		return false;
	m &= ~(uint32_t)S_ISUID;
	if ((m & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		m &= ~(uint32_t)S_ISGID;
	*mode = m;
	return m != (a->mode & 07777);
}
