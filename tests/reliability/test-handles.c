/*
 * test-handles.c - a million distinct handles: a READDIRPLUS walk over a
 * lower layer of N empty files (1,000 per directory) makes a real ovlnfsd
 * hand out N + N/1000 handles, far more than its node cache holds; the
 * latency of each READDIRPLUS is recorded and printed by decile of the walk
 * (flat, or growing with what the server has seen?), and the server's RSS
 * after each decile, which must stay within a bound (below). Then every
 * file handle is decoded again (GETATTR, 64 in flight on one connection):
 * each must answer OK with the fileid and type READDIRPLUS gave - never
 * STALE for a live file, never another object - and every tenth once more
 * after the server is restarted (the handles are persistent).
 *
 * N is 100,000 by default and 1,000,000 with ONFS_LONG=1. The lower layer
 * is built once, directly on disk, in /var/tmp/onfs-handles-N (or under
 * $ONFS_HANDLES_CACHE) and kept for the next run (a "complete" marker
 * says it was finished; a half-built one is never used).
 *
 * Speed is printed, never asserted. Starts and stops its server by PID.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rawrpc.h"
#include "testlib.h"

#define PROG_NFS 100003
#define P_GETATTR 1
#define P_READDIRPLUS 17
#define NFS3_OK 0
#define NFS3ERR_STALE 70
#define NF3REG 1
#define NF3DIR 2
#define PER_DIR 1000
#define FH_MAX 64
#define PIPELINE 64
/*
 * RSS growth the walk may cost: the node cache is bounded (8,192 x 4
 * entries), so the server's memory must not grow with N. 96 MiB is the
 * cache full with long paths plus the allocator's slack. Sanitizer builds
 * get 512 MiB more: AddressSanitizer keeps 256 MiB of freed memory in
 * quarantine, and its redzones and shadow grow with the churn of nodes
 * (about 325 MiB of growth at N = 100,000; flat at 19 MiB in the plain build).
 */
#define RSS_BOUND_KIB (96 * 1024)

struct handle {
	uint8_t fh[FH_MAX];
	uint8_t len;
	uint64_t fileid;
};

static uint32_t next_xid = 0x4a000000;

static bool long_mode(void)
{
	const char *v = getenv("ONFS_LONG");

	return v && *v && strcmp(v, "0") != 0;
}

static long rss_kib(pid_t pid, const char *field)
{
	char path[64], *txt = NULL, *p;
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (tl_read_file(path, &txt) < 0)
		return -1;
	p = strstr(txt, field);
	if (p)
		kib = strtol(p + strlen(field), NULL, 10);
	free(txt);
	return kib;
}

/* ---------- the lower layer, built once ---------- */

