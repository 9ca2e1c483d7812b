/*
 * test-handle.c - file handles against a real ovlnfsd: modified, forged,
 * truncated and foreign handles are refused (STALE / BADHANDLE, never
 * NOENT, never another object), and handles survive a server restart.
 *
 * Runs as a test process; each case starts and stops its own servers by
 * PID. Includes libnfs headers (never rpcgen's).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "nfsclient.h"
#include "testlib.h"

static void walk_ok(struct tl_client *c, const struct tl_fh *root, const char *path,
		    struct tl_fh *fh, fattr3 *attr)
{
	int st = tl_nfs_walk(c, root, path, fh, attr);

	ASSERTF(st == NFS3_OK, "LOOKUP path '%s': %s", path, tl_nfsstat_name(st));
}

static void start(struct tl_tree *t, struct tl_server *s, struct tl_client *c,
		  struct tl_fh *root, bool rw)
{
	char opts[8192];

	if (rw)
		tl_tree_opts(t, true, opts, sizeof(opts));
	else
		tl_tree_opts_ro_view(t, opts, sizeof(opts));
	tl_server_start(s, t->root, t->state, opts, NULL, NULL);
	tl_client_mount(c, s->port, "/", root);
}

static void stop(struct tl_server *s, struct tl_client *c)
{
	tl_client_close(c);
	tl_server_stop(s);
}

/* A refused handle: STALE or BADHANDLE, never success, never NOENT. */
static void assert_refused(struct tl_client *c, const struct tl_fh *fh, const char *what,
			   bool stale_only)
{
	fattr3 a;
	int st = tl_nfs_getattr(c, fh, &a);

	ASSERTF(st == NFS3ERR_STALE || (!stale_only && st == NFS3ERR_BADHANDLE),
		"GETATTR with %s handle (len %u): got %s, want STALE%s", what, fh->len,
		tl_nfsstat_name(st), stale_only ? "" : " or BADHANDLE");
	st = tl_nfs_lookup(c, fh, "a", NULL, NULL);
	ASSERTF(st == NFS3ERR_STALE || (!stale_only && st == NFS3ERR_BADHANDLE),
		"LOOKUP in %s handle: got %s", what, tl_nfsstat_name(st));
}

TEST_IMPL(handle_flipped_bytes_stale)
{
	struct tl_tree t;
	struct tl_server s;
	struct tl_client c;
	struct tl_fh root, fh, bad;
	int nstale = 0;

	tl_fixture_standard(&t);
	start(&t, &s, &c, &root, true);
	walk_ok(&c, &root, "d/a", &fh, NULL);
	ASSERT(fh.len >= 8 && fh.len <= 64);
	for (uint32_t i = 0; i < fh.len; i++) {
		int st;
		fattr3 a;

		bad = fh;
		bad.data[i] ^= 0x5a;
		st = tl_nfs_getattr(&c, &bad, &a);
		/* A version byte may legitimately give BADHANDLE; anything
		 * protected by the MAC must be STALE. Never OK, never NOENT. */
		ASSERTF(st == NFS3ERR_STALE || st == NFS3ERR_BADHANDLE,
			"GETATTR with byte %u of %u flipped: got %s", i, fh.len,
			tl_nfsstat_name(st));
		nstale += st == NFS3ERR_STALE;
	}
	/* the last byte is MAC (or covered by it) */
	bad = fh;
	bad.data[fh.len - 1] ^= 1;
	assert_refused(&c, &bad, "last-bit-flipped", true);
	ASSERTF(nstale >= (int)fh.len - 4, "only %d of %u flipped bytes gave STALE", nstale,
		fh.len);
	/* the original still works */
	ASSERT_NFS(tl_nfs_getattr(&c, &fh, &(fattr3){ 0 }), NFS3_OK);
	stop(&s, &c);
	tl_tree_free(&t);
	return 0;
}

