/*
 * test-recmark.c - the RPC record-marking parser (server/recmark.c): a
 * stream of records fed whole, split at every byte boundary, one byte at a
 * time; multi-fragment records; zero-length fragments and records; the
 * record size cap; reading a large record in place; the mark encoder.
 *
 * Single-threaded test process; touches no files and no network.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ovlnfsd/recmark.h"
#include "unit.h"


/* A stream under construction and the records it should yield. */
struct stream {
	uint8_t buf[8192];
	size_t len;
	struct {
		size_t off, len; /* payload bytes, in want[] */
	} rec[16];
	size_t nrec;
	uint8_t want[8192];
	size_t wlen;
};

static void put_fragment(struct stream *s, const uint8_t *data, size_t len, int last)
{
	onfs_recmark_encode(s->buf + s->len, (uint32_t)len, last);
	s->len += 4;
	memcpy(s->buf + s->len, data, len);
	s->len += len;
}

/* Add one record of len bytes, cut into fragments of the given sizes
 * (sizes may be 0; the rest goes into the last fragment). */
static void add_record(struct stream *s, size_t len, const size_t *frags, size_t nfrags,
		       unsigned seed)
{
	uint8_t data[2048];
	size_t i, off = 0;

	for (i = 0; i < len; i++)
		data[i] = (uint8_t)(seed * 31 + i * 7);
	for (i = 0; i < nfrags; i++) {
		put_fragment(s, data + off, frags[i], 0);
		off += frags[i];
	}
	put_fragment(s, data + off, len - off, 1);
	s->rec[s->nrec].off = s->wlen;
	s->rec[s->nrec].len = len;
	s->nrec++;
	memcpy(s->want + s->wlen, data, len);
	s->wlen += len;
}

/* Feed the stream in chunks of the sizes produced by next_chunk; check
 * that exactly the expected records come out, in order. */
static void feed_and_check(const struct stream *s, size_t max, size_t split_a, size_t split_b,
			   size_t chunk)
{
	struct onfs_recmark rm;
	size_t pos = 0, got = 0;

	onfs_recmark_init(&rm, max);
	while (pos < s->len) {
		size_t end = s->len;
		const uint8_t *p;
		size_t left;

		if (chunk)
			end = pos + chunk < s->len ? pos + chunk : s->len;
		if (split_a > pos && split_a < end)
			end = split_a;
		else if (split_b > pos && split_b < end)
			end = split_b;
		p = s->buf + pos;
		left = end - pos;
		while (left > 0) {
			uint8_t *rec;
			size_t rec_len;
			ssize_t n = onfs_recmark_feed(&rm, p, left, &rec, &rec_len);

			CHECK(n > 0);
			if (n <= 0)
				goto out;
			p += n;
			left -= (size_t)n;
			if (rec) {
				CHECK(got < s->nrec);
				if (got < s->nrec) {
					CHECK_EQ(rec_len, s->rec[got].len);
					if (rec_len == s->rec[got].len)
						CHECK(memcmp(rec, s->want + s->rec[got].off,
							     rec_len) == 0);
				}
				got++;
				free(rec);
			}
		}
		pos = end;
	}
	CHECK_EQ(got, s->nrec);
	/* nothing half-assembled is left at a record boundary */
	CHECK_EQ(rm.len, 0);
	CHECK_EQ(rm.hdr_have, 0);
out:
	onfs_recmark_free(&rm);
}

static void build_mixed(struct stream *s)
{
	static const size_t f1[] = { 10, 0, 5 };
	static const size_t f2[] = { 0 };
	static const size_t f3[] = { 1, 1, 1, 1 };

	memset(s, 0, sizeof(*s));
	add_record(s, 40, NULL, 0, 1);     /* single fragment */
	add_record(s, 100, f1, 3, 2);      /* three fragments, one empty */
	add_record(s, 0, NULL, 0, 3);      /* empty record */
	add_record(s, 7, f2, 1, 4);        /* empty first fragment */
	add_record(s, 4, f3, 4, 5);        /* all in non-last fragments, empty last */
	add_record(s, 1500, NULL, 0, 6);   /* bigger than the first allocation */
}

