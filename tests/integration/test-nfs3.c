/*
 * test-nfs3.c - every NFSv3 read procedure and the MOUNT protocol against a
 * real ovlnfsd on a loopback port, driven with the libnfs raw API:
 * success and error paths, merged-view rules, read-only exports.
 *
 * Runs as a test process; each case starts its own server on a temp tree
 * and stops it by PID. Includes libnfs headers (never rpcgen's).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "nfsclient.h"
#include "testlib.h"

struct env {
	struct tl_tree t;
	struct tl_server s;
	struct tl_client c;
	struct tl_fh root;
	char opts[8192];
};

/* rw: upper+work export; else the same view with upper as top lower (ro). */
static void env_up(struct env *e, bool rw)
{
	tl_fixture_standard(&e->t);
	if (rw)
		tl_tree_opts(&e->t, true, e->opts, sizeof(e->opts));
	else
		tl_tree_opts_ro_view(&e->t, e->opts, sizeof(e->opts));
	tl_server_start(&e->s, e->t.root, e->t.state, e->opts, NULL, NULL);
	tl_client_mount(&e->c, e->s.port, "/", &e->root);
}

static void env_down(struct env *e)
{
	tl_client_close(&e->c);
	tl_server_stop(&e->s);
	tl_tree_free(&e->t);
}

static void walk_ok(struct env *e, const char *path, struct tl_fh *fh, fattr3 *attr)
{
	int st = tl_nfs_walk(&e->c, &e->root, path, fh, attr);

	ASSERTF(st == NFS3_OK, "LOOKUP path '%s': %s", path, tl_nfsstat_name(st));
}

static void read_all_small(struct env *e, const char *path, const char *want)
{
	struct tl_fh fh;
	char buf[4096];
	uint32_t got;
	bool eof;

	walk_ok(e, path, &fh, NULL);
	ASSERT_NFS(tl_nfs_read(&e->c, &fh, 0, sizeof(buf), buf, &got, &eof), NFS3_OK);
	ASSERTF(got == strlen(want) && memcmp(buf, want, got) == 0,
		"READ '%s': got %u bytes '%.*s', want '%s'", path, got,
		(int)(got < 200 ? got : 200), buf, want);
	ASSERTF(eof, "READ '%s' of the whole file: eof not set", path);
}

/* ---------- NULL, GETATTR ---------- */

TEST_IMPL(null_nfs_and_mount)
{
	struct env e;

	env_up(&e, true);
	ASSERT_NFS(tl_nfs_null(&e.c), 0);
	ASSERT_NFS(tl_mount_null(&e.c), 0);
	env_down(&e);
	return 0;
}

TEST_IMPL(getattr_root_is_dir)
{
	struct env e;
	fattr3 a;

	env_up(&e, true);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &e.root, &a), NFS3_OK);
	ASSERT_EQ(a.type, NF3DIR);
	ASSERT(a.fileid != 0);
	ASSERT(a.nlink >= 1);
	env_down(&e);
	return 0;
}

TEST_IMPL(getattr_attrs_from_winning_layer)
{
	struct env e;
	fattr3 root, a, b, l, big, fod;
	struct tl_fh fh;

	env_up(&e, true);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &e.root, &root), NFS3_OK);
	walk_ok(&e, "d/a", &fh, NULL);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &fh, &a), NFS3_OK);
	ASSERT_EQ(a.type, NF3REG);
	ASSERT_EQ(a.size, 4); /* "up-a" */

	walk_ok(&e, "d/b", &fh, NULL);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &fh, &b), NFS3_OK);
	ASSERT_EQ(b.mode & 07777, 0640);
	ASSERT_EQ(b.uid, 1234);
	ASSERT_EQ(b.gid, 5678);
	ASSERT_EQ(b.mtime.seconds, 1500000000);
	ASSERT_EQ(b.mtime.nseconds, 123456789); /* nanosecond times */
	ASSERT_EQ(b.size, 4);

	walk_ok(&e, "link", &fh, NULL);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &fh, &l), NFS3_OK);
	ASSERT_EQ(l.type, NF3LNK);
	ASSERT_EQ(l.size, 3); /* "d/a" */

	walk_ok(&e, "big", &fh, NULL);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &fh, &big), NFS3_OK);
	ASSERT_EQ(big.size, TL_BIG_SIZE);

	/* a file in a higher layer hides a directory below */
	walk_ok(&e, "fod", &fh, NULL);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &fh, &fod), NFS3_OK);
	ASSERT_EQ(fod.type, NF3REG);
	ASSERT_EQ(fod.size, strlen("file wins"));

	/* one fsid per export; distinct objects, distinct fileids */
	ASSERT_EQ(a.fsid, root.fsid);
	ASSERT_EQ(b.fsid, root.fsid);
	ASSERT_EQ(big.fsid, root.fsid);
	ASSERT_NE(a.fileid, b.fileid);
	ASSERT_NE(a.fileid, root.fileid);
	ASSERT_NE(big.fileid, l.fileid);
	env_down(&e);
	return 0;
}