static void build_tree(const char *dir, unsigned n)
{
	char tmp[PATH_MAX], mark[PATH_MAX + 16], name[32];
	struct stat st;
	double t0 = tl_now();
	int dfd;

	snprintf(mark, sizeof(mark), "%s/complete", dir);
	if (stat(mark, &st) == 0) {
		printf("# lower layer of %u files: cached in %s\n", n, dir);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%.4000s.tmp-%d", dir, (int)getpid());
	tl_rmtree(tmp);
	ASSERTF(mkdir(tmp, 0755) == 0, "mkdir %s: %s", tmp, strerror(errno));
	snprintf(name, sizeof(name), "lower");
	dfd = open(tmp, O_RDONLY | O_DIRECTORY);
	ASSERT(dfd >= 0);
	ASSERT(mkdirat(dfd, "lower", 0755) == 0);
	{
		int lfd = openat(dfd, "lower", O_RDONLY | O_DIRECTORY);

		ASSERT(lfd >= 0);
		for (unsigned d = 0; d < n / PER_DIR; d++) {
			int sfd;

			snprintf(name, sizeof(name), "d%04u", d);
			ASSERT(mkdirat(lfd, name, 0755) == 0);
			sfd = openat(lfd, name, O_RDONLY | O_DIRECTORY);
			ASSERT(sfd >= 0);
			for (unsigned f = 0; f < PER_DIR; f++) {
				snprintf(name, sizeof(name), "f%04u", f);
				ASSERTF(mknodat(sfd, name, S_IFREG | 0644, 0) == 0, "creating %s: %s",
					name, strerror(errno));
			}
			close(sfd);
		}
		close(lfd);
	}
	ASSERT(mknodat(dfd, "complete", S_IFREG | 0644, 0) == 0);
	close(dfd);
	/* another run may have finished first: keep one, drop the other */
	if (rename(tmp, dir) < 0) {
		ASSERTF(errno == EEXIST || errno == ENOTEMPTY, "rename %s: %s", tmp, strerror(errno));
		tl_rmtree(tmp);
	}
	printf("# lower layer of %u files built in %s in %.1f s (kept for the next run)\n", n, dir,
	       tl_now() - t0);
}

/* ---------- RPC ---------- */

struct fattr {
	uint32_t type;
	uint64_t size, fileid;
};

static void get_fattr(struct tl_rd *rd, struct fattr *a)
{
	a->type = tl_get_u32(rd);
	for (int i = 0; i < 4; i++)
		tl_get_u32(rd); /* mode nlink uid gid */
	a->size = tl_get_u64(rd);
	tl_get_u64(rd); /* used */
	tl_get_u64(rd); /* rdev */
	tl_get_u64(rd); /* fsid */
	a->fileid = tl_get_u64(rd);
	for (int i = 0; i < 6; i++)
		tl_get_u32(rd); /* atime mtime ctime */
}

/*
 * Every entry of a directory through READDIRPLUS; each call's latency goes
 * to lat[*ncalls] with the handle count before it in at[]. Files are
 * appended to files[], directories to dirs[] (when dirs is not NULL).
 */
static void readdirplus_all(int fd, const uint8_t *dfh, uint32_t dlen, struct handle *files,
			    size_t *nfiles, size_t maxfiles, struct handle *dirs, size_t *ndirs,
			    size_t maxdirs, double *lat, size_t *at, size_t *ncalls, size_t maxcalls,
			    uint64_t *issued)
{
	uint64_t cookie = 0;
	uint8_t verf[8] = { 0 };
	bool eof = false;

	while (!eof) {
		struct tl_buf b = { 0 };
		struct tl_reply r;
		struct tl_rd rd;
		uint8_t *rec;
		double t0;
		bool more;

		tl_put_call(&b, next_xid++, 2, PROG_NFS, 3, P_READDIRPLUS, TL_AUTH_SYS, 0, 0, 0);
		tl_put_opaque(&b, dfh, dlen);
		tl_put_u64(&b, cookie);
		tl_put_bytes(&b, verf, 8);
		tl_put_u32(&b, 16384); /* dircount */
		tl_put_u32(&b, 65536); /* maxcount */
		t0 = tl_now();
		tl_tcp_call(fd, &b, &rec, &r);
		if (*ncalls < maxcalls) {
			lat[*ncalls] = tl_now() - t0;
			at[*ncalls] = (size_t)*issued;
			(*ncalls)++;
		}
		tl_buf_free(&b);
		ASSERT(r.accepted && r.accept_stat == TL_SUCCESS);
		rd = (struct tl_rd){ r.body, r.body_len, 0, false };
		{
			uint32_t st = tl_get_u32(&rd);

			ASSERTF(st == NFS3_OK, "READDIRPLUS: status %u after %llu handles", st,
				(unsigned long long)*issued);
		}
		if (tl_get_u32(&rd)) {
			struct fattr a;

			get_fattr(&rd, &a);
		}
		for (int i = 0; i < 8; i++)
			verf[i] = rd.off + i < rd.len ? rd.p[rd.off + i] : 0;
		rd.off += 8;
		while ((more = tl_get_u32(&rd) != 0) && !rd.bad) {
			char name[256];
			uint32_t nl;
			struct fattr a = { 0 };
			bool have_attr, have_fh;
			struct handle h = { 0 };

			h.fileid = tl_get_u64(&rd);
			nl = tl_get_opaque(&rd, name, sizeof(name) - 1);
			name[nl < sizeof(name) ? nl : sizeof(name) - 1] = '\0';
			cookie = tl_get_u64(&rd);
			have_attr = tl_get_u32(&rd) != 0;
			if (have_attr)
				get_fattr(&rd, &a);
			have_fh = tl_get_u32(&rd) != 0;
			if (have_fh) {
				uint32_t l = tl_get_opaque(&rd, h.fh, FH_MAX);

				ASSERTF(l > 0 && l <= FH_MAX, "handle of %s: %u bytes", name, l);
				h.len = (uint8_t)l;
			}
			if (!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, "complete"))
				continue;
			ASSERTF(have_attr && have_fh, "READDIRPLUS gave %s without %s", name,
				have_attr ? "a handle" : "attributes");
			ASSERTF(a.fileid == h.fileid, "%s: entry fileid %llu, attributes %llu", name,
				(unsigned long long)h.fileid, (unsigned long long)a.fileid);
			(*issued)++;
			if (a.type == NF3DIR && dirs) {
				ASSERT(*ndirs < maxdirs);
				dirs[(*ndirs)++] = h;
			} else {
				ASSERTF(a.type == NF3REG, "%s: type %u", name, a.type);
				ASSERTF(*nfiles < maxfiles, "more files than the %zu created", maxfiles);
				files[(*nfiles)++] = h;
			}
		}
		eof = tl_get_u32(&rd) != 0;
		ASSERTF(!rd.bad, "READDIRPLUS reply cut short");
		free(rec);
	}
}