/* recmark_split_every_byte: two cuts at every pair of positions would be
 * quadratic in a 1.7 KB stream; one cut at every position plus two cuts
 * around every position near the small records covers the boundaries. */
static void recmark_split_every_byte(void)
{
	struct stream s;
	size_t i, j;

	build_mixed(&s);
	feed_and_check(&s, 4096, 0, 0, 0); /* whole */
	for (i = 1; i < s.len; i++)
		feed_and_check(&s, 4096, i, 0, 0);
	for (i = 1; i < 200; i++)
		for (j = i + 1; j < 220; j++)
			feed_and_check(&s, 4096, i, j, 0);
}

static void recmark_byte_at_a_time(void)
{
	struct stream s;
	size_t c;

	build_mixed(&s);
	for (c = 1; c <= 9; c++)
		feed_and_check(&s, 4096, 0, 0, c);
}

/* Several records in one chunk come out one per call. */
static void recmark_joined_records(void)
{
	struct stream s;
	struct onfs_recmark rm;
	uint8_t *rec;
	size_t rec_len, off = 0, n = 0;

	memset(&s, 0, sizeof(s));
	add_record(&s, 8, NULL, 0, 1);
	add_record(&s, 12, NULL, 0, 2);
	add_record(&s, 0, NULL, 0, 3);
	onfs_recmark_init(&rm, 64);
	while (off < s.len) {
		ssize_t r = onfs_recmark_feed(&rm, s.buf + off, s.len - off, &rec, &rec_len);

		CHECK(r > 0);
		if (r <= 0)
			break;
		off += (size_t)r;
		CHECK(rec != NULL);
		if (rec) {
			CHECK_EQ(rec_len, s.rec[n].len);
			free(rec);
		}
		n++;
	}
	CHECK_EQ(n, 3);
	onfs_recmark_free(&rm);
}

