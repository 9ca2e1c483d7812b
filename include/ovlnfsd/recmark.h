/*
 * recmark.h - RPC record marking over a byte stream (RFC 5531 section 11),
 * server/recmark.c.
 *
 * A pure, incremental parser: feed it whatever chunks the socket delivers
 * (down to one byte at a time) and it hands back complete records, the
 * fragments of a multi-fragment record joined. No I/O, no libuv; any thread
 * may use its own parser. It never trusts a fragment header with memory: the
 * record buffer grows with the bytes that actually arrived (to at most 8
 * times them, once 16 KiB have), up to a cap.
 */
#ifndef OVLNFSD_RECMARK_H
#define OVLNFSD_RECMARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ONFS_RECMARK_LAST 0x80000000u  /* "last fragment" bit of a mark */
#define ONFS_RECMARK_LEN_MASK 0x7fffffffu

struct onfs_recmark {
	size_t max_record;   /* cap on a whole record (sum of its fragments) */
	uint8_t hdr[4];      /* fragment header being assembled */
	unsigned hdr_have;   /* bytes of hdr received; 4: inside a fragment */
	uint32_t frag_left;  /* bytes of the current fragment still to come */
	bool frag_last;      /* the current fragment ends the record */
	uint8_t *buf;        /* owned; the record being assembled */
	size_t len, cap;     /* bytes in buf, allocated size of buf */
};

void onfs_recmark_init(struct onfs_recmark *rm, size_t max_record);
/* Free a partially assembled record; rm may be reused after init. */
void onfs_recmark_free(struct onfs_recmark *rm);

/*
 * Consume bytes from data[0..len). Returns how many bytes were consumed
 * (> 0 whenever len > 0), and sets *rec and *rec_len when a record completed
 * within them: the caller then owns *rec (malloc'd; free() it) and calls
 * again with the rest. *rec is NULL when no record completed; a record of
 * length 0 is returned as a non-NULL buffer of length 0.
 * Errors: -EMSGSIZE when the record would exceed max_record, -ENOMEM. After
 * an error the stream is unusable (the caller closes the connection).
 */
ssize_t onfs_recmark_feed(struct onfs_recmark *rm, const uint8_t *data, size_t len,
			  uint8_t **rec, size_t *rec_len);

/*
 * Reading in place: room for the next bytes of the current fragment right
 * in the record being assembled, so a large record (a WRITE's payload) is
 * not copied from a socket buffer. Returns how many bytes may be written
 * at *p (never past the fragment's end), or 0 when not inside a
 * fragment's body with enough left to be worth it (or out of memory): then
 * read into a buffer of your own and use onfs_recmark_feed. After writing
 * n bytes there, onfs_recmark_filled accounts for them and hands back the
 * record if they completed it (as onfs_recmark_feed; 0 or -ENOMEM).
 */
size_t onfs_recmark_space(struct onfs_recmark *rm, uint8_t **p);
int onfs_recmark_filled(struct onfs_recmark *rm, size_t n, uint8_t **rec, size_t *rec_len);

/* Write the 4-byte mark for one fragment of len bytes (len < 2^31). */
void onfs_recmark_encode(uint8_t out[4], uint32_t len, bool last);

#endif
