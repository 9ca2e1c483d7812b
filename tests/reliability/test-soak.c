/*
 * test-soak.c - a soak of mixed reads and writes from 16 clients with
 * periodic SIGHUP reloads: each client owns a 1 MiB file (a lower file,
 * so the first write copies it up), writes random ranges FILE_SYNC and
 * reads random ranges back, checking every byte against its own copy of
 * what the file must hold; GETATTR checks the size. All 16 clients have a
 * call in flight at once. Asserted: zero protocol errors, zero data
 * mismatches, every reload applied, and the server's RSS (sampled from
 * /proc every second, printed) grows after the warm-up by less than a
 * generous bound. 2 minutes; 30 with ONFS_LONG=1. The generator is seeded
 * (ONFS_SOAK_SEED, default the clock) and the seed printed;
 * ONFS_SOAK_SECONDS overrides the duration.
 *
 * Runs as a test process; starts and stops its own server by PID. Raw RPC
 * records (rawrpc.h), no libnfs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "rawrpc.h"
#include "testlib.h"

#define PROG_NFS 100003
#define P_GETATTR 1
#define P_LOOKUP 3
#define P_READ 6
#define P_WRITE 7

#define NCLIENTS 16
#define FSIZE (1u << 20)
#define MAXIO (64u * 1024)
#define RSS_GROWTH_BOUND_KIB (64 * 1024)

struct client {
	int fd;
	uint8_t fh[64];
	uint32_t fhlen;
	uint8_t *model;        /* what the file must hold */
	struct tl_buf call;
	int op;                /* 0 write, 1 read, 2 getattr */
	uint64_t off;
	uint32_t len;
	uint32_t xid;
};

static uint32_t next_xid = 0xa1000;
static char conf[PATH_MAX + 16];

static uint8_t lower_byte(int c, size_t i)
{
	return (uint8_t)(i * 7 + (size_t)c * 13 + (i >> 9));
}

static void write_conf(const struct tl_tree *t, int gen)
{
	FILE *f = fopen(conf, "w");

	ASSERT(f);
	fprintf(f, "# generation %d\n[server]\nthreads = 4\n\n[export rw]\npath = /rw\n"
		   "lowerdir = %s\nupperdir = %s\nworkdir = %s\nclients = 127.0.0.0/8\n",
		gen, t->lower[0], t->upper, t->work);
	ASSERT(fclose(f) == 0);
}

static int log_count(const struct tl_server *s, const char *needle)
{
	char *txt = NULL;
	int n = 0;

	if (tl_read_file(s->log, &txt) > 0)
		for (char *p = txt; (p = strstr(p, needle)) != NULL; p += strlen(needle))
			n++;
	free(txt);
	return n;
}

static long rss_kib(pid_t pid)
{
	char path[64], *txt = NULL, *p;
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (tl_read_file(path, &txt) < 0)
		return -1;
	p = strstr(txt, "VmRSS:");
	if (p)
		kib = strtol(p + 6, NULL, 10);
	free(txt);
	return kib;
}

static void lookup(int fd, const uint8_t *dir, uint32_t dirlen, const char *name, uint8_t *fh,
		   uint32_t *fhlen)
{
	struct tl_buf b = { 0 };
	struct tl_reply r;
	struct tl_rd rd;
	uint8_t *rec;

	tl_put_call(&b, next_xid++, 2, PROG_NFS, 3, P_LOOKUP, TL_AUTH_SYS, 0, 0, 0);
	tl_put_opaque(&b, dir, dirlen);
	tl_put_opaque(&b, name, (uint32_t)strlen(name));
	tl_tcp_call(fd, &b, &rec, &r);
	rd = (struct tl_rd){ r.body, r.body_len, 0, false };
	ASSERTF(tl_get_u32(&rd) == 0, "LOOKUP %s failed", name);
	*fhlen = tl_get_opaque(&rd, fh, 64);
	ASSERT(!rd.bad && *fhlen > 0);
	free(rec);
	tl_buf_free(&b);
}

/* fattr3: type mode nlink uid gid, then size */
static uint64_t fattr_size(struct tl_rd *rd)
{
	for (int i = 0; i < 5; i++)
		tl_get_u32(rd);
	return tl_get_u64(rd);
}

