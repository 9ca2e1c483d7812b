/*
 * fixture.c - builds the standard three-layer tree (see fixture.h).
 *
 * Runs in the test process (root: trusted.* xattrs, chown). No libnfs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fixture.h"

#include <stdlib.h>
#include <string.h>

const char *const tl_expect_root[] = { "big", "d", "empty", "fod", "link", "mine",
				       "opq", "rdir_new", "secret", "small", "sub",
				       "upfile", "xw", NULL };
const char *const tl_expect_d[] = { "a", "b", "c", "only_bottom", "sub", "up_only", NULL };
const char *const tl_expect_opq[] = { "visible", NULL };
const char *const tl_expect_xw[] = { "keep", NULL };
const char *const tl_expect_sub[] = { "deeper", "inner", NULL };
const char *const tl_expect_rdir_new[] = { "f1", NULL };

size_t tl_strv_len(const char *const *v)
{
	size_t n = 0;

	while (v[n])
		n++;
	return n;
}

uint8_t tl_big_byte(uint64_t i)
{
	/* Not periodic at any power of two: an offset error shows. */
	return (uint8_t)((i * 7 + i / 251) & 0xff);
}

void tl_fixture_standard(struct tl_tree *t)
{
	const char *l1, *l0, *up;
	uint8_t *big;

	tl_tree_new(t, 2);
	l0 = t->lower[0];
	l1 = t->lower[1];
	up = t->upper;

	/* bottom lower */
	tl_mkdir(l1, "d", 0755);
	tl_write(l1, "d/a", "l1-a", 0644);
	tl_write(l1, "d/b", "l1-b", 0640);
	tl_chown(l1, "d/b", 1234, 5678);
	tl_set_mtime(l1, "d/b", 1500000000, 123456789);
	tl_write(l1, "d/only_bottom", "bottom", 0644);
	tl_write(l1, "d/gone", "gone", 0644);
	tl_mkdir(l1, "d/wdir", 0755);
	tl_write(l1, "d/wdir/x", "x", 0644);
	tl_mkdir(l1, "d/sub", 0755);
	tl_write(l1, "d/sub/x", "subx", 0644);
	tl_mkdir(l1, "opq", 0755);
	tl_write(l1, "opq/hidden1", "h1", 0644);
	tl_write(l1, "opq/hidden2", "h2", 0644);
	tl_mkdir(l1, "fod", 0755);
	tl_write(l1, "fod/inner", "inner", 0644);
	tl_mkdir(l1, "xw", 0755);
	tl_write(l1, "xw/xname", "xn", 0644);
	tl_write(l1, "xw/keep", "keep", 0644);
	big = malloc(TL_BIG_SIZE);
	ASSERT(big != NULL);
	for (uint64_t i = 0; i < TL_BIG_SIZE; i++)
		big[i] = tl_big_byte(i);
	tl_write_buf(l1, "big", big, TL_BIG_SIZE, 0644);
	free(big);
	tl_symlink(l1, "link", "d/a");
	tl_mkdir(l1, "sub", 0755);
	tl_write(l1, "sub/inner", "inner", 0644);
	tl_mkdir(l1, "sub/deeper", 0755);
	tl_write(l1, "sub/deeper/f", "deep", 0644);
	tl_write(l1, "secret", "secret", 0600);
	tl_write(l1, "mine", "mine", 0600);
	tl_chown(l1, "mine", 1000, 1000);
	tl_mkdir(l1, "rdir_orig", 0755);
	tl_write(l1, "rdir_orig/f1", "r1", 0644);

	/* middle lower */
	tl_mkdir(l0, "d", 0755);
	tl_write(l0, "d/a", "l0-a", 0644);
	tl_write(l0, "d/c", "l0-c", 0644);
	tl_whiteout(l0, "d/wdir");
	tl_write(l0, "fod", "file wins", 0644);
	tl_mkdir(l0, "opq", 0755);
	tl_write(l0, "opq/mid1", "m1", 0644);
	tl_mkdir(l0, "xw", 0755);
	tl_xwhiteout_parent(l0, "xw");
	tl_xwhiteout(l0, "xw/xname");

	/* upper */
	tl_mkdir(up, "d", 0755);
	tl_write(up, "d/a", "up-a", 0644);
	tl_write(up, "d/up_only", "up", 0644);
	tl_whiteout(up, "d/gone");
	tl_mkdir(up, "opq", 0755);
	tl_opaque(up, "opq");
	tl_write(up, "opq/visible", "visible", 0644);
	tl_write(up, "upfile", "upper file", 0644);
	tl_write(up, "small", "hello world\n", 0644);
	tl_write(up, "empty", "", 0644);
	/* What the kernel leaves after renaming lower dir rdir_orig to rdir_new
	 * with redirect_dir=on: the new dir points back, the old name is a
	 * whiteout. */
	tl_mkdir(up, "rdir_new", 0755);
	tl_redirect(up, "rdir_new", "rdir_orig");
	tl_whiteout(up, "rdir_orig");
}
