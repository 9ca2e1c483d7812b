/*
 * nfs3enc.c - READDIR / READDIRPLUS entries encoded straight into the
 * reply buffer (include/ovlnfsd/nfs3enc.h): the same bytes as rpcgen's
 * xdr_entry3 / xdr_entryplus3 after a TRUE "value follows", without one
 * libtirpc call per field. Any thread; no state.
 */
#include <string.h>

#include "ovlnfsd/nfs3enc.h"

static size_t pad4(size_t n)
{
	return (n + 3u) & ~(size_t)3u;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
	return put32(put32(p, (uint32_t)(v >> 32)), (uint32_t)v);
}

/* XDR variable-length opaque: length, bytes, zero padding to 4 */
static uint8_t *put_opaque(uint8_t *p, const void *data, size_t len)
{
	size_t padded = pad4(len);

	p = put32(p, (uint32_t)len);
	if (len)
		memcpy(p, data, len);
	memset(p + len, 0, padded - len);
	return p + padded;
}

size_t onfs_nfs3_entry_size(size_t namelen)
{
	return 4 + 8 + 4 + pad4(namelen) + 8;
}

size_t onfs_nfs3_entryplus_size(size_t namelen, const fattr3 *attr, const nfs_fh3 *fh)
{
	return onfs_nfs3_entry_size(namelen) + 4 + (attr ? 84 : 0) + 4 +
	       (fh ? 4 + pad4(fh->data.data_len) : 0);
}

uint8_t *onfs_nfs3_put_entry(uint8_t *p, uint64_t fileid, const char *name, size_t namelen,
			     uint64_t cookie)
{
	p = put32(p, 1); /* value follows */
	p = put64(p, fileid);
	p = put_opaque(p, name, namelen);
	return put64(p, cookie);
}

static uint8_t *put_fattr3(uint8_t *p, const fattr3 *f)
{
	p = put32(p, (uint32_t)f->type);
	p = put32(p, f->mode);
	p = put32(p, f->nlink);
	p = put32(p, f->uid);
	p = put32(p, f->gid);
	p = put64(p, f->size);
	p = put64(p, f->used);
	p = put32(p, f->rdev.specdata1);
	p = put32(p, f->rdev.specdata2);
	p = put64(p, f->fsid);
	p = put64(p, f->fileid);
	p = put32(p, f->atime.seconds);
	p = put32(p, f->atime.nseconds);
	p = put32(p, f->mtime.seconds);
	p = put32(p, f->mtime.nseconds);
	p = put32(p, f->ctime.seconds);
	return put32(p, f->ctime.nseconds);
}

uint8_t *onfs_nfs3_put_entryplus(uint8_t *p, uint64_t fileid, const char *name, size_t namelen,
				 uint64_t cookie, const fattr3 *attr, const nfs_fh3 *fh)
{
	p = onfs_nfs3_put_entry(p, fileid, name, namelen, cookie);
	p = put32(p, attr != NULL);
	if (attr)
		p = put_fattr3(p, attr);
	p = put32(p, fh != NULL);
	if (fh)
		p = put_opaque(p, fh->data.data_val, fh->data.data_len);
	return p;
}