/*
 * GETATTR of every stride-th file handle, PIPELINE in flight, matched by
 * xid: each must answer OK with its own fileid and type.
 */
static void decode_all(int fd, const struct handle *files, size_t nfiles, size_t stride,
		       const char *when, size_t *checked)
{
	for (size_t base = 0; base < nfiles; base += PIPELINE * stride) {
		size_t cnt = 0;
		uint32_t xid0 = next_xid;
		struct tl_buf wire = { 0 };
		bool seen[PIPELINE] = { false };
		size_t idxs[PIPELINE];

		for (size_t k = base; k < nfiles && cnt < PIPELINE; k += stride)
			idxs[cnt++] = k;
		next_xid += (uint32_t)cnt;
		for (size_t i = 0; i < cnt; i++) {
			struct tl_buf b = { 0 };

			tl_put_call(&b, xid0 + (uint32_t)i, 2, PROG_NFS, 3, P_GETATTR, TL_AUTH_SYS, 0, 0,
				    0);
			tl_put_opaque(&b, files[idxs[i]].fh, files[idxs[i]].len);
			tl_put_u32(&wire, 0x80000000u | (uint32_t)b.len);
			tl_put_bytes(&wire, b.p, b.len);
			tl_buf_free(&b);
		}
		ASSERT(send(fd, wire.p, wire.len, MSG_NOSIGNAL) == (ssize_t)wire.len);
		tl_buf_free(&wire);
		for (size_t i = 0; i < cnt; i++) {
			uint8_t *rec;
			ssize_t len = tl_tcp_recv_record(fd, &rec, 60000);
			struct tl_reply r;
			struct tl_rd rd;
			struct fattr a;
			size_t idx;
			uint32_t st;

			ASSERTF(len > 0, "GETATTR reply %zu (%s): %s", base + i, when,
				len < 0 ? strerror((int)-len) : "eof");
			ASSERT(tl_reply_parse(rec, (size_t)len, &r) == 0);
			ASSERT(r.accepted && r.accept_stat == TL_SUCCESS);
			idx = r.xid - xid0;
			ASSERTF(idx < cnt && !seen[idx], "GETATTR reply with xid %08x", r.xid);
			seen[idx] = true;
			rd = (struct tl_rd){ r.body, r.body_len, 0, false };
			st = tl_get_u32(&rd);
			ASSERTF(st == NFS3_OK, "%s: handle %zu (d%04zu/f%04zu) of a live file: status %u%s",
				when, idxs[idx], idxs[idx] / PER_DIR, idxs[idx] % PER_DIR, st,
				st == NFS3ERR_STALE ? " (STALE)" : "");
			get_fattr(&rd, &a);
			ASSERTF(!rd.bad && a.type == NF3REG && a.fileid == files[idxs[idx]].fileid,
				"%s: handle %zu decodes to another object (type %u, fileid %llu, want %llu)",
				when, idxs[idx], a.type, (unsigned long long)a.fileid,
				(unsigned long long)files[idxs[idx]].fileid);
			(*checked)++;
			free(rec);
		}
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

TEST_IMPL(handles_million_walk_and_decode)
{
	unsigned n = long_mode() ? 1000000u : 100000u, ndirs_want = n / PER_DIR;
	const char *cache = getenv("ONFS_HANDLES_CACHE");
	char layer[PATH_MAX], opts[8192];
	struct tl_tree t;
	struct tl_server s;
	struct handle *files = calloc(n, sizeof(*files)), *dirs = calloc(ndirs_want, sizeof(*dirs));
	size_t nfiles = 0, ndirs = 0, ncalls = 0, maxcalls = n / 10 + 10000;
	double *lat = calloc(maxcalls, sizeof(double)), t_walk, t_dec;
	size_t *at = calloc(maxcalls, sizeof(size_t));
	long rss_dec[10], rss0, rss_walk, rss_end, hwm;
	uint64_t issued = 0;
	size_t checked = 0, checked_restart = 0;
	uint8_t root[FH_MAX];
	uint32_t rootlen;
	int fd, decile = 0;
	bool sanitizer = getenv("ONFS_TEST_TIMEOUT_MULT") && atoi(getenv("ONFS_TEST_TIMEOUT_MULT")) > 1;

	ASSERT(files && dirs && lat && at);
	snprintf(layer, sizeof(layer), "%.4000s/onfs-handles-%u", cache && *cache ? cache : "/var/tmp", n);
	build_tree(layer, n);

	tl_tree_new(&t, 1);
	snprintf(t.lower[0], sizeof(t.lower[0]), "%.4000s/lower", layer);
	tl_tree_opts(&t, true, opts, sizeof(opts));
	tl_server_start(&s, t.root, t.state, opts, NULL, NULL);
	fd = tl_tcp_connect(s.port);
	ASSERT(fd >= 0);
	rootlen = tl_raw_mnt(fd, next_xid++, "/", root, sizeof(root));
	rss0 = rss_kib(s.pid, "VmRSS:");

	/* the walk: the root (the directories), then each directory */
	t_walk = tl_now();
	readdirplus_all(fd, root, rootlen, files, &nfiles, n, dirs, &ndirs, ndirs_want, lat, at,
			&ncalls, maxcalls, &issued);
	ASSERT_EQ(ndirs, ndirs_want);
	for (size_t d = 0; d < ndirs; d++) {
		readdirplus_all(fd, dirs[d].fh, dirs[d].len, files, &nfiles, n, NULL, NULL, 0, lat,
				at, &ncalls, maxcalls, &issued);
		while (decile < 10 && nfiles >= (size_t)n / 10 * (decile + 1))
			rss_dec[decile++] = rss_kib(s.pid, "VmRSS:");
	}
	t_walk = tl_now() - t_walk;
	ASSERT_EQ(nfiles, n);
	rss_walk = rss_kib(s.pid, "VmRSS:");
	printf("# walk: %llu distinct handles from %zu READDIRPLUS calls in %.1f s (%.0f/s)\n",
	       (unsigned long long)issued, ncalls, t_walk, issued / t_walk);
	/* per-call latency by decile of the handles issued so far */
	printf("# decile  calls   p50 ms   p90 ms   p99 ms   max ms   server RSS KiB\n");
	{
		double first_p50 = 0, last_p50 = 0;

		for (int q = 0; q < 10; q++) {
			size_t lo = (size_t)issued * q / 10, hi = (size_t)issued * (q + 1) / 10, k = 0;
			double *v = calloc(ncalls, sizeof(double));

			ASSERT(v != NULL);
			for (size_t i = 0; i < ncalls; i++)
				if (at[i] >= lo && at[i] < hi)
					v[k++] = lat[i];
			if (k == 0) {
				free(v);
				continue;
			}
			qsort(v, k, sizeof(double), cmp_double);
			printf("# %6d %6zu %8.2f %8.2f %8.2f %8.2f %10ld\n", q + 1, k, v[k / 2] * 1e3,
			       v[k * 9 / 10] * 1e3, v[k * 99 / 100] * 1e3, v[k - 1] * 1e3,
			       q < decile ? rss_dec[q] : -1L);
			if (q == 0)
				first_p50 = v[k / 2];
			last_p50 = v[k / 2];
			free(v);
		}
		printf("# last decile's median / first decile's: %.2f\n",
		       first_p50 > 0 ? last_p50 / first_p50 : 0);
	}

	/* every file handle again: GETATTR, 64 in flight, matched by xid */
	t_dec = tl_now();
	decode_all(fd, files, nfiles, 1, "after the walk", &checked);
	t_dec = tl_now() - t_dec;
	rss_end = rss_kib(s.pid, "VmRSS:");
	hwm = rss_kib(s.pid, "VmHWM:");
	printf("# decode: %zu handles answered GETATTR OK with their own fileid, 0 STALE, in %.1f s "
	       "(%.0f/s)\n",
	       checked, t_dec, checked / t_dec);
	printf("# server RSS: %ld KiB at start, %ld after the walk, %ld after the decode, peak %ld "
	       "(bound: start + %d MiB%s)\n",
	       rss0, rss_walk, rss_end, hwm, RSS_BOUND_KIB / 1024,
	       sanitizer ? " + 512 MiB for the sanitizer" : "");
	ASSERT_EQ(checked, nfiles);
	{
		long bound = RSS_BOUND_KIB + (sanitizer ? 512 * 1024 : 0);

		ASSERTF(hwm < rss0 + bound, "server peak RSS %ld KiB: more than %ld KiB above the %ld "
			"at start", hwm, bound, rss0);
	}
	/* the handles outlive the server: every tenth again after a restart */
	close(fd);
	tl_server_stop(&s);
	tl_server_start(&s, t.root, t.state, opts, NULL, NULL);
	fd = tl_tcp_connect(s.port);
	ASSERT(fd >= 0);
	t_dec = tl_now();
	decode_all(fd, files, nfiles, 10, "after a restart", &checked_restart);
	printf("# after a restart: %zu handles (every tenth) answered GETATTR OK with their own "
	       "fileid in %.1f s\n",
	       checked_restart, tl_now() - t_dec);
	close(fd);
	tl_server_stop(&s);
	free(files);
	free(dirs);
	free(lat);
	free(at);
	tl_tree_free(&t);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct tl_case cases[] = {
		TEST_ENTRY_TIMEOUT(handles_million_walk_and_decode, 7200),
	};

	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
