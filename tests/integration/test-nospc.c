/*
 * test-nospc.c - a full upper filesystem through a real ovlnfsd (issue 4:
 * NOSPC passed through): the upper and work directories live on a small
 * tmpfs mounted for the test; a WRITE that does not fit answers
 * NFS3ERR_NOSPC, a copy-up that does not fit answers NOSPC and leaves
 * neither a half-made name in the upper layer nor a leftover in work/,
 * and the server keeps serving; an upper filesystem mounted read-only
 * makes the export read-only. Needs root to mount the tmpfs; skips with
 * the reason otherwise.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nfsclient.h"
#include "testlib.h"

static char space[PATH_MAX];

static void unmount_space(void *arg)
{
	(void)arg;
	umount2(space, MNT_DETACH);
}


TEST_IMPL(nospc_write_and_copyup)
{
	struct tl_tree t;
	struct tl_server s;
	struct tl_client c;
	struct tl_fh root, big, small, nf;
	char opts[4 * PATH_MAX], path[PATH_MAX], *buf;
	struct stat st;
	int token, stt;

	tl_tree_new(&t, 1);
	/* a 4 MiB lower file: more than the 2 MiB upper filesystem holds */
	buf = calloc(1, 4 << 20);
	ASSERT(buf != NULL);
	memset(buf, 'L', 4 << 20);
	tl_write_buf(t.lower[0], "big", buf, 4 << 20, 0644);
	tl_write(t.lower[0], "small", "small\n", 0644);
	tl_join(space, sizeof(space), t.root, "space");
	ASSERT(mkdir(space, 0755) == 0);
	if (mount("onfs-nospc", space, "tmpfs", 0, "size=2m") < 0)
		RETURN_SKIP("cannot mount a tmpfs for a small upper (%s): needs root", strerror(errno));
	token = tl_cleanup_push(unmount_space, NULL);
	tl_join(t.upper, sizeof(t.upper), space, "upper");
	tl_join(t.work, sizeof(t.work), space, "work");
	ASSERT(mkdir(t.upper, 0755) == 0 && mkdir(t.work, 0755) == 0);

	tl_tree_opts(&t, true, opts, sizeof(opts));
	tl_server_start(&s, t.root, t.state, opts, NULL, NULL);
	tl_client_mount(&c, s.port, "/", &root);

	/* a new file that outgrows the filesystem */
	ASSERT_EQ(tl_nfs_create(&c, &root, "new"), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(&c, &root, "new", &nf, NULL), NFS3_OK);
	stt = NFS3_OK;
	for (int i = 0; i < 8 && stt == NFS3_OK; i++)
		stt = tl_nfs_write(&c, &nf, (uint64_t)i << 19, buf, 1 << 19);
	ASSERTF(stt == NFS3ERR_NOSPC, "writing 4 MiB into 2 MiB: %s", tl_nfsstat_name(stt));

	/* a copy-up that does not fit: NOSPC, nothing half made */
	ASSERT_EQ(tl_nfs_remove(&c, &root, "new"), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(&c, &root, "big", &big, NULL), NFS3_OK);
	stt = tl_nfs_setattr_mode(&c, &big, 0600);
	ASSERTF(stt == NFS3ERR_NOSPC, "copy-up of 4 MiB into 2 MiB: %s", tl_nfsstat_name(stt));
	tl_join(path, sizeof(path), t.upper, "big");
	ASSERTF(lstat(path, &st) < 0 && errno == ENOENT, "a half copy-up is visible in the upper");
	tl_join(path, sizeof(path), t.work, "work");
	ASSERT_EQ(tl_count_entries(path), 0);

	/* the server keeps serving, and a small copy-up still works */
	ASSERT_EQ(tl_nfs_lookup(&c, &root, "small", &small, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_setattr_mode(&c, &small, 0600), NFS3_OK);
	tl_join(path, sizeof(path), t.upper, "small");
	ASSERT(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600 && st.st_size == 6);

	free(buf);
	tl_client_close(&c);
	tl_server_stop(&s);
	tl_cleanup_cancel(token);
	unmount_space(NULL);
	tl_tree_free(&t);
	return 0;
}

/*
 * An upper filesystem mounted read-only: the export is served read-only
 * (docs/architecture.md, "Read-only fallback"), says why in the log, reads
 * work and every mutation answers NFS3ERR_ROFS, while another export of
 * the same server stays writable.
 */