static void skip_fattr_rest(struct tl_rd *rd)
{
	/* used, rdev(2), fsid, fileid, atime(2), mtime(2), ctime(2) */
	tl_get_u64(rd);
	tl_get_u32(rd);
	tl_get_u32(rd);
	tl_get_u64(rd);
	tl_get_u64(rd);
	for (int i = 0; i < 6; i++)
		tl_get_u32(rd);
}

static void make_call(struct client *c, uint8_t *scratch)
{
	int r = rand() % 10;

	tl_buf_free(&c->call);
	c->xid = next_xid++;
	c->off = (uint64_t)(rand() % FSIZE);
	c->len = 1 + (uint32_t)(rand() % MAXIO);
	if (c->off + c->len > FSIZE)
		c->len = (uint32_t)(FSIZE - c->off);
	if (r < 4) {
		c->op = 0;
		for (uint32_t i = 0; i < c->len; i++)
			scratch[i] = (uint8_t)rand();
		tl_put_call(&c->call, c->xid, 2, PROG_NFS, 3, P_WRITE, TL_AUTH_SYS, 0, 0, 0);
		tl_put_opaque(&c->call, c->fh, c->fhlen);
		tl_put_u64(&c->call, c->off);
		tl_put_u32(&c->call, c->len);
		tl_put_u32(&c->call, 2); /* FILE_SYNC */
		tl_put_opaque(&c->call, scratch, c->len);
		/* the model takes the bytes once the server says they are stored */
		memcpy(c->model + FSIZE, scratch, c->len); /* pending area */
	} else if (r < 9) {
		c->op = 1;
		tl_put_call(&c->call, c->xid, 2, PROG_NFS, 3, P_READ, TL_AUTH_SYS, 0, 0, 0);
		tl_put_opaque(&c->call, c->fh, c->fhlen);
		tl_put_u64(&c->call, c->off);
		tl_put_u32(&c->call, c->len);
	} else {
		c->op = 2;
		tl_put_call(&c->call, c->xid, 2, PROG_NFS, 3, P_GETATTR, TL_AUTH_SYS, 0, 0, 0);
		tl_put_opaque(&c->call, c->fh, c->fhlen);
	}
}

struct tally {
	long calls, writes, reads, getattrs, proto_errors, mismatches;
	uint64_t bytes_written, bytes_verified;
	char first[512];
};

