/*
 * test-workdir.c - the work area at startup (docs/architecture.md, "The
 * work area"; the kernel's ovl_workdir_cleanup): leftovers are scrubbed as the kernel does (work/d1/f goes), a
 * directory two levels deep that is not empty makes the export read-only
 * with the reason logged, and a second server on the same work area is
 * refused, naming the holder.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ovlnfsd/overlay.h"
#include "../../server/overlay/internal.h"
#include "unit.h"

static char root[128];

static void sh(const char *fmt, const char *arg)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), fmt, arg, arg, arg, arg);
	if (system(cmd) != 0) {
		fprintf(stderr, "setup failed: %s\n", cmd);
		exit(1);
	}
}

static int open_ex(struct onfs_export **ex, char *err, size_t errlen)
{
	struct onfs_export_conf c = { 0 };
	char l[200], u[200], w[200];

	snprintf(l, sizeof(l), "%s/l", root);
	snprintf(u, sizeof(u), "%s/u", root);
	snprintf(w, sizeof(w), "%s/w", root);
	c.name = "w";
	c.path = "/";
	c.lowerdir[0] = l;
	c.nlower = 1;
	c.upperdir = u;
	c.workdir = w;
	return onfs_export_open(&c, root, ex, err, errlen);
}

static bool exists(const char *rel)
{
	char p[300];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	return lstat(p, &st) == 0;
}

int main(void)
{
	struct onfs_export *ex = NULL, *ex2 = NULL;
	char err[1024];

	snprintf(root, sizeof(root), "/tmp/onfs-wd-XXXXXX");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	/* scrub_removes_leftovers: files, a whiteout, work/d1/f */
	sh("cd %s && mkdir -p l u w/work/d1 && echo x > w/work/f && echo y > w/work/d1/f && "
	   "mkdir w/work/empty", root);
	if (geteuid() == 0)
		sh("mknod %s/w/work/wh c 0 0", root);
	CHECK(open_ex(&ex, err, sizeof(err)) == 0);
	if (ex) {
		CHECK(ex->work_ok);
		CHECK(exists("w/work") && !exists("w/work/f") && !exists("w/work/d1") &&
		      !exists("w/work/empty") && !exists("w/work/wh"));
		/* second_server_refused: the lock is held */
		CHECK(open_ex(&ex2, err, sizeof(err)) < 0);
		CHECK(strstr(err, "in use by another ovlnfsd") != NULL);
		CHECK(strstr(err, "/w'") != NULL);
		onfs_export_close(ex);
		ex = NULL;
	}
	/* scrub_depth_two_makes_readonly: work/d1/d2/f stays, export read-only */
	sh("cd %s && mkdir -p w/work/d1/d2 && echo z > w/work/d1/d2/f && echo a > w/work/d1/a", root);
	CHECK(open_ex(&ex, err, sizeof(err)) == 0);
	if (ex) {
		CHECK(!ex->work_ok);
		CHECK(onfs_export_readonly(ex));
		CHECK(exists("w/work/d1/d2/f"));
		CHECK(!exists("w/work/d1/a")); /* what was deleted stays deleted */
		onfs_export_close(ex);
	}
	/* work_created_when_missing */
	sh("rm -rf %s/w/work", root);
	ex = NULL;
	CHECK(open_ex(&ex, err, sizeof(err)) == 0);
	if (ex) {
		CHECK(ex->work_ok && exists("w/work"));
		onfs_export_close(ex);
	}
	sh("rm -rf %s", root);
	return unit_finish("workdir");
}
