/*
 * test-security.c - what a hostile or broken client may send, against a
 * real ovlnfsd started with a config file: forged, modified and truncated
 * handles (every byte flipped), handles of another export, ".." above an
 * export root, symlinks pointing outside (never followed by the server),
 * names with '/' or NUL, "." and ".." as targets, over-long names and
 * paths, AUTH_NONE on NFS procedures. Each is refused with the right
 * status; after each, the layers on disk are unchanged (a listing of
 * upper and lowers is compared) and the server still answers NULL.
 *
 * Runs as a test process; every case starts its own server on a temp tree
 * and stops it by PID. Includes libnfs headers (never rpcgen's); calls no
 * well-behaved client makes are hand-built records (rawrpc.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nfsclient.h"
#include "rawrpc.h"
#include "testlib.h"

#define MOUNT_PROG 100005
#define NFS_PROG 100003

struct senv {
	struct tl_tree t;
	struct tl_server s;
	struct tl_client c;
	struct tl_fh root;   /* of export /rw */
	struct tl_fh other;  /* root of export /other */
	struct tl_fh file;   /* /rw/f */
	struct tl_fh dir;    /* /rw/d */
	struct tl_fh out;    /* /rw/out -> / (symlink) */
	char conf[PATH_MAX];
	char *listing;       /* owned; the layers at setup */
};

/* upper and both lowers: path, type+mode, owner, size, mtime, link target */
static char *layers_listing(const struct tl_tree *t)
{
	char cmd[PATH_MAX * 4];
	char path[PATH_MAX];
	char *txt = NULL;
	int rc;

	tl_join(path, sizeof(path), t->root, "listing.txt");
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && find upper l0 l1 -printf '%%p %%M %%U:%%G %%s %%T@ %%l\\n' | "
		 "LC_ALL=C sort > '%s'",
		 t->root, path);
	rc = system(cmd);
	ASSERTF(rc == 0, "find failed: %d", rc);
	ASSERT(tl_read_file(path, &txt) > 0);
	return txt;
}

/* Nothing changed on disk and the server still answers. */
static void unchanged(struct senv *e)
{
	char *now = layers_listing(&e->t);

	ASSERTF(strcmp(now, e->listing) == 0, "layers changed:\n--- before\n%s--- after\n%s",
		e->listing, now);
	free(now);
	ASSERT_NFS(tl_nfs_null(&e->c), NFS3_OK);
}

