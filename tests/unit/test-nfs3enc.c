/*
 * test-nfs3enc.c - the hand-written READDIR / READDIRPLUS entry encoders
 * (server/nfs3enc.c) against rpcgen's: for names of every length 1-255,
 * entries with and without attributes, handles of 0-64 bytes and fields
 * with every byte set (random values, all-ones), value_follows + the entry
 * must be byte for byte the start of xdr_dirlist3 / xdr_dirlistplus3 of a
 * one-entry list (which ends with FALSE and eof: 8 more bytes), and the
 * size functions must give exactly the bytes written. Padding bytes are
 * checked on a buffer filled with 0xa5 first.
 *
 * Single-threaded; no files, no network.
 */
#include <rpc/rpc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nfs3.h"
#include "ovlnfsd/nfs3enc.h"
#include "unit.h"

#define BUFSZ 4096
static char ref[BUFSZ];
static uint8_t mine[BUFSZ];

static uint64_t rnd64(void)
{
	return (uint64_t)random() << 42 ^ (uint64_t)random() << 21 ^ (uint64_t)random();
}

static void fill_attr(fattr3 *f, int kind)
{
	if (kind == 0) {
		memset(f, 0xff, sizeof(*f));
		f->type = NF3FIFO;
		return;
	}
	f->type = (ftype3)(1 + random() % 7);
	f->mode = (mode3)random();
	f->nlink = (uint32_t)random() << 1 | 1u;
	f->uid = (uint32_t)rnd64();
	f->gid = (uint32_t)rnd64();
	f->size = rnd64();
	f->used = rnd64();
	f->rdev.specdata1 = (uint32_t)rnd64();
	f->rdev.specdata2 = (uint32_t)rnd64();
	f->fsid = rnd64();
	f->fileid = rnd64();
	f->atime.seconds = (uint32_t)rnd64();
	f->atime.nseconds = (uint32_t)rnd64();
	f->mtime.seconds = (uint32_t)rnd64();
	f->mtime.nseconds = (uint32_t)rnd64();
	f->ctime.seconds = (uint32_t)rnd64();
	f->ctime.nseconds = (uint32_t)rnd64();
}

/* rpcgen's bytes of a one-entry list into ref; returns their length or 0 */
static size_t ref_list(xdrproc_t proc, void *list)
{
	XDR x;
	size_t n;

	xdrmem_create(&x, ref, BUFSZ, XDR_ENCODE);
	n = proc(&x, list) ? xdr_getpos(&x) : 0;
	xdr_destroy(&x);
	return n;
}

/*
 * Our encoder wrote mine[0, end) (mine was 0xa5 before), its size function
 * said sz; ref holds rpcgen's rn bytes, our entry and the list's 8-byte end.
 */
static void compare(const char *what, size_t rn, size_t sz, const uint8_t *end)
{
	unit_case = what;
	CHECK(rn > 8);
	CHECK((size_t)(end - mine) == sz);
	CHECK(sz + 8 == rn);
	CHECK(memcmp(mine, ref, sz) == 0);
	CHECK(mine[sz] == 0xa5); /* nothing written past the end */
	unit_case = NULL;
}

static void one(size_t namelen, int attr_kind, int fh_len)
{
	char name[256], fhb[64];
	entryplus3 e;
	entry3 e3;
	dirlistplus3 lp = { .entries = &e, .eof = TRUE };
	dirlist3 l = { .entries = &e3, .eof = FALSE };
	fattr3 *a = NULL;
	nfs_fh3 *fh = NULL;
	size_t rn, sz;
	uint8_t *end;

	for (size_t i = 0; i < namelen; i++)
		name[i] = (char)('a' + random() % 26);
	name[namelen] = '\0';
	for (int i = 0; i < fh_len; i++)
		fhb[i] = (char)random();
	memset(&e, 0, sizeof(e));
	e.fileid = attr_kind == 0 ? UINT64_MAX : rnd64();
	e.name = name;
	e.cookie = attr_kind == 0 ? UINT64_MAX : rnd64();
	if (attr_kind >= 0) {
		e.name_attributes.attributes_follow = TRUE;
		fill_attr(&e.name_attributes.post_op_attr_u.attributes, attr_kind);
		a = &e.name_attributes.post_op_attr_u.attributes;
	}
	if (fh_len >= 0) {
		e.name_handle.handle_follows = TRUE;
		e.name_handle.post_op_fh3_u.handle.data.data_len = (u_int)fh_len;
		e.name_handle.post_op_fh3_u.handle.data.data_val = fhb;
		fh = &e.name_handle.post_op_fh3_u.handle;
	}

	rn = ref_list((xdrproc_t)xdr_dirlistplus3, &lp);
	memset(mine, 0xa5, sizeof(mine));
	sz = onfs_nfs3_entryplus_size(namelen, a, fh);
	end = onfs_nfs3_put_entryplus(mine, e.fileid, name, namelen, e.cookie, a, fh);
	compare("entryplus", rn, sz, end);

	e3 = (entry3){ .fileid = e.fileid, .name = name, .cookie = e.cookie };
	rn = ref_list((xdrproc_t)xdr_dirlist3, &l);
	memset(mine, 0xa5, sizeof(mine));
	sz = onfs_nfs3_entry_size(namelen);
	end = onfs_nfs3_put_entry(mine, e.fileid, name, namelen, e.cookie);
	compare("entry", rn, sz, end);
}

int main(void)
{
	srandom(12);
	for (size_t len = 1; len <= 255; len++)
		for (int ak = -1; ak <= 1; ak++)
			one(len, ak, (int)(len % 66) - 1); /* -1: no handle, 0-64 bytes */
	for (int fl = -1; fl <= 64; fl++)
		one(1 + (size_t)fl % 7, 1, fl);
	one(255, 0, 64);
	return unit_finish("nfs3enc");
}