/* ---------- LOOKUP ---------- */

TEST_IMPL(lookup_dot_and_dotdot)
{
	struct env e;
	fattr3 root, x, d;
	struct tl_fh fh, dfh;

	env_up(&e, true);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &e.root, &root), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &e.root, ".", &fh, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &fh, &x), NFS3_OK);
	ASSERT_EQ(x.fileid, root.fileid);
	/* ".." of the export root is the root */
	ASSERT_NFS(tl_nfs_lookup(&e.c, &e.root, "..", &fh, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &fh, &x), NFS3_OK);
	ASSERT_EQ(x.fileid, root.fileid);
	ASSERT_EQ(x.type, NF3DIR);
	/* ".." of a merged subdirectory is its parent */
	walk_ok(&e, "d", &dfh, &d);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &dfh, "..", &fh, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &fh, &x), NFS3_OK);
	ASSERT_EQ(x.fileid, root.fileid);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &dfh, ".", &fh, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &fh, &x), NFS3_OK);
	ASSERT_EQ(x.fileid, d.fileid);
	/* two levels: sub/deeper/.. is sub */
	{
		fattr3 sub;
		struct tl_fh deeper;
		walk_ok(&e, "sub", NULL, &sub);
		walk_ok(&e, "sub/deeper", &deeper, NULL);
		ASSERT_NFS(tl_nfs_lookup(&e.c, &deeper, "..", &fh, NULL), NFS3_OK);
		ASSERT_NFS(tl_nfs_getattr(&e.c, &fh, &x), NFS3_OK);
		ASSERT_EQ(x.fileid, sub.fileid);
	}
	env_down(&e);
	return 0;
}

TEST_IMPL(lookup_noent_for_hidden_names)
{
	static const struct {
		const char *path;
		int want;
	} hidden[] = {
		{ "d/gone", NFS3ERR_NOENT },      /* whiteout in upper */
		{ "d/wdir", NFS3ERR_NOENT },      /* middle whiteout hides a lower dir */
		{ "d/nosuch", NFS3ERR_NOENT },    /* nowhere */
		{ "opq/hidden1", NFS3ERR_NOENT }, /* below an opaque dir */
		{ "opq/mid1", NFS3ERR_NOENT },    /* middle layer below an opaque upper dir */
		{ "xw/xname", NFS3ERR_NOENT },    /* xattr whiteout, parent opaque=x */
		{ "fod/inner", NFS3ERR_NOTDIR },  /* fod is a file hiding the lower dir */
		{ "rdir_orig", NFS3ERR_NOENT },   /* renamed away: whiteout at the old name */
		{ "nosuch", NFS3ERR_NOENT },
	};
	struct env e;

	env_up(&e, true);
	for (size_t i = 0; i < TL_ARRAY_SIZE(hidden); i++) {
		int st = tl_nfs_walk(&e.c, &e.root, hidden[i].path, NULL, NULL);
		ASSERTF(st == hidden[i].want, "LOOKUP '%s': got %s, want %s", hidden[i].path,
			tl_nfsstat_name(st), tl_nfsstat_name(hidden[i].want));
	}
	env_down(&e);
	return 0;
}