static void write_conf(struct senv *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void write_conf(struct senv *e, const char *fmt, ...)
{
	FILE *f = fopen(e->conf, "w");
	va_list ap;

	ASSERT(f != NULL);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	ASSERT(fclose(f) == 0);
}

/*
 * l0: f, d/{x}, secret 0600, out -> /, abs -> /etc/passwd, up -> ../../..,
 *     dl -> d; l1 (the other export): g
 */
static void senv_up(struct senv *e)
{
	const char *extra[] = { NULL, NULL, NULL };

	memset(e, 0, sizeof(*e));
	tl_tree_new(&e->t, 2);
	tl_write(e->t.lower[0], "f", "content-f", 0644);
	tl_mkdir(e->t.lower[0], "d", 0755);
	tl_write(e->t.lower[0], "d/x", "x", 0644);
	tl_symlink(e->t.lower[0], "out", "/");
	tl_symlink(e->t.lower[0], "abs", "/etc/passwd");
	tl_symlink(e->t.lower[0], "up", "../../..");
	tl_symlink(e->t.lower[0], "dl", "d");
	tl_write(e->t.lower[1], "g", "content-g", 0644);
	tl_join(e->conf, sizeof(e->conf), e->t.root, "ovlnfsd.conf");
	write_conf(e,
		   "[export rw]\npath = /rw\nlowerdir = %s\nupperdir = %s\nworkdir = %s\n"
		   "squash = none\n\n"
		   "[export other]\npath = /other\nlowerdir = %s\n",
		   e->t.lower[0], e->t.upper, e->t.work, e->t.lower[1]);
	extra[0] = "-c";
	extra[1] = e->conf;
	tl_server_start(&e->s, e->t.root, e->t.state, NULL, NULL, extra);
	tl_client_connect(&e->c, e->s.port);
	ASSERT_NFS(tl_mnt(&e->c, "/rw", &e->root, NULL, NULL, 0), 0);
	ASSERT_NFS(tl_mnt(&e->c, "/other", &e->other, NULL, NULL, 0), 0);
	ASSERT_NFS(tl_nfs_lookup(&e->c, &e->root, "f", &e->file, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&e->c, &e->root, "d", &e->dir, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&e->c, &e->root, "out", &e->out, NULL), NFS3_OK);
	e->listing = layers_listing(&e->t);
}

static void senv_down(struct senv *e)
{
	free(e->listing);
	tl_client_close(&e->c);
	tl_server_stop(&e->s);
	tl_tree_free(&e->t);
}

static bool stale_or_bad(int st)
{
	return st == NFS3ERR_STALE || st == NFS3ERR_BADHANDLE;
}

/* ---------- handles ---------- */

/* Every byte of a handle flipped (each bit pattern 0xff, 0x01): STALE or BADHANDLE. */
static void flip_all(struct senv *e, const struct tl_fh *good, bool is_dir)
{
	for (uint32_t i = 0; i < good->len; i++) {
		static const uint8_t masks[] = { 0xff, 0x01, 0x80 };

		for (size_t m = 0; m < sizeof(masks); m++) {
			struct tl_fh fh = *good;
			fattr3 attr;
			int st;

			fh.data[i] ^= masks[m];
			st = tl_nfs_getattr(&e->c, &fh, &attr);
			ASSERTF(stale_or_bad(st), "byte %u ^ 0x%02x: GETATTR %s", i, masks[m],
				tl_nfsstat_name(st));
			if (is_dir && m == 0) {
				st = tl_nfs_create(&e->c, &fh, "forged");
				ASSERTF(stale_or_bad(st), "byte %u: CREATE %s", i, tl_nfsstat_name(st));
				st = tl_nfs_lookup(&e->c, &fh, "x", NULL, NULL);
				ASSERTF(stale_or_bad(st), "byte %u: LOOKUP %s", i, tl_nfsstat_name(st));
			} else if (m == 0) {
				st = tl_nfs_write(&e->c, &fh, 0, "evil", 4);
				ASSERTF(stale_or_bad(st), "byte %u: WRITE %s", i, tl_nfsstat_name(st));
				st = tl_nfs_setattr_mode(&e->c, &fh, 0777);
				ASSERTF(stale_or_bad(st), "byte %u: SETATTR %s", i, tl_nfsstat_name(st));
			}
		}
	}
}

TEST_IMPL(security_handles_every_byte_flipped)
{
	struct senv e;

	senv_up(&e);
	ASSERT(e.root.len > 0 && e.root.len <= 64);
	flip_all(&e, &e.root, true);
	flip_all(&e, &e.dir, true);
	flip_all(&e, &e.file, false);
	flip_all(&e, &e.other, true);
	unchanged(&e);
	senv_down(&e);
	return 0;
}

TEST_IMPL(security_handles_truncated_extended_forged)
{
	struct senv e;
	struct tl_fh fh;
	fattr3 attr;
	int st;

	senv_up(&e);
	for (uint32_t len = 0; len < e.file.len; len++) {
		fh = e.file;
		fh.len = len;
		st = tl_nfs_getattr(&e.c, &fh, &attr);
		ASSERTF(stale_or_bad(st), "length %u: %s", len, tl_nfsstat_name(st));
	}
	for (uint32_t len = e.file.len + 1; len <= 64; len++) {
		fh = e.file;
		memset(fh.data + e.file.len, 0, sizeof(fh.data) - e.file.len);
		fh.len = len;
		st = tl_nfs_getattr(&e.c, &fh, &attr);
		ASSERTF(stale_or_bad(st), "length %u: %s", len, tl_nfsstat_name(st));
	}
	/* all zeros, all ones, random bytes of every length */
	for (uint32_t len = 1; len <= 64; len++) {
		fh.len = len;
		memset(fh.data, 0, len);
		ASSERT(stale_or_bad(tl_nfs_getattr(&e.c, &fh, &attr)));
		memset(fh.data, 0xff, len);
		ASSERT(stale_or_bad(tl_nfs_getattr(&e.c, &fh, &attr)));
		for (uint32_t i = 0; i < len; i++)
			fh.data[i] = (uint8_t)(rand() & 0xff);
		ASSERT(stale_or_bad(tl_nfs_getattr(&e.c, &fh, &attr)));
	}
	/* one export's tail on another's head: the MAC fails */
	if (e.other.len == e.root.len) {
		for (uint32_t cut = 1; cut < e.root.len; cut++) {
			fh = e.root;
			memcpy(fh.data, e.other.data, cut);
			if (memcmp(fh.data, e.root.data, fh.len) == 0 ||
			    memcmp(fh.data, e.other.data, fh.len) == 0)
				continue;
			st = tl_nfs_getattr(&e.c, &fh, &attr);
			ASSERTF(stale_or_bad(st), "spliced at %u: %s", cut, tl_nfsstat_name(st));
		}
	}
	unchanged(&e);
	senv_down(&e);
	return 0;
}

/*
 * Handles name their export: a handle of /other works on a connection
 * that mounted only /rw (the client is allowed on both), and keeps its
 * own export's contents.
 */
TEST_IMPL(security_handle_of_other_export)
{
	struct senv e;
	struct tl_client c2;
	struct tl_fh rw, g;
	fattr3 a_other, a_rw;

	senv_up(&e);
	tl_client_connect(&c2, e.s.port);
	ASSERT_NFS(tl_mnt(&c2, "/rw", &rw, NULL, NULL, 0), 0);
	ASSERT_NFS(tl_nfs_lookup(&c2, &e.other, "g", &g, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&c2, &e.other, "f", NULL, NULL), NFS3ERR_NOENT);
	ASSERT_NFS(tl_nfs_getattr(&c2, &e.other, &a_other), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&c2, &rw, &a_rw), NFS3_OK);
	ASSERT(a_other.fsid != a_rw.fsid);
	/* /other is read-only (no upper): its handle does not borrow /rw's upper */
	ASSERT_NFS(tl_nfs_create(&c2, &e.other, "x"), NFS3ERR_ROFS);
	tl_client_close(&c2);
	unchanged(&e);
	senv_down(&e);
	return 0;
}

