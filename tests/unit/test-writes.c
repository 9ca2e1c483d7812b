/*
 * test-writes.c - the write path of the overlay engine on real layers,
 * through overlay.h: copy-up (data, origin, index, impure), whiteouts for
 * removed lower names, opaque directories, redirects for renamed lower
 * directories, handles that survive copy-up, rename and restart, and
 * STALE for removed objects. The kernel overlay comparison of the same
 * scenarios lives in tests/oracle; this test pins the engine itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "ovlnfsd/overlay.h"
#include "../../server/overlay/internal.h"
#include "unit.h"

static char root[128];

static void sh(const char *cmd)
{
	char buf[2048];
	snprintf(buf, sizeof(buf), "cd %s && %s", root, cmd);
	if (system(buf) != 0) {
		fprintf(stderr, "setup failed: %s\n", buf);
		exit(1);
	}
}

static struct onfs_export *open_ex(void)
{
	struct onfs_export_conf c = { 0 };
	struct onfs_export *ex = NULL;
	char l1[200], l2[200], u[200], w[200], err[512];

	snprintf(l1, sizeof(l1), "%s/l1", root);
	snprintf(l2, sizeof(l2), "%s/l2", root);
	snprintf(u, sizeof(u), "%s/u", root);
	snprintf(w, sizeof(w), "%s/w", root);
	c.name = "w";
	c.path = "/";
	c.lowerdir[0] = l1;
	c.lowerdir[1] = l2;
	c.nlower = 2;
	c.upperdir = u;
	c.workdir = w;
	if (onfs_export_open(&c, root, &ex, err, sizeof(err)) < 0) {
		fprintf(stderr, "export: %s\n", err);
		exit(1);
	}
	return ex;
}

static struct stat lst(const char *rel, int *ok)
{
	char p[300];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	*ok = lstat(p, &st) == 0;
	return st;
}

static bool is_whiteout(const char *rel)
{
	int ok;
	struct stat st = lst(rel, &ok);
	return ok && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

static bool exists(const char *rel)
{
	int ok;
	lst(rel, &ok);
	return ok;
}

static ssize_t xget(const char *rel, const char *name, char *buf, size_t cap)
{
	char p[300];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	return lgetxattr(p, name, buf, cap);
}

static int readall(struct onfs_export *ex, struct onfs_node *n, char *buf, size_t cap)
{
	bool eof;
	ssize_t r = onfs_read(ex, n, 0, buf, cap - 1, &eof);
	if (r < 0)
		return (int)r;
	buf[r] = 0;
	return (int)r;
}

static size_t work_entries(void)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s/w/work)\"", root);
	return system(cmd) == 0 ? 0 : 1;
}

int main(void)
{
	struct onfs_export *ex;
	struct onfs_node *r, *n, *m, *d;
	struct onfs_who who = { 1000, 1000 };
	struct onfs_sattr sa = { 0 };
	struct onfs_attr a, b;
	struct onfs_fh fh, dfh;
	char buf[256], v[128];

	if (geteuid() != 0) {
		printf("SKIP: test-writes needs root (trusted.overlay xattrs, whiteouts, chown)\n");
		return 77;
	}
	snprintf(root, sizeof(root), "/tmp/onfs-wr-XXXXXX");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	sh("mkdir -p l1 l2 u w && mkdir -p l2/dir/sub l1/dir && echo lower > l2/dir/file && "
	   "echo top > l1/dir/top && echo gone > l2/rmme && mkdir l2/empty && mkdir l2/full && "
	   "echo x > l2/full/x && echo mv > l2/mvfile && mkdir l2/mvdir && echo in > l2/mvdir/in && "
	   "dd if=/dev/zero of=l2/sparse bs=1 count=1 seek=10000000 2>/dev/null && "
	   "setfattr -n user.keep -v yes l2/dir/file");
	ex = open_ex();
	CHECK(onfs_root(ex, &r) == 0);

	/* copyup_on_write: data, origin, index, impure parent, lower untouched */
	CHECK(onfs_walk(ex, "dir/file", &n) == 0);
	CHECK(onfs_getattr(ex, n, &a) == 0);
	fh = *onfs_node_fh(n);
	CHECK(onfs_write(ex, n, 0, "UPPER", 5, ONFS_FILE_SYNC, NULL) == 5);
	onfs_node_put(n);
	CHECK(exists("u/dir/file"));
	CHECK(xget("u/dir/file", "trusted.overlay.origin", v, sizeof(v)) > 21);
	CHECK(xget("u/dir/file", "user.keep", v, sizeof(v)) == 3);
	CHECK(xget("u/dir", "trusted.overlay.impure", v, sizeof(v)) == 1);
	CHECK(xget("u/dir", "trusted.overlay.origin", v, sizeof(v)) > 21);
	{
		FILE *f = fopen("/dev/null", "r");
		char p[300];
		snprintf(p, sizeof(p), "%s/l2/dir/file", root);
		FILE *g = fopen(p, "r");
		CHECK(g && fgets(buf, sizeof(buf), g) && strcmp(buf, "lower\n") == 0);
		if (g) fclose(g);
		if (f) fclose(f);
	}
	CHECK(onfs_node_from_fh(ex, fh.data, fh.len, &n) == 0);
	CHECK(readall(ex, n, buf, sizeof(buf)) == 6 && strcmp(buf, "UPPER\n") == 0);
	CHECK(onfs_getattr(ex, n, &b) == 0 && a.fileid == b.fileid && b.nlink == 1);
	onfs_node_put(n);
	CHECK(work_entries() == 0);

	/* sparse_copyup_keeps_holes */
	CHECK(onfs_walk(ex, "sparse", &n) == 0);
	sa = (struct onfs_sattr){ .set_mode = true, .mode = 0600 };
	CHECK(onfs_setattr(ex, n, &sa, NULL, NULL) == 0);
	onfs_node_put(n);
	{
		int ok;
		struct stat st = lst("u/sparse", &ok);
		CHECK(ok && st.st_size == 10000001 && st.st_blocks < 100 && (st.st_mode & 07777) == 0600);
	}

	/* remove_lower_leaves_whiteout, handle STALE afterwards */
	CHECK(onfs_walk(ex, "rmme", &n) == 0);
	fh = *onfs_node_fh(n);
	onfs_node_put(n);
	CHECK(onfs_remove(ex, r, "rmme", NULL) == 0);
	CHECK(is_whiteout("u/rmme"));
	CHECK(onfs_walk(ex, "rmme", &n) == -ENOENT);
	CHECK(onfs_node_from_fh(ex, fh.data, fh.len, &n) == -ESTALE);

	/* rmdir: non-empty merged ENOTEMPTY; empty lower: one whiteout */
	CHECK(onfs_rmdir(ex, r, "full", NULL) == -ENOTEMPTY);
	CHECK(onfs_walk(ex, "full", &d) == 0);
	CHECK(onfs_remove(ex, d, "x", NULL) == 0);
	onfs_node_put(d);
	CHECK(onfs_rmdir(ex, r, "full", NULL) == 0);
	CHECK(is_whiteout("u/full"));
	CHECK(onfs_rmdir(ex, r, "empty", NULL) == 0);
	CHECK(is_whiteout("u/empty"));

	/* mkdir over a whiteout: opaque and empty */
	sa = (struct onfs_sattr){ .set_mode = true, .mode = 0750 };
	CHECK(onfs_mkdir(ex, r, "full", &sa, &who, &d, NULL) == 0);
	CHECK(xget("u/full", "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y');
	CHECK(onfs_getattr(ex, d, &a) == 0 && a.uid == 1000 && (a.mode & 07777) == 0750);
	CHECK(onfs_lookup(ex, d, "x", &n) == -ENOENT);
	onfs_node_put(d);

	/* create over whiteout: a plain file; GUARDED on it: EEXIST */
	sa = (struct onfs_sattr){ .set_mode = true, .mode = 0640 };
	CHECK(onfs_create(ex, r, "rmme", ONFS_CREATE_GUARDED, &sa, NULL, &who, &n, NULL) == 0);
	onfs_node_put(n);
	{
		int ok;
		struct stat st = lst("u/rmme", &ok);
		CHECK(ok && S_ISREG(st.st_mode) && st.st_uid == 1000 && (st.st_mode & 07777) == 0640);
	}
	CHECK(onfs_create(ex, r, "rmme", ONFS_CREATE_GUARDED, &sa, NULL, &who, &n, NULL) == -EEXIST);
	/* exclusive: same verifier succeeds, another fails */
	{
		uint8_t v1[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, v2[8] = { 9, 9, 9, 9, 9, 9, 9, 9 };
		CHECK(onfs_create(ex, r, "excl", ONFS_CREATE_EXCLUSIVE, NULL, v1, &who, &n, NULL) == 0);
		onfs_node_put(n);
		CHECK(onfs_create(ex, r, "excl", ONFS_CREATE_EXCLUSIVE, NULL, v1, &who, &n, NULL) == 0);
		onfs_node_put(n);
		CHECK(onfs_create(ex, r, "excl", ONFS_CREATE_EXCLUSIVE, NULL, v2, &who, &n, NULL) == -EEXIST);
	}

	/* rename lower file: whiteout at old name, origin kept, handle valid */
	CHECK(onfs_walk(ex, "mvfile", &n) == 0);
	fh = *onfs_node_fh(n);
	CHECK(onfs_getattr(ex, n, &a) == 0);
	onfs_node_put(n);
	CHECK(onfs_walk(ex, "dir", &d) == 0);
	CHECK(onfs_rename(ex, r, "mvfile", d, "moved", NULL, NULL) == 0);
	CHECK(is_whiteout("u/mvfile"));
	CHECK(xget("u/dir/moved", "trusted.overlay.origin", v, sizeof(v)) > 21);
	CHECK(onfs_node_from_fh(ex, fh.data, fh.len, &n) == 0);
	CHECK(onfs_getattr(ex, n, &b) == 0 && a.fileid == b.fileid);
	CHECK(readall(ex, n, buf, sizeof(buf)) == 3 && strcmp(buf, "mv\n") == 0);
	onfs_node_put(n);

	/* rename lower dir: redirect (relative), content follows, handles valid */
	CHECK(onfs_walk(ex, "mvdir", &m) == 0);
	dfh = *onfs_node_fh(m);
	onfs_node_put(m);
	CHECK(onfs_walk(ex, "mvdir/in", &n) == 0);
	fh = *onfs_node_fh(n);
	onfs_node_put(n);
	CHECK(onfs_rename(ex, r, "mvdir", r, "mvdir2", NULL, NULL) == 0);
	CHECK(xget("u/mvdir2", "trusted.overlay.redirect", v, sizeof(v)) == 5 && memcmp(v, "mvdir", 5) == 0);
	CHECK(is_whiteout("u/mvdir"));
	CHECK(onfs_walk(ex, "mvdir2/in", &n) == 0);
	onfs_node_put(n);
	/* into another directory: absolute redirect */
	CHECK(onfs_rename(ex, r, "mvdir2", d, "deep", NULL, NULL) == 0);
	{
		ssize_t l = xget("u/dir/deep", "trusted.overlay.redirect", v, sizeof(v));
		CHECK(l == 6 && memcmp(v, "/mvdir", 6) == 0);
	}
	CHECK(onfs_walk(ex, "dir/deep/in", &n) == 0);
	onfs_node_put(n);
	/* a directory into its own subtree */
	CHECK(onfs_walk(ex, "dir/deep", &m) == 0);
	CHECK(onfs_rename(ex, r, "dir", m, "loop", NULL, NULL) == -EINVAL);
	onfs_node_put(m);
	onfs_node_put(d);

	/* restart: every handle still resolves, the removed one is STALE */
	onfs_node_put(r);
	onfs_export_close(ex);
	ex = open_ex();
	CHECK(onfs_root(ex, &r) == 0);
	CHECK(onfs_node_from_fh(ex, dfh.data, dfh.len, &m) == 0);
	if (m) {
		CHECK(strcmp(onfs_node_path(m), "dir/deep") == 0);
		onfs_node_put(m);
	}
	n = NULL;
	CHECK(onfs_node_from_fh(ex, fh.data, fh.len, &n) == 0);
	if (n) {
		CHECK(readall(ex, n, buf, sizeof(buf)) == 3 && strcmp(buf, "in\n") == 0);
		/* a write through the unnamed handle copies up into the index */
		CHECK(onfs_write(ex, n, 0, "IN", 2, ONFS_FILE_SYNC, NULL) == 2);
		onfs_node_put(n);
	}
	CHECK(onfs_walk(ex, "dir/deep/in", &n) == 0);
	CHECK(readall(ex, n, buf, sizeof(buf)) == 3 && strcmp(buf, "IN\n") == 0);
	onfs_node_put(n);
	/* link: a second name of a lower file, copied up */
	CHECK(onfs_walk(ex, "dir/top", &n) == 0);
	CHECK(onfs_link(ex, n, r, "toplink", NULL) == 0);
	onfs_node_put(n);
	CHECK(exists("u/toplink") && exists("u/dir/top"));
	{
		int ok1, ok2;
		struct stat s1 = lst("u/toplink", &ok1), s2 = lst("u/dir/top", &ok2);
		CHECK(ok1 && ok2 && s1.st_ino == s2.st_ino);
	}
	CHECK(work_entries() == 0);
	onfs_node_put(r);
	onfs_export_close(ex);

	/* the kernel overlay mounts what we wrote and sees the same tree */
	{
		char cmd[1024];
		snprintf(cmd, sizeof(cmd),
			 "cd %s && mkdir -p mnt && mount -t overlay overlay -o "
			 "lowerdir=l1:l2,upperdir=u,workdir=w,redirect_dir=on,index=on,nfs_export=on mnt "
			 "2>/dev/null", root);
		if (system(cmd) != 0) {
			printf("note: kernel overlay mount of the result failed or is not available\n");
		} else {
			snprintf(cmd, sizeof(cmd),
				 "cd %s/mnt && test \"$(cat dir/deep/in)\" = IN && test ! -e rmme -o -f rmme "
				 "&& test ! -e mvfile && test \"$(cat dir/moved)\" = mv && test -d full "
				 "&& test -z \"$(ls full)\" && test \"$(head -c5 dir/file)\" = UPPER", root);
			int rc = system(cmd);
			CHECK(rc == 0);
			snprintf(cmd, sizeof(cmd), "umount %s/mnt", root);
			if (system(cmd) != 0)
				fprintf(stderr, "warning: umount failed\n");
		}
	}
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), getenv("KEEP") ? "true %s" : "rm -rf %s", root);
		if (system(cmd) != 0)
			fprintf(stderr, "warning: cleanup failed\n");
	}
	return unit_finish("writes");
}