TEST_IMPL(lookup_merged_rules)
{
	struct env e;
	fattr3 a;

	env_up(&e, true);
	read_all_small(&e, "d/a", "up-a");          /* upper wins */
	read_all_small(&e, "d/c", "l0-c");          /* middle layer */
	read_all_small(&e, "d/only_bottom", "bottom");
	read_all_small(&e, "d/up_only", "up");
	read_all_small(&e, "d/sub/x", "subx");
	read_all_small(&e, "opq/visible", "visible");
	read_all_small(&e, "xw/keep", "keep");
	read_all_small(&e, "fod", "file wins");
	read_all_small(&e, "rdir_new/f1", "r1");    /* redirect followed */
	walk_ok(&e, "opq", NULL, &a);
	ASSERT_EQ(a.type, NF3DIR);
	env_down(&e);
	return 0;
}

TEST_IMPL(lookup_notdir_in_file)
{
	struct env e;
	struct tl_fh fh;

	env_up(&e, true);
	walk_ok(&e, "upfile", &fh, NULL);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &fh, "x", NULL, NULL), NFS3ERR_NOTDIR);
	walk_ok(&e, "link", &fh, NULL);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &fh, "x", NULL, NULL), NFS3ERR_NOTDIR);
	env_down(&e);
	return 0;
}

TEST_IMPL(lookup_nametoolong)
{
	struct env e;
	char name[300];

	env_up(&e, true);
	memset(name, 'n', 256);
	name[256] = 0;
	ASSERT_NFS(tl_nfs_lookup(&e.c, &e.root, name, NULL, NULL), NFS3ERR_NAMETOOLONG);
	/* 255 is allowed: simply absent */
	name[255] = 0;
	ASSERT_NFS(tl_nfs_lookup(&e.c, &e.root, name, NULL, NULL), NFS3ERR_NOENT);
	env_down(&e);
	return 0;
}

/* Names no directory can hold: refused (ACCES, as knfsd's lookup_one_len),
 * never resolved to something. */
TEST_IMPL(lookup_bad_names)
{
	static const char *const bad[] = { "d/a", "/", "", "a/", "/d" };
	struct env e;

	env_up(&e, true);
	for (size_t i = 0; i < TL_ARRAY_SIZE(bad); i++) {
		int st = tl_nfs_lookup(&e.c, &e.root, bad[i], NULL, NULL);
		ASSERTF(st == NFS3ERR_ACCES, "LOOKUP '%s' in the root: got %s, want ACCES", bad[i],
			tl_nfsstat_name(st));
	}
	env_down(&e);
	return 0;
}

/* ---------- ACCESS ---------- */

#define ACC_ALL (ACCESS3_READ | ACCESS3_LOOKUP | ACCESS3_MODIFY | ACCESS3_EXTEND | \
		 ACCESS3_DELETE | ACCESS3_EXECUTE)

TEST_IMPL(access_by_mode_and_owner)
{
	struct env e;
	struct tl_fh fh;
	uint32_t g;

	env_up(&e, false); /* read-only export */
	tl_client_set_ids(&e.c, 1000, 1000);

	walk_ok(&e, "upfile", &fh, NULL); /* 0644 root */
	ASSERT_NFS(tl_nfs_access(&e.c, &fh, ACC_ALL, &g), NFS3_OK);
	ASSERTF(g & ACCESS3_READ, "0644 file: READ not granted (0x%x)", g);
	ASSERTF(!(g & (ACCESS3_MODIFY | ACCESS3_EXTEND)),
		"read-only export / not owner: MODIFY|EXTEND granted (0x%x)", g);
	ASSERTF(!(g & ACCESS3_EXECUTE), "0644 file: EXECUTE granted (0x%x)", g);

	walk_ok(&e, "secret", &fh, NULL); /* 0600 root */
	ASSERT_NFS(tl_nfs_access(&e.c, &fh, ACCESS3_READ, &g), NFS3_OK);
	ASSERTF(!(g & ACCESS3_READ), "0600 root file, uid 1000: READ granted (0x%x)", g);

	walk_ok(&e, "mine", &fh, NULL); /* 0600 1000:1000 */
	ASSERT_NFS(tl_nfs_access(&e.c, &fh, ACC_ALL, &g), NFS3_OK);
	ASSERTF(g & ACCESS3_READ, "0600 file owned by the caller: READ not granted (0x%x)", g);
	ASSERTF(!(g & ACCESS3_MODIFY), "read-only export: MODIFY granted (0x%x)", g);

	ASSERT_NFS(tl_nfs_access(&e.c, &e.root, ACC_ALL, &g), NFS3_OK);
	ASSERTF((g & (ACCESS3_LOOKUP | ACCESS3_READ)) == (ACCESS3_LOOKUP | ACCESS3_READ),
		"0755 dir: LOOKUP|READ not granted (0x%x)", g);
	ASSERTF(!(g & (ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE)),
		"read-only export dir: change rights granted (0x%x)", g);
	/* only what was asked is answered */
	ASSERT_NFS(tl_nfs_access(&e.c, &e.root, ACCESS3_LOOKUP, &g), NFS3_OK);
	ASSERT_EQ(g & ~(uint32_t)ACCESS3_LOOKUP, 0);
	env_down(&e);
	return 0;
}