/* ---------- names and paths ---------- */

TEST_IMPL(security_dotdot_above_root)
{
	struct senv e;
	struct tl_fh fh, fh2;
	fattr3 a_root, a;

	senv_up(&e);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &e.root, &a_root), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &e.root, "..", &fh, &a), NFS3_OK);
	ASSERT_EQ(a.fileid, a_root.fileid);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &fh, "..", &fh2, &a), NFS3_OK);
	ASSERT_EQ(a.fileid, a_root.fileid);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &fh2, "f", NULL, NULL), NFS3_OK);
	/* from a subdirectory: up twice is still the root */
	ASSERT_NFS(tl_nfs_lookup(&e.c, &e.dir, "..", &fh, &a), NFS3_OK);
	ASSERT_EQ(a.fileid, a_root.fileid);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &fh, "..", &fh, &a), NFS3_OK);
	ASSERT_EQ(a.fileid, a_root.fileid);
	/* MNT cannot climb out either */
	ASSERT_NFS(tl_mnt(&e.c, "/rw/../..", &fh, NULL, NULL, 0), 13 /* MNT3ERR_ACCES */);
	ASSERT_NFS(tl_mnt(&e.c, "/..", &fh, NULL, NULL, 0), 13);
	ASSERT_NFS(tl_mnt(&e.c, "/rw/d/../../other", &fh, NULL, NULL, 0), 0);
	ASSERT(fh.len == e.other.len && memcmp(fh.data, e.other.data, fh.len) == 0);
	unchanged(&e);
	senv_down(&e);
	return 0;
}

