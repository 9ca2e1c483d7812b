/*
 * test-rootless.c - rootless mode (docs/overlay.md, "Rootless mode"): the server as an
 * ordinary user, without CAP_DAC_READ_SEARCH or CAP_CHOWN. Handles
 * resolve through the persistent identity map across a restart; layers
 * carry user.overlay.* xattrs; objects a client creates show the client
 * as owner through user.ovlnfsd.owner while the files belong to the
 * server's user. Run as root, the test drops to "nobody" in a child
 * process (CI runs as root); run as another user it runs as that user.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "ovlnfsd/overlay.h"
#include "unit.h"

static char root[128];

static struct onfs_export *open_ex(void)
{
	struct onfs_export_conf c = { 0 };
	struct onfs_export *ex = NULL;
	char l[200], u[200], w[200], err[512];

	snprintf(l, sizeof(l), "%s/l", root);
	snprintf(u, sizeof(u), "%s/u", root);
	snprintf(w, sizeof(w), "%s/w", root);
	c.name = "rootless";
	c.path = "/";
	c.lowerdir[0] = l;
	c.nlower = 1;
	c.upperdir = u;
	c.workdir = w;
	if (onfs_export_open(&c, root, &ex, err, sizeof(err)) < 0) {
		fprintf(stderr, "export: %s\n", err);
		exit(1);
	}
	return ex;
}

static ssize_t xget(const char *rel, const char *name, char *buf, size_t cap)
{
	char p[300];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	return lgetxattr(p, name, buf, cap);
}

static int scenario(void)
{
	struct onfs_export *ex;
	struct onfs_node *r, *n, *d;
	struct onfs_who who = { 1000, 1001 };
	struct onfs_attr a;
	struct onfs_fh fh_file, fh_dir, fh_gone, fh_new;
	char buf[64], v[64];
	bool eof;
	struct stat st;
	char p[300];

	ex = open_ex();
	CHECK(onfs_root(ex, &r) == 0);
	CHECK(onfs_walk(ex, "dir/file", &n) == 0);
	fh_file = *onfs_node_fh(n);
	{ ssize_t w = onfs_write(ex, n, 0, "ROOTLESS", 8, ONFS_FILE_SYNC, NULL); if (w != 8) fprintf(stderr, "write: %zd\n", w); CHECK(w == 8); }
	onfs_node_put(n);
	/* the copy-up carries user.overlay.origin and shows the lower owner */
	CHECK(xget("u/dir/file", "user.overlay.origin", v, sizeof(v)) > 21);
	CHECK(xget("u/dir/file", "trusted.overlay.origin", v, sizeof(v)) < 0);
	CHECK(onfs_walk(ex, "dir/file", &n) == 0);
	CHECK(onfs_getattr(ex, n, &a) == 0 && a.uid == 0 && a.gid == 0 && (a.mode & 07777) == 0644);
	onfs_node_put(n);
	/* a client's create: owned by the client as seen, by us on disk */
	CHECK(onfs_walk(ex, "dir", &d) == 0);
	fh_dir = *onfs_node_fh(d);
	struct onfs_sattr sa = { .set_mode = true, .mode = 0640 };
	CHECK(onfs_create(ex, d, "new", ONFS_CREATE_GUARDED, &sa, NULL, &who, &n, NULL) == 0);
	fh_new = *onfs_node_fh(n);
	CHECK(onfs_getattr(ex, n, &a) == 0 && a.uid == 1000 && a.gid == 1001 &&
	      (a.mode & 07777) == 0640);
	onfs_node_put(n);
	snprintf(p, sizeof(p), "%s/u/dir/new", root);
	CHECK(stat(p, &st) == 0 && st.st_uid == geteuid());
	/* chown/chmod change the view */
	CHECK(onfs_walk(ex, "dir/new", &n) == 0);
	sa = (struct onfs_sattr){ .set_uid = true, .uid = 2000, .set_mode = true, .mode = 0600 };
	CHECK(onfs_setattr(ex, n, &sa, NULL, NULL) == 0);
	CHECK(onfs_getattr(ex, n, &a) == 0 && a.uid == 2000 && (a.mode & 07777) == 0600);
	onfs_node_put(n);
	/* removing a lower file leaves a whiteout, unprivileged */
	CHECK(onfs_walk(ex, "dir/gone", &n) == 0);
	fh_gone = *onfs_node_fh(n);
	onfs_node_put(n);
	CHECK(onfs_remove(ex, d, "gone", NULL) == 0);
	snprintf(p, sizeof(p), "%s/u/dir/gone", root);
	CHECK(lstat(p, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
	onfs_node_put(d);
	onfs_node_put(r);
	onfs_export_close(ex);

	/* restart: handles resolve through the identity map */
	ex = open_ex();
	n = NULL;
	CHECK(onfs_node_from_fh(ex, fh_file.data, fh_file.len, &n) == 0);
	if (n) {
		CHECK(onfs_read(ex, n, 0, buf, sizeof(buf), &eof) == 8 && memcmp(buf, "ROOTLESS", 8) == 0);
		onfs_node_put(n);
	}
	n = NULL;
	CHECK(onfs_node_from_fh(ex, fh_dir.data, fh_dir.len, &n) == 0);
	if (n) {
		CHECK(strcmp(onfs_node_path(n), "dir") == 0);
		onfs_node_put(n);
	}
	n = NULL;
	CHECK(onfs_node_from_fh(ex, fh_new.data, fh_new.len, &n) == 0);
	if (n)
		onfs_node_put(n);
	CHECK(onfs_node_from_fh(ex, fh_gone.data, fh_gone.len, &n) == -ESTALE);
	onfs_export_close(ex);
	return failures ? 1 : 0;
}

int main(void)
{
	struct passwd *pw = getpwnam("nobody");
	char cmd[512];
	int status;
	pid_t pid;

	snprintf(root, sizeof(root), "/tmp/onfs-rl-XXXXXX");
	if (!mkdtemp(root))
		return 1;
	snprintf(cmd, sizeof(cmd),
		 "cd %s && chmod 755 . && mkdir -p l/dir u w state && echo lower > l/dir/file && "
		 "echo g > l/dir/gone && chmod -R a+rX l", root);
	if (system(cmd) != 0)
		return 1;
	if (geteuid() == 0) {
		if (!pw) {
			printf("SKIP: test-rootless runs as root and there is no 'nobody' user to drop to\n");
			return 77;
		}
		snprintf(cmd, sizeof(cmd), "chown -R %u:%u %s/u %s/w %s/state", pw->pw_uid, pw->pw_gid,
			 root, root, root);
		if (system(cmd) != 0)
			return 1;
		/* the state dir of the test export lives in root: let nobody write there */
		snprintf(cmd, sizeof(cmd), "chown %u:%u %s", pw->pw_uid, pw->pw_gid, root);
		if (system(cmd) != 0)
			return 1;
		pid = fork();
		if (pid == 0) {
			if (setgroups(0, NULL) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
			    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0) {
				perror("drop to nobody");
				_exit(1);
			}
			_exit(scenario());
		}
		if (pid < 0 || waitpid(pid, &status, 0) < 0)
			return 1;
		failures = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	} else {
		failures = scenario();
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: cleanup failed\n");
	return unit_finish("rootless");
}
