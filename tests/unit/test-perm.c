/*
 * test-perm.c - the client permission check and the ACCESS3 answer
 * (server/perm.c) for owners, group members (primary and supplementary),
 * others and root, on files, directories and symlinks, read-only or not.
 *
 * Single-threaded test process; touches no files and no network.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "ovlnfsd/perm.h"
#include "unit.h"


#define ALL (ONFS_ACCESS_READ | ONFS_ACCESS_LOOKUP | ONFS_ACCESS_MODIFY | \
	     ONFS_ACCESS_EXTEND | ONFS_ACCESS_DELETE | ONFS_ACCESS_EXECUTE)
#define R ONFS_ACCESS_READ
#define L ONFS_ACCESS_LOOKUP
#define M ONFS_ACCESS_MODIFY
#define E ONFS_ACCESS_EXTEND
#define D ONFS_ACCESS_DELETE
#define X ONFS_ACCESS_EXECUTE

static struct onfs_attr attr(uint32_t mode, uint32_t uid, uint32_t gid)
{
	struct onfs_attr a;

	memset(&a, 0, sizeof(a));
	a.mode = mode;
	a.uid = uid;
	a.gid = gid;
	a.nlink = 1;
	return a;
}

static struct onfs_cred cred(uint32_t uid, uint32_t gid, uint32_t ngroups, const uint32_t *groups)
{
	struct onfs_cred c;

	memset(&c, 0, sizeof(c));
	c.flavor = ONFS_AUTH_SYS;
	c.uid = uid;
	c.gid = gid;
	c.ngroups = ngroups;
	for (uint32_t i = 0; i < ngroups; i++)
		c.groups[i] = groups[i];
	return c;
}

/* perm_file_classes: owner, primary group, supplementary group, other. */
static void perm_file_classes(void)
{
	static const uint32_t sup[] = { 7, 200, 9 };
	struct onfs_attr f = attr(S_IFREG | 0754, 1000, 200);
	struct onfs_cred owner = cred(1000, 1000, 0, NULL);
	struct onfs_cred grp = cred(1001, 200, 0, NULL);
	struct onfs_cred supg = cred(1002, 300, 3, sup);
	struct onfs_cred other = cred(1003, 300, 0, NULL);

	CHECK_EQ(onfs_perm_access(&f, &owner, false, ALL), R | M | E | X);
	CHECK_EQ(onfs_perm_access(&f, &grp, false, ALL), R | X);
	CHECK_EQ(onfs_perm_access(&f, &supg, false, ALL), R | X);
	CHECK_EQ(onfs_perm_access(&f, &other, false, ALL), R);
	/* only requested bits come back */
	CHECK_EQ(onfs_perm_access(&f, &owner, false, R | L | D), R);
	CHECK_EQ(onfs_perm_access(&f, &owner, false, 0), 0);
	CHECK_EQ(onfs_perm_check(&f, &other, ONFS_MAY_WRITE), -EACCES);
	CHECK_EQ(onfs_perm_check(&f, &grp, ONFS_MAY_READ | ONFS_MAY_EXEC), 0);
}

/* perm_owner_class_wins: the owner gets the owner bits even when others get more. */
static void perm_owner_class_wins(void)
{
	struct onfs_attr f = attr(S_IFREG | 0077, 1000, 200);
	struct onfs_cred owner = cred(1000, 200, 0, NULL);
	struct onfs_cred grp = cred(1001, 200, 0, NULL);

	CHECK_EQ(onfs_perm_access(&f, &owner, false, ALL), 0);
	CHECK_EQ(onfs_perm_access(&f, &grp, false, ALL), R | M | E | X);
	/* ...but READ/WRITE procedures let the owner through (knfsd) */
	CHECK_EQ(onfs_perm_check(&f, &owner, ONFS_MAY_READ | ONFS_MAY_OWNER_OVERRIDE), 0);
	CHECK_EQ(onfs_perm_check(&f, &owner, ONFS_MAY_WRITE | ONFS_MAY_OWNER_OVERRIDE), 0);
	CHECK_EQ(onfs_perm_check(&f, &owner, ONFS_MAY_EXEC | ONFS_MAY_OWNER_OVERRIDE), -EACCES);
	CHECK_EQ(onfs_perm_check(&f, &grp, ONFS_MAY_READ | ONFS_MAY_OWNER_OVERRIDE), 0);
}

/* perm_read_if_exec: mode 0111 binaries are readable for READ, not for ACCESS. */
static void perm_read_if_exec(void)
{
	struct onfs_attr f = attr(S_IFREG | 0111, 0, 0);
	struct onfs_attr d = attr(S_IFDIR | 0111, 0, 0);
	struct onfs_cred other = cred(1003, 300, 0, NULL);

	CHECK_EQ(onfs_perm_check(&f, &other, ONFS_MAY_READ), -EACCES);
	CHECK_EQ(onfs_perm_check(&f, &other, ONFS_MAY_READ | ONFS_MAY_READ_IF_EXEC), 0);
	CHECK_EQ(onfs_perm_check(&d, &other, ONFS_MAY_READ | ONFS_MAY_READ_IF_EXEC), -EACCES);
	CHECK_EQ(onfs_perm_access(&f, &other, false, ALL), X);
}