TEST_IMPL(security_symlinks_never_followed)
{
	struct senv e;
	struct tl_fh fh;
	char buf[256];

	senv_up(&e);
	/* a symlink is never a directory to LOOKUP, wherever it points */
	ASSERT_NFS(tl_nfs_lookup(&e.c, &e.out, "etc", NULL, NULL), NFS3ERR_NOTDIR);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &e.out, "..", NULL, NULL), NFS3ERR_NOTDIR);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &e.root, "up", &fh, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &fh, "..", NULL, NULL), NFS3ERR_NOTDIR);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &e.root, "dl", &fh, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &fh, "x", NULL, NULL), NFS3ERR_NOTDIR);
	/* READLINK returns the text only */
	ASSERT_NFS(tl_nfs_readlink(&e.c, &e.out, buf, sizeof(buf)), NFS3_OK);
	ASSERT_STREQ(buf, "/");
	ASSERT_NFS(tl_nfs_lookup(&e.c, &e.root, "abs", &fh, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_readlink(&e.c, &fh, buf, sizeof(buf)), NFS3_OK);
	ASSERT_STREQ(buf, "/etc/passwd");
	{
		/* READ of the symlink is not a read of its target */
		uint8_t data[64];
		uint32_t got = 0;
		bool eof = false;
		int st = tl_nfs_read(&e.c, &fh, 0, sizeof(data), data, &got, &eof);

		ASSERTF(st == NFS3ERR_INVAL || st == NFS3ERR_ISDIR, "READ of a symlink: %s",
			tl_nfsstat_name(st));
	}
	/* writes through a symlink are not writes to its target */
	ASSERT(tl_nfs_write(&e.c, &fh, 0, "evil", 4) != NFS3_OK);
	ASSERT(tl_nfs_create(&e.c, &e.out, "evil") != NFS3_OK);
	/*
	 * MNT follows symlinks as Linux's mountd does, but only inside the
	 * export (test-mount-symlink.c): "/" is the export's own root, never
	 * the server's, and ../../.. leads outside (MNT3ERR_ACCES).
	 */
	ASSERT_NFS(tl_mnt(&e.c, "/rw/out", &fh, NULL, NULL, 0), MNT3_OK);
	ASSERT(fh.len == e.root.len && memcmp(fh.data, e.root.data, fh.len) == 0);
	ASSERT_NFS(tl_mnt(&e.c, "/rw/out/etc", &fh, NULL, NULL, 0), MNT3ERR_NOENT);
	ASSERT_NFS(tl_mnt(&e.c, "/rw/up", &fh, NULL, NULL, 0), MNT3ERR_ACCES);
	ASSERT_NFS(tl_mnt(&e.c, "/rw/dl", &fh, NULL, NULL, 0), MNT3_OK);
	ASSERT(fh.len == e.dir.len && memcmp(fh.data, e.dir.data, fh.len) == 0);
	unchanged(&e);
	senv_down(&e);
	return 0;
}