/* ---------- READLINK ---------- */

TEST_IMPL(readlink_target_and_inval)
{
	struct env e;
	struct tl_fh fh;
	char buf[1024];

	env_up(&e, true);
	walk_ok(&e, "link", &fh, NULL);
	ASSERT_NFS(tl_nfs_readlink(&e.c, &fh, buf, sizeof(buf)), NFS3_OK);
	ASSERT_STREQ(buf, "d/a");
	walk_ok(&e, "upfile", &fh, NULL);
	ASSERT_NFS(tl_nfs_readlink(&e.c, &fh, buf, sizeof(buf)), NFS3ERR_INVAL);
	ASSERT_NFS(tl_nfs_readlink(&e.c, &e.root, buf, sizeof(buf)), NFS3ERR_INVAL);
	env_down(&e);
	return 0;
}

/* ---------- READ ---------- */

TEST_IMPL(read_eof_and_short_reads)
{
	struct env e;
	struct tl_fh fh;
	char buf[256];
	uint32_t got;
	bool eof;

	env_up(&e, true);
	walk_ok(&e, "small", &fh, NULL); /* "hello world\n", 12 bytes */
	ASSERT_NFS(tl_nfs_read(&e.c, &fh, 0, 5, buf, &got, &eof), NFS3_OK);
	ASSERT_EQ(got, 5);
	ASSERT(memcmp(buf, "hello", 5) == 0);
	ASSERTF(!eof, "READ 0+5 of 12 bytes: eof set");
	/* short read at EOF */
	ASSERT_NFS(tl_nfs_read(&e.c, &fh, 7, 100, buf, &got, &eof), NFS3_OK);
	ASSERT_EQ(got, 5);
	ASSERT(memcmp(buf, "orld\n", 5) == 0);
	ASSERTF(eof, "READ 7+100 of 12 bytes: eof not set");
	/* exactly to the end */
	ASSERT_NFS(tl_nfs_read(&e.c, &fh, 0, 12, buf, &got, &eof), NFS3_OK);
	ASSERT_EQ(got, 12);
	ASSERTF(eof, "READ 0+12 of 12 bytes: eof not set");
	/* at and past EOF */
	ASSERT_NFS(tl_nfs_read(&e.c, &fh, 12, 10, buf, &got, &eof), NFS3_OK);
	ASSERT_EQ(got, 0);
	ASSERT(eof);
	ASSERT_NFS(tl_nfs_read(&e.c, &fh, 1000000, 10, buf, &got, &eof), NFS3_OK);
	ASSERT_EQ(got, 0);
	ASSERT(eof);
	/* zero-length read in the middle */
	ASSERT_NFS(tl_nfs_read(&e.c, &fh, 3, 0, buf, &got, &eof), NFS3_OK);
	ASSERT_EQ(got, 0);
	/* empty file */
	walk_ok(&e, "empty", &fh, NULL);
	ASSERT_NFS(tl_nfs_read(&e.c, &fh, 0, 10, buf, &got, &eof), NFS3_OK);
	ASSERT_EQ(got, 0);
	ASSERT(eof);
	env_down(&e);
	return 0;
}