TEST_IMPL(readonly_upper_fs_served_readonly)
{
	struct tl_tree t;
	struct tl_server s;
	struct tl_client c;
	struct tl_fh root, f;
	char opts[4 * PATH_MAX], buf[64], okup[PATH_MAX], okwork[PATH_MAX], conf[PATH_MAX];
	const char *extra[] = { "-c", conf, NULL };
	uint32_t got = 0;
	bool eof = false;
	int token;

	tl_tree_new(&t, 1);
	tl_write(t.lower[0], "f", "lower\n", 0644);
	tl_join(space, sizeof(space), t.root, "space");
	ASSERT(mkdir(space, 0755) == 0);
	if (mount("onfs-rofs", space, "tmpfs", 0, "size=1m") < 0)
		RETURN_SKIP("cannot mount a tmpfs for the upper (%s): needs root", strerror(errno));
	token = tl_cleanup_push(unmount_space, NULL);
	tl_join(t.upper, sizeof(t.upper), space, "upper");
	tl_join(t.work, sizeof(t.work), space, "work");
	ASSERT(mkdir(t.upper, 0755) == 0 && mkdir(t.work, 0755) == 0);
	tl_write(t.upper, "u", "upper\n", 0644);
	ASSERT(mount(NULL, space, NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0);

	/* a second export with a usable work area, beside it in one server */
	tl_join(okup, sizeof(okup), t.root, "ok-upper");
	tl_join(okwork, sizeof(okwork), t.root, "ok-work");
	ASSERT(mkdir(okup, 0755) == 0 && mkdir(okwork, 0755) == 0);
	tl_join(conf, sizeof(conf), t.root, "two.conf");
	{
		FILE *cf = fopen(conf, "w");
		ASSERT(cf != NULL);
		fprintf(cf, "[export rofs]\npath = /rofs\nlowerdir = %s\nupperdir = %s\n"
			    "workdir = %s\nclients = 127.0.0.1\nsquash = none\n\n"
			    "[export ok]\npath = /ok\nlowerdir = %s\nupperdir = %s\n"
			    "workdir = %s\nclients = 127.0.0.1\nsquash = none\n",
			t.lower[0], t.upper, t.work, t.lower[0], okup, okwork);
		ASSERT(fclose(cf) == 0);
	}
	tl_server_start(&s, t.root, t.state, NULL, NULL, extra);
	tl_client_mount(&c, s.port, "/ok", &root);
	ASSERT_EQ(tl_nfs_create(&c, &root, "fine"), NFS3_OK);
	tl_join(opts, sizeof(opts), okup, "fine");
	ASSERT(access(opts, F_OK) == 0);
	tl_client_close(&c);
	tl_client_mount(&c, s.port, "/rofs", &root);
	ASSERT_EQ(tl_nfs_lookup(&c, &root, "u", &f, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_read(&c, &f, 0, sizeof(buf), buf, &got, &eof), NFS3_OK);
	ASSERT(got == 6 && memcmp(buf, "upper\n", 6) == 0);
	ASSERT_EQ(tl_nfs_lookup(&c, &root, "f", &f, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_setattr_mode(&c, &f, 0600), NFS3ERR_ROFS);
	ASSERT_EQ(tl_nfs_write(&c, &f, 0, "x", 1), NFS3ERR_ROFS);
	ASSERT_EQ(tl_nfs_create(&c, &root, "n"), NFS3ERR_ROFS);
	ASSERT_EQ(tl_nfs_remove(&c, &root, "f"), NFS3ERR_ROFS);
	tl_client_close(&c);
	tl_server_stop(&s);
	{
		char *log = NULL;
		ASSERT(tl_read_file(s.log, &log) > 0);
		ASSERTF(strstr(log, "READ-ONLY") != NULL, "the log does not say the export is read-only");
		free(log);
	}
	tl_cleanup_cancel(token);
	unmount_space(NULL);
	tl_tree_free(&t);
	return 0;
}

static const struct tl_case cases[] = {
	TEST_ENTRY_TIMEOUT(nospc_write_and_copyup, 120),
	TEST_ENTRY_TIMEOUT(readonly_upper_fs_served_readonly, 60),
};

int main(int argc, char **argv)
{
	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
