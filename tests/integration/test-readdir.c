/*
 * test-readdir.c - READDIR and READDIRPLUS of merged directories against a
 * real ovlnfsd: the union of layers (upper wins, whiteouts hidden, opaque
 * dirs stop the descent, files hide dirs), listed over many calls with
 * tiny count/maxcount values; cookies never 0 and never repeated; every
 * name exactly once; fileids equal GETATTR's; BAD_COOKIE for a foreign
 * verifier; a 100,000-entry merged directory.
 *
 * Runs as a test process; each case starts and stops its own server by
 * PID. Includes libnfs headers (never rpcgen's). Loops are bounded; no
 * timing is asserted (the 100k case only has a timeout).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fixture.h"
#include "nfsclient.h"
#include "testlib.h"

struct env {
	struct tl_tree t;
	struct tl_server s;
	struct tl_client c;
	struct tl_fh root;
};

static void env_start(struct env *e)
{
	char opts[8192];

	tl_tree_opts(&e->t, true, opts, sizeof(opts));
	tl_server_start(&e->s, e->t.root, e->t.state, opts, NULL, NULL);
	tl_client_mount(&e->c, e->s.port, "/", &e->root);
}

static void env_down(struct env *e)
{
	tl_client_close(&e->c);
	tl_server_stop(&e->s);
	tl_tree_free(&e->t);
}

/* A full listing: names (without "." and ".."), their fileids and handles. */
struct listing {
	char **names;
	uint64_t *fileids;
	struct tl_fh *fhs;     /* READDIRPLUS only (len 0 when absent) */
	fattr3 *attrs;         /* READDIRPLUS only */
	bool *has_attr;
	size_t n, cap;
	size_t calls;
	int ndot, ndotdot;
	size_t nmissing; /* READDIRPLUS entries without attributes or handle */
};

static void listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
	free(l->fileids);
	free(l->fhs);
	free(l->attrs);
	free(l->has_attr);
	memset(l, 0, sizeof(*l));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * List dir completely. plus selects READDIRPLUS (dircount = count,
 * maxcount given). Asserts: progress on every call (bounded by
 * max_entries), cookies never 0 and never repeated, "." and ".." at most
 * once, a name at most once (checked by the caller via listing_expect or
 * its own check).
 */
static void list_dir(struct tl_client *c, const struct tl_fh *dir, bool plus, uint32_t count,
		     uint32_t maxcount, size_t max_entries, bool keep_fh, struct listing *l)
{
	uint64_t cookie = 0;
	uint8_t verf[8] = { 0 };
	uint64_t *cookies = NULL;
	size_t ncookies = 0, cookcap = 0;
	bool eof = false;
	size_t max_calls = max_entries + 16;

	memset(l, 0, sizeof(*l));
	while (!eof) {
		struct tl_dirpage pg;
		int st;

		ASSERTF(++l->calls <= max_calls, "%s did not reach eof within %zu calls",
			plus ? "READDIRPLUS" : "READDIR", max_calls);
		st = plus ? tl_nfs_readdirplus(c, dir, cookie, verf, count, maxcount, &pg)
			  : tl_nfs_readdir(c, dir, cookie, verf, count, &pg);
		ASSERTF(st == NFS3_OK, "%s(cookie %llu, count %u/%u) call %zu: %s",
			plus ? "READDIRPLUS" : "READDIR", (unsigned long long)cookie, count,
			maxcount, l->calls, tl_nfsstat_name(st));
		ASSERTF(pg.n > 0 || pg.eof,
			"%s(cookie %llu, count %u/%u): no entry and no eof (no progress)",
			plus ? "READDIRPLUS" : "READDIR", (unsigned long long)cookie, count, maxcount);
		for (size_t i = 0; i < pg.n; i++) {
			struct tl_dirent *d = &pg.e[i];

			ASSERTF(d->cookie != 0, "entry '%s' has cookie 0", d->name);
			if (ncookies == cookcap) {
				cookcap = cookcap ? cookcap * 2 : 256;
				cookies = realloc(cookies, cookcap * sizeof(*cookies));
				ASSERT(cookies != NULL);
			}
			cookies[ncookies++] = d->cookie;
			if (strcmp(d->name, ".") == 0) {
				l->ndot++;
				continue;
			}
			if (strcmp(d->name, "..") == 0) {
				l->ndotdot++;
				continue;
			}
			if (l->n == l->cap) {
				l->cap = l->cap ? l->cap * 2 : 64;
				l->names = realloc(l->names, l->cap * sizeof(*l->names));
				l->fileids = realloc(l->fileids, l->cap * sizeof(*l->fileids));
				l->has_attr = realloc(l->has_attr, l->cap * sizeof(*l->has_attr));
				ASSERT(l->names && l->fileids && l->has_attr);
				if (keep_fh) {
					l->fhs = realloc(l->fhs, l->cap * sizeof(*l->fhs));
					l->attrs = realloc(l->attrs, l->cap * sizeof(*l->attrs));
					ASSERT(l->fhs && l->attrs);
				}
			}
			l->names[l->n] = d->name;
			d->name = NULL;
			l->fileids[l->n] = d->fileid;
			l->has_attr[l->n] = d->has_attr;
			if (plus && (!d->has_attr || !d->has_fh)) {
				if (l->nmissing++ < 5)
					printf("# READDIRPLUS entry '%s' (call %zu, entry %zu of "
					       "%zu): %s%s; LOOKUP of it now: %s\n",
					       l->names[l->n], l->calls, i, pg.n,
					       d->has_attr ? "" : "no attributes ",
					       d->has_fh ? "" : "no handle",
					       tl_nfsstat_name(tl_nfs_lookup(c, dir, l->names[l->n],
									     NULL, NULL)));
			}
			if (plus && d->has_attr) {
				ASSERTF(d->attr.fileid == d->fileid,
					"READDIRPLUS '%s': entry fileid %llu != attribute fileid %llu",
					l->names[l->n], (unsigned long long)d->fileid,
					(unsigned long long)d->attr.fileid);
			}
			if (keep_fh) {
				l->fhs[l->n] = d->fh;
				if (!d->has_fh)
					l->fhs[l->n].len = 0;
				l->attrs[l->n] = d->attr;
			}
			l->n++;
		}
		if (pg.n > 0) {
			cookie = pg.e[pg.n - 1].cookie;
			memcpy(verf, pg.verf, 8);
		}
		eof = pg.eof;
		for (size_t i = 0; i < pg.n; i++)
			free(pg.e[i].name);
		free(pg.e);
	}
	ASSERTF(l->nmissing == 0, "%zu READDIRPLUS entries came without attributes or handle",
		l->nmissing);
	ASSERTF(l->ndot <= 1 && l->ndotdot <= 1, "'.' listed %d times, '..' %d times", l->ndot,
		l->ndotdot);
	qsort(cookies, ncookies, sizeof(*cookies), cmp_u64);
	for (size_t i = 1; i < ncookies; i++)
		ASSERTF(cookies[i] != cookies[i - 1], "cookie %llu returned twice",
			(unsigned long long)cookies[i]);
	free(cookies);
}