TEST_IMPL(read_big_file_in_chunks)
{
	struct env e;
	struct tl_fh fh;
	static uint8_t buf[65536];
	uint64_t off = 0;
	bool eof = false;
	int calls = 0;

	env_up(&e, true);
	walk_ok(&e, "big", &fh, NULL);
	/* An odd chunk size: chunks straddle every page boundary. */
	while (!eof) {
		uint32_t got;

		ASSERTF(++calls < 100, "READ loop did not end (offset %llu)",
			(unsigned long long)off);
		ASSERT_NFS(tl_nfs_read(&e.c, &fh, off, 8191, buf, &got, &eof), NFS3_OK);
		ASSERTF(got != UINT32_MAX, "READ count differs from the data length");
		ASSERTF(got == 8191 || eof, "short READ (%u bytes at %llu) without eof", got,
			(unsigned long long)off);
		for (uint32_t i = 0; i < got; i++)
			ASSERTF(buf[i] == tl_big_byte(off + i), "byte %llu differs",
				(unsigned long long)(off + i));
		off += got;
	}
	ASSERT_EQ(off, TL_BIG_SIZE);
	/* one large read */
	ASSERT_NFS(tl_nfs_read(&e.c, &fh, 0, sizeof(buf), buf, &(uint32_t){ 0 }, &eof),
		   NFS3_OK);
	ASSERT(!eof);
	env_down(&e);
	return 0;
}

TEST_IMPL(read_isdir_and_inval)
{
	struct env e;
	struct tl_fh fh;
	char buf[16];
	uint32_t got;
	bool eof;

	env_up(&e, true);
	ASSERT_NFS(tl_nfs_read(&e.c, &e.root, 0, 10, buf, &got, &eof), NFS3ERR_ISDIR);
	walk_ok(&e, "d", &fh, NULL);
	ASSERT_NFS(tl_nfs_read(&e.c, &fh, 0, 10, buf, &got, &eof), NFS3ERR_ISDIR);
	walk_ok(&e, "link", &fh, NULL);
	ASSERT_NFS(tl_nfs_read(&e.c, &fh, 0, 10, buf, &got, &eof), NFS3ERR_INVAL);
	env_down(&e);
	return 0;
}

/* ---------- FSSTAT, FSINFO, PATHCONF ---------- */

TEST_IMPL(fsstat_fsinfo_pathconf)
{
	struct env e;
	FSSTAT3resok fs;
	FSINFO3resok fi;
	PATHCONF3resok pc;
	struct tl_fh fh;

	env_up(&e, true);
	ASSERT_NFS(tl_nfs_fsstat(&e.c, &e.root, &fs), NFS3_OK);
	ASSERT(fs.tbytes > 0);
	ASSERT(fs.fbytes <= fs.tbytes);
	ASSERT(fs.abytes <= fs.fbytes);
	ASSERT(fs.ffiles <= fs.tfiles);
	ASSERT(fs.afiles <= fs.ffiles);

	ASSERT_NFS(tl_nfs_fsinfo(&e.c, &e.root, &fi), NFS3_OK);
	ASSERT_EQ(fi.rtmax, 1024 * 1024);
	ASSERT_EQ(fi.wtmax, 1024 * 1024);
	ASSERT(fi.rtpref > 0 && fi.rtpref <= fi.rtmax);
	ASSERT(fi.wtpref > 0 && fi.wtpref <= fi.wtmax);
	ASSERT_EQ(fi.dtpref, 65536);
	ASSERT(fi.maxfilesize > 0);
	ASSERT_EQ(fi.time_delta.seconds, 0);
	ASSERT_EQ(fi.time_delta.nseconds, 1);
	ASSERT_EQ(fi.properties & (FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME),
		  FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME);

	ASSERT_NFS(tl_nfs_pathconf(&e.c, &e.root, &pc), NFS3_OK);
	ASSERT_EQ(pc.name_max, 255);
	ASSERT(pc.linkmax >= 1);
	ASSERT(pc.no_trunc);
	ASSERT(!pc.case_insensitive);
	ASSERT(pc.case_preserving);

	/* also answered for a file inside the export */
	walk_ok(&e, "d/a", &fh, NULL);
	ASSERT_NFS(tl_nfs_fsstat(&e.c, &fh, &fs), NFS3_OK);
	ASSERT_NFS(tl_nfs_fsinfo(&e.c, &fh, &fi), NFS3_OK);
	ASSERT_NFS(tl_nfs_pathconf(&e.c, &fh, &pc), NFS3_OK);
	env_down(&e);
	return 0;
}

/* ---------- mutations ---------- */

