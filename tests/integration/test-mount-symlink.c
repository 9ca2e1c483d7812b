/*
 * test-mount-symlink.c - MNT through symlinks inside the export, as Linux's
 * mountd resolves paths (realpath): EXPORT/link/sub with link -> dir mounts
 * the directory it leads to (the same handle as MNT of EXPORT/dir/sub),
 * relative and absolute (from the export root) targets, chains, links in
 * the upper layer; a link that leads outside the export is refused with
 * MNT3ERR_ACCES and logged; loops end (MNT3ERR_INVAL, 40 links); a link to
 * a file is NOTDIR, a dangling one NOENT.
 */
#include <stdlib.h>
#include <string.h>

#include "nfsclient.h"
#include "testlib.h"

static int log_count(const struct tl_server *s, const char *needle)
{
	char *txt = NULL;
	int n = 0;

	if (tl_read_file(s->log, &txt) > 0) {
		for (char *p = txt; (p = strstr(p, needle)) != NULL; p += strlen(needle))
			n++;
	}
	free(txt);
	return n;
}

static bool same_fh(const struct tl_fh *a, const struct tl_fh *b)
{
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static void build(struct tl_tree *t)
{
	const char *lo, *up;

	tl_tree_new(t, 2);
	lo = t->lower[0];
	up = t->upper;
	tl_mkdir_p(t->lower[1], "dir/sub");
	tl_write(t->lower[1], "dir/sub/file", "x", 0644);
	tl_mkdir(t->lower[1], "other", 0755);
	tl_symlink(lo, "link", "dir");                 /* relative */
	tl_symlink(lo, "abs", "/dir/sub");             /* absolute: from the export root */
	tl_symlink(lo, "chain1", "chain2");
	tl_symlink(lo, "chain2", "./link/");
	tl_symlink(t->lower[1], "dir/back", "../other"); /* .. inside the export */
	tl_symlink(lo, "out", "../..");                /* above the root */
	tl_symlink(t->lower[1], "dir/esc", "../../../etc");
	tl_symlink(lo, "loop1", "loop2");
	tl_symlink(lo, "loop2", "loop1");
	tl_symlink(lo, "fileln", "dir/sub/file");
	tl_symlink(lo, "dangling", "nowhere");
	tl_symlink(up, "uplink", "dir/sub");           /* a link of the upper layer */
}

TEST_IMPL(mount_follows_symlinks_inside_export)
{
	struct tl_tree t;
	struct tl_server s;
	struct tl_client c;
	struct tl_fh sub, other, fh;
	char opts[8192];

	build(&t);
	tl_tree_opts(&t, true, opts, sizeof(opts));
	tl_server_start(&s, t.root, t.state, opts, NULL, NULL);
	tl_client_connect(&c, s.port);

	ASSERT_NFS(tl_mnt(&c, "/dir/sub", &sub, NULL, NULL, 0), MNT3_OK);
	ASSERT_NFS(tl_mnt(&c, "/other", &other, NULL, NULL, 0), MNT3_OK);

	ASSERT_NFS(tl_mnt(&c, "/link/sub", &fh, NULL, NULL, 0), MNT3_OK);
	ASSERTF(same_fh(&fh, &sub), "/link/sub is not /dir/sub");
	ASSERT_NFS(tl_mnt(&c, "/abs", &fh, NULL, NULL, 0), MNT3_OK);
	ASSERTF(same_fh(&fh, &sub), "/abs (-> /dir/sub) is not /dir/sub");
	ASSERT_NFS(tl_mnt(&c, "/chain1/sub", &fh, NULL, NULL, 0), MNT3_OK);
	ASSERTF(same_fh(&fh, &sub), "/chain1/sub is not /dir/sub");
	ASSERT_NFS(tl_mnt(&c, "/link/back", &fh, NULL, NULL, 0), MNT3_OK);
	ASSERTF(same_fh(&fh, &other), "/link/back (-> ../other) is not /other");
	ASSERT_NFS(tl_mnt(&c, "/uplink", &fh, NULL, NULL, 0), MNT3_OK);
	ASSERTF(same_fh(&fh, &sub), "/uplink (upper layer) is not /dir/sub");
	/* what was mounted works: the file below it */
	ASSERT_NFS(tl_nfs_lookup(&c, &fh, "file", &other, NULL), NFS3_OK);

	ASSERT_NFS(tl_mnt(&c, "/out", &fh, NULL, NULL, 0), MNT3ERR_ACCES);
	ASSERT_NFS(tl_mnt(&c, "/link/esc", &fh, NULL, NULL, 0), MNT3ERR_ACCES);
	ASSERT_EQ(log_count(&s, "leads outside export"), 2);
	ASSERT_NFS(tl_mnt(&c, "/loop1", &fh, NULL, NULL, 0), MNT3ERR_INVAL);
	ASSERT(log_count(&s, "more than 40 symlinks") == 1);
	ASSERT_NFS(tl_mnt(&c, "/fileln", &fh, NULL, NULL, 0), MNT3ERR_NOTDIR);
	ASSERT_NFS(tl_mnt(&c, "/dangling", &fh, NULL, NULL, 0), MNT3ERR_NOENT);

	tl_client_close(&c);
	tl_server_stop(&s);
	tl_tree_free(&t);
	return 0;
}

/* The same below an export path: /exp/link/sub; the root of /exp is the limit. */
TEST_IMPL(mount_symlink_export_path)
{
	struct tl_tree t;
	struct tl_server s;
	struct tl_client c;
	struct tl_fh sub, fh;
	char opts[8192];

	build(&t);
	tl_tree_opts(&t, false, opts, sizeof(opts));
	tl_server_start(&s, t.root, t.state, opts, "/exp", NULL);
	tl_client_connect(&c, s.port);
	ASSERT_NFS(tl_mnt(&c, "/exp/dir/sub", &sub, NULL, NULL, 0), MNT3_OK);
	ASSERT_NFS(tl_mnt(&c, "/exp/link/sub", &fh, NULL, NULL, 0), MNT3_OK);
	ASSERT(same_fh(&fh, &sub));
	ASSERT_NFS(tl_mnt(&c, "/exp/abs", &fh, NULL, NULL, 0), MNT3_OK);
	ASSERT(same_fh(&fh, &sub));
	ASSERT_NFS(tl_mnt(&c, "/exp/out", &fh, NULL, NULL, 0), MNT3ERR_ACCES);
	ASSERT_EQ(log_count(&s, "leads outside export"), 1);
	tl_client_close(&c);
	tl_server_stop(&s);
	tl_tree_free(&t);
	return 0;
}

static const struct tl_case cases[] = {
	TEST_ENTRY(mount_follows_symlinks_inside_export),
	TEST_ENTRY(mount_symlink_export_path),
};

int main(int argc, char **argv)
{
	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