TEST_IMPL(security_bad_names)
{
	struct senv e;
	char name[300];
	int st;

	senv_up(&e);
	/* '/' inside a name */
	ASSERT_NFS(tl_nfs_lookup(&e.c, &e.root, "d/x", NULL, NULL), NFS3ERR_ACCES);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &e.root, "/", NULL, NULL), NFS3ERR_ACCES);
	st = tl_nfs_create(&e.c, &e.root, "d/evil");
	ASSERTF(st == NFS3ERR_ACCES || st == NFS3ERR_INVAL, "CREATE d/evil: %s", tl_nfsstat_name(st));
	st = tl_nfs_mkdir(&e.c, &e.root, "../evil");
	ASSERTF(st == NFS3ERR_ACCES || st == NFS3ERR_INVAL, "MKDIR ../evil: %s", tl_nfsstat_name(st));
	st = tl_nfs_rename(&e.c, &e.root, "f", &e.root, "d/f");
	ASSERTF(st == NFS3ERR_ACCES || st == NFS3ERR_INVAL, "RENAME to d/f: %s", tl_nfsstat_name(st));
	st = tl_nfs_symlink(&e.c, &e.root, "a/b", "x");
	ASSERTF(st == NFS3ERR_ACCES || st == NFS3ERR_INVAL, "SYMLINK a/b: %s", tl_nfsstat_name(st));
	st = tl_nfs_link(&e.c, &e.file, &e.root, "d/l");
	ASSERTF(st == NFS3ERR_ACCES || st == NFS3ERR_INVAL, "LINK d/l: %s", tl_nfsstat_name(st));
	/* empty names */
	st = tl_nfs_create(&e.c, &e.root, "");
	ASSERTF(st == NFS3ERR_ACCES || st == NFS3ERR_INVAL || st == NFS3ERR_NOENT,
		"CREATE '': %s", tl_nfsstat_name(st));
	/* "." and ".." as targets */
	ASSERT_NFS(tl_nfs_create(&e.c, &e.root, "."), NFS3ERR_EXIST);
	ASSERT_NFS(tl_nfs_create(&e.c, &e.root, ".."), NFS3ERR_EXIST);
	ASSERT_NFS(tl_nfs_mkdir(&e.c, &e.root, "."), NFS3ERR_EXIST);
	ASSERT_NFS(tl_nfs_mkdir(&e.c, &e.dir, ".."), NFS3ERR_EXIST);
	ASSERT_NFS(tl_nfs_symlink(&e.c, &e.root, ".", "x"), NFS3ERR_EXIST);
	st = tl_nfs_rename(&e.c, &e.root, "f", &e.dir, ".");
	ASSERTF(st == NFS3ERR_EXIST || st == NFS3ERR_INVAL, "RENAME f -> .: %s",
		tl_nfsstat_name(st));
	st = tl_nfs_rename(&e.c, &e.root, "f", &e.dir, "..");
	ASSERTF(st == NFS3ERR_EXIST || st == NFS3ERR_INVAL, "RENAME f -> ..: %s",
		tl_nfsstat_name(st));
	st = tl_nfs_rename(&e.c, &e.dir, ".", &e.root, "moved");
	ASSERTF(st == NFS3ERR_EXIST || st == NFS3ERR_INVAL, "RENAME . -> moved: %s",
		tl_nfsstat_name(st));
	st = tl_nfs_rename(&e.c, &e.dir, "..", &e.root, "moved");
	ASSERTF(st == NFS3ERR_EXIST || st == NFS3ERR_INVAL, "RENAME .. -> moved: %s",
		tl_nfsstat_name(st));
	st = tl_nfs_link(&e.c, &e.file, &e.root, ".");
	ASSERTF(st == NFS3ERR_EXIST || st == NFS3ERR_INVAL, "LINK .: %s", tl_nfsstat_name(st));
	st = tl_nfs_rmdir(&e.c, &e.dir, ".");
	ASSERTF(st == NFS3ERR_INVAL || st == NFS3ERR_NOTEMPTY || st == NFS3ERR_EXIST,
		"RMDIR .: %s", tl_nfsstat_name(st));
	st = tl_nfs_rmdir(&e.c, &e.dir, "..");
	ASSERTF(st == NFS3ERR_INVAL || st == NFS3ERR_NOTEMPTY || st == NFS3ERR_EXIST,
		"RMDIR ..: %s", tl_nfsstat_name(st));
	st = tl_nfs_remove(&e.c, &e.root, ".");
	ASSERTF(st == NFS3ERR_ISDIR || st == NFS3ERR_INVAL || st == NFS3ERR_EXIST,
		"REMOVE .: %s", tl_nfsstat_name(st));
	/* over-long names: 255 is fine to ask about, 256 is NAMETOOLONG */
	memset(name, 'n', 255);
	name[255] = '\0';
	ASSERT_NFS(tl_nfs_lookup(&e.c, &e.root, name, NULL, NULL), NFS3ERR_NOENT);
	memset(name, 'n', 256);
	name[256] = '\0';
	ASSERT_NFS(tl_nfs_lookup(&e.c, &e.root, name, NULL, NULL), NFS3ERR_NAMETOOLONG);
	ASSERT_NFS(tl_nfs_create(&e.c, &e.root, name), NFS3ERR_NAMETOOLONG);
	ASSERT_NFS(tl_nfs_mkdir(&e.c, &e.root, name), NFS3ERR_NAMETOOLONG);
	ASSERT_NFS(tl_nfs_symlink(&e.c, &e.root, name, "x"), NFS3ERR_NAMETOOLONG);
	ASSERT_NFS(tl_nfs_rename(&e.c, &e.root, "f", &e.root, name), NFS3ERR_NAMETOOLONG);
	ASSERT_NFS(tl_nfs_link(&e.c, &e.file, &e.root, name), NFS3ERR_NAMETOOLONG);
	unchanged(&e);
	senv_down(&e);
	return 0;
}