TEST_IMPL(rofs_every_mutation)
{
	struct env e;
	struct tl_fh file, dir;
	int st;

	env_up(&e, false);
	walk_ok(&e, "upfile", &file, NULL);
	walk_ok(&e, "d", &dir, NULL);
	ASSERT_NFS(tl_nfs_setattr_mode(&e.c, &file, 0600), NFS3ERR_ROFS);
	ASSERT_NFS(tl_nfs_write(&e.c, &file, 0, "x", 1), NFS3ERR_ROFS);
	ASSERT_NFS(tl_nfs_create(&e.c, &dir, "new"), NFS3ERR_ROFS);
	ASSERT_NFS(tl_nfs_mkdir(&e.c, &dir, "newdir"), NFS3ERR_ROFS);
	ASSERT_NFS(tl_nfs_symlink(&e.c, &dir, "newlink", "target"), NFS3ERR_ROFS);
	ASSERT_NFS(tl_nfs_mknod_fifo(&e.c, &dir, "fifo"), NFS3ERR_ROFS);
	ASSERT_NFS(tl_nfs_remove(&e.c, &dir, "a"), NFS3ERR_ROFS);
	ASSERT_NFS(tl_nfs_rmdir(&e.c, &dir, "sub"), NFS3ERR_ROFS);
	ASSERT_NFS(tl_nfs_rename(&e.c, &dir, "a", &dir, "a2"), NFS3ERR_ROFS);
	ASSERT_NFS(tl_nfs_link(&e.c, &file, &dir, "hard"), NFS3ERR_ROFS);
	st = tl_nfs_commit(&e.c, &file);
	ASSERTF(st == NFS3ERR_ROFS || st == NFS3_OK, "COMMIT on a read-only export: %s",
		tl_nfsstat_name(st));
	/* nothing changed on disk */
	{
		char p[PATH_MAX];
		struct stat sb;
		tl_join(p, sizeof(p), e.t.upper, "d/new");
		ASSERT(lstat(p, &sb) < 0 && errno == ENOENT);
		tl_join(p, sizeof(p), e.t.upper, "d/a");
		ASSERT(lstat(p, &sb) == 0);
	}
	/* and the files still read the same */
	read_all_small(&e, "d/a", "up-a");
	env_down(&e);
	return 0;
}

TEST_IMPL(mutations_never_notsupp)
{
	struct env e;
	struct tl_fh file, dir;
	int st[11];

	env_up(&e, true);
	walk_ok(&e, "upfile", &file, NULL);
	walk_ok(&e, "d", &dir, NULL);
	st[0] = tl_nfs_setattr_mode(&e.c, &file, 0600);
	st[1] = tl_nfs_write(&e.c, &file, 0, "x", 1);
	st[2] = tl_nfs_create(&e.c, &dir, "new");
	st[3] = tl_nfs_mkdir(&e.c, &dir, "newdir");
	st[4] = tl_nfs_symlink(&e.c, &dir, "newlink", "target");
	st[5] = tl_nfs_mknod_fifo(&e.c, &dir, "fifo");
	st[6] = tl_nfs_remove(&e.c, &dir, "c");
	st[7] = tl_nfs_rmdir(&e.c, &dir, "sub");
	st[8] = tl_nfs_rename(&e.c, &dir, "only_bottom", &dir, "moved");
	st[9] = tl_nfs_link(&e.c, &file, &dir, "hard");
	st[10] = tl_nfs_commit(&e.c, &file);
	for (int i = 0; i < 11; i++) {
		ASSERTF(st[i] >= 0, "mutation %d: RPC-level failure: %s", i, e.c.err);
		ASSERTF(st[i] != NFS3ERR_NOTSUPP, "mutation %d answered NOTSUPP", i);
	}
	env_down(&e);
	return 0;
}

/* ---------- MOUNT ---------- */

TEST_IMPL(mount_root_flavors)
{
	struct env e;
	struct tl_fh fh;
	int flavors[8], n = 0;
	bool sys = false;
	fattr3 a, r;

	env_up(&e, true);
	ASSERT_NFS(tl_mnt(&e.c, "/", &fh, flavors, &n, 8), MNT3_OK);
	ASSERT(fh.len > 0 && fh.len <= 64);
	for (int i = 0; i < n && i < 8; i++)
		sys |= flavors[i] == 1;
	ASSERTF(sys, "MNT: AUTH_SYS not among the %d flavors", n);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &fh, &a), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &e.root, &r), NFS3_OK);
	ASSERT_EQ(a.fileid, r.fileid);
	env_down(&e);
	return 0;
}