TEST_IMPL(handle_forged_stale)
{
	struct tl_tree t;
	struct tl_server s;
	struct tl_client c;
	struct tl_fh root, fh, bad;

	tl_fixture_standard(&t);
	start(&t, &s, &c, &root, true);
	walk_ok(&c, &root, "d/b", &fh, NULL);
	/* keep the first 4 bytes (version/type), randomise the rest */
	srand(1234);
	for (int round = 0; round < 20; round++) {
		bad = fh;
		for (uint32_t i = 4; i < bad.len; i++)
			bad.data[i] = (uint8_t)rand();
		assert_refused(&c, &bad, "forged", false);
	}
	/* all zero, all ones */
	bad = fh;
	memset(bad.data, 0, bad.len);
	assert_refused(&c, &bad, "all-zero", false);
	memset(bad.data, 0xff, bad.len);
	assert_refused(&c, &bad, "all-0xff", false);
	/* another object's handle with its MAC swapped in: still stale */
	{
		struct tl_fh other;
		walk_ok(&c, &root, "upfile", &other, NULL);
		if (other.len == fh.len) {
			bad = other;
			memcpy(bad.data + bad.len - 8, fh.data + fh.len - 8, 8);
			if (memcmp(bad.data, other.data, other.len) != 0)
				assert_refused(&c, &bad, "MAC-swapped", true);
		}
	}
	stop(&s, &c);
	tl_tree_free(&t);
	return 0;
}

TEST_IMPL(handle_truncated_badhandle)
{
	struct tl_tree t;
	struct tl_server s;
	struct tl_client c;
	struct tl_fh root, fh, bad;
	uint32_t lens[4];

	tl_fixture_standard(&t);
	start(&t, &s, &c, &root, true);
	walk_ok(&c, &root, "d/a", &fh, NULL);
	lens[0] = fh.len - 1;
	lens[1] = fh.len / 2;
	lens[2] = 1;
	lens[3] = 0;
	for (int i = 0; i < 4; i++) {
		bad = fh;
		bad.len = lens[i];
		ASSERTF(tl_nfs_getattr(&c, &bad, &(fattr3){ 0 }) == NFS3ERR_BADHANDLE,
			"GETATTR with the handle cut to %u of %u bytes: got %s, want BADHANDLE",
			lens[i], fh.len, tl_nfsstat_name(tl_nfs_getattr(&c, &bad, &(fattr3){ 0 })));
	}
	/* one byte too long (still <= 64) */
	if (fh.len < 64) {
		bad = fh;
		bad.data[bad.len++] = 0;
		int st = tl_nfs_getattr(&c, &bad, &(fattr3){ 0 });
		ASSERTF(st == NFS3ERR_BADHANDLE || st == NFS3ERR_STALE,
			"GETATTR with a handle one byte long: got %s", tl_nfsstat_name(st));
	}
	stop(&s, &c);
	tl_tree_free(&t);
	return 0;
}

/* A handle minted by one export (its own key and id) is STALE at another. */
TEST_IMPL(handle_foreign_export_stale)
{
	struct tl_tree t1, t2;
	struct tl_server s1, s2;
	struct tl_client c1, c2;
	struct tl_fh r1, r2, fh1;
	int st;

	tl_fixture_standard(&t1);
	tl_fixture_standard(&t2);
	start(&t1, &s1, &c1, &r1, true);
	start(&t2, &s2, &c2, &r2, true);
	walk_ok(&c1, &r1, "d/a", &fh1, NULL);
	st = tl_nfs_getattr(&c2, &fh1, &(fattr3){ 0 });
	ASSERTF(st == NFS3ERR_STALE, "GETATTR of another export's handle: got %s, want STALE",
		tl_nfsstat_name(st));
	st = tl_nfs_getattr(&c2, &r1, &(fattr3){ 0 });
	ASSERTF(st == NFS3ERR_STALE, "GETATTR of another export's root: got %s, want STALE",
		tl_nfsstat_name(st));
	stop(&s2, &c2);
	stop(&s1, &c1);
	tl_tree_free(&t2);
	tl_tree_free(&t1);
	return 0;
}