/* Every expected name exactly once, nothing else. */
static void listing_expect(const struct listing *l, const char *const *want, const char *what)
{
	size_t nw = tl_strv_len(want);
	char **sorted = malloc((l->n + 1) * sizeof(char *));

	ASSERT(sorted != NULL);
	memcpy(sorted, l->names, l->n * sizeof(char *));
	qsort(sorted, l->n, sizeof(char *), cmp_str);
	for (size_t i = 1; i < l->n; i++)
		ASSERTF(strcmp(sorted[i], sorted[i - 1]) != 0, "%s: '%s' listed twice", what,
			sorted[i]);
	for (size_t i = 0; i < nw; i++) {
		bool found = false;
		for (size_t j = 0; j < l->n && !found; j++)
			found = strcmp(l->names[j], want[i]) == 0;
		ASSERTF(found, "%s: '%s' missing from the listing (%zu names)", what, want[i],
			l->n);
	}
	for (size_t j = 0; j < l->n; j++) {
		bool found = false;
		for (size_t i = 0; i < nw && !found; i++)
			found = strcmp(l->names[j], want[i]) == 0;
		ASSERTF(found, "%s: unexpected name '%s' (hidden or foreign)", what, l->names[j]);
	}
	ASSERT_EQ(l->n, nw);
	free(sorted);
}

static const struct {
	const char *path;
	const char *const *want;
} dirs[] = {
	{ "", tl_expect_root },   { "d", tl_expect_d },     { "opq", tl_expect_opq },
	{ "xw", tl_expect_xw },   { "sub", tl_expect_sub }, { "rdir_new", tl_expect_rdir_new },
};

TEST_IMPL(readdir_merged_union)
{
	struct env e;

	tl_fixture_standard(&e.t);
	env_start(&e);
	for (size_t i = 0; i < TL_ARRAY_SIZE(dirs); i++) {
		struct tl_fh fh;
		struct listing l;
		char what[128];

		ASSERT_NFS(tl_nfs_walk(&e.c, &e.root, dirs[i].path, &fh, NULL), NFS3_OK);
		snprintf(what, sizeof(what), "READDIR '/%s'", dirs[i].path);
		list_dir(&e.c, &fh, false, 8192, 0, 64, false, &l);
		listing_expect(&l, dirs[i].want, what);
		listing_free(&l);
		snprintf(what, sizeof(what), "READDIRPLUS '/%s'", dirs[i].path);
		list_dir(&e.c, &fh, true, 8192, 32768, 64, false, &l);
		listing_expect(&l, dirs[i].want, what);
		listing_free(&l);
	}
	env_down(&e);
	return 0;
}

TEST_IMPL(readdir_tiny_counts_many_calls)
{
	static const uint32_t counts[] = { 200, 256, 333, 512, 1024 };
	static const uint32_t pluscounts[][2] = { { 64, 600 }, { 100, 777 }, { 512, 1024 },
						  { 4096, 1500 } };
	struct env e;

	tl_fixture_standard(&e.t);
	/* more names in the merged dir, spread over all layers, so that tiny
	 * counts need many calls */
	for (int i = 0; i < 40; i++) {
		char n[32];
		snprintf(n, sizeof(n), "d/many_l1_%02d", i);
		tl_write(e.t.lower[1], n, "x", 0644);
		snprintf(n, sizeof(n), "d/many_l0_%02d", i);
		tl_write(e.t.lower[0], n, "x", 0644);
		snprintf(n, sizeof(n), "d/many_up_%02d", i);
		tl_write(e.t.upper, n, "x", 0644);
	}
	/* names in two layers show once; some lower names whited out above */
	for (int i = 0; i < 10; i++) {
		char n[32];
		snprintf(n, sizeof(n), "d/many_l0_%02d", i);
		tl_write(e.t.upper, n, "up", 0644);
		snprintf(n, sizeof(n), "d/many_l1_%02d", i + 20);
		tl_whiteout(e.t.lower[0], n);
	}
	env_start(&e);
	{
		const char *want[32 + 120 + 1];
		static char names[120][32];
		size_t nw = 0, k = 0;
		struct tl_fh fh;

		for (size_t i = 0; tl_expect_d[i]; i++)
			want[nw++] = tl_expect_d[i];
		for (int i = 0; i < 40; i++) {
			if (!(i >= 20 && i < 30)) {
				snprintf(names[k], 32, "many_l1_%02d", i);
				want[nw++] = names[k++];
			}
			snprintf(names[k], 32, "many_l0_%02d", i);
			want[nw++] = names[k++];
			snprintf(names[k], 32, "many_up_%02d", i);
			want[nw++] = names[k++];
		}
		want[nw] = NULL;
		ASSERT_NFS(tl_nfs_walk(&e.c, &e.root, "d", &fh, NULL), NFS3_OK);
		for (size_t i = 0; i < TL_ARRAY_SIZE(counts); i++) {
			struct listing l;
			char what[64];

			snprintf(what, sizeof(what), "READDIR count %u", counts[i]);
			list_dir(&e.c, &fh, false, counts[i], 0, nw + 2, false, &l);
			listing_expect(&l, want, what);
			ASSERTF(counts[i] > 300 || l.calls > 10,
				"count %u: the listing took only %zu calls", counts[i], l.calls);
			listing_free(&l);
		}
		for (size_t i = 0; i < TL_ARRAY_SIZE(pluscounts); i++) {
			struct listing l;
			char what[64];

			snprintf(what, sizeof(what), "READDIRPLUS dircount %u maxcount %u",
				 pluscounts[i][0], pluscounts[i][1]);
			list_dir(&e.c, &fh, true, pluscounts[i][0], pluscounts[i][1], nw + 2, false,
				 &l);
			listing_expect(&l, want, what);
			ASSERTF(pluscounts[i][1] > 800 || l.calls > 10,
				"maxcount %u: the listing took only %zu calls", pluscounts[i][1],
				l.calls);
			listing_free(&l);
		}
	}
	env_down(&e);
	return 0;
}

