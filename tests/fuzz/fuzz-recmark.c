/*
 * fuzz-recmark.c - libFuzzer target for the record-marking parser
 * (server/recmark.c). Also linked with replay.c into an ordinary test that
 * replays the corpus.
 *
 * Input: byte 0 picks the cap (small, so caps are hit), byte 1 the chunk
 * pattern, the rest is the stream. The same stream is parsed twice: whole,
 * and cut into chunks; both parses must yield the same records and the
 * same error, and no record may exceed the cap.
 *
 * Single-threaded; no I/O.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ovlnfsd/recmark.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct result {
	uint8_t hash[32]; /* rolling digest of every record, in order */
	size_t nrec;
	size_t total;
	ssize_t err;
};

static void digest(struct result *r, const uint8_t *rec, size_t len)
{
	size_t i;

	r->hash[r->nrec % 32] ^= (uint8_t)len;
	for (i = 0; i < len; i++)
		r->hash[(i + r->nrec) % 32] = (uint8_t)(r->hash[(i + r->nrec) % 32] * 31 + rec[i]);
	r->nrec++;
	r->total += len;
}

static void parse(const uint8_t *p, size_t len, size_t cap, unsigned pattern, struct result *r)
{
	struct onfs_recmark rm;
	size_t pos = 0, step = 0;

	memset(r, 0, sizeof(*r));
	onfs_recmark_init(&rm, cap);
	while (pos < len) {
		size_t chunk = len - pos;

		if (pattern) {
			/* chunk sizes 1..16 cycling through the pattern's bits */
			chunk = 1 + ((pattern >> (step % 5)) & 15);
			step++;
			if (chunk > len - pos)
				chunk = len - pos;
		}
		while (chunk > 0) {
			uint8_t *rec;
			size_t rec_len;
			ssize_t n = onfs_recmark_feed(&rm, p + pos, chunk, &rec, &rec_len);

			if (n < 0) {
				r->err = n;
				goto out;
			}
			if (n == 0 || (size_t)n > chunk)
				abort(); /* must always make progress within the chunk */
			pos += (size_t)n;
			chunk -= (size_t)n;
			if (rec) {
				if (rec_len > cap)
					abort();
				digest(r, rec, rec_len);
				free(rec);
			}
		}
	}
out:
	onfs_recmark_free(&rm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct result whole, cut;
	size_t cap;

	if (size < 2)
		return 0;
	cap = (size_t)data[0] * 4; /* 0..1020: 0 refuses every non-empty record */
	parse(data + 2, size - 2, cap, 0, &whole);
	parse(data + 2, size - 2, cap, (unsigned)data[1] | 1u << 8, &cut);
	/* an error ends the stream: records before it must agree */
	if (whole.err != cut.err || whole.nrec != cut.nrec || whole.total != cut.total ||
	    memcmp(whole.hash, cut.hash, sizeof(whole.hash)) != 0)
		abort();
	return 0;
}
