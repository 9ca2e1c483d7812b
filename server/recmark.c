/*
 * recmark.c - incremental RPC record-marking parser and mark encoder
 * (RFC 5531 section 11).
 *
 * Owns: the partially assembled record of one stream.
 * Thread: whichever thread owns the stream (the loop thread for TCP).
 * Never: does I/O, blocks, or allocates more than the bytes that arrived
 * (a lying fragment header cannot make it reserve max_record up front).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ovlnfsd/recmark.h"

#define RECMARK_MIN_ALLOC 512
#define RECMARK_TRUST (16 * 1024)
#define RECMARK_TRUST_MULT 16
/* below this many bytes left in a fragment, or in the record so far, reads
 * go through the socket buffer (they may bring the next records along) */
#define RECMARK_INPLACE_MIN 4096

void onfs_recmark_init(struct onfs_recmark *rm, size_t max_record)
{
	memset(rm, 0, sizeof(*rm));
	rm->max_record = max_record;
}

void onfs_recmark_free(struct onfs_recmark *rm)
{
	free(rm->buf);
	rm->buf = NULL;
	rm->len = rm->cap = 0;
	rm->hdr_have = 0;
	rm->frag_left = 0;
}

/* Make room for at least `need` more bytes, growing geometrically but never
 * beyond what the current fragment still promises. */
static int recmark_reserve(struct onfs_recmark *rm, size_t need, size_t promised)
{
	size_t want, ncap;
	uint8_t *nbuf;

	if (rm->cap - rm->len >= need)
		return 0;
	want = rm->len + need;
	ncap = rm->cap ? rm->cap * 2 : RECMARK_MIN_ALLOC;
	if (ncap < want)
		ncap = want;
	/*
	 * A large record (a WRITE) that has shown RECMARK_TRUST bytes, counting
	 * those arriving now, gets up to RECMARK_TRUST_MULT times that at once:
	 * the 64 KiB first read of a 1 MiB WRITE reserves the whole record, so
	 * its head is copied once, not again at every doubling (about 640 KiB
	 * of copying per 1 MiB record on the event loop with a multiple of 8),
	 * and still no more memory than a small multiple of the bytes a client
	 * actually sent.
	 */
	if (want >= RECMARK_TRUST && ncap < want * RECMARK_TRUST_MULT)
		ncap = want * RECMARK_TRUST_MULT;
	if (ncap > rm->len + promised)
		ncap = rm->len + promised;
	if (ncap < want)
		ncap = want;
	nbuf = realloc(rm->buf, ncap);
	if (!nbuf)
		return -ENOMEM;
	rm->buf = nbuf;
	rm->cap = ncap;
	return 0;
}

/* Hand the finished record to the caller and start a new one. */
static int recmark_finish(struct onfs_recmark *rm, uint8_t **rec, size_t *rec_len)
{
	if (!rm->buf) {
		/* empty record: still give the caller an owned buffer */
		rm->buf = malloc(1);
		if (!rm->buf)
			return -ENOMEM;
	}
	*rec = rm->buf;
	*rec_len = rm->len;
	rm->buf = NULL;
	rm->len = rm->cap = 0;
	return 0;
}

ssize_t onfs_recmark_feed(struct onfs_recmark *rm, const uint8_t *data, size_t len,
			  uint8_t **rec, size_t *rec_len)
{
	size_t used = 0;
	ssize_t ret;

	*rec = NULL;
	*rec_len = 0;

	while (used < len) {
		if (rm->hdr_have < 4) {
			uint32_t mark;

			rm->hdr[rm->hdr_have++] = data[used++];
			if (rm->hdr_have < 4)
				continue;
			mark = (uint32_t)rm->hdr[0] << 24 | (uint32_t)rm->hdr[1] << 16 |
			       (uint32_t)rm->hdr[2] << 8 | rm->hdr[3];
			rm->frag_last = (mark & ONFS_RECMARK_LAST) != 0;
			rm->frag_left = mark & ONFS_RECMARK_LEN_MASK;
			if (rm->frag_left > rm->max_record ||
			    rm->len > rm->max_record - rm->frag_left) {
				ret = -EMSGSIZE;
				goto out_err;
			}
		} else {
			size_t n = len - used;

			if (n > rm->frag_left)
				n = rm->frag_left;
			ret = recmark_reserve(rm, n, rm->frag_left);
			if (ret < 0)
				goto out_err;
			memcpy(rm->buf + rm->len, data + used, n);
			rm->len += n;
			rm->frag_left -= (uint32_t)n;
			used += n;
		}
		if (rm->frag_left == 0) {
			/* fragment complete (possibly zero-length) */
			rm->hdr_have = 0;
			if (rm->frag_last) {
				ret = recmark_finish(rm, rec, rec_len);
				if (ret < 0)
					goto out_err;
				break;
			}
		}
	}
	return (ssize_t)used;

out_err:
	return ret;
}

size_t onfs_recmark_space(struct onfs_recmark *rm, uint8_t **p)
{
	size_t room;

	*p = NULL;
	if (rm->hdr_have < 4 || rm->frag_left < RECMARK_INPLACE_MIN || rm->len < RECMARK_INPLACE_MIN)
		return 0;
	if (rm->cap == rm->len && recmark_reserve(rm, 1, rm->frag_left) < 0)
		return 0; /* out of memory: the caller reads the usual way */
	room = rm->cap - rm->len;
	if (room > rm->frag_left)
		room = rm->frag_left;
	*p = rm->buf + rm->len;
	return room;
}

int onfs_recmark_filled(struct onfs_recmark *rm, size_t n, uint8_t **rec, size_t *rec_len)
{
	*rec = NULL;
	*rec_len = 0;
	rm->len += n;
	rm->frag_left -= (uint32_t)n;
	if (rm->frag_left == 0) {
		rm->hdr_have = 0;
		if (rm->frag_last)
			return recmark_finish(rm, rec, rec_len);
	}
	return 0;
}

void onfs_recmark_encode(uint8_t out[4], uint32_t len, bool last)
{
	uint32_t v = (len & ONFS_RECMARK_LEN_MASK) | (last ? ONFS_RECMARK_LAST : 0);

	out[0] = (uint8_t)(v >> 24);
	out[1] = (uint8_t)(v >> 16);
	out[2] = (uint8_t)(v >> 8);
	out[3] = (uint8_t)v;
}
