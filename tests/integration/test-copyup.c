/*
 * test-copyup.c - copy-up under load, through a real ovlnfsd (issue 4):
 * a 1 GiB lower file copies up while another client's requests keep being
 * answered (the copy runs on a worker under the object's lock only; the
 * test holds the copy-up in progress with a fanotify permission event), its
 * data and holes arrive intact; several clients changing the same lower
 * file at once copy it up exactly once and no half-written object is
 * ever visible in the upper layer.
 *
 * Each case starts its own server on a temp tree and stops it by PID.
 * Request loops are bounded in count and time; nothing asserts a speed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "nfsclient.h"
#include "testlib.h"

struct env {
	struct tl_tree t;
	struct tl_server s;
};

static void env_start(struct env *e)
{
	char opts[4 * PATH_MAX];

	tl_tree_opts(&e->t, true, opts, sizeof(opts));
	tl_server_start(&e->s, e->t.root, e->t.state, opts, NULL, NULL);
}


/* The byte at offset off of the big file's pattern. */
static uint8_t pattern(uint64_t off)
{
	return (uint8_t)((off >> 20) * 7 + (off & 0xff));
}

struct copier {
	int port;
	struct tl_fh fh;
	atomic_int done;
	int status;
	double end;
};

static void *copy_up_big(void *arg)
{
	struct copier *cp = arg;
	struct tl_client c;

	tl_client_connect(&c, cp->port);
	cp->status = tl_nfs_setattr_mode(&c, &cp->fh, 0600);
	cp->end = tl_now();
	atomic_store(&cp->done, 1);
	tl_client_close(&c);
	return NULL;
}

/*
 * The copy-up is held in progress by a fanotify permission event on the
 * lower file: the server's open of it to copy the data (the first open
 * after LOOKUP, whose descriptor it keeps) waits in the kernel until this
 * process answers, and the event tells us that the copy-up has begun.
 * While the copy-up is provably running, another client asks GETATTR and
 * READ of another file NASK times. A server that blocks behind a copy-up
 * answers none of them (the client's call times out and the case fails);
 * nothing depends on how fast the copy or the machine is.
 */
