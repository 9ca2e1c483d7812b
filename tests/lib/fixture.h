/*
 * fixture.h - the standard three-layer tree most integration tests serve,
 * and its expected merged view.
 *
 * Runs in the test process. No libnfs, no rpcgen.
 *
 * Layers: l0 and l1 are the lowers (l0 on top), upper is upper. Contents:
 *
 *   l1 (bottom)                 l0 (middle)               upper
 *   d/a "l1-a"                  d/a "l0-a"                d/a "up-a"
 *   d/b "l1-b" 0640 1234:5678   d/c "l0-c"                d/up_only "up"
 *   d/only_bottom, d/gone       d/wdir (whiteout)         d/gone (whiteout)
 *   d/wdir/x, d/sub/x
 *   opq/hidden1, opq/hidden2    opq/mid1                  opq/ opaque=y, opq/visible
 *   fod/ (dir) fod/inner        fod (file "file wins")
 *   xw/xname, xw/keep           xw/ opaque=x, xw/xname (xattr whiteout)
 *   big (100000 bytes)                                    upfile, small, empty
 *   link -> d/a
 *   sub/inner, sub/deeper/f
 *   secret 0600 0:0, mine 0600 1000:1000
 *   rdir_orig/f1                                          rdir_new/ redirect=rdir_orig,
 *                                                         rdir_orig (whiteout)
 */
#ifndef OVLNFSD_TEST_FIXTURE_H
#define OVLNFSD_TEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "testlib.h"

#define TL_BIG_SIZE 100000

/* Build the tree above (tl_tree_new with 2 lowers, then the content). */
void tl_fixture_standard(struct tl_tree *t);

/* The byte at offset i of "big". */
uint8_t tl_big_byte(uint64_t i);

/* Expected merged listings (without "." and ".."), NULL-terminated. */
extern const char *const tl_expect_root[];
extern const char *const tl_expect_d[];
extern const char *const tl_expect_opq[];
extern const char *const tl_expect_xw[];
extern const char *const tl_expect_sub[];
extern const char *const tl_expect_rdir_new[];

size_t tl_strv_len(const char *const *v);

#endif