TEST_IMPL(mount_subdirectory)
{
	struct env e;
	struct tl_fh fh, viafh;
	fattr3 a, b;

	env_up(&e, true);
	ASSERT_NFS(tl_mnt(&e.c, "/sub", &fh, NULL, NULL, 0), MNT3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &fh, &a), NFS3_OK);
	walk_ok(&e, "sub", &viafh, &b);
	ASSERT_EQ(a.type, NF3DIR);
	ASSERT_EQ(a.fileid, b.fileid);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &fh, "inner", NULL, NULL), NFS3_OK);
	/* deeper, and through a merged dir */
	ASSERT_NFS(tl_mnt(&e.c, "/sub/deeper", &fh, NULL, NULL, 0), MNT3_OK);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &fh, "f", NULL, NULL), NFS3_OK);
	ASSERT_NFS(tl_mnt(&e.c, "/d/sub", &fh, NULL, NULL, 0), MNT3_OK);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &fh, "x", NULL, NULL), NFS3_OK);
	env_down(&e);
	return 0;
}

TEST_IMPL(mount_missing_path_fails)
{
	struct env e;
	struct tl_fh fh;
	int st;

	env_up(&e, true);
	ASSERT_NFS(tl_mnt(&e.c, "/nosuch", &fh, NULL, NULL, 0), MNT3ERR_NOENT);
	ASSERT_NFS(tl_mnt(&e.c, "/d/gone", &fh, NULL, NULL, 0), MNT3ERR_NOENT);
	ASSERT_NFS(tl_mnt(&e.c, "/opq/hidden1", &fh, NULL, NULL, 0), MNT3ERR_NOENT);
	st = tl_mnt(&e.c, "/upfile", &fh, NULL, NULL, 0);
	ASSERTF(st == MNT3ERR_NOTDIR, "MNT of a file: got %d, want MNT3ERR_NOTDIR", st);
	/* a path outside the export is refused */
	st = tl_mnt(&e.c, "/../../etc", &fh, NULL, NULL, 0);
	ASSERTF(st != MNT3_OK, "MNT of '/../../etc' succeeded");
	env_down(&e);
	return 0;
}

TEST_IMPL(mount_export_dump_umnt)
{
	struct env e;
	char **dirs;
	int n, nd;
	bool found = false;

	env_up(&e, true);
	ASSERT_NFS(tl_mount_export(&e.c, &dirs, &n), 0);
	for (int i = 0; i < n; i++)
		found |= strcmp(dirs[i], "/") == 0;
	ASSERTF(found, "EXPORT does not list '/' (%d entries)", n);
	tl_strv_free(dirs, n);
	ASSERT_NFS(tl_mount_dump(&e.c, &nd), 0);
	ASSERT_NFS(tl_umnt(&e.c, "/"), 0);
	ASSERT_NFS(tl_umntall(&e.c), 0);
	/* the handle stays usable after UMNT: NFS has no open state */
	ASSERT_NFS(tl_nfs_getattr(&e.c, &e.root, &(fattr3){ 0 }), NFS3_OK);
	env_down(&e);
	return 0;
}

TEST_IMPL(mount_export_path_option)
{
	struct tl_tree t;
	struct tl_server s;
	struct tl_client c;
	struct tl_fh fh;
	char opts[8192];
	char **dirs;
	int n;
	bool found = false;

	tl_fixture_standard(&t);
	tl_tree_opts(&t, true, opts, sizeof(opts));
	tl_server_start(&s, t.root, t.state, opts, "/exp", NULL);
	tl_client_connect(&c, s.port);
	ASSERT_NFS(tl_mount_export(&c, &dirs, &n), 0);
	for (int i = 0; i < n; i++)
		found |= strcmp(dirs[i], "/exp") == 0;
	ASSERTF(found, "EXPORT does not list '/exp'");
	tl_strv_free(dirs, n);
	ASSERT_NFS(tl_mnt(&c, "/exp", &fh, NULL, NULL, 0), MNT3_OK);
	ASSERT_NFS(tl_nfs_lookup(&c, &fh, "upfile", NULL, NULL), NFS3_OK);
	ASSERT_NFS(tl_mnt(&c, "/exp/sub", &fh, NULL, NULL, 0), MNT3_OK);
	ASSERT_NFS(tl_nfs_lookup(&c, &fh, "inner", NULL, NULL), NFS3_OK);
	ASSERTF(tl_mnt(&c, "/other", &fh, NULL, NULL, 0) > 0, "MNT of a path outside the export succeeded");
	ASSERTF(tl_mnt(&c, "/", &fh, NULL, NULL, 0) > 0, "MNT '/' succeeded with --export /exp");
	tl_client_close(&c);
	tl_server_stop(&s);
	tl_tree_free(&t);
	return 0;
}