TEST_IMPL(security_long_paths)
{
	struct senv e;
	static char target[8192];
	struct tl_fh fh;
	int st;

	senv_up(&e);
	/* a symlink target longer than PATH_MAX */
	memset(target, 'a', sizeof(target) - 1);
	for (size_t i = 100; i < sizeof(target) - 1; i += 100)
		target[i] = '/';
	target[sizeof(target) - 1] = '\0';
	st = tl_nfs_symlink(&e.c, &e.root, "longlink", target);
	ASSERTF(st == NFS3ERR_NAMETOOLONG || st == -1, "SYMLINK 8 KiB target: %s",
		tl_nfsstat_name(st));
	/* a MOUNT path over MNTPATHLEN (1024): refused by XDR or as too long */
	{
		static char p[3000];

		p[0] = '/';
		memset(p + 1, 'x', sizeof(p) - 2);
		st = tl_mnt(&e.c, p, &fh, NULL, NULL, 0);
		ASSERTF(st != 0, "MNT of a 3000-byte path: %d", st);
		memcpy(p, "/rw/", 4);
		for (size_t i = 4; i + 2 < 1000; i += 2)
			memcpy(p + i, "d/", 2);
		p[999] = '\0';
		st = tl_mnt(&e.c, p, &fh, NULL, NULL, 0);
		ASSERTF(st == 2 /* NOENT */ || st == 20 /* NOTDIR */, "MNT d/d/d...: %d", st);
	}
	unchanged(&e);
	senv_down(&e);
	return 0;
}

/* ---------- raw: NUL in names, AUTH_NONE ---------- */

static uint32_t xid = 0x7000;

/* LOOKUP with a name given as raw bytes (may hold NUL); nfsstat3 or -1. */
static int raw_lookup(int fd, const struct tl_fh *dir, const void *name, uint32_t len,
		      uint32_t flavor, struct tl_reply *out)
{
	struct tl_buf b = { 0 };
	struct tl_reply r;
	uint8_t *rec = NULL;
	struct tl_rd rd;
	int st;

	tl_put_call(&b, xid++, 2, NFS_PROG, 3, 3, flavor, 0, 0, 0);
	tl_put_opaque(&b, dir->data, dir->len);
	tl_put_opaque(&b, name, len);
	tl_tcp_call(fd, &b, &rec, &r);
	tl_buf_free(&b);
	if (out)
		*out = r;
	if (!r.accepted || r.accept_stat != TL_SUCCESS) {
		free(rec);
		return -1;
	}
	rd = (struct tl_rd){ .p = r.body, .len = r.body_len };
	st = (int)tl_get_u32(&rd);
	free(rec);
	return st;
}

