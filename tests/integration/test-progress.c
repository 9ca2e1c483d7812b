/*
 * test-progress.c - long work says how far it is: the startup scrub of a
 * big work/ tree and the copy-up of a big file log progress lines (entries
 * or MiB done, rate) and a final line. The thresholds (1 s, then every
 * 5 s) are set to 0 through ONFS_PROGRESS_MS so that the lines appear on
 * a small tree: this checks what is said, not how fast anything is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nfsclient.h"
#include "testlib.h"


/* a, then b later on the same line */
static bool has_after(const char *txt, const char *a, const char *b)
{
	const char *p = strstr(txt, a), *q, *nl;

	if (!p)
		return false;
	q = strstr(p, b);
	nl = strchr(p, '\n');
	return q && (!nl || q < nl);
}

#define JUNK 1000
#define BIG (5 * 1024 * 1024)

TEST_IMPL(progress_scrub_and_copyup)
{
	struct tl_tree t;
	struct tl_server s;
	struct tl_client c;
	struct tl_fh root, fh;
	char opts[8192], rel[64], want[PATH_MAX + 64];
	char *big = malloc(BIG), *txt = NULL, *txt2 = NULL;

	ASSERT(big);
	memset(big, 'z', BIG);
	tl_tree_new(&t, 1);
	tl_write_buf(t.lower[0], "big", big, BIG, 0644);
	/* leftovers of a crash in work/work: a directory of JUNK files */
	tl_mkdir_p(t.work, "work/junk");
	for (int i = 0; i < JUNK; i++) {
		snprintf(rel, sizeof(rel), "work/junk/f%04d", i);
		tl_write(t.work, rel, "", 0644);
	}
	ASSERT(setenv("ONFS_PROGRESS_MS", "0", 1) == 0);
	tl_tree_opts(&t, true, opts, sizeof(opts));
	tl_server_start(&s, t.root, t.state, opts, NULL, NULL);

	ASSERT(tl_read_file(s.log, &txt) > 0);
	ASSERTF(strstr(txt, "/work': 256 entries done in "), "no scrub progress line:\n%s", txt);
	snprintf(want, sizeof(want), "/work' finished: %d entries done in ", JUNK + 1);
	ASSERTF(strstr(txt, want), "no final scrub line '%s':\n%s", want, txt);

	tl_client_connect(&c, s.port);
	ASSERT_NFS(tl_mnt(&c, "/", &root, NULL, NULL, 0), MNT3_OK);
	ASSERT_NFS(tl_nfs_lookup(&c, &root, "big", &fh, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_write(&c, &fh, 0, "y", 1), NFS3_OK);
	ASSERT(tl_read_file(s.log, &txt2) > 0);
	ASSERTF(has_after(txt2, "copy-up of '/big': ", " of 5.0 MiB ("),
		"no copy-up progress line:\n%s", txt2);
	ASSERTF(strstr(txt2, "copy-up of '/big' done: 5.0 MiB in "), "no final copy-up line:\n%s",
		txt2);
	free(txt2);
	free(txt);

	tl_client_close(&c);
	tl_server_stop(&s);
	unsetenv("ONFS_PROGRESS_MS");
	tl_tree_free(&t);
	free(big);
	return 0;
}

static const struct tl_case cases[] = {
	TEST_ENTRY_TIMEOUT(progress_scrub_and_copyup, 120),
};

int main(int argc, char **argv)
{
	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
