/*
 * nfs3enc.h - hand-written XDR encoders for the hot part of READDIR and
 * READDIRPLUS replies: one entry (with the "value follows" word before
 * it) written straight into the reply buffer, byte for byte what the
 * rpcgen routines (xdr_entry3, xdr_entryplus3 inside xdr_dirlist3 /
 * xdr_dirlistplus3) produce; tests/unit/test-nfs3enc.c compares the two.
 * libtirpc's per-field calls cost an indirect call per word, about 30 per
 * READDIRPLUS entry.
 *
 * Any thread; pure functions on memory.
 */
#ifndef OVLNFSD_NFS3ENC_H
#define OVLNFSD_NFS3ENC_H

#include <stddef.h>
#include <stdint.h>

#include "nfs3.h"

/* Bytes of value_follows + entry3 with a name of namelen bytes. */
size_t onfs_nfs3_entry_size(size_t namelen);

/* Bytes of value_follows + entryplus3; attr and fh may be NULL (absent). */
size_t onfs_nfs3_entryplus_size(size_t namelen, const fattr3 *attr, const nfs_fh3 *fh);

/*
 * Write value_follows (TRUE) and the entry at p (onfs_nfs3_entry_size /
 * onfs_nfs3_entryplus_size bytes, padding zeroed); returns the end.
 */
uint8_t *onfs_nfs3_put_entry(uint8_t *p, uint64_t fileid, const char *name, size_t namelen,
			     uint64_t cookie);
uint8_t *onfs_nfs3_put_entryplus(uint8_t *p, uint64_t fileid, const char *name, size_t namelen,
				 uint64_t cookie, const fattr3 *attr, const nfs_fh3 *fh);

#endif