static void note(struct tally *t, long *counter, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void note(struct tally *t, long *counter, const char *fmt, ...)
{
	va_list ap;

	(*counter)++;
	if (t->first[0])
		return;
	va_start(ap, fmt);
	vsnprintf(t->first, sizeof(t->first), fmt, ap);
	va_end(ap);
}

static void check_reply(int ci, struct client *c, const uint8_t *rec, size_t n, struct tally *t)
{
	struct tl_reply r;
	struct tl_rd rd;
	uint32_t st;

	t->calls++;
	if (tl_reply_parse(rec, n, &r) < 0 || r.xid != c->xid || !r.accepted ||
	    r.accept_stat != TL_SUCCESS) {
		note(t, &t->proto_errors, "client %d: bad RPC reply to xid %u", ci, c->xid);
		return;
	}
	rd = (struct tl_rd){ r.body, r.body_len, 0, false };
	st = tl_get_u32(&rd);
	if (st != 0) {
		note(t, &t->proto_errors, "client %d: op %d status %u", ci, c->op, st);
		return;
	}
	if (c->op == 0) {
		uint32_t count, committed;

		/* wcc_data: pre_op_attr, post_op_attr */
		if (tl_get_u32(&rd)) {
			tl_get_u64(&rd);
			for (int i = 0; i < 4; i++)
				tl_get_u32(&rd);
		}
		if (tl_get_u32(&rd)) {
			fattr_size(&rd);
			skip_fattr_rest(&rd);
		}
		count = tl_get_u32(&rd);
		committed = tl_get_u32(&rd);
		if (rd.bad || count != c->len || committed != 2) {
			note(t, &t->proto_errors, "client %d: WRITE count %u of %u, committed %u", ci,
			     count, c->len, committed);
			return;
		}
		memcpy(c->model + c->off, c->model + FSIZE, c->len);
		t->writes++;
		t->bytes_written += c->len;
	} else if (c->op == 1) {
		uint32_t count, eof, dlen;
		const uint8_t *data;

		if (tl_get_u32(&rd)) {
			fattr_size(&rd);
			skip_fattr_rest(&rd);
		}
		count = tl_get_u32(&rd);
		eof = tl_get_u32(&rd);
		dlen = tl_get_u32(&rd);
		data = rd.p + rd.off;
		if (rd.bad || dlen != count || rd.off + dlen > rd.len || count != c->len) {
			note(t, &t->proto_errors, "client %d: READ %u bytes of %u at %llu", ci, count,
			     c->len, (unsigned long long)c->off);
			return;
		}
		(void)eof;
		if (memcmp(data, c->model + c->off, count) != 0) {
			note(t, &t->mismatches, "client %d: READ at %llu (%u bytes) differs from "
						"what was written", ci, (unsigned long long)c->off,
			     count);
			return;
		}
		t->reads++;
		t->bytes_verified += count;
	} else {
		uint64_t size = fattr_size(&rd);

		if (rd.bad || size != FSIZE) {
			note(t, &t->mismatches, "client %d: GETATTR size %llu, want %u", ci,
			     (unsigned long long)size, FSIZE);
			return;
		}
		t->getattrs++;
	}
}

TEST_IMPL(soak_sixteen_clients_with_reloads)
{
	const char *lv = getenv("ONFS_LONG"), *sv = getenv("ONFS_SOAK_SEED");
	bool lng = lv && *lv && strcmp(lv, "0") != 0;
	const char *dv = getenv("ONFS_SOAK_SECONDS");
	double secs = dv ? atof(dv) : lng ? 1800 : 120, warm = secs / 4, reload_every = lng ? 30 : 10;
	unsigned seed = sv ? (unsigned)strtoul(sv, NULL, 0) : (unsigned)time(NULL);
	struct tl_tree t;
	struct tl_server s;
	struct client cl[NCLIENTS];
	struct tally ty = { 0 };
	uint8_t root[64], *scratch = malloc(MAXIO), *buf = malloc(FSIZE);
	uint32_t rootlen;
	double t0, next_reload, next_sample;
	long rss_warm = -1, rss_max_after = 0, rss_first = -1;
	int reloads = 0, gen = 0, samples = 0;
	const char *extra[] = { "-c", conf, NULL };

	ASSERT(scratch && buf);
	printf("# seed %u (ONFS_SOAK_SEED=%u repeats it), %.0f s\n", seed, seed, secs);
	fflush(stdout);
	srand(seed);
	tl_tree_new(&t, 1);
	for (int c = 0; c < NCLIENTS; c++) {
		char name[16];

		for (size_t i = 0; i < FSIZE; i++)
			buf[i] = lower_byte(c, i);
		snprintf(name, sizeof(name), "f%02d", c);
		tl_write_buf(t.lower[0], name, buf, FSIZE, 0666);
	}
	snprintf(conf, sizeof(conf), "%s/soak.conf", t.root);
	write_conf(&t, gen);
	tl_server_start(&s, t.root, t.state, NULL, NULL, extra);

	for (int c = 0; c < NCLIENTS; c++) {
		char name[16];

		memset(&cl[c], 0, sizeof(cl[c]));
		cl[c].fd = tl_tcp_connect(s.port);
		ASSERTF(cl[c].fd >= 0, "client %d: connect", c);
		rootlen = tl_raw_mnt(cl[c].fd, next_xid++, "/rw", root, sizeof(root));
		snprintf(name, sizeof(name), "f%02d", c);
		lookup(cl[c].fd, root, rootlen, name, cl[c].fh, &cl[c].fhlen);
		cl[c].model = malloc(FSIZE + MAXIO);
		ASSERT(cl[c].model);
		for (size_t i = 0; i < FSIZE; i++)
			cl[c].model[i] = lower_byte(c, i);
	}

	t0 = tl_now();
	next_reload = t0 + reload_every;
	next_sample = t0;
	while (tl_now() - t0 < secs && ty.proto_errors == 0 && ty.mismatches == 0) {
		for (int c = 0; c < NCLIENTS; c++) {
			make_call(&cl[c], scratch);
			ASSERTF(tl_tcp_send_record(cl[c].fd, cl[c].call.p, cl[c].call.len) == 0,
				"client %d: send", c);
		}
		for (int c = 0; c < NCLIENTS; c++) {
			uint8_t *rec;
			ssize_t n = tl_tcp_recv_record(cl[c].fd, &rec, 60000);

			ASSERTF(n > 0, "client %d: no reply (%s)", c,
				n < 0 ? strerror((int)-n) : "connection closed");
			check_reply(c, &cl[c], rec, (size_t)n, &ty);
			free(rec);
		}
		if (tl_now() >= next_sample) {
			long r = rss_kib(s.pid);

			samples++;
			if (rss_first < 0)
				rss_first = r;
			if (tl_now() - t0 >= warm) {
				if (rss_warm < 0)
					rss_warm = r;
				if (r > rss_max_after)
					rss_max_after = r;
			}
			next_sample += 1.0;
		}
		if (tl_now() >= next_reload) {
			int before = log_count(&s, "export(s) updated");
			double dl = tl_now() + 30;

			write_conf(&t, ++gen);
			ASSERT(kill(s.pid, SIGHUP) == 0);
			while (log_count(&s, "export(s) updated") <= before) {
				ASSERTF(log_count(&s, "keeping the current") == 0,
					"a reload was refused");
				ASSERTF(tl_now() < dl, "reload %d: no outcome in the log", gen);
				usleep(10000);
			}
			reloads++;
			next_reload += reload_every;
		}
	}
	printf("# %.0f s: %ld calls (%ld FILE_SYNC writes, %llu bytes; %ld reads, %llu bytes "
	       "verified; %ld getattrs), %d reloads, %ld protocol errors, %ld mismatches\n",
	       tl_now() - t0, ty.calls, ty.writes, (unsigned long long)ty.bytes_written, ty.reads,
	       (unsigned long long)ty.bytes_verified, ty.getattrs, reloads, ty.proto_errors,
	       ty.mismatches);
	printf("# server RSS: first %ld KiB, after warm-up (%.0f s) %ld KiB, max after %ld KiB "
	       "(%d samples)\n", rss_first, warm, rss_warm, rss_max_after, samples);
	fflush(stdout);
	ASSERTF(ty.proto_errors == 0 && ty.mismatches == 0, "%s", ty.first);
	ASSERT(reloads >= 1);
	ASSERT(rss_warm > 0);
	{
		long bound = RSS_GROWTH_BOUND_KIB;
		const char *m = getenv("ONFS_TEST_TIMEOUT_MULT");

		if (m && atoi(m) > 1) { /* sanitizers: freed memory waits in a quarantine */
			bound += 256 * 1024;
			printf("# sanitizer build: RSS bound raised by the 256 MiB quarantine\n");
		}
		ASSERTF(rss_max_after - rss_warm < bound,
			"server RSS grew by %ld KiB after the warm-up (bound %ld)",
			rss_max_after - rss_warm, bound);
	}

	/* every client's file, read whole, is exactly its model */
	for (int c = 0; c < NCLIENTS; c++) {
		char rel[16], path[PATH_MAX];
		char *got = NULL;
		ssize_t n;

		snprintf(rel, sizeof(rel), "f%02d", c);
		tl_join(path, sizeof(path), t.upper, rel);
		n = tl_read_file(path, &got);
		if (n == -ENOENT) /* never written: not copied up */
			tl_join(path, sizeof(path), t.lower[0], rel), n = tl_read_file(path, &got);
		ASSERTF(n == FSIZE, "upper/%s: %zd bytes", rel, n);
		ASSERTF(memcmp(got, cl[c].model, FSIZE) == 0, "upper/%s differs from the model",
			rel);
		free(got);
		close(cl[c].fd);
		tl_buf_free(&cl[c].call);
		free(cl[c].model);
	}
	tl_server_stop(&s);
	tl_tree_free(&t);
	free(scratch);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct tl_case cases[] = {
		TEST_ENTRY_TIMEOUT(soak_sixteen_clients_with_reloads, 2400),
	};

	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