static void restart_case(bool rw)
{
	static const char *const paths[] = { "", "d", "d/a", "d/b", "d/c", "upfile", "link",
					     "sub/deeper", "sub/deeper/f", "opq", "big",
					     "rdir_new", "rdir_new/f1" };
	enum { N = TL_ARRAY_SIZE(paths) };
	struct tl_tree t;
	struct tl_server s;
	struct tl_client c;
	struct tl_fh root, fh[N];
	fattr3 before[N], after;

	tl_fixture_standard(&t);
	start(&t, &s, &c, &root, rw);
	for (size_t i = 0; i < N; i++) {
		walk_ok(&c, &root, paths[i], &fh[i], NULL);
		ASSERT_NFS(tl_nfs_getattr(&c, &fh[i], &before[i]), NFS3_OK);
	}
	stop(&s, &c);

	/* same layers, a new process (and a new port) */
	{
		struct tl_fh root2;
		start(&t, &s, &c, &root2, rw);
	}
	{
		char bad[2048] = "";
		for (size_t i = 0; i < N; i++) {
			int st = tl_nfs_getattr(&c, &fh[i], &after);
			if (st != NFS3_OK) {
				size_t l = strlen(bad);
				snprintf(bad + l, sizeof(bad) - l, " '%s' (%s)", paths[i],
					 tl_nfsstat_name(st));
				continue;
			}
			ASSERTF(after.fileid == before[i].fileid,
				"fileid of '%s' changed across restart", paths[i]);
			ASSERT_EQ(after.type, before[i].type);
			ASSERT_EQ(after.size, before[i].size);
		}
		ASSERTF(bad[0] == 0, "GETATTR after restart failed for:%s", bad);
	}
	/* an old directory handle still resolves names */
	ASSERT_NFS(tl_nfs_lookup(&c, &fh[1], "a", NULL, NULL), NFS3_OK);
	{
		char buf[16];
		uint32_t got;
		bool eof;
		ASSERT_NFS(tl_nfs_read(&c, &fh[2], 0, sizeof(buf), buf, &got, &eof), NFS3_OK);
		ASSERT_EQ(got, 4);
		ASSERT(memcmp(buf, "up-a", 4) == 0);
	}
	stop(&s, &c);
	tl_tree_free(&t);
}

TEST_IMPL(handle_survives_restart_rw)
{
	restart_case(true);
	return 0;
}

TEST_IMPL(handle_survives_restart_ro)
{
	restart_case(false);
	return 0;
}

/* An object that disappears from the merged view turns STALE, not NOENT. */
TEST_IMPL(handle_gone_object_stale)
{
	struct tl_tree t;
	struct tl_server s;
	struct tl_client c;
	struct tl_fh root, fh;
	char p[PATH_MAX];
	int st;

	tl_fixture_standard(&t);
	start(&t, &s, &c, &root, true);
	walk_ok(&c, &root, "d/up_only", &fh, NULL);
	stop(&s, &c);
	tl_join(p, sizeof(p), t.upper, "d/up_only");
	ASSERT(unlink(p) == 0);
	{
		struct tl_fh root2;
		start(&t, &s, &c, &root2, true);
	}
	st = tl_nfs_getattr(&c, &fh, &(fattr3){ 0 });
	ASSERTF(st == NFS3ERR_STALE, "GETATTR of a deleted object: got %s, want STALE",
		tl_nfsstat_name(st));
	stop(&s, &c);
	tl_tree_free(&t);
	return 0;
}

static const struct tl_case cases[] = {
	TEST_ENTRY(handle_flipped_bytes_stale),
	TEST_ENTRY(handle_forged_stale),
	TEST_ENTRY(handle_truncated_badhandle),
	TEST_ENTRY(handle_foreign_export_stale),
	TEST_ENTRY_TIMEOUT(handle_survives_restart_rw, 120),
	TEST_ENTRY_TIMEOUT(handle_survives_restart_ro, 120),
	TEST_ENTRY_TIMEOUT(handle_gone_object_stale, 120),
};

int main(int argc, char **argv)
{
	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