TEST_IMPL(security_nul_in_names)
{
	struct senv e;
	int fd, st;

	senv_up(&e);
	fd = tl_tcp_connect(e.s.port);
	ASSERT(fd >= 0);
	ASSERT_EQ(raw_lookup(fd, &e.root, "f", 1, TL_AUTH_SYS, NULL), NFS3_OK);
	/* "f\0x" must not be taken as "f" */
	st = raw_lookup(fd, &e.root, "f\0x", 3, TL_AUTH_SYS, NULL);
	ASSERTF(st != NFS3_OK, "LOOKUP \"f\\0x\" found f");
	st = raw_lookup(fd, &e.root, "d\0/x", 4, TL_AUTH_SYS, NULL);
	ASSERTF(st != NFS3_OK, "LOOKUP \"d\\0/x\" found something");
	st = raw_lookup(fd, &e.root, "\0", 1, TL_AUTH_SYS, NULL);
	ASSERTF(st != NFS3_OK, "LOOKUP \"\\0\" found something");
	close(fd);
	unchanged(&e);
	senv_down(&e);
	return 0;
}

TEST_IMPL(security_auth_none_too_weak)
{
	struct senv e;
	struct tl_reply r;
	struct tl_buf b = { 0 };
	uint8_t *rec = NULL;
	int fd;

	senv_up(&e);
	fd = tl_tcp_connect(e.s.port);
	ASSERT(fd >= 0);
	ASSERT_EQ(raw_lookup(fd, &e.root, "f", 1, TL_AUTH_NONE, &r), -1);
	ASSERT(!r.accepted);
	ASSERT_EQ(r.reject_stat, TL_AUTH_ERROR);
	ASSERT_EQ(r.auth_stat, TL_AUTH_TOOWEAK);
	/* MNT with AUTH_NONE too; NULL and EXPORT are fine */
	tl_put_call(&b, xid++, 2, MOUNT_PROG, 3, 1, TL_AUTH_NONE, 0, 0, 0);
	tl_put_opaque(&b, "/rw", 3);
	tl_tcp_call(fd, &b, &rec, &r);
	tl_buf_free(&b);
	free(rec);
	ASSERT(!r.accepted && r.reject_stat == TL_AUTH_ERROR && r.auth_stat == TL_AUTH_TOOWEAK);
	tl_put_call(&b, xid++, 2, NFS_PROG, 3, 0, TL_AUTH_NONE, 0, 0, 0);
	tl_tcp_call(fd, &b, &rec, &r);
	tl_buf_free(&b);
	free(rec);
	ASSERT(r.accepted && r.accept_stat == TL_SUCCESS);
	/* the same connection still works with AUTH_SYS */
	ASSERT_EQ(raw_lookup(fd, &e.root, "f", 1, TL_AUTH_SYS, NULL), NFS3_OK);
	close(fd);
	unchanged(&e);
	senv_down(&e);
	return 0;
}

static const struct tl_case cases[] = {
	TEST_ENTRY_TIMEOUT(security_handles_every_byte_flipped, 300),
	TEST_ENTRY_TIMEOUT(security_handles_truncated_extended_forged, 120),
	TEST_ENTRY(security_handle_of_other_export),
	TEST_ENTRY(security_dotdot_above_root),
	TEST_ENTRY(security_symlinks_never_followed),
	TEST_ENTRY(security_bad_names),
	TEST_ENTRY(security_long_paths),
	TEST_ENTRY(security_nul_in_names),
	TEST_ENTRY(security_auth_none_too_weak),
};

int main(int argc, char **argv)
{
	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