TEST_IMPL(copyup_1gib_does_not_block_others)
{
	enum { CHUNK = 1 << 20, NCHUNK = 1024, NASK = 20 };
	struct env e;
	struct tl_client c;
	struct tl_fh root, small;
	struct copier cp = { 0 };
	pthread_t th;
	char path[PATH_MAX], *buf;
	int fd, fan, answered_during = 0;
	struct stat st;
	struct fanotify_event_metadata ev;
	struct fanotify_response allow;
	struct pollfd pfd;

	tl_tree_new(&e.t, 1);
	/* 1 GiB of real data, a 64 MiB hole in the middle, and a small file */
	tl_join(path, sizeof(path), e.t.lower[0], "big");
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	ASSERT(fd >= 0);
	buf = malloc(CHUNK);
	ASSERT(buf != NULL);
	for (uint64_t i = 0; i < NCHUNK; i++) {
		if (i >= 480 && i < 544)
			continue; /* the hole */
		for (size_t k = 0; k < CHUNK; k++)
			buf[k] = (char)pattern(i * CHUNK + k);
		ASSERT(pwrite(fd, buf, CHUNK, (off_t)(i * CHUNK)) == CHUNK);
	}
	ASSERT(ftruncate(fd, (off_t)NCHUNK * CHUNK) == 0);
	close(fd);
	tl_write(e.t.lower[0], "small", "small file\n", 0644);
	env_start(&e);

	tl_client_mount(&c, e.s.port, "/", &root);
	ASSERT_EQ(tl_nfs_lookup(&c, &root, "big", &cp.fh, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(&c, &root, "small", &small, NULL), NFS3_OK);

	/* from here every open of the lower file waits for our answer */
	fan = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, O_RDONLY | O_LARGEFILE);
	ASSERTF(fan >= 0, "fanotify_init: %s (root and CONFIG_FANOTIFY_ACCESS_PERMISSIONS needed)",
		strerror(errno));
	ASSERTF(fanotify_mark(fan, FAN_MARK_ADD, FAN_OPEN_PERM, AT_FDCWD, path) == 0,
		"fanotify_mark %s: %s", path, strerror(errno));

	cp.port = e.s.port;
	ASSERT(pthread_create(&th, NULL, copy_up_big, &cp) == 0);
	pfd = (struct pollfd){ .fd = fan, .events = POLLIN };
	ASSERTF(poll(&pfd, 1, 60000) == 1, "the copy-up never opened the lower file (SETATTR done: %d)",
		atomic_load(&cp.done));
	ASSERT(read(fan, &ev, sizeof(ev)) == (ssize_t)sizeof(ev));
	ASSERT(ev.vers == FANOTIFY_METADATA_VERSION && (ev.mask & FAN_OPEN_PERM) && ev.fd >= 0);
	ASSERTF(ev.pid == e.s.pid, "the lower file was opened by pid %d, not by the server (%d)",
		(int)ev.pid, (int)e.s.pid);

	/* the copy-up is in progress, held at its open of the lower file */
	for (int i = 0; i < NASK; i++) {
		char rb[64];
		uint32_t got = 0;
		bool eof = false;
		fattr3 a;

		ASSERTF(tl_nfs_getattr(&c, &small, &a) == NFS3_OK,
			"GETATTR %d of another client not answered during the copy-up", i + 1);
		ASSERTF(tl_nfs_read(&c, &small, 0, sizeof(rb), rb, &got, &eof) == NFS3_OK,
			"READ %d of another client not answered during the copy-up", i + 1);
		ASSERT(got == 11 && eof && memcmp(rb, "small file\n", 11) == 0);
		ASSERT(!atomic_load(&cp.done));
		answered_during++;
	}
	allow = (struct fanotify_response){ .fd = ev.fd, .response = FAN_ALLOW };
	ASSERT(write(fan, &allow, sizeof(allow)) == (ssize_t)sizeof(allow));
	close(ev.fd);
	close(fan); /* any later open is not held */
	pthread_join(th, NULL);
	ASSERTF(cp.status == NFS3_OK, "SETATTR of the big file: %s", tl_nfsstat_name(cp.status));
	ASSERT_EQ(answered_during, NASK);
	printf("# %d requests of another client answered while the 1 GiB copy-up was held\n",
	       answered_during);

	/* the copy: full size, holes kept, data intact, origin recorded */
	tl_join(path, sizeof(path), e.t.upper, "big");
	ASSERT(stat(path, &st) == 0);
	ASSERT_EQ(st.st_size, (long long)NCHUNK * CHUNK);
	ASSERT_EQ(st.st_mode & 07777, 0600);
	ASSERTF((long long)st.st_blocks * 512 <= (long long)(NCHUNK - 60) * CHUNK,
		"the 64 MiB hole was filled: %lld bytes allocated", (long long)st.st_blocks * 512);
	fd = open(path, O_RDONLY);
	ASSERT(fd >= 0);
	for (uint64_t i = 0; i < NCHUNK; i += 97) {
		uint64_t off = i * CHUNK + 12345;
		uint8_t b;
		ASSERT(pread(fd, &b, 1, (off_t)off) == 1);
		if (i >= 480 && i < 544)
			ASSERT_EQ(b, 0);
		else
			ASSERT_EQ(b, pattern(off));
	}
	close(fd);
	ASSERT(lgetxattr(path, "trusted.overlay.origin", buf, 256) > 21);
	{
		char w[PATH_MAX];
		tl_join(w, sizeof(w), e.t.work, "work");
		ASSERT_EQ(tl_count_entries(w), 0);
	}
	free(buf);
	tl_client_close(&c);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

struct writer {
	int port;
	int idx;
	struct tl_fh fh;
	int status;
	pthread_barrier_t *go;
};

static void *write_region(void *arg)
{
	struct writer *w = arg;
	struct tl_client c;
	char data[4096];

	memset(data, 'A' + w->idx, sizeof(data));
	tl_client_connect(&c, w->port);
	pthread_barrier_wait(w->go);
	w->status = tl_nfs_write(&c, &w->fh, (uint64_t)w->idx * 65536, data, sizeof(data));
	tl_client_close(&c);
	return NULL;
}

TEST_IMPL(concurrent_changes_copy_up_once)
{
	enum { NW = 6, SIZE = 8 << 20 };
	struct env e;
	struct tl_client c;
	struct tl_fh root, fh;
	struct writer w[NW];
	pthread_t th[NW];
	pthread_barrier_t go;
	char path[PATH_MAX], idx[PATH_MAX], *lower;
	struct stat st;

	tl_tree_new(&e.t, 1);
	lower = malloc(SIZE);
	ASSERT(lower != NULL);
	for (size_t i = 0; i < SIZE; i++)
		lower[i] = (char)('a' + i % 26);
	tl_write_buf(e.t.lower[0], "shared", lower, SIZE, 0644);
	env_start(&e);
	tl_client_mount(&c, e.s.port, "/", &root);
	ASSERT_EQ(tl_nfs_lookup(&c, &root, "shared", &fh, NULL), NFS3_OK);

	pthread_barrier_init(&go, NULL, NW);
	for (int i = 0; i < NW; i++) {
		w[i] = (struct writer){ .port = e.s.port, .idx = i, .fh = fh, .go = &go };
		ASSERT(pthread_create(&th[i], NULL, write_region, &w[i]) == 0);
	}
	for (int i = 0; i < NW; i++) {
		pthread_join(th[i], NULL);
		ASSERTF(w[i].status == NFS3_OK, "writer %d: %s", i, tl_nfsstat_name(w[i].status));
	}
	pthread_barrier_destroy(&go);

	/* one copy: every writer's region landed in the same upper file */
	tl_join(path, sizeof(path), e.t.upper, "shared");
	ASSERT(stat(path, &st) == 0 && st.st_size == SIZE);
	{
		char *got;
		ssize_t n = tl_read_file(path, &got);
		ASSERT_EQ(n, SIZE);
		for (int i = 0; i < NW; i++)
			for (int k = 0; k < 4096; k++)
				ASSERTF(got[i * 65536 + k] == 'A' + i, "writer %d's data lost at %d", i, k);
		/* the rest is the lower data */
		for (size_t off = 4096; off < SIZE; off += 65536 + 1)
			if (off % 65536 >= 4096)
				ASSERT_EQ(got[off], lower[off]);
		free(got);
	}
	/* exactly one index entry (the copy-up's hard link), and it is that file */
	tl_join(idx, sizeof(idx), e.t.work, "index");
	ASSERT_EQ(tl_count_entries(idx), 1);
	{
		DIR *d = opendir(idx);
		struct dirent *de;
		struct stat ist;
		char ip[2 * PATH_MAX];
		while ((de = readdir(d)))
			if (de->d_name[0] != '.') {
				snprintf(ip, sizeof(ip), "%s/%s", idx, de->d_name);
				ASSERT(stat(ip, &ist) == 0 && ist.st_ino == st.st_ino);
			}
		closedir(d);
	}
	tl_join(path, sizeof(path), e.t.work, "work");
	ASSERT_EQ(tl_count_entries(path), 0);
	free(lower);
	tl_client_close(&c);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

static const struct tl_case cases[] = {
	TEST_ENTRY_TIMEOUT(copyup_1gib_does_not_block_others, 600),
	TEST_ENTRY_TIMEOUT(concurrent_changes_copy_up_once, 300),
};

int main(int argc, char **argv)
{
	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