TEST_IMPL(readdirplus_fileid_equals_getattr)
{
	struct env e;

	tl_fixture_standard(&e.t);
	env_start(&e);
	for (size_t i = 0; i < TL_ARRAY_SIZE(dirs); i++) {
		struct tl_fh dfh;
		struct listing l, lr;

		ASSERT_NFS(tl_nfs_walk(&e.c, &e.root, dirs[i].path, &dfh, NULL), NFS3_OK);
		list_dir(&e.c, &dfh, true, 1024, 4096, 64, true, &l);
		list_dir(&e.c, &dfh, false, 1024, 0, 64, false, &lr);
		for (size_t j = 0; j < l.n; j++) {
			fattr3 ga, la;
			struct tl_fh lfh;

			ASSERTF(l.fhs[j].len > 0, "no handle for '%s'", l.names[j]);
			ASSERT_NFS(tl_nfs_getattr(&e.c, &l.fhs[j], &ga), NFS3_OK);
			ASSERTF(ga.fileid == l.fileids[j],
				"'/%s/%s': READDIRPLUS fileid %llu, GETATTR fileid %llu",
				dirs[i].path, l.names[j], (unsigned long long)l.fileids[j],
				(unsigned long long)ga.fileid);
			ASSERT_EQ(ga.type, l.attrs[j].type);
			ASSERT_EQ(ga.size, l.attrs[j].size);
			ASSERT_EQ(ga.mode, l.attrs[j].mode);
			ASSERT_NFS(tl_nfs_lookup(&e.c, &dfh, l.names[j], &lfh, NULL), NFS3_OK);
			ASSERT_NFS(tl_nfs_getattr(&e.c, &lfh, &la), NFS3_OK);
			ASSERT_EQ(la.fileid, ga.fileid);
		}
		/* READDIR's fileids are the same numbers */
		for (size_t j = 0; j < lr.n; j++) {
			fattr3 la;
			struct tl_fh lfh;

			ASSERT_NFS(tl_nfs_lookup(&e.c, &dfh, lr.names[j], &lfh, NULL), NFS3_OK);
			ASSERT_NFS(tl_nfs_getattr(&e.c, &lfh, &la), NFS3_OK);
			ASSERTF(la.fileid == lr.fileids[j],
				"'/%s/%s': READDIR fileid %llu, GETATTR fileid %llu", dirs[i].path,
				lr.names[j], (unsigned long long)lr.fileids[j],
				(unsigned long long)la.fileid);
		}
		listing_free(&l);
		listing_free(&lr);
	}
	env_down(&e);
	return 0;
}