/* perm_directory_bits: LOOKUP from x, DELETE/MODIFY/EXTEND need w and x, no EXECUTE. */
static void perm_directory_bits(void)
{
	struct onfs_attr d = attr(S_IFDIR | 0751, 1000, 200);
	struct onfs_cred owner = cred(1000, 1000, 0, NULL);
	struct onfs_cred grp = cred(1001, 200, 0, NULL);
	struct onfs_cred other = cred(1003, 300, 0, NULL);
	struct onfs_attr wonly = attr(S_IFDIR | 0222, 1000, 200);

	CHECK_EQ(onfs_perm_access(&d, &owner, false, ALL), R | L | M | E | D);
	CHECK_EQ(onfs_perm_access(&d, &grp, false, ALL), R | L);
	CHECK_EQ(onfs_perm_access(&d, &other, false, ALL), L);
	/* w without x grants nothing that changes entries */
	CHECK_EQ(onfs_perm_access(&wonly, &owner, false, ALL), 0);
}

/* perm_other_bits_with_wx: other with -wx on a dir may modify but not read. */
static void perm_other_bits_with_wx(void)
{
	struct onfs_attr d = attr(S_IFDIR | 0703, 1000, 200);
	struct onfs_cred other = cred(1003, 300, 0, NULL);

	CHECK_EQ(onfs_perm_access(&d, &other, false, ALL), L | M | E | D);
	CHECK_EQ(onfs_perm_access(&d, &other, true, ALL), L);
}

/* perm_root_dac_override: root reads/writes anything, executes only with some x. */
static void perm_root_dac_override(void)
{
	struct onfs_cred root = cred(0, 0, 0, NULL);
	struct onfs_attr none = attr(S_IFREG | 0000, 1000, 200);
	struct onfs_attr gx = attr(S_IFREG | 0010, 1000, 200);
	struct onfs_attr d = attr(S_IFDIR | 0000, 1000, 200);

	CHECK_EQ(onfs_perm_access(&none, &root, false, ALL), R | M | E);
	CHECK_EQ(onfs_perm_access(&gx, &root, false, ALL), R | M | E | X);
	CHECK_EQ(onfs_perm_access(&d, &root, false, ALL), R | L | M | E | D);
	CHECK_EQ(onfs_perm_access(&d, &root, true, ALL), R | L);
	CHECK_EQ(onfs_perm_access(&none, &root, true, ALL), R);
	CHECK_EQ(onfs_perm_check(&none, &root, ONFS_MAY_EXEC), -EACCES);
	CHECK_EQ(onfs_perm_is_root(&root), 1);
}

/* perm_squashed_root_is_nobody: uid 65534 gets only "other" bits. */
static void perm_squashed_root_is_nobody(void)
{
	struct onfs_cred nobody = cred(65534, 65534, 0, NULL);
	struct onfs_attr f = attr(S_IFREG | 0640, 0, 0);

	CHECK_EQ(onfs_perm_access(&f, &nobody, false, ALL), 0);
	CHECK_EQ(onfs_perm_is_root(&nobody), 0);
}

/* perm_readonly_export: MODIFY, EXTEND, DELETE removed, the rest kept. */
static void perm_readonly_export(void)
{
	struct onfs_attr f = attr(S_IFREG | 0777, 1000, 200);
	struct onfs_attr d = attr(S_IFDIR | 0777, 1000, 200);
	struct onfs_cred owner = cred(1000, 200, 0, NULL);

	CHECK_EQ(onfs_perm_access(&f, &owner, true, ALL), R | X);
	CHECK_EQ(onfs_perm_access(&d, &owner, true, ALL), R | L);
	CHECK_EQ(onfs_perm_access(&d, &owner, false, ALL), R | L | M | E | D);
}

/* perm_symlink_and_others: symlinks (0777) and devices use the generic table. */
static void perm_symlink_and_others(void)
{
	struct onfs_attr l = attr(S_IFLNK | 0777, 1000, 200);
	struct onfs_attr c = attr(S_IFCHR | 0620, 0, 5);
	struct onfs_cred user = cred(1000, 5, 0, NULL);

	CHECK_EQ(onfs_perm_access(&l, &user, false, ALL), R | M | E | X);
	CHECK_EQ(onfs_perm_access(&c, &user, false, ALL), M | E);
}

/* perm_groups_bounded: an ngroups above the array size is clamped, not overrun. */
static void perm_groups_bounded(void)
{
	uint32_t many[ONFS_MAX_GROUPS];
	struct onfs_cred c;

	for (uint32_t i = 0; i < ONFS_MAX_GROUPS; i++)
		many[i] = 500 + i;
	c = cred(1, 1, ONFS_MAX_GROUPS, many);
	CHECK_EQ(onfs_perm_in_group(&c, 500 + ONFS_MAX_GROUPS - 1), 1);
	CHECK_EQ(onfs_perm_in_group(&c, 1), 1);
	CHECK_EQ(onfs_perm_in_group(&c, 499), 0);
	c.ngroups = 1000;
	CHECK_EQ(onfs_perm_in_group(&c, 499), 0);
}

int main(void)
{
	perm_file_classes();
	perm_owner_class_wins();
	perm_read_if_exec();
	perm_directory_bits();
	perm_other_bits_with_wx();
	perm_root_dac_override();
	perm_squashed_root_is_nobody();
	perm_readonly_export();
	perm_symlink_and_others();
	perm_groups_bounded();
	return unit_finish("perm");
}