/* The high-level libnfs API (what nfs-ls/nfs-cp use): mount, stat, read, list. */
TEST_IMPL(libnfs_highlevel_mount_and_read)
{
	struct env e;
	struct nfs_context *nfs;
	struct nfsfh *f = NULL;
	struct nfsdir *dir = NULL;
	struct nfs_stat_64 st;
	char buf[64];
	int n = 0;

	env_up(&e, true);
	nfs = tl_hl_mount(e.s.port, "/");
	ASSERTF(nfs_stat64(nfs, "/d/a", &st) == 0, "stat: %s", nfs_get_error(nfs));
	ASSERT_EQ(st.nfs_size, 4);
	ASSERTF(nfs_open(nfs, "/d/c", O_RDONLY, &f) == 0, "open: %s", nfs_get_error(nfs));
	n = nfs_read(nfs, f, 64, buf);
	ASSERT_EQ(n, 4);
	ASSERT(memcmp(buf, "l0-c", 4) == 0);
	nfs_close(nfs, f);
	ASSERTF(nfs_opendir(nfs, "/d", &dir) == 0, "opendir: %s", nfs_get_error(nfs));
	n = 0;
	for (struct nfsdirent *de; (de = nfs_readdir(nfs, dir)) != NULL;)
		if (strcmp(de->name, ".") && strcmp(de->name, ".."))
			n++;
	nfs_closedir(nfs, dir);
	ASSERT_EQ(n, (int)tl_strv_len(tl_expect_d));
	tl_hl_close(nfs);

	/* a subdirectory mount, as libnfs does for nfs://host/sub */
	nfs = tl_hl_mount(e.s.port, "/sub");
	ASSERTF(nfs_stat64(nfs, "/deeper/f", &st) == 0, "stat in /sub mount: %s",
		nfs_get_error(nfs));
	ASSERT_EQ(st.nfs_size, 4);
	tl_hl_close(nfs);
	env_down(&e);
	return 0;
}

static const struct tl_case cases[] = {
	TEST_ENTRY(null_nfs_and_mount),
	TEST_ENTRY(getattr_root_is_dir),
	TEST_ENTRY(getattr_attrs_from_winning_layer),
	TEST_ENTRY(lookup_dot_and_dotdot),
	TEST_ENTRY(lookup_noent_for_hidden_names),
	TEST_ENTRY(lookup_merged_rules),
	TEST_ENTRY(lookup_notdir_in_file),
	TEST_ENTRY(lookup_nametoolong),
	TEST_ENTRY(lookup_bad_names),
	TEST_ENTRY(access_by_mode_and_owner),
	TEST_ENTRY(readlink_target_and_inval),
	TEST_ENTRY(read_eof_and_short_reads),
	TEST_ENTRY(read_big_file_in_chunks),
	TEST_ENTRY(read_isdir_and_inval),
	TEST_ENTRY(fsstat_fsinfo_pathconf),
	TEST_ENTRY(rofs_every_mutation),
	TEST_ENTRY(mutations_never_notsupp),
	TEST_ENTRY(mount_root_flavors),
	TEST_ENTRY(mount_subdirectory),
	TEST_ENTRY(mount_missing_path_fails),
	TEST_ENTRY(mount_export_dump_umnt),
	TEST_ENTRY(mount_export_path_option),
	TEST_ENTRY(libnfs_highlevel_mount_and_read),
};

int main(int argc, char **argv)
{
	return tl_run(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