TEST_IMPL(readdir_bad_cookie_foreign_verifier)
{
	struct env e;
	struct tl_fh d, opq;
	struct tl_dirpage pg;
	uint8_t zero[8] = { 0 }, verf[8], bad[8];
	uint64_t mid;

	tl_fixture_standard(&e.t);
	env_start(&e);
	ASSERT_NFS(tl_nfs_walk(&e.c, &e.root, "d", &d, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_walk(&e.c, &e.root, "opq", &opq, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_readdir(&e.c, &d, 0, zero, 200, &pg), NFS3_OK);
	ASSERTF(pg.n >= 1 && !pg.eof, "READDIR count 200 returned %zu entries, eof %d", pg.n,
		pg.eof);
	mid = pg.e[pg.n - 1].cookie;
	memcpy(verf, pg.verf, 8);
	tl_dirpage_free(&pg);

	/* the real verifier resumes */
	ASSERT_NFS(tl_nfs_readdir(&e.c, &d, mid, verf, 200, &pg), NFS3_OK);
	tl_dirpage_free(&pg);
	/* a zero verifier is accepted (lenient, as knfsd) */
	ASSERT_NFS(tl_nfs_readdir(&e.c, &d, mid, zero, 200, &pg), NFS3_OK);
	tl_dirpage_free(&pg);
	/* a verifier this directory never issued */
	memcpy(bad, verf, 8);
	for (int i = 0; i < 8; i++)
		bad[i] ^= (uint8_t)(0xa5 + i);
	ASSERT_NFS(tl_nfs_readdir(&e.c, &d, mid, bad, 200, &pg), NFS3ERR_BAD_COOKIE);
	ASSERT_NFS(tl_nfs_readdirplus(&e.c, &d, mid, bad, 200, 1000, &pg), NFS3ERR_BAD_COOKIE);
	/* another directory's verifier, when it differs */
	ASSERT_NFS(tl_nfs_readdir(&e.c, &opq, 0, zero, 4096, &pg), NFS3_OK);
	memcpy(bad, pg.verf, 8);
	tl_dirpage_free(&pg);
	if (memcmp(bad, verf, 8) != 0 && memcmp(bad, zero, 8) != 0)
		ASSERT_NFS(tl_nfs_readdir(&e.c, &d, mid, bad, 200, &pg), NFS3ERR_BAD_COOKIE);
	env_down(&e);
	return 0;
}

TEST_IMPL(readdir_errors)
{
	struct env e;
	struct tl_fh f;
	struct tl_dirpage pg;
	uint8_t zero[8] = { 0 };
	int st;

	tl_fixture_standard(&e.t);
	env_start(&e);
	ASSERT_NFS(tl_nfs_walk(&e.c, &e.root, "upfile", &f, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_readdir(&e.c, &f, 0, zero, 4096, &pg), NFS3ERR_NOTDIR);
	ASSERT_NFS(tl_nfs_readdirplus(&e.c, &f, 0, zero, 4096, 8192, &pg), NFS3ERR_NOTDIR);
	/* a count too small for even one entry: TOOSMALL, never a silent empty
	 * non-eof reply */
	st = tl_nfs_readdir(&e.c, &e.root, 0, zero, 8, &pg);
	ASSERTF(st == NFS3ERR_TOOSMALL || (st == NFS3_OK && (pg.n > 0 || pg.eof)),
		"READDIR count 8: %s with %zu entries", tl_nfsstat_name(st), pg.n);
	if (st == NFS3_OK)
		tl_dirpage_free(&pg);
	env_down(&e);
	return 0;
}

/*
 * A listing interrupted by creates and removes (through NFS) still returns
 * every surviving name exactly once, resuming from the old cookie and
 * verifier (docs/decisions.md); removed names do not come back.
 */
TEST_IMPL(readdir_cookie_survives_create_and_remove)
{
	enum { NEXTRA = 60 };
	struct env e;
	struct tl_fh d;
	char extra[NEXTRA][32];
	const char *orig[NEXTRA + 16];
	size_t norig = 0;
	char *seen[NEXTRA + 64];
	size_t nseen = 0;
	bool removed[NEXTRA + 16] = { false };
	bool removed_unseen[NEXTRA + 16] = { false };
	uint64_t cookie = 0;
	uint8_t verf[8] = { 0 };
	bool eof = false;
	int calls = 0, nremoved_unseen = 0, nremoved_seen = 0;

	tl_fixture_standard(&e.t);
	/* d/<name> in the layer the name says */
	for (int i = 0; i < NEXTRA; i++) {
		char rel[64];
		snprintf(extra[i], sizeof(extra[i]), "x%02d_%s", i,
			 i % 3 == 0 ? "up" : i % 3 == 1 ? "l0" : "l1");
		snprintf(rel, sizeof(rel), "d/%.31s", extra[i]);
		tl_write(i % 3 == 0 ? e.t.upper : e.t.lower[i % 3 - 1], rel, "x", 0644);
	}
	for (size_t i = 0; tl_expect_d[i]; i++)
		orig[norig++] = tl_expect_d[i];
	for (int i = 0; i < NEXTRA; i++)
		orig[norig++] = extra[i];
	env_start(&e);
	ASSERT_NFS(tl_nfs_walk(&e.c, &e.root, "d", &d, NULL), NFS3_OK);

	/* first part: a few small pages */
	for (int k = 0; k < 4 && !eof; k++) {
		struct tl_dirpage pg;
		ASSERT_NFS(tl_nfs_readdir(&e.c, &d, cookie, verf, 200, &pg), NFS3_OK);
		calls++;
		for (size_t i = 0; i < pg.n; i++) {
			if (strcmp(pg.e[i].name, ".") && strcmp(pg.e[i].name, ".."))
				seen[nseen++] = strdup(pg.e[i].name);
		}
		if (pg.n) {
			cookie = pg.e[pg.n - 1].cookie;
			memcpy(verf, pg.verf, 8);
		}
		eof = pg.eof;
		tl_dirpage_free(&pg);
	}
	ASSERTF(!eof && nseen > 0 && nseen < norig / 2,
		"the first 4 pages of count 200 listed %zu of %zu names (eof %d)", nseen, norig,
		eof);

	/* change the directory: 10 creates, removes of seen and unseen names */
	for (int i = 0; i < 10; i++) {
		char n[32];
		snprintf(n, sizeof(n), "new_%d", i);
		ASSERT_NFS(tl_nfs_create(&e.c, &d, n), NFS3_OK);
	}
	for (size_t i = 0; i < norig; i++) {
		bool was_seen = false;
		const char *n = orig[i];
		if (!strncmp(n, "sub", 3))
			continue; /* a directory: REMOVE is for files */
		for (size_t j = 0; j < nseen; j++)
			was_seen |= strcmp(seen[j], n) == 0;
		if ((was_seen && nremoved_seen < 2) || (!was_seen && nremoved_unseen < 6)) {
			ASSERT_NFS(tl_nfs_remove(&e.c, &d, n), NFS3_OK);
			removed[i] = true;
			removed_unseen[i] = !was_seen;
			if (was_seen)
				nremoved_seen++;
			else
				nremoved_unseen++;
		}
	}
	ASSERT_EQ(nremoved_unseen, 6);

	/* resume with the old cookie and verifier */
	while (!eof) {
		struct tl_dirpage pg;
		int st;

		ASSERTF(++calls < 500, "listing did not end");
		st = tl_nfs_readdir(&e.c, &d, cookie, verf, 200, &pg);
		ASSERTF(st == NFS3_OK, "READDIR resumed after creates/removes (cookie %llu): %s",
			(unsigned long long)cookie, tl_nfsstat_name(st));
		for (size_t i = 0; i < pg.n; i++) {
			if (strcmp(pg.e[i].name, ".") && strcmp(pg.e[i].name, "..")) {
				ASSERT(nseen < TL_ARRAY_SIZE(seen));
				seen[nseen++] = strdup(pg.e[i].name);
			}
		}
		if (pg.n) {
			cookie = pg.e[pg.n - 1].cookie;
			memcpy(verf, pg.verf, 8);
		}
		eof = pg.eof;
		tl_dirpage_free(&pg);
	}

	/* every name at most once */
	qsort(seen, nseen, sizeof(char *), cmp_str);
	for (size_t i = 1; i < nseen; i++)
		ASSERTF(strcmp(seen[i], seen[i - 1]) != 0, "'%s' listed twice", seen[i]);
	/* every surviving original name exactly once; removed unseen ones never */
	for (size_t i = 0; i < norig; i++) {
		bool found = bsearch(&orig[i], seen, nseen, sizeof(char *), cmp_str) != NULL;
		if (!removed[i])
			ASSERTF(found, "surviving name '%s' missing from the resumed listing", orig[i]);
		if (removed_unseen[i])
			ASSERTF(!found, "'%s' listed after it was removed", orig[i]);
	}
	for (size_t i = 0; i < nseen; i++) {
		bool known = strncmp(seen[i], "new_", 4) == 0;
		for (size_t j = 0; j < norig && !known; j++)
			known = strcmp(seen[i], orig[j]) == 0;
		ASSERTF(known, "unexpected name '%s' listed", seen[i]);
	}
	for (size_t i = 0; i < nseen; i++)
		free(seen[i]);
	env_down(&e);
	return 0;
}

/* ---------- 100,000 entries ---------- */

static void make_many(const char *dir, int from, int to, bool whiteout)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	ASSERTF(dfd >= 0, "open '%s': %s", dir, strerror(errno));
	for (int i = from; i < to; i++) {
		char n[16];

		snprintf(n, sizeof(n), "f%06d", i);
		if (whiteout)
			ASSERTF(mknodat(dfd, n, S_IFCHR, makedev(0, 0)) == 0, "mknod %s: %s", n,
				strerror(errno));
		else
			ASSERTF(mknodat(dfd, n, S_IFREG | 0644, 0) == 0, "mknod %s: %s", n,
				strerror(errno));
	}
	close(dfd);
}

#define BIG_N 100000

static void check_big_listing(const struct listing *l)
{
	uint8_t *seen = calloc(BIG_N + 1000, 1);
	size_t count = 0;

	ASSERT(seen != NULL);
	for (size_t i = 0; i < l->n; i++) {
		const char *n = l->names[i];
		char *end;
		long v;

		ASSERTF(n[0] == 'f' && strlen(n) == 7, "unexpected name '%s'", n);
		v = strtol(n + 1, &end, 10);
		ASSERTF(*end == 0 && v >= 0 && v < BIG_N + 1000, "unexpected name '%s'", n);
		ASSERTF(v >= 1000, "whited-out name '%s' listed", n);
		ASSERTF(!seen[v], "'%s' listed twice", n);
		seen[v] = 1;
		count++;
	}
	ASSERTF(count == BIG_N, "listed %zu names, want %d", count, BIG_N);
	free(seen);
}

TEST_IMPL(readdir_100k_entries)
{
	struct env e;
	struct tl_fh dir;
	char p0[PATH_MAX], p1[PATH_MAX], pu[PATH_MAX];
	struct listing l;

	tl_tree_new(&e.t, 2);
	tl_mkdir(e.t.lower[1], "big", 0755);
	tl_mkdir(e.t.lower[0], "big", 0755);
	tl_mkdir(e.t.upper, "big", 0755);
	tl_join(p1, sizeof(p1), e.t.lower[1], "big");
	tl_join(p0, sizeof(p0), e.t.lower[0], "big");
	tl_join(pu, sizeof(pu), e.t.upper, "big");
	/* bottom 0..59999, middle 50000..89999, upper 85000..100999 plus
	 * whiteouts for 0..999: the union is 1000..100999, 100,000 names */
	make_many(p1, 0, 60000, false);
	make_many(p0, 50000, 90000, false);
	make_many(pu, 85000, BIG_N + 1000, false);
	make_many(pu, 0, 1000, true);
	env_start(&e);
	ASSERT_NFS(tl_nfs_walk(&e.c, &e.root, "big", &dir, NULL), NFS3_OK);

	list_dir(&e.c, &dir, false, 32768, 0, BIG_N + 1000, false, &l);
	check_big_listing(&l);
	listing_free(&l);

	list_dir(&e.c, &dir, true, 8192, 65536, BIG_N + 1000, false, &l);
	check_big_listing(&l);
	listing_free(&l);
	env_down(&e);
	return 0;
}

/*
 * Repeated READDIRPLUS listings in replies of a few entries each: the
 * second and later listings answer from the nodes the snapshot keeps
 * (fetched in batches, a reply ending inside a batch), and must give every
 * name once with the attributes GETATTR gives; a WRITE and a SETATTR made
 * through the server show in the very next listing.
 */
#define REP_N 100
TEST_IMPL(readdirplus_repeated_small_replies)
{
	struct env e;
	struct tl_fh d, f7, f42;
	char name[32];

	tl_fixture_standard(&e.t);
	env_start(&e);
	ASSERT_NFS(tl_nfs_mkdir(&e.c, &e.root, "rep"), NFS3_OK);
	ASSERT_NFS(tl_nfs_walk(&e.c, &e.root, "rep", &d, NULL), NFS3_OK);
	for (int i = 0; i < REP_N; i++) {
		snprintf(name, sizeof(name), "f%03d", i);
		ASSERT_NFS(tl_nfs_create(&e.c, &d, name), NFS3_OK);
	}
	ASSERT_NFS(tl_nfs_lookup(&e.c, &d, "f007", &f7, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &d, "f042", &f42, NULL), NFS3_OK);
	for (int round = 0; round < 4; round++) {
		struct listing l;

		if (round == 3) {
			ASSERT_NFS(tl_nfs_write(&e.c, &f7, 0, "hello", 5), NFS3_OK);
			ASSERT_NFS(tl_nfs_setattr_mode(&e.c, &f42, 0600), NFS3_OK);
		}
		/* maxcount 700: about 3 entries with attributes and handle per reply */
		list_dir(&e.c, &d, true, 700, 700, REP_N + 8, true, &l);
		ASSERTF(l.n == REP_N, "round %d: %zu names, want %d", round, l.n, REP_N);
		ASSERTF(l.calls > REP_N / 8, "round %d: only %zu calls: replies not small", round,
			l.calls);
		for (size_t j = 0; j < l.n; j++) {
			fattr3 ga;
			int k = atoi(l.names[j] + 1);

			ASSERTF(l.names[j][0] == 'f' && k >= 0 && k < REP_N,
				"round %d: unexpected name '%s'", round, l.names[j]);
			ASSERTF(l.has_attr[j] && l.fhs[j].len > 0,
				"round %d: '%s' without attributes or handle", round, l.names[j]);
			ASSERT_NFS(tl_nfs_getattr(&e.c, &l.fhs[j], &ga), NFS3_OK);
			ASSERT_EQ(ga.fileid, l.attrs[j].fileid);
			ASSERT_EQ(ga.size, l.attrs[j].size);
			ASSERT_EQ(ga.mode, l.attrs[j].mode);
			if (round == 3 && k == 7)
				ASSERTF(l.attrs[j].size == 5, "'f007' size %llu after a 5-byte WRITE",
					(unsigned long long)l.attrs[j].size);
			if (round == 3 && k == 42)
				ASSERTF((l.attrs[j].mode & 07777) == 0600,
					"'f042' mode %o after SETATTR 0600", l.attrs[j].mode);
		}
		/* every name once */
		qsort(l.names, l.n, sizeof(*l.names), cmp_str);
		for (size_t j = 1; j < l.n; j++)
			ASSERTF(strcmp(l.names[j - 1], l.names[j]) != 0, "round %d: '%s' twice",
				round, l.names[j]);
		listing_free(&l);
	}
	env_down(&e);
	return 0;
}

/*
 * Streamed listings (big directories of one part; the tests lower the size
 * bound to 0 through OVLNFSD_TEST_STREAM_MIN_BYTES so that small ones
 * stream too). Cookies of the streamed path have bit 63 set: that is how
 * these cases know they test it.
 */
#define STREAM_N 3000
#define STREAM_COOKIE (1ULL << 63)

/* One page; names (without "." and "..") appended to seen, counted in cnt. */
static struct tl_dirpage stream_page(struct tl_client *c, const struct tl_fh *d, bool plus,
				     uint64_t *cookie, uint8_t verf[8], bool *eof)
{
	struct tl_dirpage pg;
	int st = plus ? tl_nfs_readdirplus(c, d, *cookie, verf, 512, 1024, &pg)
		      : tl_nfs_readdir(c, d, *cookie, verf, 300, &pg);

	ASSERTF(st == NFS3_OK, "%s at cookie %#llx: %s", plus ? "READDIRPLUS" : "READDIR",
		(unsigned long long)*cookie, tl_nfsstat_name(st));
	ASSERTF(pg.n > 0 || pg.eof, "no entry and no eof at cookie %#llx",
		(unsigned long long)*cookie);
	if (pg.n) {
		*cookie = pg.e[pg.n - 1].cookie;
		memcpy(verf, pg.verf, 8);
	}
	*eof = pg.eof;
	return pg;
}

static int name_index(const char *n)
{
	char *end;
	long v;

	if (n[0] != 'f')
		return -1;
	v = strtol(n + 1, &end, 10);
	return *end == 0 && v >= 0 && v < STREAM_N ? (int)v : -1;
}

/*
 * A one-part lower directory of 3,000 names listed in replies of a few
 * entries, resuming by cookie: every name on disk exactly once, nothing
 * else, with READDIR and with READDIRPLUS; each READDIRPLUS handle is the
 * handle LOOKUP gives and its attributes are GETATTR's. A one-part upper
 * directory streams too: its whiteout stays hidden.
 */
TEST_IMPL(readdir_stream_one_part)
{
	struct env e;
	struct tl_fh d, ud;
	char p[PATH_MAX];

	setenv("OVLNFSD_TEST_STREAM_MIN_BYTES", "0", 1);
	tl_tree_new(&e.t, 1);
	tl_mkdir(e.t.lower[0], "big", 0755);
	tl_join(p, sizeof(p), e.t.lower[0], "big");
	make_many(p, 0, STREAM_N, false);
	tl_mkdir(e.t.upper, "ud", 0755);
	tl_write(e.t.upper, "ud/a", "a", 0644);
	tl_mkdir(e.t.upper, "ud/sub", 0755);
	tl_whiteout(e.t.upper, "ud/gone");
	env_start(&e);
	ASSERT_NFS(tl_nfs_walk(&e.c, &e.root, "big", &d, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_walk(&e.c, &e.root, "ud", &ud, NULL), NFS3_OK);

	for (int plus = 0; plus < 2; plus++) {
		uint8_t *seen = calloc(STREAM_N, 1), verf[8] = { 0 };
		uint64_t cookie = 0;
		bool eof = false;
		int calls = 0, nseen = 0;

		ASSERT(seen != NULL);
		while (!eof) {
			struct tl_dirpage pg = stream_page(&e.c, &d, plus, &cookie, verf, &eof);

			ASSERTF(++calls <= STREAM_N + 16, "no eof after %d calls", calls);
			for (size_t i = 0; i < pg.n; i++) {
				struct tl_dirent *x = &pg.e[i];
				int k = name_index(x->name);

				if (!strcmp(x->name, ".") || !strcmp(x->name, ".."))
					continue;
				ASSERTF(x->cookie & STREAM_COOKIE,
					"'%s': cookie %#llx is not a streamed one", x->name,
					(unsigned long long)x->cookie);
				ASSERTF(k >= 0, "unexpected name '%s'", x->name);
				ASSERTF(!seen[k], "'%s' listed twice", x->name);
				seen[k] = 1;
				nseen++;
				if (plus) {
					struct tl_fh lfh;
					fattr3 la, ga;

					ASSERTF(x->has_attr && x->has_fh, "'%s' without %s", x->name,
						x->has_attr ? "handle" : "attributes");
					ASSERT_NFS(tl_nfs_lookup(&e.c, &d, x->name, &lfh, &la), NFS3_OK);
					ASSERTF(lfh.len == x->fh.len &&
							memcmp(lfh.data, x->fh.data, lfh.len) == 0,
						"'%s': READDIRPLUS handle differs from LOOKUP's",
						x->name);
					ASSERT_NFS(tl_nfs_getattr(&e.c, &x->fh, &ga), NFS3_OK);
					ASSERT_EQ(ga.fileid, x->attr.fileid);
					ASSERT_EQ(ga.fileid, x->fileid);
					ASSERT_EQ(ga.mode, x->attr.mode);
					ASSERT_EQ(ga.size, x->attr.size);
					ASSERT_EQ(ga.nlink, x->attr.nlink);
				} else {
					fattr3 la;

					ASSERT_NFS(tl_nfs_lookup(&e.c, &d, x->name, NULL, &la), NFS3_OK);
					ASSERT_EQ(la.fileid, x->fileid);
				}
			}
			tl_dirpage_free(&pg);
		}
		ASSERTF(nseen == STREAM_N, "%s listed %d of %d names",
			plus ? "READDIRPLUS" : "READDIR", nseen, STREAM_N);
		free(seen);
	}

	/* a streamed cookie keeps the verifier rules: a foreign verifier is
	 * BAD_COOKIE, a zero one is accepted */
	{
		struct tl_dirpage pg;
		uint8_t zero[8] = { 0 }, verf[8], bad[8];
		uint64_t mid;

		ASSERT_NFS(tl_nfs_readdir(&e.c, &d, 0, zero, 300, &pg), NFS3_OK);
		ASSERTF(pg.n > 2 && !pg.eof, "READDIR count 300: %zu entries, eof %d", pg.n, pg.eof);
		mid = pg.e[pg.n - 1].cookie;
		memcpy(verf, pg.verf, 8);
		tl_dirpage_free(&pg);
		ASSERTF(mid & STREAM_COOKIE, "cookie %#llx not streamed", (unsigned long long)mid);
		ASSERT_NFS(tl_nfs_readdirplus(&e.c, &d, mid, verf, 512, 1024, &pg), NFS3_OK);
		tl_dirpage_free(&pg);
		ASSERT_NFS(tl_nfs_readdir(&e.c, &d, mid, zero, 300, &pg), NFS3_OK);
		tl_dirpage_free(&pg);
		memcpy(bad, verf, 8);
		for (int i = 0; i < 4; i++)
			bad[i] ^= 0x5a;
		ASSERT_NFS(tl_nfs_readdir(&e.c, &d, mid, bad, 300, &pg), NFS3ERR_BAD_COOKIE);
		ASSERT_NFS(tl_nfs_readdirplus(&e.c, &d, mid, bad, 512, 1024, &pg),
			   NFS3ERR_BAD_COOKIE);
	}

	/* the upper-only directory: a, sub; the whiteout hidden */
	for (int plus = 0; plus < 2; plus++) {
		uint8_t verf[8] = { 0 };
		uint64_t cookie = 0;
		bool eof = false, a = false, sub = false;
		int calls = 0;

		while (!eof) {
			struct tl_dirpage pg = stream_page(&e.c, &ud, plus, &cookie, verf, &eof);

			ASSERTF(++calls <= 16, "no eof after %d calls", calls);
			for (size_t i = 0; i < pg.n; i++) {
				struct tl_dirent *x = &pg.e[i];
				fattr3 la;

				if (!strcmp(x->name, ".") || !strcmp(x->name, ".."))
					continue;
				ASSERTF(!strcmp(x->name, "a") || !strcmp(x->name, "sub"),
					"ud: unexpected name '%s'", x->name);
				ASSERTF(x->cookie & STREAM_COOKIE, "ud/%s: cookie %#llx not streamed",
					x->name, (unsigned long long)x->cookie);
				ASSERTF(!(x->name[0] == 'a' ? a : sub), "ud/%s twice", x->name);
				*(x->name[0] == 'a' ? &a : &sub) = true;
				ASSERT_NFS(tl_nfs_lookup(&e.c, &ud, x->name, NULL, &la), NFS3_OK);
				ASSERT_EQ(la.fileid, x->fileid);
			}
			tl_dirpage_free(&pg);
		}
		ASSERTF(a && sub, "ud listing: a %d, sub %d", a, sub);
	}
	env_down(&e);
	return 0;
}

/*
 * A streamed listing whose directory changes between calls and becomes
 * merged (REMOVE and CREATE make its upper part, SETATTR copies a file
 * up): the listing goes on from its cookie. Names listed before are not
 * listed again, every surviving original name is listed exactly once,
 * names removed before they were reached are not listed, the copied-up
 * file comes with its new mode and the handle LOOKUP gives. A new listing
 * of the now merged directory takes the snapshot path and lists the union.
 */
static void stream_becomes_merged(bool plus)
{
	enum { N = 600 };
	struct env e;
	struct tl_fh d;
	char p[PATH_MAX];
	uint8_t seen[N] = { 0 }, removed[N] = { 0 }, verf[8] = { 0 };
	uint64_t cookie = 0;
	bool eof = false;
	int calls = 0, copied = -1, ncreated = 0;

	setenv("OVLNFSD_TEST_STREAM_MIN_BYTES", "0", 1);
	tl_tree_new(&e.t, 1);
	tl_mkdir(e.t.lower[0], "big", 0755);
	tl_join(p, sizeof(p), e.t.lower[0], "big");
	make_many(p, 0, N, false);
	env_start(&e);
	ASSERT_NFS(tl_nfs_walk(&e.c, &e.root, "big", &d, NULL), NFS3_OK);

	for (int round = 0; !eof; round++) {
		struct tl_dirpage pg = stream_page(&e.c, &d, plus, &cookie, verf, &eof);

		ASSERTF(++calls <= N + 16, "no eof after %d calls", calls);
		for (size_t i = 0; i < pg.n; i++) {
			struct tl_dirent *x = &pg.e[i];
			int k = name_index(x->name);

			if (!strcmp(x->name, ".") || !strcmp(x->name, ".."))
				continue;
			if (strncmp(x->name, "new", 3) == 0) {
				ncreated++; /* created meanwhile: may or may not show */
				continue;
			}
			ASSERTF(x->cookie & STREAM_COOKIE, "'%s': cookie %#llx not streamed",
				x->name, (unsigned long long)x->cookie);
			ASSERTF(k >= 0 && k < N, "unexpected name '%s'", x->name);
			ASSERTF(!seen[k], "'%s' listed twice", x->name);
			ASSERTF(!removed[k], "'%s' listed after its REMOVE", x->name);
			ASSERTF(!plus || (x->has_attr && x->has_fh),
				"'%s' without attributes or handle", x->name);
			seen[k] = 1;
			if (k == copied && !plus) {
				fattr3 la;

				ASSERT_NFS(tl_nfs_lookup(&e.c, &d, x->name, NULL, &la), NFS3_OK);
				ASSERT_EQ(la.fileid, x->fileid);
			} else if (k == copied) {
				struct tl_fh lfh;

				ASSERTF((x->attr.mode & 07777) == 0600,
					"copied-up '%s' listed with mode %o", x->name, x->attr.mode);
				ASSERT_NFS(tl_nfs_lookup(&e.c, &d, x->name, &lfh, NULL), NFS3_OK);
				ASSERTF(lfh.len == x->fh.len &&
						memcmp(lfh.data, x->fh.data, lfh.len) == 0,
					"copied-up '%s': READDIRPLUS handle differs from LOOKUP's",
					x->name);
			}
		}
		tl_dirpage_free(&pg);
		if (round == 2) {
			/* remove 20 names not listed yet and 5 listed ones, create
			 * 10, copy one unlisted file up (a mode change) */
			int rm_unseen = 0, rm_seen = 0;

			for (int k = 0; k < N; k++) {
				char n[16];

				if (seen[k] ? rm_seen >= 5 : (k % 7 != 0 || rm_unseen >= 20))
					continue;
				*(seen[k] ? &rm_seen : &rm_unseen) += 1;
				snprintf(n, sizeof(n), "f%06d", k);
				ASSERT_NFS(tl_nfs_remove(&e.c, &d, n), NFS3_OK);
				removed[k] = 1;
			}
			ASSERTF(rm_unseen >= 20 && rm_seen >= 5, "removed %d unseen, %d seen",
				rm_unseen, rm_seen);
			for (int k = 0; k < 10; k++) {
				char n[16];

				snprintf(n, sizeof(n), "new%d", k);
				ASSERT_NFS(tl_nfs_create(&e.c, &d, n), NFS3_OK);
			}
			for (int k = N - 1; k >= 0; k--) {
				if (!seen[k] && !removed[k]) {
					char n[16];
					struct tl_fh fh;

					snprintf(n, sizeof(n), "f%06d", k);
					ASSERT_NFS(tl_nfs_lookup(&e.c, &d, n, &fh, NULL), NFS3_OK);
					ASSERT_NFS(tl_nfs_setattr_mode(&e.c, &fh, 0600), NFS3_OK);
					copied = k;
					break;
				}
			}
			ASSERTF(copied >= 0, "no unlisted name left after 3 pages");
		}
	}
	ASSERTF(calls > 3, "the listing ended within %d calls: nothing changed mid-listing", calls);
	for (int k = 0; k < N; k++)
		ASSERTF(seen[k] || removed[k], "'f%06d' never listed", k);
	printf("# %s: %d calls; %d of 10 names created mid-listing were listed\n",
	       plus ? "READDIRPLUS" : "READDIR", calls, ncreated);

	/* a new listing: the merged directory's snapshot, the union */
	{
		struct listing l;
		size_t nnew = 0, nold = 0;

		list_dir(&e.c, &d, true, 512, 1024, 2 * N, false, &l);
		for (size_t i = 0; i < l.n; i++) {
			int k = name_index(l.names[i]);

			if (strncmp(l.names[i], "new", 3) == 0) {
				nnew++;
				continue;
			}
			ASSERTF(k >= 0 && !removed[k], "merged listing: unexpected '%s'", l.names[i]);
			nold++;
		}
		ASSERTF(nnew == 10 && nold == N - 25, "merged listing: %zu new, %zu old (want 10, %d)",
			nnew, nold, N - 25);
		listing_free(&l);
	}
	env_down(&e);
}

TEST_IMPL(readdir_stream_becomes_merged)
{
	stream_becomes_merged(false);
	stream_becomes_merged(true);
	return 0;
}

static const struct tl_case cases[] = {
	TEST_ENTRY(readdir_merged_union),
	TEST_ENTRY(readdir_tiny_counts_many_calls),
	TEST_ENTRY(readdirplus_fileid_equals_getattr),
	TEST_ENTRY(readdirplus_repeated_small_replies),
	TEST_ENTRY(readdir_bad_cookie_foreign_verifier),
	TEST_ENTRY(readdir_errors),
	TEST_ENTRY(readdir_cookie_survives_create_and_remove),
	/* a bound for a stuck or quadratic server, not a speed check */
	TEST_ENTRY_TIMEOUT(readdir_100k_entries, 400),
	TEST_ENTRY(readdir_stream_one_part),
	TEST_ENTRY(readdir_stream_becomes_merged),
};

int main(int argc, char **argv)
{
	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
