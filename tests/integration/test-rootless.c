/*
 * test-rootless.c - the server process itself in rootless mode (issue 5):
 * started as "nobody" (no CAP_DAC_READ_SEARCH, no CAP_CHOWN), it serves
 * and changes an overlay whose upper and work belong to nobody. Created
 * objects show the client's uid/gid (user.ovlnfsd.owner) while the files
 * on disk belong to nobody; copy-ups carry user.overlay.origin; handles
 * survive a restart through the persistent identity map. Needs root to
 * start the server as another user; skips with the reason otherwise.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "nfsclient.h"
#include "testlib.h"

TEST_IMPL(rootless_server_serves_and_writes)
{
	struct passwd *pw = getpwnam("nobody");
	struct tl_tree t;
	struct tl_server s;
	struct tl_client c;
	struct tl_fh root, d, f, nf;
	char opts[4 * PATH_MAX], path[PATH_MAX], cmd[6 * PATH_MAX + 128], buf[64];
	fattr3 a;
	struct stat st;
	uint32_t got = 0;
	bool eof = false;

	if (geteuid() != 0 || !pw)
		RETURN_SKIP("needs root and a 'nobody' user to start the server as nobody");
	tl_tree_new(&t, 1);
	tl_mkdir(t.lower[0], "dir", 0755);
	tl_write(t.lower[0], "dir/file", "lower\n", 0644);
	/* the test tree: readable by all; upper, work and state belong to nobody */
	snprintf(cmd, sizeof(cmd), "chmod 755 '%s' && chmod -R a+rX '%s' && chown -R %u:%u '%s' '%s' '%s'",
		 t.root, t.lower[0], pw->pw_uid, pw->pw_gid, t.upper, t.work, t.state);
	ASSERT(system(cmd) == 0);
	snprintf(cmd, sizeof(cmd), "chown %u:%u '%s'", pw->pw_uid, pw->pw_gid, t.root);
	ASSERT(system(cmd) == 0);

	tl_server_run_as(pw->pw_uid, pw->pw_gid);
	tl_tree_opts(&t, true, opts, sizeof(opts));
	tl_server_start(&s, t.root, t.state, opts, NULL, NULL);
	tl_client_mount(&c, s.port, "/", &root);
	tl_client_set_ids(&c, 1000, 1000);

	/* a create by uid 1000 in a directory it may write (a copied-up 0777 one) */
	ASSERT_EQ(tl_nfs_lookup(&c, &root, "dir", &d, NULL), NFS3_OK);
	tl_client_set_ids(&c, 0, 0);
	ASSERT_EQ(tl_nfs_setattr_mode(&c, &d, 0777), NFS3_OK);
	tl_client_set_ids(&c, 1000, 1000);
	ASSERT_EQ(tl_nfs_create(&c, &d, "mine"), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(&c, &d, "mine", &nf, &a), NFS3_OK);
	ASSERT_EQ(a.uid, 1000);
	ASSERT_EQ(a.gid, 1000);
	tl_join(path, sizeof(path), t.upper, "dir/mine");
	ASSERT(stat(path, &st) == 0 && st.st_uid == pw->pw_uid);
	ASSERT(lgetxattr(path, "user.ovlnfsd.owner", buf, sizeof(buf)) > 0);

	/* a write to a lower file: copy-up with user.overlay.origin */
	tl_client_set_ids(&c, 0, 0);
	ASSERT_EQ(tl_nfs_lookup(&c, &d, "file", &f, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_write(&c, &f, 0, "UPPER", 5), NFS3_OK);
	tl_join(path, sizeof(path), t.upper, "dir/file");
	ASSERT(lgetxattr(path, "user.overlay.origin", buf, sizeof(buf)) > 21);
	ASSERT(lgetxattr(path, "trusted.overlay.origin", buf, sizeof(buf)) < 0);
	{
		char *log = NULL;
		ASSERT(tl_read_file(s.log, &log) > 0);
		ASSERTF(strstr(log, "rootless") != NULL, "the log does not name the handle mode");
		free(log);
	}

	/* restart (still as nobody): the handles resolve through the identity map */
	tl_client_close(&c);
	tl_server_stop(&s);
	tl_server_start(&s, t.root, t.state, opts, NULL, NULL);
	tl_client_connect(&c, s.port);
	ASSERT_EQ(tl_nfs_getattr(&c, &nf, &a), NFS3_OK);
	ASSERT_EQ(a.uid, 1000);
	ASSERT_EQ(tl_nfs_read(&c, &f, 0, sizeof(buf), buf, &got, &eof), NFS3_OK);
	ASSERT(got == 6 && memcmp(buf, "UPPER\n", 6) == 0);
	tl_client_close(&c);
	tl_server_stop(&s);
	tl_server_run_as(-1, -1);
	tl_tree_free(&t);
	return 0;
}

static const struct tl_case cases[] = {
	TEST_ENTRY_TIMEOUT(rootless_server_serves_and_writes, 120),
};

int main(int argc, char **argv)
{
	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