static ssize_t feed_all(struct onfs_recmark *rm, const uint8_t *p, size_t len, int *nrec)
{
	while (len > 0) {
		uint8_t *rec;
		size_t rec_len;
		ssize_t n = onfs_recmark_feed(rm, p, len, &rec, &rec_len);

		if (n < 0)
			return n;
		if (rec) {
			(*nrec)++;
			free(rec);
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void recmark_cap(void)
{
	struct stream s;
	struct onfs_recmark rm;
	static const size_t f[] = { 60 };
	int nrec = 0;

	/* exactly at the cap: fine */
	memset(&s, 0, sizeof(s));
	add_record(&s, 100, f, 1, 1);
	onfs_recmark_init(&rm, 100);
	CHECK_EQ(feed_all(&rm, s.buf, s.len, &nrec), 0);
	CHECK_EQ(nrec, 1);
	onfs_recmark_free(&rm);

	/* one fragment over the cap: refused at its header, before the data */
	memset(&s, 0, sizeof(s));
	add_record(&s, 101, NULL, 0, 1);
	onfs_recmark_init(&rm, 100);
	nrec = 0;
	CHECK_EQ(feed_all(&rm, s.buf, 4, &nrec), -EMSGSIZE);
	CHECK(rm.buf == NULL);
	onfs_recmark_free(&rm);

	/* fragments each under the cap, their sum over it */
	memset(&s, 0, sizeof(s));
	add_record(&s, 101, f, 1, 1);
	onfs_recmark_init(&rm, 100);
	nrec = 0;
	CHECK_EQ(feed_all(&rm, s.buf, s.len, &nrec), -EMSGSIZE);
	CHECK_EQ(nrec, 0);
	onfs_recmark_free(&rm);

	/* a header claiming 2 GiB - 1 */
	{
		uint8_t mark[4] = { 0xff, 0xff, 0xff, 0xff };

		onfs_recmark_init(&rm, 1024 * 1024 + 4096);
		nrec = 0;
		CHECK_EQ(feed_all(&rm, mark, 4, &nrec), -EMSGSIZE);
		onfs_recmark_free(&rm);
	}
}

/* A large declared fragment does not allocate before its bytes arrive. */
static void recmark_lazy_allocation(void)
{
	struct onfs_recmark rm;
	uint8_t mark[4], *rec;
	size_t rec_len;
	uint8_t byte = 0x42;

	onfs_recmark_init(&rm, 1 << 20);
	onfs_recmark_encode(mark, 1 << 20, 1);
	CHECK_EQ(onfs_recmark_feed(&rm, mark, 4, &rec, &rec_len), 4);
	CHECK_EQ(onfs_recmark_feed(&rm, &byte, 1, &rec, &rec_len), 1);
	CHECK(rec == NULL);
	CHECK(rm.cap < 4096);
	onfs_recmark_free(&rm);
}

/*
 * Reading in place: a 200 KiB record, its head fed through a buffer, the
 * rest written straight into the space onfs_recmark_space offers. The
 * space never runs past the fragment, the buffer grows to at most 16 times
 * what arrived, and the record comes out intact, followed by a small one
 * fed the usual way.
 */
static void recmark_in_place(void)
{
	enum { LEN = 200 * 1024 };
	struct onfs_recmark rm;
	uint8_t mark[4], *want = malloc(LEN), *rec = NULL, *p;
	size_t rec_len = 0, have, room;
	uint8_t small[5] = { 0x80, 0, 0, 1, 0x77 };

	if (!want) {
		failures++;
		return;
	}
	for (size_t i = 0; i < LEN; i++)
		want[i] = (uint8_t)(i * 7 + 3);
	onfs_recmark_init(&rm, 1 << 20);
	onfs_recmark_encode(mark, LEN, 1);
	CHECK_EQ(onfs_recmark_feed(&rm, mark, 4, &rec, &rec_len), 4);
	/* too little of the record so far: no space offered */
	CHECK_EQ(onfs_recmark_feed(&rm, want, 100, &rec, &rec_len), 100);
	CHECK_EQ(onfs_recmark_space(&rm, &p), 0);
	CHECK_EQ(onfs_recmark_feed(&rm, want + 100, 20000, &rec, &rec_len), 20000);
	have = 20100;
	while (have < LEN && !rec) {
		room = onfs_recmark_space(&rm, &p);
		CHECK(room > 0);
		if (room == 0)
			break;
		CHECK(room <= LEN - have);
		CHECK(rm.cap <= 16 * have || rm.cap <= 2 * LEN);
		if (room > 30000)
			room = 30000; /* a short read */
		memcpy(p, want + have, room);
		have += room;
		CHECK_EQ(onfs_recmark_filled(&rm, room, &rec, &rec_len), 0);
		CHECK(have == LEN || rec == NULL);
	}
	CHECK(rec != NULL);
	CHECK_EQ(rec_len, LEN);
	if (rec && rec_len == LEN)
		CHECK(memcmp(rec, want, LEN) == 0);
	free(rec);
	/* between records: no space, the next record parses as usual */
	CHECK_EQ(onfs_recmark_space(&rm, &p), 0);
	CHECK_EQ(onfs_recmark_feed(&rm, small, 5, &rec, &rec_len), 5);
	CHECK(rec != NULL && rec_len == 1 && rec[0] == 0x77);
	free(rec);
	onfs_recmark_free(&rm);
	free(want);
}

static void recmark_encode_bytes(void)
{
	uint8_t m[4];

	onfs_recmark_encode(m, 0x1234, 1);
	CHECK(m[0] == 0x80 && m[1] == 0x00 && m[2] == 0x12 && m[3] == 0x34);
	onfs_recmark_encode(m, 0x7fffffff, 0);
	CHECK(m[0] == 0x7f && m[1] == 0xff && m[2] == 0xff && m[3] == 0xff);
	onfs_recmark_encode(m, 0, 1);
	CHECK(m[0] == 0x80 && m[1] == 0 && m[2] == 0 && m[3] == 0);
}

int main(void)
{
	recmark_split_every_byte();
	recmark_byte_at_a_time();
	recmark_joined_records();
	recmark_cap();
	recmark_lazy_allocation();
	recmark_in_place();
	recmark_encode_bytes();
	return unit_finish("recmark");
}
